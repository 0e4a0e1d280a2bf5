//! `report --compare A B`: two targets, or two time windows, side by side. Medians differ by
//! a bootstrap interval and a Mann–Whitney U test; success rates by a two-proportion z-test
//! with a Newcombe (Wilson-based) interval for the difference.

use serde::Serialize;

use crate::aggregate::{Aggregate, SideSample};
use llmpulse_core::stats;

use crate::estimate::{Estimate, RateFigure, SEED};

/// Resamples for the interval of a difference of medians.
const RESAMPLES: usize = 1_000;

/// One metric compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricDiff {
    pub metric: &'static str,
    pub n_a: usize,
    pub n_b: usize,
    pub median_a: f64,
    pub median_b: f64,
    /// median(B) − median(A), with a 95% bootstrap interval.
    pub difference: Estimate,
    pub mann_whitney_u: f64,
    pub p_value: f64,
}

/// Success rates compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateDiff {
    pub a: RateFigure,
    pub b: RateFigure,
    /// rate(B) − rate(A), with Newcombe's interval.
    pub difference: Estimate,
    pub p_value: Option<f64>,
}

/// The comparison of side A with side B.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    /// For two windows: the target compared (all targets when unset).
    pub target: Option<String>,
    pub metrics: Vec<MetricDiff>,
    pub success: Option<RateDiff>,
    /// Significance level used for the words "differs" / "no evidence of a difference".
    pub alpha: f64,
}

pub const ALPHA: f64 = 0.05;

/// The comparison the aggregate was folded for, if any.
pub fn compute(agg: &Aggregate) -> Option<Comparison> {
    let (side_a, side_b) = agg.plan.compare.as_ref()?;
    let (a, b) = agg.sides.as_ref()?;
    let mut metrics = Vec::new();
    for (i, (name, va, vb)) in [
        ("latency_sec", &a.latency, &b.latency),
        ("ttft_sec", &a.ttft, &b.ttft),
        ("output_speed_tps", &a.output_speed, &b.output_speed),
    ]
    .into_iter()
    .enumerate()
    {
        let (xa, xb) = (SideSample::values(va), SideSample::values(vb));
        if let Some(m) = metric(name, &xa, &xb, SEED.wrapping_add(i as u64)) {
            metrics.push(m);
        }
    }
    let success = match (RateFigure::of(a.calls), RateFigure::of(b.calls)) {
        (Some(ra), Some(rb)) => Some(RateDiff {
            difference: newcombe(&ra, &rb),
            p_value: stats::two_proportions(rb.k, rb.n, ra.k, ra.n).map(|(_, _, p)| p),
            a: ra,
            b: rb,
        }),
        _ => None,
    };
    Some(Comparison {
        a: side_a.label(),
        b: side_b.label(),
        target: agg.plan.compare_target.clone(),
        metrics,
        success,
        alpha: ALPHA,
    })
}

/// One metric: medians, the bootstrap interval of their difference, and Mann–Whitney.
pub fn metric(name: &'static str, a: &[f64], b: &[f64], seed: u64) -> Option<MetricDiff> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let median_a = stats::percentile(a, 50.0)?;
    let median_b = stats::percentile(b, 50.0)?;
    let (lo, hi) = bootstrap_median_difference(a, b, seed);
    let (u, _, p) = stats::mann_whitney(a, b).unwrap_or((f64::NAN, 0.0, 1.0));
    Some(MetricDiff {
        metric: name,
        n_a: a.len(),
        n_b: b.len(),
        median_a,
        median_b,
        difference: Estimate {
            value: median_b - median_a,
            lo,
            hi,
        },
        mann_whitney_u: u,
        p_value: p,
    })
}

/// Resamples each side independently (at most 5,000 values a side, drawn evenly, so the
/// interval costs the same for any history) and takes the central 95% of median differences.
fn bootstrap_median_difference(a: &[f64], b: &[f64], seed: u64) -> (f64, f64) {
    use rand::{Rng, SeedableRng};
    let thin = |v: &[f64]| -> Vec<f64> {
        let step = v.len().div_ceil(5_000).max(1);
        v.iter().step_by(step).copied().collect()
    };
    let (a, b) = (thin(a), thin(b));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut ra = vec![0.0; a.len()];
    let mut rb = vec![0.0; b.len()];
    let mut diffs = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        for x in ra.iter_mut() {
            *x = a[rng.random_range(0..a.len())];
        }
        for x in rb.iter_mut() {
            *x = b[rng.random_range(0..b.len())];
        }
        ra.sort_unstable_by(f64::total_cmp);
        rb.sort_unstable_by(f64::total_cmp);
        diffs.push(stats::percentile_sorted(&rb, 50.0) - stats::percentile_sorted(&ra, 50.0));
    }
    diffs.sort_by(f64::total_cmp);
    (
        stats::percentile_sorted(&diffs, 2.5),
        stats::percentile_sorted(&diffs, 97.5),
    )
}

/// Newcombe's hybrid score interval for p_b − p_a (method 10), from the two Wilson intervals.
fn newcombe(a: &RateFigure, b: &RateFigure) -> Estimate {
    let (pa, pb) = (a.rate.value, b.rate.value);
    let d = pb - pa;
    let lo = d - ((pb - b.rate.lo).powi(2) + (a.rate.hi - pa).powi(2)).sqrt();
    let hi = d + ((b.rate.hi - pb).powi(2) + (pa - a.rate.lo).powi(2)).sqrt();
    Estimate {
        value: d,
        lo: lo.max(-1.0),
        hi: hi.min(1.0),
    }
}

/// One line of verdict for a metric.
pub fn verdict(p: f64, alpha: f64) -> &'static str {
    if p < alpha {
        "differs"
    } else {
        "no evidence of a difference"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearly_different_latencies_are_significant_and_the_interval_excludes_zero() {
        let a: Vec<f64> = (0..40).map(|i| 1.0 + i as f64 * 0.01).collect();
        let b: Vec<f64> = (0..40).map(|i| 1.5 + i as f64 * 0.01).collect();
        let m = metric("latency_sec", &a, &b, 7).unwrap();
        assert!((m.difference.value - 0.5).abs() < 1e-9);
        assert!(m.difference.lo > 0.0);
        assert!(m.p_value < 0.001);
    }

    #[test]
    fn the_same_distribution_shows_no_difference() {
        let a: Vec<f64> = (0..40).map(|i| 1.0 + (i % 10) as f64 * 0.1).collect();
        let m = metric("latency_sec", &a, &a, 7).unwrap();
        assert_eq!(m.difference.value, 0.0);
        assert!(m.difference.lo <= 0.0 && m.difference.hi >= 0.0);
        assert!(m.p_value > 0.5);
        assert_eq!(verdict(m.p_value, ALPHA), "no evidence of a difference");
    }

    #[test]
    fn newcombe_matches_the_published_example() {
        // Newcombe (1998), Table II example (a): 56/70 vs 48/80 → difference 0.2,
        // interval 0.0524 to 0.3339 (here as B − A with A = 48/80, B = 56/70).
        let a = RateFigure::of(super::super::aggregate::Rate { ok: 48, n: 80 }).unwrap();
        let b = RateFigure::of(super::super::aggregate::Rate { ok: 56, n: 70 }).unwrap();
        let d = newcombe(&a, &b);
        assert!((d.value - 0.2).abs() < 1e-12);
        assert!((d.lo - 0.0524).abs() < 5e-4, "{}", d.lo);
        assert!((d.hi - 0.3339).abs() < 5e-4, "{}", d.hi);
    }
}
