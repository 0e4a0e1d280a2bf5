//! Figures: the statistics of a report, computed from an [`Aggregate`] and written as
//! `summary.json`. Every figure carries its n. Percentiles come with 95% intervals: a seeded
//! bootstrap while a group's exact values are kept (up to [`EXACT_CAP`]), the distribution-free
//! order-statistic interval read off the histogram beyond that. Rates carry Wilson intervals.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::aggregate::{Aggregate, BucketAgg, Rate};
use crate::compare::{self, Comparison};
pub use crate::estimate::{CiMethod, Estimate, MeanFigure, Quantiles, RESAMPLES, RateFigure, SEED};
use crate::read::{ReadStats, RunSeen};
use llmpulse_core::schedule::Campaign;

pub mod cost;
pub mod heat;
pub mod origin;
pub mod split;
mod target;
pub use target::{PromptCacheFigures, ServerTimingFigures, TargetFigures};
use target::{mark_pareto, target_figures};

/// The window of the rolling median, as public provider leaderboards report it.
pub const ROLLING_HOURS: i64 = 72;

/// Quality in one (target, industry) cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellFigures {
    pub target: String,
    pub industry: String,
    pub success: RateFigure,
    pub coverage: Option<MeanFigure>,
    pub grounding: Option<MeanFigure>,
}

/// Capability figures of one (target, task) or (target, temperature) cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskFigures {
    pub target: String,
    /// The task, or the temperature as text.
    pub key: String,
    pub success: RateFigure,
    pub coverage: Option<MeanFigure>,
    pub json_valid: Option<RateFigure>,
    pub tool_call_valid: Option<RateFigure>,
    pub answer_correct: Option<RateFigure>,
    pub instructions_followed: Option<MeanFigure>,
    pub quality_score: Option<MeanFigure>,
    pub output_speed_tps: Option<MeanFigure>,
    /// For the creative task: distinct answers per answer to the same question.
    pub distinct_answer_share: Option<f64>,
    /// For the creative task: the mean over questions answered at least twice of their
    /// answers' self-BLEU in [0, 1] (first 8 answers; lower is more varied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_bleu: Option<f64>,
    /// For the structured task: the mean over questions answered at least twice of the share
    /// of their answers in the most common JSON shape (first 8 answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structural_consistency: Option<f64>,
}

/// The mean over (target, question) answer sets of `task` with two answers or more of `f`.
fn across_answers(
    agg: &Aggregate,
    target: &str,
    task: &str,
    f: impl Fn(&[&str]) -> Option<f64>,
) -> Option<f64> {
    let values: Vec<f64> = agg
        .answers
        .iter()
        .filter(|((t, _), k)| t == target && k.task == task && k.texts.len() >= 2)
        .filter_map(|(_, k)| f(&k.texts.iter().map(String::as_str).collect::<Vec<_>>()))
        .collect();
    (!values.is_empty()).then(|| round12(values.iter().sum::<f64>() / values.len() as f64))
}

fn round12(x: f64) -> f64 {
    format!("{x:.11e}").parse().unwrap_or(x)
}

fn task_figures(
    map: &BTreeMap<(String, String), super::aggregate::CellAgg>,
    agg: &Aggregate,
) -> Vec<TaskFigures> {
    map.iter()
        .filter_map(|((target, key), c)| {
            let variety = super::aggregate::is_creative(key)
                .then(|| agg.variety.get(target))
                .flatten()
                .and_then(|v| {
                    let answers: u64 = v.answers.values().sum();
                    let distinct: usize = v.distinct.values().map(|s| s.len()).sum();
                    (answers > 0).then(|| distinct as f64 / answers as f64)
                });
            Some(TaskFigures {
                target: target.clone(),
                key: key.clone(),
                success: RateFigure::of(c.calls)?,
                coverage: MeanFigure::of(c.coverage),
                json_valid: RateFigure::of(c.json_valid),
                tool_call_valid: RateFigure::of(c.tool_call_valid),
                answer_correct: RateFigure::of(c.answer_correct),
                instructions_followed: MeanFigure::of(c.instructions_followed),
                quality_score: MeanFigure::of(c.quality),
                output_speed_tps: MeanFigure::of(c.output_speed),
                distinct_answer_share: variety,
                self_bleu: (key == "creative_content")
                    .then(|| {
                        across_answers(agg, target, key, |a| {
                            llmpulse_core::score::creativity::self_bleu(a)
                        })
                    })
                    .flatten(),
                structural_consistency: (key == "structured_output")
                    .then(|| {
                        across_answers(agg, target, key, |a| {
                            llmpulse_core::score::structured::structural_consistency(
                                a.iter().copied(),
                            )
                        })
                    })
                    .flatten(),
            })
        })
        .collect()
}

