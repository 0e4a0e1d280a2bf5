//! Sweep figures: which server configurations are on the Pareto front of speed, memory and
//! quality, and what flash attention changes between points that differ only in it.

use serde::Serialize;

use crate::aggregate::Aggregate;
use crate::compare::{self, MetricDiff};

/// Flash attention on against off, for two sweep points that differ in nothing else: the
/// medians and their difference (on − off) with a 95% bootstrap interval and the Mann–Whitney
/// test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlashImpact {
    pub on: String,
    pub off: String,
    pub quantization: Option<String>,
    pub kv_cache_type: Option<String>,
    pub temperature: Option<f64>,
    pub output_speed: Option<MetricDiff>,
    pub ttft: Option<MetricDiff>,
    pub memory_mb_on: Option<f64>,
    pub memory_mb_off: Option<f64>,
}

/// For each point `(output speed, memory, coverage)`, whether no other point is at least as
/// good on all three (faster, smaller, more accurate) and strictly better on one. A missing
/// figure counts as neither better nor worse.
pub fn pareto_front(points: &[(Option<f64>, Option<f64>, Option<f64>)]) -> Vec<bool> {
    // `higher`: larger is better for this figure.
    let at_least = |a: Option<f64>, b: Option<f64>, higher: bool| match (a, b) {
        (Some(a), Some(b)) => {
            if higher {
                a >= b
            } else {
                a <= b
            }
        }
        _ => true,
    };
    let better = |a: Option<f64>, b: Option<f64>, higher: bool| match (a, b) {
        (Some(a), Some(b)) => {
            if higher {
                a > b
            } else {
                a < b
            }
        }
        _ => false,
    };
    points
        .iter()
        .enumerate()
        .map(|(i, &(s, m, c))| {
            !points.iter().enumerate().any(|(j, &(s2, m2, c2))| {
                j != i
                    && at_least(s2, s, true)
                    && at_least(m2, m, false)
                    && at_least(c2, c, true)
                    && (better(s2, s, true) || better(m2, m, false) || better(c2, c, true))
            })
        })
        .collect()
}

/// Flash attention on against off, for each pair of sweep targets differing only in it.
pub fn flash_impacts(agg: &Aggregate, seed: u64) -> Vec<FlashImpact> {
    let mut out = Vec::new();
    for (on_name, on) in &agg.targets {
        let Some(on_cfg) = &on.server_config else {
            continue;
        };
        if on_cfg.flash_attn.as_deref() != Some("on") {
            continue;
        }
        for (off_name, off) in &agg.targets {
            let Some(off_cfg) = &off.server_config else {
                continue;
            };
            if off_cfg.flash_attn.as_deref() != Some("off")
                || !on_cfg.flash_pair(off_cfg)
                || on.output_speed.is_empty()
                || off.output_speed.is_empty()
            {
                // Not a pair, or a side never answered (its server did not start).
                continue;
            }
            let diff = |name: &'static str, a: &crate::dist::Dist, b: &crate::dist::Dist| {
                compare::metric(name, &b.exact_sorted()?, &a.exact_sorted()?, seed)
            };
            out.push(FlashImpact {
                on: on_name.clone(),
                off: off_name.clone(),
                quantization: on_cfg.quantization.clone(),
                kv_cache_type: on_cfg.kv_cache_type.clone(),
                temperature: on_cfg.temperature,
                output_speed: diff("output_speed_tps", &on.output_speed, &off.output_speed),
                ttft: diff("ttft_sec", &on.ttft, &off.ttft),
                memory_mb_on: on.memory_mb.value(),
                memory_mb_off: off.memory_mb.value(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_keeps_what_nothing_beats() {
        let front = pareto_front(&[
            (Some(100.0), Some(500.0), Some(0.9)), // fast, small, accurate: on the front
            (Some(90.0), Some(600.0), Some(0.8)),  // worse on every count: off
            (Some(120.0), Some(900.0), Some(0.9)), // fastest, but larger: on
            (Some(100.0), Some(500.0), Some(0.9)), // a tie with the first: both stay on
            (Some(80.0), None, Some(0.95)),        // most accurate: on
        ]);
        assert_eq!(front, [true, false, true, true, true]);
    }
}
