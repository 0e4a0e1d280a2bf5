//! The statistics `watch` and the report's latency flags share, all at the level of runs: one
//! value per run (its median latency, its success rate, its mean coverage), because the calls of
//! one run share one network moment and are not independent. Welch's t-test on run values (the
//! Mann–Whitney test over runs, in `core::stats`, serves rates), tail p-values accurate far
//! below 1e-7 (where Benjamini–Hochberg over hundreds of tests looks), Benjamini–Hochberg
//! q-values, a distribution-free interval for a median of runs, and the most likely start of a
//! step change.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Welch's unequal-variances t-test of `current` against `baseline`, as
/// `scipy.stats.ttest_ind(current, baseline, equal_var=False)` computes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// Positive when `current`'s mean is higher.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided.
    pub p: f64,
}

/// Mean and variance of the mean (`s² / n`) of a sample, `None` under two values.
fn mean_var(v: &[f64]) -> Option<(f64, f64)> {
    if v.len() < 2 {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let ss = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
    Some((mean, ss / (n - 1.0) / n))
}

/// Welch's test of two samples. `floor_current` and `floor_baseline` are the smallest variance
/// of each mean to accept (for rates, the binomial variance over the calls: runs that happen to
/// agree exactly are not infinitely sure); 0 for none. A floored side counts as a known
/// variance (no degrees of freedom lost). `None` under two values in either sample, or when
/// both are constant and equal.
pub fn welch(
    current: &[f64],
    baseline: &[f64],
    floor_current: f64,
    floor_baseline: f64,
) -> Option<Welch> {
    let (m1, v1) = mean_var(current)?;
    let (m0, v0) = mean_var(baseline)?;
    let (n1, n0) = (current.len() as f64, baseline.len() as f64);
    // Each side's variance and its share of the Welch–Satterthwaite denominator.
    let side = |v: f64, floor: f64, n: f64| {
        if v < floor {
            (floor, 0.0)
        } else {
            (v, v * v / (n - 1.0))
        }
    };
    let (v1, d1) = side(v1, floor_current, n1);
    let (v0, d0) = side(v0, floor_baseline, n0);
    let var = v1 + v0;
    let diff = m1 - m0;
    if var <= 0.0 {
        return (diff != 0.0).then_some(Welch {
            t: diff.signum() * f64::INFINITY,
            df: f64::INFINITY,
            p: 0.0,
        });
    }
    let df = if d1 + d0 > 0.0 {
        var * var / (d1 + d0)
    } else {
        f64::INFINITY
    };
    let t = diff / var.sqrt();
    Some(Welch {
        t,
        df,
        p: t_two_sided_p(t, df),
    })
}

/// Fisher's exact test of two proportions (`ok_a` of `n_a` against `ok_b` of `n_b`), two-sided
/// as `scipy.stats.fisher_exact` sums it: every table with the same margins that is no more
/// likely than the one seen.
pub fn fisher_exact(ok_a: u64, n_a: u64, ok_b: u64, n_b: u64) -> f64 {
    use statrs::function::factorial::ln_binomial;
    let ok = ok_a + ok_b;
    let n = n_a + n_b;
    if n_a == 0 || n_b == 0 || ok == 0 || ok == n {
        return 1.0;
    }
    // P(a's successes = k) under fixed margins: C(n_a, k) C(n_b, ok − k) / C(n, ok).
    let ln_total = ln_binomial(n, ok);
    let ln_p = |k: u64| ln_binomial(n_a, k) + ln_binomial(n_b, ok - k) - ln_total;
    let lo = ok.saturating_sub(n_b);
    let hi = ok.min(n_a);
    let seen = ln_p(ok_a.clamp(lo, hi));
    let mut p = 0.0;
    for k in lo..=hi {
        let lk = ln_p(k);
        // scipy's relative tolerance for ties in probability.
        if lk <= seen + 1e-7 {
            p += lk.exp();
        }
    }
    p.clamp(0.0, 1.0)
}

/// Two-sided p-value of Student's t with `df` degrees of freedom (accurate far into the tail).
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if !t.is_finite() {
        return 0.0;
    }
    if !df.is_finite() || df > 1e7 {
        return normal_two_sided_p(t);
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(d) => (2.0 * d.sf(t.abs())).clamp(0.0, 1.0),
        Err(_) => 1.0,
    }
}