/// One point of a target's time series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub start: DateTime<Utc>,
    pub n: u64,
    pub success_rate: f64,
    pub rate_limited_rate: f64,
    pub latency_p50_sec: Option<f64>,
    pub ttft_p50_sec: Option<f64>,
    /// Median latency over the 72 hours ending with this bucket.
    pub rolling_latency_p50_sec: Option<f64>,
    /// `slower` or `faster` from the run where `watch` found the latency median changed (a
    /// test over runs, not calls: see `watch::stats`).
    pub regression: Option<&'static str>,
    /// Mean memory and device power of the bucket's calls (agent runs).
    pub memory_mb: Option<f64>,
    pub power_w: Option<f64>,
    /// Mean of the calls' peak GPU temperatures.
    pub gpu_temp_c: Option<f64>,
}

/// A target's time series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub target: String,
    pub points: Vec<Point>,
}

/// How complete a campaign is in the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignFigures {
    pub campaign: String,
    /// Slots expected: the campaign's slots due by the report's end when its definition was
    /// given, otherwise every slot up to the highest seen.
    pub expected_slots: u64,
    pub expected_from: &'static str,
    pub present_slots: u64,
    pub completeness: f64,
    pub missing_slots: Vec<u64>,
    /// Sharded slots with some shard missing.
    pub incomplete_slots: Vec<u64>,
    pub runs: u64,
    pub records: u64,
    pub successes: u64,
}

/// Everything `summary.json` says.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_at: DateTime<Utc>,
    pub source: String,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub campaign: Option<String>,
    pub records: u64,
    pub runs: usize,
    /// Runs that were stopped early or recovered after they died (`complete = false`): their
    /// records count, but they hold fewer calls than planned.
    pub partial_runs: usize,
    /// True when any record comes from the synthetic history generator.
    pub synthetic: bool,
    pub bucket_sec: i64,
    pub targets: Vec<TargetFigures>,
    pub industries: Vec<CellFigures>,
    /// Per target and task (`rag`, `structured_output`, `tool_use`, `reasoning`, `creative`):
    /// the seed's task performance.
    pub tasks: Vec<TaskFigures>,
    /// Per target and temperature: the seed's temperature effect.
    pub temperatures: Vec<TaskFigures>,
    pub series: Vec<Series>,
    /// What every target's calls cost together, per day and per campaign, and the runs a
    /// budget stopped; absent when no record has a cost and no budget refused a call.
    pub spend: Option<cost::SpendFigures>,
    pub campaigns: Vec<CampaignFigures>,
    pub comparison: Option<Comparison>,
    /// Sweeps: flash attention's effect, per pair of points that differ only in it.
    pub flash_attention: Vec<crate::sweep::FlashImpact>,
    /// Latency and goodput against offered rate, per target with two or more open-loop runs.
    pub rate_curves: Vec<crate::rates::RateCurve>,
    /// What `watch` finds over the same records: the page's changes and latency flags.
    pub watch: WatchFigures,
    /// The store's alert state (`alerts/state.json`), when `watch --notify` keeps one there.
    pub alerts: Option<crate::alerts::AlertState>,
    pub problems: Vec<String>,
    pub bad_lines: u64,
}

/// `watch` over the report's records: the latest window against the baseline before it.
#[derive(Debug, Clone, Serialize)]
pub struct WatchFigures {
    /// The window's end: the report's `until`, or just after its last run.
    pub until: DateTime<Utc>,
    /// How the window was given, for the page: `3d`, `last 12 runs`.
    pub window: String,
    pub baseline_days: f64,
    pub tests: usize,
    pub findings: Vec<crate::watch::Finding>,
    /// Metrics and targets not tested (too few runs, no runs in the window).
    pub skipped: usize,
}

