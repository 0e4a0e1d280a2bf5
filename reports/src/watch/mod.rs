//! `watch`: did anything change? For every target (and, for grades, every task of it) and every
//! [`Metric`], the latest window of runs is held against the baseline of runs before it. A
//! finding needs both an effect at least the metric's threshold and significance after
//! Benjamini–Hochberg over every test made. Tests are made on one value per run (see
//! [`stats`]): the calls of one run share a network moment, so testing calls as if they were
//! independent raises false alarms on targets that did not change.
//!
//! `history` folds records into run points, `read` reads them from a store, `analyze` (here)
//! makes the findings; `alerts` turns findings into messages sent once.

pub mod history;
pub mod job;
pub mod metric;
pub mod read;
pub mod stats;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use history::{CellKey, History, RunPoint};
use metric::Kind;
pub use metric::Metric;

/// Which runs are "now".
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Window {
    /// Runs that started in the last this long.
    Time(Duration),
    /// Each cell's last N runs.
    Runs(usize),
}

/// How `watch` compares.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub window: Window,
    /// How far before the window the baseline reaches.
    pub baseline: Duration,
    /// The end of the window (now, or a time given for a reproducible answer).
    pub until: DateTime<Utc>,
    /// The Benjamini–Hochberg level.
    pub q: f64,
    /// Fewest runs with a value in the window, and in the baseline, for a metric to be tested.
    pub min_runs: usize,
    pub min_baseline_runs: usize,
    /// Thresholds that differ from [`Metric::default_threshold`].
    pub thresholds: BTreeMap<Metric, f64>,
    /// Empty: every target.
    pub targets: Vec<String>,
    /// Follow each target from each origin apart (`target @ origin`) when the runs come from
    /// several: a campaign claimed per origin, or `watch --by-origin`.
    pub by_origin: bool,
}

impl WatchOptions {
    /// The defaults: a 3-day window against the 14 days before it, q = 0.01.
    pub fn new(until: DateTime<Utc>) -> WatchOptions {
        WatchOptions {
            window: Window::Time(Duration::days(3)),
            baseline: Duration::days(14),
            until,
            q: 0.01,
            min_runs: 5,
            min_baseline_runs: 10,
            thresholds: BTreeMap::new(),
            targets: Vec::new(),
            by_origin: false,
        }
    }

    pub fn threshold(&self, m: Metric) -> f64 {
        self.thresholds
            .get(&m)
            .copied()
            .unwrap_or_else(|| m.default_threshold())
    }

    /// Settings from a config's `[watch]` table over these.
    pub fn with_settings(mut self, s: &llmpulse_core::config::WatchSettings) -> WatchOptions {
        if let Some(w) = s.window {
            self.window = Window::Time(Duration::from_std(w).unwrap_or(Duration::days(3)));
        }
        if let Some(n) = s.window_runs {
            self.window = Window::Runs(n as usize);
        }
        if let Some(b) = s.baseline {
            self.baseline = Duration::from_std(b).unwrap_or(Duration::days(14));
        }
        if let Some(q) = s.q {
            self.q = q;
        }
        if let Some(n) = s.min_runs {
            self.min_runs = n as usize;
        }
        if let Some(n) = s.min_baseline_runs {
            self.min_baseline_runs = n as usize;
        }
        for (name, v) in &s.thresholds {
            if let Some(m) = Metric::parse(name) {
                self.thresholds.insert(m, *v);
            }
        }
        self
    }
}

/// Which way a finding went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Worse,
    Better,
}

/// One side of a finding: the metric's value over a group of runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideFigure {
    /// The median of the runs' values for percentiles, their mean for rates and grades.
    pub value: f64,
    /// Runs with a value.
    pub n: usize,
    /// Calls that gave those values.
    pub calls: u64,
    /// 95% interval of `value`.
    pub ci: (f64, f64),
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub absolute: f64,
    /// `absolute / baseline` (null when the baseline is 0).
    pub relative: Option<f64>,
}

