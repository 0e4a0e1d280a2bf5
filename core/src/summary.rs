//! The per-target summary printed after a run: n, success rate, latency and TTFT percentiles,
//! speeds, coverage and the errors seen.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::record::Record;
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
}

/// Summaries per target, in the order targets first appear in `records`.
pub fn by_target(records: &[Record]) -> Vec<TargetSummary> {
    let mut order: Vec<&str> = Vec::new();
    for r in records {
        if !order.contains(&r.target.as_str()) {
            order.push(&r.target);
        }
    }
    order
        .into_iter()
        .map(|name| {
            let rs: Vec<&Record> = records.iter().filter(|r| r.target == name).collect();
            let ok: Vec<&Record> = rs.iter().copied().filter(|r| r.success).collect();
            let col = |f: fn(&Record) -> Option<f64>| -> Vec<f64> {
                ok.iter().filter_map(|r| f(r)).collect()
            };
            let latency = col(|r| Some(r.latency_sec));
            let mut errors = BTreeMap::new();
            for r in rs.iter().filter(|r| !r.success) {
                let kind = r.error_kind.map_or("unknown", |k| k.as_str());
                *errors.entry(kind.to_string()).or_insert(0) += 1;
            }
            TargetSummary {
                target: name.to_string(),
                n: rs.len(),
                successes: ok.len(),
                success_rate: if rs.is_empty() {
                    0.0
                } else {
                    ok.len() as f64 / rs.len() as f64
                },
                latency_p50_sec: percentile(&latency, 50.0),
                latency_p95_sec: percentile(&latency, 95.0),
                ttft_p50_sec: percentile(&col(|r| r.ttft_sec), 50.0),
                throughput_median_tps: percentile(&col(|r| r.throughput_tps), 50.0),
                output_speed_median_tps: percentile(&col(|r| r.output_speed_tps), 50.0),
                coverage_mean: mean(&col(|r| r.coverage_score)),
                errors,
            }
        })
        .collect()
}
