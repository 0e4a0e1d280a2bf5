//! Statistics over in-memory samples, honest for small n: percentiles, means, a Wilson interval
//! for success rates, bootstrap intervals for percentiles, and the Mann–Whitney U and
//! two-proportion tests for comparing two targets or two windows.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The `q`-th percentile (0..=100) of `values` by linear interpolation between closest ranks
/// (the definition numpy uses by default). `None` for an empty sample. NaNs are ignored.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    Some(percentile_sorted(&sorted, q))
}

/// [`percentile`] on a slice already sorted ascending and free of NaNs; it must not be empty.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let rank = (q.clamp(0.0, 100.0) / 100.0) * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Arithmetic mean; `None` for an empty sample.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// The Wilson score interval for `successes` out of `n` at normal quantile `z` (1.96 for 95%):
/// unlike the normal approximation it stays inside [0, 1] and is sensible at 0 or n successes
/// and for small n. `None` for n = 0.
pub fn wilson(successes: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 || successes > n {
        return None;
    }
    let (k, n) = (successes as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    // At 0 or n successes the bound is exactly 0 or 1; say so without rounding error.
    let lo = if successes == 0 {
        0.0
    } else {
        (center - half).max(0.0)
    };
    let hi = if successes as f64 == n {
        1.0
    } else {
        (center + half).min(1.0)
    };
    Some((lo, hi))
}

/// A percentile bootstrap interval for the `q`-th percentile of `values`: `resamples`
/// resamples drawn with a generator seeded by `seed` (so a report is reproducible), and the
/// central `level` (e.g. 0.95) of their percentiles. `None` for an empty sample.
pub fn bootstrap_percentile(
    values: &[f64],
    q: f64,
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    if values.is_empty() || resamples == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sample = vec![0.0; values.len()];
    let mut estimates = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for slot in sample.iter_mut() {
            *slot = values[rng.random_range(0..values.len())];
        }
        sample.sort_by(f64::total_cmp);
        estimates.push(percentile_sorted(&sample, q));
    }
    estimates.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0 * 100.0;
    Some((
        percentile_sorted(&estimates, tail),
        percentile_sorted(&estimates, 100.0 - tail),
    ))
}

/// [`bootstrap_percentile`] for several percentiles at once, over one set of resamples (each
/// resample is sorted once). Returns one interval per entry of `qs`, or `None` for an empty
/// sample.
pub fn bootstrap_percentiles(
    values: &[f64],
    qs: &[f64],
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<Vec<(f64, f64)>> {
    if values.is_empty() || resamples == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sample = vec![0.0; values.len()];
    let mut estimates = vec![Vec::with_capacity(resamples); qs.len()];
    for _ in 0..resamples {
        for slot in sample.iter_mut() {
            *slot = values[rng.random_range(0..values.len())];
        }
        sample.sort_unstable_by(f64::total_cmp);
        for (e, q) in estimates.iter_mut().zip(qs) {
            e.push(percentile_sorted(&sample, *q));
        }
    }
    let tail = (1.0 - level) / 2.0 * 100.0;
    Some(
        estimates
            .into_iter()
            .map(|mut e| {
                e.sort_by(f64::total_cmp);
                (
                    percentile_sorted(&e, tail),
                    percentile_sorted(&e, 100.0 - tail),
                )
            })
            .collect(),
    )
}

/// The distribution-free confidence interval for the `q`-th quantile (0..=1) of `n` values: the
/// 1-based ranks `(l, u)` of the order statistics that bound it at normal quantile `z` (the
/// binomial interval, normal approximation). Needs no resampling, so it works on a histogram of
/// any size. `None` for n = 0.
pub fn quantile_rank_interval(n: u64, q: f64, z: f64) -> Option<(u64, u64)> {
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let q = q.clamp(0.0, 1.0);
    let half = z * (nf * q * (1.0 - q)).sqrt();
    let lo = (nf * q - half).floor().max(1.0) as u64;
    let hi = ((nf * q + half).ceil() as u64 + 1).min(n);
    Some((lo.min(n), hi.max(lo.min(n))))
}

/// The complementary error function (Abramowitz and Stegun 7.1.26, absolute error < 1.5e-7).
fn erfc(x: f64) -> f64 {
    let sign = x < 0.0;
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let e = poly * (-x * x).exp();
    if sign { 2.0 - e } else { e }
}

/// Two-sided p-value of a standard normal statistic.
pub fn two_sided_p(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0)
}

