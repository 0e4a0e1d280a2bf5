//! A history as `watch` reads it: for every run and every (target, task), one value per
//! [`Metric`] (the run's median latency, its success rate, its mean coverage…). A run's calls
//! are folded into these values as soon as its file is read, so memory holds one small point
//! per run and target, never the records.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::metric::{Kind, Metric};
use crate::row::Row;

/// What `watch` reads of a record: a lean projection, so a history parses quickly.
#[derive(Debug, Deserialize)]
pub struct WatchRow<'a> {
    #[serde(borrow)]
    pub target: Cow<'a, str>,
    #[serde(borrow, default)]
    pub task: Cow<'a, str>,
    pub success: bool,
    pub latency_sec: f64,
    #[serde(default)]
    pub ttft_sec: Option<f64>,
    #[serde(default)]
    pub output_speed_tps: Option<f64>,
    #[serde(default)]
    pub rate_limited_count: u32,
    #[serde(default)]
    pub coverage_score: Option<f64>,
    #[serde(default)]
    pub grounding_score: Option<f64>,
    #[serde(default)]
    pub quality_score: Option<f64>,
    #[serde(default)]
    pub answer_correct: Option<bool>,
    #[serde(default)]
    pub instructions_followed: Option<f64>,
    #[serde(default)]
    pub json_valid: Option<bool>,
    #[serde(default)]
    pub tool_call_valid: Option<bool>,
    #[serde(default)]
    pub cost_usd: Option<f64>,
    #[serde(default)]
    pub energy_per_token_j: Option<f64>,
    #[serde(default)]
    pub memory_mb: Option<f64>,
    #[serde(borrow, default)]
    pub error_kind: Option<Cow<'a, str>>,
}

/// One call's contribution, from either projection.
#[derive(Debug, Clone, Copy)]
pub struct Obs<'a> {
    pub target: &'a str,
    pub task: &'a str,
    pub success: bool,
    pub latency: f64,
    pub ttft: Option<f64>,
    pub speed: Option<f64>,
    pub rate_limited: bool,
    pub coverage: Option<f64>,
    pub grounding: Option<f64>,
    pub quality: Option<f64>,
    pub answer_correct: Option<bool>,
    pub instructions: Option<f64>,
    pub json_valid: Option<bool>,
    pub tool_call_valid: Option<bool>,
    pub cost: Option<f64>,
    pub energy_per_token: Option<f64>,
    pub memory: Option<f64>,
    /// A call a budget did not let start: it says nothing of the target, and counts nowhere.
    pub skipped_budget: bool,
}

/// `Obs` from either projection of a record: the same fields, the same names.
macro_rules! obs_from {
    ($row:ident) => {
        impl<'a> From<&'a $row<'a>> for Obs<'a> {
            fn from(r: &'a $row<'a>) -> Obs<'a> {
                Obs {
                    target: &r.target,
                    task: &r.task,
                    success: r.success,
                    latency: r.latency_sec,
                    ttft: r.ttft_sec,
                    speed: r.output_speed_tps,
                    rate_limited: r.rate_limited_count > 0,
                    coverage: r.coverage_score,
                    grounding: r.grounding_score,
                    quality: r.quality_score,
                    answer_correct: r.answer_correct,
                    instructions: r.instructions_followed,
                    json_valid: r.json_valid,
                    tool_call_valid: r.tool_call_valid,
                    cost: r.cost_usd,
                    energy_per_token: r.energy_per_token_j,
                    memory: r.memory_mb,
                    skipped_budget: r.error_kind.as_deref() == Some("skipped_budget"),
                }
            }
        }
    };
}
obs_from!(WatchRow);
obs_from!(Row);

/// A (target, task) cell: the task is `None` for the whole target.
pub type CellKey = (String, Option<String>);

/// One run's calls of one cell, while the run is being read.
#[derive(Debug, Default)]
struct Acc {
    latency: Vec<f64>,
    ttft: Vec<f64>,
    speed: Vec<f64>,
    /// (sum, n) per metric for rates and means.
    sums: [(f64, u32); Metric::ALL.len()],
}

