//! What heat did to a target's calls ([`Heat`]): the hottest sensor seen, which calls were
//! throttled and when the first was, output speed by temperature band, and output speed per
//! minute (for a long run's first minutes against its sustained speed).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::Row;
use crate::dist::{Mean, Rate};

/// The most minutes kept per target: a week of continuous calls. Past it the minute series
/// stops growing (the sustained-speed figure then ends there).
pub const MINUTES_CAP: usize = 7 * 24 * 60;

/// Width of a temperature band, °C.
pub const BAND_C: f64 = 10.0;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Heat {
    /// Calls with a temperature reading, and the hottest reading.
    pub readings: u64,
    pub peak_c: Option<f64>,
    /// Calls a source could tell about: throttled or not.
    pub throttled: Rate,
    pub first_throttled: Option<DateTime<Utc>>,
    /// The first call with a reading.
    pub first: Option<DateTime<Utc>>,
    /// Band start (°C, a multiple of [`BAND_C`]) → output speed of the successful calls.
    pub bands: BTreeMap<i64, Mean>,
    /// Epoch minute → output speed of the successful calls with a reading.
    pub minutes: BTreeMap<i64, Mean>,
}

impl Heat {
    /// Folds one call sent at `at` in; calls without a reading or a throttle flag change nothing.
    pub fn add(&mut self, r: &Row<'_>, at: DateTime<Utc>) {
        self.throttled.add(r.throttled);
        if r.throttled == Some(true) {
            self.first_throttled = self.first_throttled.min(Some(at)).or(Some(at));
        }
        let Some(t) = [r.cpu_temp_c, r.gpu_temp_c]
            .into_iter()
            .flatten()
            .filter(|t| t.is_finite())
            .reduce(f64::max)
        else {
            return;
        };
        self.readings += 1;
        self.peak_c = Some(self.peak_c.map_or(t, |p| p.max(t)));
        self.first = self.first.min(Some(at)).or(Some(at));
        if !r.success {
            return;
        }
        let band = (t / BAND_C).floor() as i64 * BAND_C as i64;
        self.bands.entry(band).or_default().add(r.output_speed_tps);
        let minute = at.timestamp().div_euclid(60);
        if self.minutes.len() < MINUTES_CAP || self.minutes.contains_key(&minute) {
            self.minutes
                .entry(minute)
                .or_default()
                .add(r.output_speed_tps);
        }
    }

    pub fn merge(&mut self, o: &Heat) {
        self.readings += o.readings;
        self.peak_c = match (self.peak_c, o.peak_c) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.throttled.merge(&o.throttled);
        self.first_throttled = match (self.first_throttled, o.first_throttled) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.first = match (self.first, o.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for (k, v) in &o.bands {
            self.bands.entry(*k).or_default().merge(v);
        }
        for (k, v) in &o.minutes {
            if self.minutes.len() < MINUTES_CAP || self.minutes.contains_key(k) {
                self.minutes.entry(*k).or_default().merge(v);
            }
        }
    }
}