/// The Mann–Whitney U test of `a` against `b` (normal approximation with tie correction, no
/// continuity correction): `(U of a, z, two-sided p)`. `None` when either sample is empty or
/// every value is tied.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<(f64, f64, f64)> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|v| (*v, true))
        .chain(b.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let mut rank_sum_a = 0.0;
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        rank_sum_a += all[i..=j].iter().filter(|(_, in_a)| *in_a).count() as f64 * rank;
        i = j + 1;
    }
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, n as f64);
    let u = rank_sum_a - n1f * (n1f + 1.0) / 2.0;
    let var = n1f * n2f / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)));
    if var <= 0.0 {
        return None;
    }
    let z = (u - n1f * n2f / 2.0) / var.sqrt();
    Some((u, z, two_sided_p(z)))
}

/// The two-proportion z-test (pooled): `(difference a − b, z, two-sided p)`. `None` when a
/// sample is empty or the pooled rate is 0 or 1.
pub fn two_proportions(
    success_a: u64,
    n_a: u64,
    success_b: u64,
    n_b: u64,
) -> Option<(f64, f64, f64)> {
    if n_a == 0 || n_b == 0 {
        return None;
    }
    let (pa, pb) = (success_a as f64 / n_a as f64, success_b as f64 / n_b as f64);
    let pooled = (success_a + success_b) as f64 / (n_a + n_b) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n_a as f64 + 1.0 / n_b as f64)).sqrt();
    if se == 0.0 {
        return None;
    }
    let z = (pa - pb) / se;
    Some((pa - pb, z, two_sided_p(z)))
}

