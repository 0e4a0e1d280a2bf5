//! The per-target summary printed after a run: n, success rate, latency and TTFT percentiles,
//! speeds, coverage and the errors seen.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::record::Record;
use crate::sink::RecordSink;
use crate::stats::{mean, percentile};

/// One target's figures. Timing figures are over successful calls only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetSummary {
    pub target: String,
    pub n: usize,
    pub successes: usize,
    pub success_rate: f64,
    pub latency_p50_sec: Option<f64>,
    pub latency_p95_sec: Option<f64>,
    pub ttft_p50_sec: Option<f64>,
    /// Median of the seed's `throughput_tps`.
    pub throughput_median_tps: Option<f64>,
    /// Median of `output_speed_tps` (decode speed after the first token).
    pub output_speed_median_tps: Option<f64>,
    pub coverage_mean: Option<f64>,
    /// Failed calls by `error_kind`.
    pub errors: BTreeMap<String, usize>,
    /// With an SLO: calls that met it, their share with its 95% Wilson interval, and goodput:
    /// calls meeting it per second of the target's span (first send to last answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo_met: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo_attainment: Option<(f64, f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goodput_rps: Option<f64>,
    /// Open-loop profiles: how late calls went out, p50 and p99.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_lag_p50_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_lag_p99_sec: Option<f64>,
}

/// The summary as a [`RecordSink`]: a few numbers per record, so it stays small however long
/// the run.
#[derive(Debug, Default)]
pub struct Summary {
    targets: Vec<Tally>,
}

#[derive(Debug, Default)]
struct Tally {
    target: String,
    n: usize,
    latency: Vec<f64>,
    ttft: Vec<f64>,
    throughput: Vec<f64>,
    output_speed: Vec<f64>,
    coverage: Vec<f64>,
    errors: BTreeMap<String, usize>,
    slo: Option<(usize, usize)>,
    lag: Vec<f64>,
    /// First send and last answer, seconds since the Unix epoch.
    span: Option<(f64, f64)>,
}

impl Summary {
    /// Adds one record.
    pub fn add(&mut self, r: &Record) {
        let i = match self.targets.iter().position(|t| t.target == r.target) {
            Some(i) => i,
            None => {
                self.targets.push(Tally {
                    target: r.target.clone(),
                    ..Tally::default()
                });
                self.targets.len() - 1
            }
        };
        let t = &mut self.targets[i];
        t.n += 1;
        if let Some(met) = r.slo_met {
            let (k, n) = t.slo.get_or_insert((0, 0));
            *k += usize::from(met);
            *n += 1;
        }
        t.lag.extend(r.schedule_lag_sec);
        if let Ok(sent) = chrono::DateTime::parse_from_rfc3339(&r.timestamp) {
            let start = sent.timestamp_micros() as f64 / 1e6;
            let end = start + r.latency_sec;
            let span = t.span.get_or_insert((start, end));
            *span = (span.0.min(start), span.1.max(end));
        }
        if !r.success {
            let kind = r.error_kind.map_or("unknown", |k| k.as_str());
            *t.errors.entry(kind.to_string()).or_insert(0) += 1;
            return;
        }
        t.latency.push(r.latency_sec);
        for (col, v) in [
            (&mut t.ttft, r.ttft_sec),
            (&mut t.throughput, r.throughput_tps),
            (&mut t.output_speed, r.output_speed_tps),
            (&mut t.coverage, r.coverage_score),
        ] {
            col.extend(v);
        }
    }

    /// The per-target figures, in the order targets first appeared.
    pub fn table(&self) -> Vec<TargetSummary> {
        self.targets
            .iter()
            .map(|t| {
                let successes = t.latency.len();
                TargetSummary {
                    target: t.target.clone(),
                    n: t.n,
                    successes,
                    success_rate: if t.n == 0 {
                        0.0
                    } else {
                        successes as f64 / t.n as f64
                    },
                    latency_p50_sec: percentile(&t.latency, 50.0),
                    latency_p95_sec: percentile(&t.latency, 95.0),
                    ttft_p50_sec: percentile(&t.ttft, 50.0),
                    throughput_median_tps: percentile(&t.throughput, 50.0),
                    output_speed_median_tps: percentile(&t.output_speed, 50.0),
                    coverage_mean: mean(&t.coverage),
                    errors: t.errors.clone(),
                    slo_met: t.slo.map(|(k, _)| k),
                    slo_attainment: t.slo.and_then(|(k, n)| {
                        let (lo, hi) = crate::stats::wilson(k as u64, n as u64, crate::stats::Z95)?;
                        Some((k as f64 / n as f64, lo, hi))
                    }),
                    goodput_rps: t
                        .slo
                        .zip(t.span)
                        .and_then(|((k, _), (a, b))| (b > a).then(|| k as f64 / (b - a))),
                    schedule_lag_p50_sec: percentile(&t.lag, 50.0),
                    schedule_lag_p99_sec: percentile(&t.lag, 99.0),
                }
            })
            .collect()
    }
}

impl RecordSink for Summary {
    fn record(&mut self, record: &Record) -> std::io::Result<()> {
        self.add(record);
        Ok(())
    }
}

/// Summaries per target of `records`, in the order targets first appear.
pub fn by_target(records: &[Record]) -> Vec<TargetSummary> {
    let mut s = Summary::default();
    for r in records {
        s.add(r);
    }
    s.table()
}