/// A change `watch` is sure of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub target: String,
    /// Set when the finding is about one task of the target only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    pub metric: Metric,
    pub direction: Direction,
    pub baseline: SideFigure,
    pub current: SideFigure,
    pub change: Change,
    /// The threshold the change passed (relative or absolute, as the metric is).
    pub threshold: f64,
    pub p_value: f64,
    pub q_value: f64,
    /// When the change most likely began (the first run after the step).
    pub since: Option<DateTime<Utc>>,
    /// The run ids either side of the step.
    pub runs: Vec<String>,
}

impl Finding {
    /// A stable name for this (target, task, metric): the alert's key.
    pub fn key(&self) -> String {
        key(&self.target, self.task.as_deref(), self.metric)
    }

    /// One line for a person: `groq-llama: latency_p50 worse 0.62 → 0.87 (+40%) since …`.
    pub fn line(&self) -> String {
        let change = match self.change.relative {
            Some(r) if self.metric.relative() => format!("{:+.0}%", r * 100.0),
            _ => format!("{:+.3}", self.change.absolute),
        };
        let task = self
            .task
            .as_deref()
            .map(|t| format!(" [{t}]"))
            .unwrap_or_default();
        let since = self
            .since
            .map(|s| format!(" since {}", s.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default();
        format!(
            "{}{task}: {} {} {} → {} ({change}, q = {:.1e}){since}",
            self.target,
            self.metric.name(),
            match self.direction {
                Direction::Worse => "worse",
                Direction::Better => "better",
            },
            fmt_value(self.metric, self.baseline.value),
            fmt_value(self.metric, self.current.value),
            self.q_value,
        )
    }
}

/// The alert key of a (target, task, metric).
pub fn key(target: &str, task: Option<&str>, metric: Metric) -> String {
    match task {
        Some(t) => format!("{target}.{t}.{}", metric.name()),
        None => format!("{target}.{}", metric.name()),
    }
}

/// A value in the metric's unit, as the terminal shows it.
pub fn fmt_value(m: Metric, v: f64) -> String {
    match m {
        Metric::LatencyP50 | Metric::LatencyP95 | Metric::TtftP50 => format!("{v:.3} s"),
        Metric::OutputSpeedP50 => format!("{v:.1} tok/s"),
        Metric::CostPerCall => format!("${v:.6}"),
        Metric::EnergyPerToken => format!("{v:.3} J/tok"),
        Metric::MemoryMb => format!("{v:.0} MB"),
        m if m.kind() == Kind::Rate => format!("{:.1}%", v * 100.0),
        _ => format!("{v:.3}"),
    }
}

/// A metric that was not tested, and why (too few runs on a side, a target gone silent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// `None` when the whole target was skipped.
    pub metric: Option<Metric>,
    pub reason: String,
    pub baseline_runs: usize,
    pub current_runs: usize,
}

/// What a `watch` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// Worse first, then better; each by target, task and metric.
    pub findings: Vec<Finding>,
    pub skipped: Vec<Skipped>,
    /// Tests made (the Benjamini–Hochberg m).
    pub tests: usize,
    pub targets: usize,
    /// The alert ids of every (target, task, metric) tested: an open alert whose metric was
    /// tested and found nothing has recovered; one not tested (no runs) stays open.
    #[serde(skip)]
    pub tested: std::collections::BTreeSet<String>,
    /// Per campaign, the newest run that had a budget: a run its budget stopped is an alert
    /// until a later run of the campaign runs within its budget.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub budget: Vec<history::BudgetState>,
}

impl Outcome {
    pub fn regressions(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.direction == Direction::Worse)
    }
}

/// A test made, before the correction.
struct Tested {
    key: CellKey,
    metric: Metric,
    p: f64,
    worse: Option<bool>,
    baseline: SideFigure,
    current: SideFigure,
    change: Change,
    since: Option<DateTime<Utc>>,
    runs: Vec<String>,
}