fn watch_figures(agg: &Aggregate, cx: &Context<'_>) -> WatchFigures {
    use crate::watch::{WatchOptions, Window, analyze};
    let last = agg
        .history
        .cells
        .values()
        .filter_map(|s| s.last().map(|p| p.started))
        .max();
    let until = cx
        .until
        .or(last.map(|t| t + Duration::seconds(1)))
        .unwrap_or(cx.now);
    let mut opts = WatchOptions::new(until);
    if let Some(w) = cx.watch {
        opts = opts.with_settings(w);
    }
    let o = analyze(&agg.history, &opts);
    WatchFigures {
        until,
        window: match opts.window {
            Window::Time(d) if d.num_seconds() % 86_400 == 0 => {
                format!("{} days", d.num_days())
            }
            Window::Time(d) => format!("{} hours", d.num_hours()),
            Window::Runs(n) => format!("last {n} runs"),
        },
        baseline_days: opts.baseline.num_seconds() as f64 / 86_400.0,
        tests: o.tests,
        findings: o.findings,
        skipped: o.skipped.len(),
    }
}

/// Inputs besides the aggregate.
pub struct Context<'a> {
    pub source: String,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub campaign: Option<String>,
    /// Campaign definitions, when a config was given: exact expected slot counts.
    pub campaigns: &'a [Campaign],
    pub now: DateTime<Utc>,
    /// A config's `[watch]` table, for the page's changes (absent: watch's defaults).
    pub watch: Option<&'a llmpulse_core::config::WatchSettings>,
}

/// Picks the time bucket for a span: hours up to two days, six hours up to two weeks, days
/// beyond.
pub fn bucket_for(span: Option<(DateTime<Utc>, DateTime<Utc>)>) -> i64 {
    let hours = span.map_or(0, |(a, b)| (b - a).num_hours());
    if hours <= 48 {
        3_600
    } else if hours <= 24 * 14 {
        6 * 3_600
    } else {
        86_400
    }
}