/// Two-sided p-value of a standard normal statistic (accurate far into the tail).
pub fn normal_two_sided_p(z: f64) -> f64 {
    statrs::function::erf::erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0)
}

/// Benjamini–Hochberg adjusted p-values (q-values), in the order given, as
/// `scipy.stats.false_discovery_control(p, method="bh")` computes them.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut q = vec![1.0; m];
    let mut running: f64 = 1.0;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m as f64 / (rank + 1) as f64);
        q[i] = running.min(1.0);
    }
    q
}

/// The median of `v` and its distribution-free 95% interval (order statistics of the binomial;
/// exact ranks for small n). `None` for an empty sample.
pub fn median_interval(v: &[f64]) -> Option<(f64, (f64, f64))> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = llmpulse_core::stats::percentile_sorted(&s, 50.0);
    // The largest k with P(Binomial(n, ½) ≤ k − 1) ≤ 2.5%: [x(k), x(n+1−k)] (1-based) covers
    // the median with at least 95% (k = 0: the whole range, when n is too small for that).
    let mut k = 0usize;
    let mut cdf = 0.0;
    let half_n = 0.5f64.powi(n as i32);
    let mut choose = 1.0f64;
    for i in 0..n {
        cdf += choose * half_n;
        if cdf > 0.025 {
            break;
        }
        k = i + 1;
        choose = choose * (n - i) as f64 / (i + 1) as f64;
    }
    let lo = s[k.saturating_sub(1).min(n - 1)];
    let hi = s[(n - k.max(1)).min(n - 1)];
    Some((median, (lo.min(median), hi.max(median))))
}

/// The mean of `v` and its 95% t-interval. `None` for an empty sample; a single value is its
/// own interval.
pub fn mean_interval(v: &[f64]) -> Option<(f64, (f64, f64))> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let Some((_, var)) = mean_var(v) else {
        return Some((mean, (mean, mean)));
    };
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .map(|d| d.inverse_cdf(0.975))
        .unwrap_or(1.96);
    let half = t * var.sqrt();
    Some((mean, (mean - half, mean + half)))
}