/// The findings in `history` under `opts`.
pub fn analyze(history: &History, opts: &WatchOptions) -> Outcome {
    let mut out = Outcome {
        budget: history.budget.values().cloned().collect(),
        ..Outcome::default()
    };
    let mut tested: Vec<Tested> = Vec::new();
    let mut targets = std::collections::BTreeSet::new();
    for (key, series) in &history.cells {
        if !opts.targets.is_empty() && !opts.targets.contains(&key.0) {
            continue;
        }
        let (base, now) = split(series, opts);
        if key.1.is_none() {
            targets.insert(key.0.clone());
            if now.is_empty() {
                if !base.is_empty() {
                    let last = series.iter().map(|p| p.started).max();
                    out.skipped.push(Skipped {
                        target: key.0.clone(),
                        task: None,
                        metric: None,
                        reason: format!(
                            "no runs in the window (last run {})",
                            last.map(|t| t.to_rfc3339()).unwrap_or_default()
                        ),
                        baseline_runs: base.len(),
                        current_runs: 0,
                    });
                }
                continue;
            }
        }
        let tasks_with = |m: Metric| {
            history
                .cells
                .iter()
                .filter(|((t, task), s)| {
                    *t == key.0 && task.is_some() && s.iter().any(|p| p.value(m).is_some())
                })
                .count()
        };
        for m in Metric::ALL {
            // A task's cell is tested for grades only, when more than one task carries it.
            if key.1.is_some() && (!m.per_task() || tasks_with(m) < 2) {
                continue;
            }
            let b = values(base, m);
            let c = values(now, m);
            if b.is_empty() && c.is_empty() {
                continue;
            }
            if c.len() < opts.min_runs || b.len() < opts.min_baseline_runs {
                out.skipped.push(Skipped {
                    target: key.0.clone(),
                    task: key.1.clone(),
                    metric: Some(m),
                    reason: format!(
                        "too few runs with a value: {} in the window (needs {}), {} in the baseline (needs {})",
                        c.len(),
                        opts.min_runs,
                        b.len(),
                        opts.min_baseline_runs
                    ),
                    baseline_runs: b.len(),
                    current_runs: c.len(),
                });
                continue;
            }
            if let Some(t) = test(key, m, &b, &c, opts) {
                tested.push(t);
            }
        }
    }
    out.targets = targets.len();
    out.tests = tested.len();
    out.tested = tested
        .iter()
        .map(|t| llmpulse_core::layout::safe_part(&key(&t.key.0, t.key.1.as_deref(), t.metric)))
        .collect();
    let p: Vec<f64> = tested.iter().map(|t| t.p).collect();
    let q = stats::benjamini_hochberg(&p);
    for (t, q) in tested.into_iter().zip(q) {
        let Some(worse) = t.worse else { continue };
        if q > opts.q {
            continue;
        }
        out.findings.push(Finding {
            target: t.key.0.clone(),
            task: t.key.1.clone(),
            metric: t.metric,
            direction: if worse {
                Direction::Worse
            } else {
                Direction::Better
            },
            baseline: t.baseline,
            current: t.current,
            change: t.change,
            threshold: opts.threshold(t.metric),
            p_value: t.p,
            q_value: q,
            since: t.since,
            runs: t.runs,
        });
    }
    // A task's finding only where its target's own figure for that metric found nothing.
    let whole: std::collections::BTreeSet<(String, Metric)> = out
        .findings
        .iter()
        .filter(|f| f.task.is_none())
        .map(|f| (f.target.clone(), f.metric))
        .collect();
    out.findings
        .retain(|f| f.task.is_none() || !whole.contains(&(f.target.clone(), f.metric)));
    out.findings.sort_by(|a, b| {
        (
            a.direction != Direction::Worse,
            &a.target,
            &a.task,
            a.metric,
        )
            .cmp(&(
                b.direction != Direction::Worse,
                &b.target,
                &b.task,
                b.metric,
            ))
    });
    out
}

/// A cell's (baseline, window) runs.
fn split<'a>(series: &'a [RunPoint], opts: &WatchOptions) -> (&'a [RunPoint], &'a [RunPoint]) {
    let end = series.partition_point(|p| p.started < opts.until);
    let upto = &series[..end];
    let window_start = match opts.window {
        Window::Time(d) => upto.partition_point(|p| p.started < opts.until - d),
        Window::Runs(n) => upto.len().saturating_sub(n),
    };
    let from = upto
        .get(window_start)
        .map(|p| p.started)
        .unwrap_or(opts.until);
    let from = match opts.window {
        Window::Time(d) => opts.until - d,
        Window::Runs(_) => from,
    };
    let base_start = upto[..window_start].partition_point(|p| p.started < from - opts.baseline);
    (&upto[base_start..window_start], &upto[window_start..])
}

