//! A target's figures per origin ([`OriginFigures`]), when more than one origin measured it:
//! success, TTFT, TTFB and latency with intervals, and the network's share of the TTFT.

use serde::Serialize;

use super::{Quantiles, RateFigure};
use crate::aggregate::TargetAgg;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OriginFigures {
    pub origin: String,
    pub success: RateFigure,
    pub ttft_sec: Option<Quantiles>,
    pub ttfb_sec: Option<Quantiles>,
    pub latency_sec: Option<Quantiles>,
    /// Median TTFB over median TTFT: the part of the wait before the provider's first byte (the
    /// network, and the set-up with the client clock). High at one origin only: its network.
    pub network_share: Option<f64>,
}

impl OriginFigures {
    /// One row per origin, or none when a single origin measured the target.
    pub fn of(t: &TargetAgg, seed: u64) -> Vec<OriginFigures> {
        if t.by_origin.0.len() < 2 {
            return Vec::new();
        }
        t.by_origin
            .0
            .iter()
            .map(|(origin, o)| {
                let ttft_sec = Quantiles::of(&o.ttft, seed);
                let ttfb_sec = Quantiles::of(&o.ttfb, seed);
                let network_share = match (&ttfb_sec, &ttft_sec) {
                    (Some(b), Some(f)) if f.p50.value > 0.0 => Some(b.p50.value / f.p50.value),
                    _ => None,
                };
                OriginFigures {
                    origin: origin.clone(),
                    success: RateFigure::of_or_empty(o.calls),
                    ttft_sec,
                    ttfb_sec,
                    latency_sec: Quantiles::of(&o.latency, seed),
                    network_share,
                }
            })
            .collect()
    }
}