/// Where a single step in the mean of `series` most likely happened: the index of the first
/// value after it, the `k` in `from..=to` that maximises `k(n−k)/n · (mean before − mean after)²`
/// (the maximum-likelihood split for one change in mean). `None` when the range is empty or the
/// series is constant.
pub fn change_point(series: &[f64], from: usize, to: usize) -> Option<usize> {
    let n = series.len();
    if n < 2 {
        return None;
    }
    let (from, to) = (from.max(1), to.min(n - 1));
    if from > to {
        return None;
    }
    let total: f64 = series.iter().sum();
    let mut prefix = 0.0;
    let mut best: Option<(usize, f64)> = None;
    for (k, x) in series.iter().enumerate().take(to) {
        prefix += x;
        let k = k + 1;
        if k < from {
            continue;
        }
        let (a, b) = (k as f64, (n - k) as f64);
        let d = prefix / a - (total - prefix) / b;
        let score = a * b / n as f64 * d * d;
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((k, score));
        }
    }
    best.filter(|(_, s)| *s > 0.0).map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn welch_matches_scipy() {
        // scipy: ttest_ind(a, b, equal_var=False)
        let a = [1.21, 1.35, 1.18, 1.42, 1.30, 1.27, 1.39];
        let b = [1.10, 1.15, 1.22, 1.08, 1.19, 1.13, 1.25, 1.11];
        let w = welch(&a, &b, 0.0, 0.0).unwrap();
        assert!(close(w.t, SCIPY_T, 1e-9), "t = {}", w.t);
        assert!(close(w.df, SCIPY_DF, 1e-9), "df = {}", w.df);
        assert!(close(w.p, SCIPY_P, 1e-6), "p = {}", w.p);
    }

    #[test]
    fn tail_p_values_stay_accurate() {
        // scipy: 2 * stats.t.sf(9.0, 15) and 2 * stats.norm.sf(7.0)
        assert!(close(t_two_sided_p(9.0, 15.0), SCIPY_T9_15, 1e-6));
        assert!(close(normal_two_sided_p(7.0), SCIPY_Z7, 1e-6));
    }

    #[test]
    fn fisher_matches_scipy() {
        // scipy: fisher_exact([[230, 10], [1111, 9]]), ([[3, 7], [9, 1]]), ([[200, 40], [1100, 20]])
        assert!(close(
            fisher_exact(230, 240, 1111, 1120),
            0.000_511_908_642_612_699_2,
            1e-6
        ));
        assert!(close(
            fisher_exact(3, 10, 9, 10),
            0.019_766_611_097_880_443,
            1e-6
        ));
        assert!(close(
            fisher_exact(200, 240, 1100, 1120),
            7.021_612_375_210_853e-18,
            1e-5
        ));
        assert_eq!(fisher_exact(5, 5, 7, 7), 1.0);
    }

    #[test]
    fn bh_matches_scipy() {
        // scipy: false_discovery_control([0.01, 0.04, 0.03, 0.005, 0.2, 0.5])
        let p = [0.01, 0.04, 0.03, 0.005, 0.2, 0.5];
        let want = [0.03, 0.06, 0.06, 0.03, 0.24, 0.5];
        for (q, w) in benjamini_hochberg(&p).iter().zip(want) {
            assert!(close(*q, w, 1e-12), "{q} vs {w}");
        }
    }

    #[test]
    fn a_floor_keeps_two_constant_groups_from_being_certain() {
        let now = [0.9; 12];
        let before = [1.0; 40];
        let (fc, fb) = (0.95 * 0.05 / 240.0, 0.95 * 0.05 / 800.0);
        let w = welch(&now, &before, fc, fb).unwrap();
        assert!(w.t < 0.0 && w.df.is_infinite());
        assert!(close(
            w.p,
            normal_two_sided_p(-0.1 / (fc + fb).sqrt()),
            1e-12
        ));
        assert!(welch(&before, &before, 0.0, 0.0).is_none());
        // One side floored: its variance is known, the other's degrees of freedom remain.
        let spread = [0.8, 0.9, 1.0, 0.85, 0.95];
        let w = welch(&spread, &before, 0.0, fb).unwrap();
        let v1 = 0.006_25 / 5.0;
        assert!(
            close(w.df, 4.0 * (1.0 + fb / v1).powi(2), 1e-9),
            "df = {}",
            w.df
        );
    }

    #[test]
    fn the_median_interval_covers_the_middle_order_statistics() {
        // n = 12: P(Bin(12, ½) ≤ 2) = 0.0193, ≤ 3 = 0.073: the interval is [x(3), x(10)].
        let v: Vec<f64> = (1..=12).map(f64::from).collect();
        let (m, (lo, hi)) = median_interval(&v).unwrap();
        assert_eq!((m, lo, hi), (6.5, 3.0, 10.0));
        // n = 5: P(≤ 0) = 0.031 > 2.5%: only the whole range covers 95%.
        let (_, (lo, hi)) = median_interval(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((lo, hi), (1.0, 5.0));
    }

    #[test]
    fn the_change_point_is_the_first_value_after_a_known_step() {
        let mut s: Vec<f64> = (0..40).map(|i| 1.0 + 0.01 * ((i * 7) % 5) as f64).collect();
        for v in &mut s[31..] {
            *v += 0.4;
        }
        assert_eq!(change_point(&s, 1, 39), Some(31));
        // Limited to a range that excludes the step, it picks the range's best.
        let k = change_point(&s, 5, 20).unwrap();
        assert!((5..=20).contains(&k));
        assert_eq!(change_point(&[2.0; 10], 1, 9), None);
    }

    #[test]
    fn mean_interval_is_a_t_interval() {
        // scipy: stats.t.interval(0.95, 4, loc=3, scale=stats.sem([1,2,3,4,5])) → (1.0367, 4.9633)
        let (m, (lo, hi)) = mean_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(m, 3.0);
        assert!(close(lo, 1.036_756_838_522_439, 1e-6) && close(hi, 4.963_243_161_477_561, 1e-6));
    }

    // Printed by scipy 1.17.1 for the calls named in each test.
    const SCIPY_T: f64 = 3.714_340_781_788_795_5;
    const SCIPY_DF: f64 = 10.342_323_472_023_372;
    const SCIPY_P: f64 = 0.003_789_046_519_546_038_5;
    const SCIPY_T9_15: f64 = 1.961_471_425_175_913_4e-7;
    const SCIPY_Z7: f64 = 2.559_625_087_771_67e-12;
}