/// A metric's value in each run that has one, with the run.
fn values(runs: &[RunPoint], m: Metric) -> Vec<(f64, &RunPoint)> {
    runs.iter()
        .filter_map(|p| p.value(m).map(|v| (v, p)))
        .collect()
}

fn figure(m: Metric, v: &[(f64, &RunPoint)]) -> Option<SideFigure> {
    let xs: Vec<f64> = v.iter().map(|(x, _)| *x).collect();
    let (value, ci) = match m.kind() {
        Kind::Quantile(_) => stats::median_interval(&xs)?,
        _ => {
            let (mean, (lo, hi)) = stats::mean_interval(&xs)?;
            let (lo, hi) = if m.kind() == Kind::Rate {
                (lo.max(0.0), hi.min(1.0))
            } else {
                (lo, hi)
            };
            (mean, (lo, hi))
        }
    };
    Some(SideFigure {
        value,
        n: v.len(),
        calls: v.iter().map(|(_, p)| u64::from(p.counts[m.index()])).sum(),
        ci,
        from: v.iter().map(|(_, p)| p.started).min()?,
        to: v.iter().map(|(_, p)| p.started).max()?,
    })
}

fn test(
    key: &CellKey,
    m: Metric,
    b: &[(f64, &RunPoint)],
    c: &[(f64, &RunPoint)],
    opts: &WatchOptions,
) -> Option<Tested> {
    let baseline = figure(m, b)?;
    let current = figure(m, c)?;
    let log = m.log_scale() && b.iter().chain(c).all(|(v, _)| *v > 0.0);
    let scale = |v: &[(f64, &RunPoint)]| -> Vec<f64> {
        v.iter()
            .map(|(x, _)| if log { x.ln() } else { *x })
            .collect()
    };
    let (xb, xc) = (scale(b), scale(c));
    // Rates: run values are few distinct fractions (k of 20), and one run in thirty may meet a
    // burst of failures; a rank test over runs counts such a run as one low rank, where a
    // variance would count its square. Ranks alone are too sure of rare events (a window of
    // 19s against a baseline of 20s), so the calls must also differ by Fisher's exact test: a
    // rate changes only when both say so (the larger p). Times, speeds and grades: Welch on
    // run values.
    let (t, p) = if m.kind() == Kind::Rate {
        let (_, z, _) = llmpulse_core::stats::mann_whitney(&xc, &xb)?;
        let ok = |v: &[(f64, &RunPoint)]| {
            v.iter()
                .map(|(x, p)| x * f64::from(p.counts[m.index()]))
                .sum::<f64>()
                .round() as u64
        };
        let calls = stats::fisher_exact(ok(c), current.calls, ok(b), baseline.calls);
        (z, stats::normal_two_sided_p(z).max(calls))
    } else {
        let w = stats::welch(&xc, &xb, 0.0, 0.0)?;
        (w.t, w.p)
    };
    let absolute = current.value - baseline.value;
    let relative = (baseline.value != 0.0).then(|| absolute / baseline.value);
    let effect = if m.relative() {
        relative.unwrap_or(0.0)
    } else {
        absolute
    };
    let threshold = opts.threshold(m);
    // The effect and the test must agree on the direction.
    let worse = if effect.abs() < threshold || effect.signum() != t.signum() {
        None
    } else {
        Some((effect > 0.0) == m.higher_is_worse())
    };
    // The step: searched from a window's length before the window to its end.
    let series: Vec<f64> = xb.iter().chain(&xc).copied().collect();
    let all: Vec<&RunPoint> = b.iter().chain(c).map(|(_, p)| *p).collect();
    let from = xb.len().saturating_sub(xc.len()).max(1);
    let k = stats::change_point(&series, from, series.len() - 1);
    let (since, runs) = match k {
        Some(k) => (
            Some(all[k].started),
            vec![all[k - 1].run_id.to_string(), all[k].run_id.to_string()],
        ),
        None => (None, Vec::new()),
    };
    Some(Tested {
        key: key.clone(),
        metric: m,
        p,
        worse,
        baseline,
        current,
        change: Change { absolute, relative },
        since,
        runs,
    })
}