/// The Wilcoxon signed-rank test of paired differences (zeros dropped, as Wilcoxon did; normal
/// approximation with tie correction, no continuity correction): `(W+, z, two-sided p)`, where
/// W+ is the rank sum of the positive differences. `None` with no non-zero difference.
pub fn wilcoxon_signed_rank(diffs: &[f64]) -> Option<(f64, f64, f64)> {
    let mut d: Vec<f64> = diffs
        .iter()
        .copied()
        .filter(|x| *x != 0.0 && x.is_finite())
        .collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    let n = d.len();
    let (mut w_plus, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && d[j + 1].abs() == d[i].abs() {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        w_plus += d[i..=j].iter().filter(|x| **x > 0.0).count() as f64 * rank;
        i = j + 1;
    }
    let nf = n as f64;
    let mean = nf * (nf + 1.0) / 4.0;
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - ties / 48.0;
    if var <= 0.0 {
        return None;
    }
    let z = (w_plus - mean) / var.sqrt();
    Some((w_plus, z, two_sided_p(z)))
}

/// McNemar's exact test for paired pass/fail: `b` pairs where only the first passed, `c` where
/// only the second did. The two-sided binomial p-value (1 when there is no discordant pair).
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // P(X ≤ k) for X ~ Binomial(n, 1/2), in logs to stay finite for large n.
    let ln_half_n = n as f64 * std::f64::consts::LN_2;
    let mut ln_choose = 0.0;
    let mut tail = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose - ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// A seeded paired bootstrap of the median of `diffs`: its 95% percentile interval over
/// `rounds` resamples. `None` for no differences.
pub fn bootstrap_median_ci(diffs: &[f64], rounds: usize, seed: u64) -> Option<(f64, f64)> {
    if diffs.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut medians = Vec::with_capacity(rounds);
    let mut sample = vec![0.0; diffs.len()];
    for _ in 0..rounds {
        for x in sample.iter_mut() {
            *x = diffs[rng.random_range(0..diffs.len())];
        }
        medians.push(percentile(&sample, 50.0)?);
    }
    Some((percentile(&medians, 2.5)?, percentile(&medians, 97.5)?))
}

/// A seeded paired bootstrap of the mean of `diffs`: its 95% percentile interval over `rounds`
/// resamples. `None` for no differences.
pub fn bootstrap_mean_ci(diffs: &[f64], rounds: usize, seed: u64) -> Option<(f64, f64)> {
    if diffs.is_empty() || rounds == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = diffs.len();
    let mut means: Vec<f64> = (0..rounds)
        .map(|_| (0..n).map(|_| diffs[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    Some((
        percentile_sorted(&means, 2.5),
        percentile_sorted(&means, 97.5),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn the_mean_interval_holds_the_mean_and_a_constant_has_no_width() {
        let d = [0.001, 0.002, 0.003, 0.004, 0.005];
        let (lo, hi) = bootstrap_mean_ci(&d, 2_000, 7).unwrap();
        assert!(
            lo < 0.003 && 0.003 < hi && lo >= 0.001 && hi <= 0.005,
            "{lo} {hi}"
        );
        assert_eq!(bootstrap_mean_ci(&[0.5; 4], 100, 1), Some((0.5, 0.5)));
        assert_eq!(bootstrap_mean_ci(&[], 100, 1), None);
    }

    #[test]
    fn wilson_matches_hand_computation() {
        // 18 of 20: center 0.83556, half-width 0.13658 → [0.6990, 0.9721].
        let (lo, hi) = wilson(18, 20, Z95).unwrap();
        assert!(
            close(lo, 0.6990, 1e-4) && close(hi, 0.9721, 1e-4),
            "{lo} {hi}"
        );
        // All successes: the upper bound is 1, the lower bound is not.
        let (lo, hi) = wilson(10, 10, Z95).unwrap();
        assert!(close(lo, 0.7225, 1e-4) && hi == 1.0, "{lo} {hi}");
        assert_eq!(wilson(0, 0, Z95), None);
    }

    #[test]
    fn bootstrap_interval_brackets_the_estimate_and_narrows_with_n() {
        let small: Vec<f64> = (1..=20).map(f64::from).collect();
        let large: Vec<f64> = (1..=2000).map(|i| f64::from(i % 20 + 1)).collect();
        let (lo, hi) = bootstrap_percentile(&small, 50.0, 0.95, 1000, 7).unwrap();
        let median = percentile(&small, 50.0).unwrap();
        assert!(lo <= median && median <= hi, "{lo} {median} {hi}");
        let (llo, lhi) = bootstrap_percentile(&large, 50.0, 0.95, 1000, 7).unwrap();
        assert!(lhi - llo < hi - lo);
        // Reproducible with the same seed.
        assert_eq!(
            bootstrap_percentile(&small, 50.0, 0.95, 1000, 7),
            Some((lo, hi))
        );
    }

    #[test]
    fn mann_whitney_matches_scipy_asymptotic() {
        // scipy.stats.mannwhitneyu([1,2,3], [4,5,6], method="asymptotic", use_continuity=False)
        // → U = 0, p = 0.0495
        let (u, z, p) = mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert_eq!(u, 0.0);
        assert!(close(z, -1.9640, 1e-4), "{z}");
        assert!(close(p, 0.04953, 1e-4), "{p}");
        // With ties: [1,2,2,3] vs [2,3,4,5]: midranks give R = 12.5, U = 2.5; tie-corrected
        // variance 16/12 × (9 − 30/56) = 11.2857, z = −1.6372, p = 0.1016.
        let (u, z, p) = mann_whitney(&[1.0, 2.0, 2.0, 3.0], &[2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(u, 2.5);
        assert!(close(z, -1.6372, 1e-4), "{z}");
        assert!(close(p, 0.1016, 1e-3), "{p}");
        assert_eq!(mann_whitney(&[1.0], &[1.0]), None);
    }

    #[test]
    fn two_proportions_hand_computation() {
        // 90/100 vs 80/100: pooled 0.85, se 0.050498, z = 1.9803, p = 0.0477
        let (d, z, p) = two_proportions(90, 100, 80, 100).unwrap();
        assert!(close(d, 0.1, 1e-12));
        assert!(close(z, 1.9803, 1e-4), "{z}");
        assert!(close(p, 0.0477, 1e-3), "{p}");
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // numpy.percentile([1,2,3,4], [50, 95, 0, 100]) = 2.5, 3.85, 1, 4
        assert_eq!(percentile(&v, 50.0), Some(2.5));
        assert!((percentile(&v, 95.0).unwrap() - 3.85).abs() < 1e-12);
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 100.0), Some(4.0));
    }

    #[test]
    fn percentile_of_unsorted_and_single() {
        assert_eq!(percentile(&[9.0, 1.0, 5.0], 50.0), Some(5.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn mean_basic() {
        assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(mean(&[]), None);
    }

    #[test]
    fn paired_tests_match_hand_computations() {
        // Differences 1..=10 all positive: W+ = 55, mean 27.5, var 96.25, z = 2.803.
        let d: Vec<f64> = (1..=10).map(f64::from).collect();
        let (w, z, p) = wilcoxon_signed_rank(&d).unwrap();
        assert_eq!(w, 55.0);
        assert!((z - 2.803).abs() < 1e-3, "{z}");
        assert!((p - 0.00506).abs() < 1e-4, "{p}");
        // Symmetric differences: no effect.
        let (_, z, _) = wilcoxon_signed_rank(&[1.0, -1.0, 2.0, -2.0]).unwrap();
        assert!(z.abs() < 1e-12);
        assert!(wilcoxon_signed_rank(&[0.0, 0.0]).is_none());
        // McNemar: 0 vs 6 discordant pairs: p = 2 × 0.5^6 = 0.03125.
        assert!((mcnemar_exact(0, 6) - 0.031_25).abs() < 1e-12);
        assert_eq!(mcnemar_exact(3, 3), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // The bootstrap interval of a constant difference is that difference.
        assert_eq!(bootstrap_median_ci(&[0.2; 30], 200, 1), Some((0.2, 0.2)));
    }
}