impl Acc {
    fn add(&mut self, o: &Obs<'_>, whole_target: bool) {
        let mut put = |m: Metric, v: Option<f64>| {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                let s = &mut self.sums[m.index()];
                s.0 += v;
                s.1 += 1;
            }
        };
        let b = |v: Option<bool>| v.map(|x| if x { 1.0 } else { 0.0 });
        if whole_target {
            put(Metric::SuccessRate, Some(if o.success { 1.0 } else { 0.0 }));
            put(
                Metric::RateLimitedRate,
                Some(if o.rate_limited { 1.0 } else { 0.0 }),
            );
            // What a call cost, answered or not: a billed failure is money spent.
            put(Metric::CostPerCall, o.cost);
        }
        if !o.success {
            return;
        }
        if whole_target {
            if o.latency.is_finite() {
                self.latency.push(o.latency);
            }
            self.ttft.extend(o.ttft.filter(|v| v.is_finite()));
            self.speed.extend(o.speed.filter(|v| v.is_finite()));
            put(Metric::JsonValid, b(o.json_valid));
            put(Metric::ToolCallValid, b(o.tool_call_valid));
            put(Metric::EnergyPerToken, o.energy_per_token);
            put(Metric::MemoryMb, o.memory);
        }
        put(Metric::Coverage, o.coverage);
        put(Metric::Grounding, o.grounding);
        put(Metric::QualityScore, o.quality);
        put(Metric::AnswerCorrect, b(o.answer_correct));
        put(Metric::InstructionsFollowed, o.instructions);
    }

    fn point(mut self) -> (Values, Counts) {
        let mut out: Values = [f32::NAN; Metric::ALL.len()];
        let mut counts: Counts = [0; Metric::ALL.len()];
        let mut quantile = |v: &mut Vec<f64>, m: Metric| {
            if let Kind::Quantile(q) = m.kind()
                && v.len() >= m.min_per_run()
            {
                v.sort_by(f64::total_cmp);
                out[m.index()] = llmpulse_core::stats::percentile_sorted(v, q * 100.0) as f32;
                counts[m.index()] = u16::try_from(v.len()).unwrap_or(u16::MAX);
            }
        };
        quantile(&mut self.latency, Metric::LatencyP50);
        quantile(&mut self.latency, Metric::LatencyP95);
        quantile(&mut self.ttft, Metric::TtftP50);
        quantile(&mut self.speed, Metric::OutputSpeedP50);
        for m in Metric::ALL {
            let (sum, n) = self.sums[m.index()];
            if !matches!(m.kind(), Kind::Quantile(_)) && n > 0 {
                out[m.index()] = (sum / f64::from(n)) as f32;
                counts[m.index()] = u16::try_from(n).unwrap_or(u16::MAX);
            }
        }
        (out, counts)
    }
}

/// A run's value of every metric, NaN where it has none (f32: seven digits are plenty for a
/// run's median, and a history of a million records holds 300,000 points).
pub type Values = [f32; Metric::ALL.len()];
/// How many calls gave each value.
pub type Counts = [u16; Metric::ALL.len()];

/// One run, as a point of a cell's series.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPoint {
    /// Shared by the run's cells.
    pub run_id: std::sync::Arc<str>,
    pub started: DateTime<Utc>,
    /// Calls of this cell in the run.
    pub calls: u32,
    pub values: Values,
    pub counts: Counts,
}

impl RunPoint {
    /// The run's value of `m`, if it has one.
    pub fn value(&self, m: Metric) -> Option<f64> {
        let v = self.values[m.index()];
        (!v.is_nan()).then_some(f64::from(v))
    }
}

/// One run's calls, folded cell by cell (a run has few cells: a short list beats a map).
#[derive(Debug, Default)]
pub struct RunFold {
    cells: Vec<(String, Option<String>, u32, Acc)>,
}

impl RunFold {
    pub fn add(&mut self, o: &Obs<'_>) {
        if o.skipped_budget {
            return;
        }
        self.bump(o, None);
        if !o.task.is_empty() {
            self.bump(o, Some(o.task));
        }
    }

