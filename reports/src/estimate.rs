//! Estimates with their intervals: [`Estimate`] (a value, 95% interval), [`RateFigure`]
//! (Wilson), [`MeanFigure`], and [`Quantiles`] (p50–p99: a seeded bootstrap while the exact
//! values are kept, the order-statistic interval off the histogram beyond).

use serde::Serialize;

use crate::aggregate::{Dist, Mean, Rate};
use llmpulse_core::stats::{self, Z95};

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 1_000;
/// The bootstrap's seed: the same records give the same report.
pub const SEED: u64 = 0x11_e5_0b_5e;
/// A value with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
}

/// A rate with its Wilson interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateFigure {
    pub n: u64,
    pub k: u64,
    pub rate: Estimate,
}

impl RateFigure {
    /// [`RateFigure::of`], or 0 of 0 with the uninformative interval [0, 1].
    pub fn of_or_empty(r: Rate) -> RateFigure {
        RateFigure::of(r).unwrap_or(RateFigure {
            n: 0,
            k: 0,
            rate: Estimate {
                value: 0.0,
                lo: 0.0,
                hi: 1.0,
            },
        })
    }

    pub fn of(r: Rate) -> Option<RateFigure> {
        let (lo, hi) = stats::wilson(r.ok, r.n, Z95)?;
        Some(RateFigure {
            n: r.n,
            k: r.ok,
            rate: Estimate {
                value: r.ok as f64 / r.n as f64,
                lo,
                hi,
            },
        })
    }
}

/// A mean with its n.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanFigure {
    pub n: u64,
    pub mean: f64,
    /// The mean's 95% interval (normal approximation); absent below two values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci95: Option<[f64; 2]>,
}

impl MeanFigure {
    /// The mean to 12 significant digits: workers sum in different orders, and the last bits of
    /// a float sum depend on the order; the report should not.
    pub fn of(m: Mean) -> Option<MeanFigure> {
        let mean = m.value()?;
        let round = |x: f64| format!("{x:.11e}").parse().unwrap_or(x);
        Some(MeanFigure {
            n: m.n,
            mean: round(mean),
            ci95: m.ci95().map(|(lo, hi)| [round(lo), round(hi)]),
        })
    }
}

/// How an interval was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CiMethod {
    Bootstrap,
    OrderStatistic,
}

/// Percentiles of one distribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quantiles {
    pub n: u64,
    pub p50: Estimate,
    pub p90: Estimate,
    pub p95: Estimate,
    pub p99: Estimate,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub ci_method: CiMethod,
    /// For the box plot: the 5th and 25th, 75th percentiles (no intervals).
    pub p05: f64,
    pub p25: f64,
    pub p75: f64,
}

const QS: [f64; 7] = [50.0, 90.0, 95.0, 99.0, 5.0, 25.0, 75.0];

impl Quantiles {
    pub fn of(d: &Dist, seed: u64) -> Option<Quantiles> {
        if d.is_empty() {
            return None;
        }
        if let Some(sorted) = d.exact_sorted() {
            let cis = stats::bootstrap_percentiles(&sorted, &QS[..4], 0.95, RESAMPLES, seed)?;
            let at = |q: f64| stats::percentile_sorted(&sorted, q);
            let est = |i: usize| Estimate {
                value: at(QS[i]),
                lo: cis[i].0,
                hi: cis[i].1,
            };
            return Some(Quantiles {
                n: sorted.len() as u64,
                p50: est(0),
                p90: est(1),
                p95: est(2),
                p99: est(3),
                mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
                min: sorted[0],
                max: sorted[sorted.len() - 1],
                ci_method: CiMethod::Bootstrap,
                p05: at(5.0),
                p25: at(25.0),
                p75: at(75.0),
            });
        }
        let n = d.len();
        let est = |q: f64| -> Option<Estimate> {
            let (l, u) = stats::quantile_rank_interval(n, q, Z95)?;
            Some(Estimate {
                value: d.hist_quantile(q)?,
                lo: d.hist_quantile(l as f64 / n as f64)?,
                hi: d.hist_quantile(u as f64 / n as f64)?,
            })
        };
        Some(Quantiles {
            n,
            p50: est(0.5)?,
            p90: est(0.9)?,
            p95: est(0.95)?,
            p99: est(0.99)?,
            mean: d.mean()?,
            min: d.hist_quantile(0.0)?,
            max: d.hist_quantile(1.0)?,
            ci_method: CiMethod::OrderStatistic,
            p05: d.hist_quantile(0.05)?,
            p25: d.hist_quantile(0.25)?,
            p75: d.hist_quantile(0.75)?,
        })
    }
}