/// Computes every figure.
pub fn compute(agg: &Aggregate, read: &ReadStats, cx: &Context<'_>) -> Report {
    // The bootstrap is the costly part: one thread per target (targets are few).
    let targets: Vec<TargetFigures> = std::thread::scope(|scope| {
        let handles: Vec<_> = agg
            .targets
            .iter()
            .enumerate()
            .map(|(i, (name, t))| scope.spawn(move || target_figures(i, name, t)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut targets = mark_pareto(targets);
    cost::mark_cost_pareto(targets.iter_mut().filter_map(|t| t.cost.as_mut()).collect());

    let industries = agg
        .industries
        .iter()
        .filter_map(|((target, industry), c)| {
            Some(CellFigures {
                target: target.clone(),
                industry: industry.clone(),
                success: RateFigure::of(c.calls)?,
                coverage: MeanFigure::of(c.coverage),
                grounding: MeanFigure::of(c.grounding),
            })
        })
        .collect();

    let mut by_target: BTreeMap<&str, Vec<(i64, &BucketAgg)>> = BTreeMap::new();
    for ((t, start), b) in &agg.buckets {
        by_target.entry(t).or_default().push((*start, b));
    }
    let watch = watch_figures(agg, cx);
    let series = by_target
        .into_iter()
        .map(|(t, buckets)| {
            // A bucket is flagged from the start of watch's latency finding on (the bucket it
            // began in included): the page and the alerts say the same.
            let flag = watch
                .findings
                .iter()
                .find(|f| {
                    f.target == t
                        && f.task.is_none()
                        && f.metric == crate::watch::Metric::LatencyP50
                })
                .map(|f| {
                    let since = f.since.unwrap_or(f.current.from).timestamp();
                    let from = since - since.rem_euclid(agg.plan.bucket_sec);
                    let word = match f.direction {
                        crate::watch::Direction::Worse => "slower",
                        crate::watch::Direction::Better => "faster",
                    };
                    (from, word)
                });
            Series {
                target: t.to_string(),
                points: series_points(&buckets, flag),
            }
        })
        .collect();

    Report {
        generated_at: cx.now,
        source: cx.source.clone(),
        since: cx.since,
        until: cx.until,
        campaign: cx.campaign.clone(),
        records: agg.records,
        runs: read.runs.len(),
        partial_runs: read.runs.iter().filter(|r| !r.complete).count(),
        synthetic: agg.origins.iter().any(|o| o.starts_with("synthetic")),
        bucket_sec: agg.plan.bucket_sec,
        targets,
        industries,
        tasks: task_figures(&agg.tasks, agg),
        temperatures: task_figures(&agg.temperatures, agg),
        series,
        spend: cost::SpendFigures::of(agg.targets.values(), &read.runs),
        campaigns: campaigns(read, cx),
        comparison: compare::compute(agg),
        flash_attention: crate::sweep::flash_impacts(agg, SEED),
        rate_curves: crate::rates::curves(&agg.rates),
        watch,
        alerts: None,
        problems: read
            .problems
            .iter()
            .chain(&agg.bad_lines)
            .cloned()
            .collect(),
        bad_lines: agg.bad_line_count,
    }
}

/// Points of one target's series (buckets sorted by start), with the rolling median; `flag`
/// marks every bucket from a start on (`slower` or `faster`: watch's latency finding).
pub fn series_points(
    buckets: &[(i64, &BucketAgg)],
    flag: Option<(i64, &'static str)>,
) -> Vec<Point> {
    let rolling = ROLLING_HOURS * 3_600;
    buckets
        .iter()
        .enumerate()
        .map(|(i, (start, b))| {
            let window = |from: i64, to: i64| -> BucketAgg {
                let mut merged = BucketAgg::default();
                for (s, other) in &buckets[..=i] {
                    if *s >= from && *s < to {
                        merged.merge(other);
                    }
                }
                merged
            };
            let end = start + 1;
            let last72 = window(start - rolling + 1, end);
            let regression = flag.filter(|(from, _)| start >= from).map(|(_, w)| w);
            Point {
                start: DateTime::from_timestamp(*start, 0).unwrap_or_default(),
                n: b.calls.n,
                success_rate: ratio(b.calls),
                rate_limited_rate: ratio(b.rate_limited),
                latency_p50_sec: b.latency.hist_quantile(0.5),
                ttft_p50_sec: b.ttft.hist_quantile(0.5),
                rolling_latency_p50_sec: last72.latency.hist_quantile(0.5),
                regression,
                memory_mb: b.memory_mb.value(),
                power_w: b.power_w.value(),
                gpu_temp_c: b.gpu_temp_c.value(),
            }
        })
        .collect()
}

fn ratio(r: Rate) -> f64 {
    if r.n == 0 {
        0.0
    } else {
        r.ok as f64 / r.n as f64
    }
}

/// Slots seen per campaign, and the shards each sharded slot has.
fn campaign_slots(runs: &[RunSeen]) -> BTreeMap<String, BTreeMap<u64, BTreeSet<u32>>> {
    let mut out: BTreeMap<String, BTreeMap<u64, BTreeSet<u32>>> = BTreeMap::new();
    for r in runs {
        if let (Some(c), Some(slot)) = (&r.campaign, r.slot) {
            let shards = out.entry(c.clone()).or_default().entry(slot).or_default();
            if let Some((i, _)) = r.shard {
                shards.insert(i);
            }
        }
    }
    out
}

fn campaigns(read: &ReadStats, cx: &Context<'_>) -> Vec<CampaignFigures> {
    let slots = campaign_slots(&read.runs);
    let end = cx.until.unwrap_or(cx.now);
    slots
        .into_iter()
        .map(|(name, present)| {
            let def = cx.campaigns.iter().find(|c| c.name == name);
            let (expected, from) = match def {
                Some(c) => (
                    c.slots().take_while(|s| s.start < end).count() as u64,
                    "campaign definition",
                ),
                None => (
                    present.keys().next_back().map_or(0, |m| m + 1),
                    "highest slot seen",
                ),
            };
            let expected_set: BTreeSet<u64> = (0..expected).collect();
            let missing: Vec<u64> = expected_set
                .iter()
                .filter(|s| !present.contains_key(s))
                .copied()
                .collect();
            let counts: BTreeMap<u64, u32> = read
                .runs
                .iter()
                .filter(|r| r.campaign.as_deref() == Some(name.as_str()))
                .filter_map(|r| Some((r.slot?, r.shard?.1)))
                .collect();
            let incomplete = present
                .iter()
                .filter(|(slot, shards)| {
                    counts
                        .get(slot)
                        .is_some_and(|count| shards.len() < *count as usize)
                })
                .map(|(s, _)| *s)
                .collect();
            let runs: Vec<_> = read
                .runs
                .iter()
                .filter(|r| r.campaign.as_deref() == Some(name.as_str()))
                .collect();
            let present_slots = expected_set
                .iter()
                .filter(|s| present.contains_key(s))
                .count() as u64;
            CampaignFigures {
                campaign: name,
                expected_slots: expected,
                expected_from: from,
                present_slots,
                completeness: if expected == 0 {
                    0.0
                } else {
                    present_slots as f64 / expected as f64
                },
                missing_slots: missing,
                incomplete_slots: incomplete,
                runs: runs.len() as u64,
                records: runs.iter().map(|r| r.records as u64).sum(),
                successes: runs.iter().map(|r| r.successes as u64).sum(),
            }
        })
        .collect()
}

/// Whole hours or days, for labels.
pub fn bucket_label(sec: i64) -> String {
    let d = Duration::seconds(sec);
    if sec % 86_400 == 0 {
        format!("{} d", d.num_days())
    } else {
        format!("{} h", d.num_hours())
    }
}

#[cfg(test)]
mod tests {
    use super::super::aggregate::{Dist, EXACT_CAP};
    use super::*;

    #[test]
    fn small_samples_get_exact_percentiles_and_bootstrap_intervals() {
        let mut d = Dist::seconds();
        for v in [1.0, 2.0, 3.0, 4.0, 10.0] {
            d.add(v);
        }
        let q = Quantiles::of(&d, 1).unwrap();
        assert_eq!(q.n, 5);
        assert_eq!(q.ci_method, CiMethod::Bootstrap);
        // numpy: percentile([1,2,3,4,10], 50) = 3, 90 → 4 + 0.6 × 6 = 7.6.
        assert_eq!(q.p50.value, 3.0);
        assert!((q.p90.value - 7.6).abs() < 1e-12);
        assert!(q.p50.lo <= 3.0 && q.p50.hi >= 3.0);
        assert!(q.p50.lo >= 1.0 && q.p50.hi <= 10.0);
    }

    #[test]
    fn large_samples_use_the_histogram_and_order_statistics() {
        let mut d = Dist::seconds();
        for i in 0..(EXACT_CAP * 5) {
            d.add(1.0 + (i % 1000) as f64 / 1000.0);
        }
        let q = Quantiles::of(&d, 1).unwrap();
        assert_eq!(q.ci_method, CiMethod::OrderStatistic);
        assert!((q.p50.value - 1.5).abs() < 0.002, "{}", q.p50.value);
        assert!(q.p50.lo <= q.p50.value && q.p50.value <= q.p50.hi);
        assert!(q.p50.hi - q.p50.lo < 0.05);
    }

    #[test]
    fn buckets_are_flagged_from_watchs_finding_on() {
        let mut base = BucketAgg::default();
        for i in 0..100 {
            base.latency.add(1.0 + (i % 10) as f64 * 0.01);
        }
        let mut same = BucketAgg::default();
        let mut slow = BucketAgg::default();
        for i in 0..10 {
            same.latency.add(1.0 + (i % 10) as f64 * 0.01);
            slow.latency.add(2.0 + (i % 10) as f64 * 0.01);
        }
        let h = 3_600;
        let pts = series_points(
            &[(0, &base), (h, &same), (2 * h, &slow)],
            Some((2 * h, "slower")),
        );
        assert_eq!(pts[1].regression, None);
        assert_eq!(pts[2].regression, Some("slower"));
        assert!(
            series_points(&[(0, &base), (h, &slow)], None)
                .iter()
                .all(|p| p.regression.is_none())
        );
        // The rolling median at the last bucket covers all 120 calls: still about 1.05 s.
        let rolling = pts[2].rolling_latency_p50_sec.unwrap();
        assert!((1.0..1.1).contains(&rolling), "{rolling}");
    }
}
