//! One target as measured from each origin ([`ByOrigin`]): the same model from
//! `lambda:eu-west-1`, `cloudrun:us-central1:…` and `agent:office` side by side, so a regional
//! network problem is not read as the model's.

use std::collections::BTreeMap;

use super::{Dist, Rate, Row};

/// The most origins kept apart per target; calls from any further origin are pooled as
/// [`OTHER`], so a history from thousands of hosts cannot grow the report without bound.
pub const ORIGINS_CAP: usize = 32;
pub const OTHER: &str = "(other origins)";

/// One origin's calls of one target.
#[derive(Debug, Clone)]
pub struct OriginAgg {
    pub calls: Rate,
    pub latency: Dist,
    pub ttft: Dist,
    pub ttfb: Dist,
}

impl Default for OriginAgg {
    fn default() -> Self {
        OriginAgg {
            calls: Rate::default(),
            latency: Dist::seconds(),
            ttft: Dist::seconds(),
            ttfb: Dist::seconds(),
        }
    }
}

impl OriginAgg {
    fn add(&mut self, r: &Row<'_>) {
        self.calls.add(Some(r.success));
        if r.success {
            self.latency.add(r.latency_sec);
            if let Some(v) = r.ttft_sec {
                self.ttft.add(v);
            }
            if let Some(v) = r.ttfb_sec {
                self.ttfb.add(v);
            }
        }
    }

    fn merge(&mut self, o: &OriginAgg) {
        self.calls.merge(&o.calls);
        self.latency.merge(&o.latency);
        self.ttft.merge(&o.ttft);
        self.ttfb.merge(&o.ttfb);
    }
}

/// Origin → its calls of one target.
#[derive(Debug, Clone, Default)]
pub struct ByOrigin(pub BTreeMap<String, OriginAgg>);

impl ByOrigin {
    pub fn add(&mut self, r: &Row<'_>) {
        self.slot(r.origin.as_ref()).add(r);
    }

    pub fn merge(&mut self, o: &ByOrigin) {
        for (k, v) in &o.0 {
            self.slot(k).merge(v);
        }
    }

    fn slot(&mut self, origin: &str) -> &mut OriginAgg {
        let key = if self.0.contains_key(origin) || self.0.len() < ORIGINS_CAP {
            origin
        } else {
            OTHER
        };
        if !self.0.contains_key(key) {
            self.0.insert(key.to_string(), OriginAgg::default());
        }
        self.0.get_mut(key).expect("inserted above")
    }
}