    fn bump(&mut self, o: &Obs<'_>, task: Option<&str>) {
        let found = self
            .cells
            .iter()
            .position(|(t, k, _, _)| t == o.target && k.as_deref() == task);
        let i = match found {
            Some(i) => i,
            None => {
                self.cells.push((
                    o.target.to_string(),
                    task.map(str::to_string),
                    0,
                    Acc::default(),
                ));
                self.cells.len() - 1
            }
        };
        let cell = &mut self.cells[i];
        cell.2 += 1;
        cell.3.add(o, task.is_none());
    }

    /// The run's points, one per cell.
    /// The run's points. With a `vantage` (history by origin, over runs from several origins),
    /// each target is followed from each origin apart, as `target @ origin`: a region's network
    /// is not read as the model changing when runs from different places alternate.
    pub fn finish(
        self,
        run_id: &str,
        started: DateTime<Utc>,
        vantage: Option<&str>,
    ) -> Vec<(CellKey, RunPoint)> {
        let run_id: std::sync::Arc<str> = run_id.into();
        self.cells
            .into_iter()
            .map(|(target, task, calls, acc)| {
                let target = match vantage {
                    Some(v) => format!("{target} @ {v}"),
                    None => target,
                };
                let (values, counts) = acc.point();
                let point = RunPoint {
                    run_id: run_id.clone(),
                    started,
                    calls,
                    values,
                    counts,
                };
                ((target, task), point)
            })
            .collect()
    }
}

/// Every cell's series of runs, each in time order.
#[derive(Debug, Default, Clone)]
pub struct History {
    pub cells: BTreeMap<CellKey, Vec<RunPoint>>,
    /// Per campaign (`-` outside one), the newest run that had a budget and what it did.
    pub budget: BTreeMap<String, BudgetState>,
    /// Records folded.
    pub records: u64,
    /// Runs folded.
    pub runs: u64,
}

/// The newest run of a campaign that had a budget, and whether the budget stopped it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BudgetState {
    pub campaign: String,
    pub run_id: String,
    pub started: DateTime<Utc>,
    /// Why its budget refused calls; `None`: it ran within its budget.
    pub stopped: Option<String>,
}

impl BudgetState {
    /// The alert's key: one per campaign.
    pub fn key(&self) -> String {
        format!("budget.{}", self.campaign)
    }

    /// One line for a person.
    pub fn line(&self) -> String {
        let whose = match self.campaign.as_str() {
            "-" => "no campaign".to_string(),
            c => format!("campaign {c}"),
        };
        match &self.stopped {
            Some(why) => format!("{whose}: run {} stopped for budget ({why})", self.run_id),
            None => format!("{whose}: run {} ran within its budget", self.run_id),
        }
    }
}

impl History {
    /// Keeps `s` when it is its campaign's newest run.
    pub fn note_budget(&mut self, s: BudgetState) {
        match self.budget.get(&s.campaign) {
            Some(old) if (old.started, &old.run_id) >= (s.started, &s.run_id) => {}
            _ => {
                self.budget.insert(s.campaign.clone(), s);
            }
        }
    }

    /// Adds one run's points.
    pub fn add_run(&mut self, points: Vec<(CellKey, RunPoint)>) {
        self.runs += 1;
        for (key, p) in points {
            if key.1.is_none() {
                self.records += u64::from(p.calls);
            }
            self.cells.entry(key).or_default().push(p);
        }
    }

    /// Adds another history's runs (kept apart until [`History::sort`]).
    pub fn merge(&mut self, o: History) {
        self.runs += o.runs;
        self.records += o.records;
        for (k, mut v) in o.cells {
            self.cells.entry(k).or_default().append(&mut v);
        }
    }

    /// Puts every series in time order (then run id), whatever order runs were added in.
    pub fn sort(&mut self) {
        for s in self.cells.values_mut() {
            s.sort_by(|a, b| (a.started, &a.run_id).cmp(&(b.started, &b.run_id)));
        }
    }
}
