//! What heat did to each model during a soak ([`ModelHeat`]), for the morning report: the hottest
//! reading, the share of calls throttled and how long after the first reading the first came,
//! output speed by 10 °C band, and the sustained speed (the last 30 minutes) against the first 5.
//!
//! The figures are defined as the HTML report's Heat section defines them
//! (`llmpulse_report::figures::heat`), but kept small enough for the soak's state file: the
//! first five minutes as one mean, and only the last 30 minutes per minute.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use llmpulse_core::record::Record;
use serde::{Deserialize, Serialize};

use super::stats::Avg;

/// Width of a temperature band, °C (as the HTML report's).
pub const BAND_C: i64 = 10;
/// Minutes at the start compared with the minutes at the end.
const FIRST_MIN: i64 = 5;
const LAST_MIN: i64 = 30;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelHeat {
    /// Calls with a CPU or GPU temperature, and the hottest.
    pub readings: u64,
    pub peak_c: Option<f64>,
    /// Calls a source could tell about, and those it said were throttled.
    pub throttle_known: u64,
    pub throttled: u64,
    /// The first call with a reading, and the first throttled call.
    pub first: Option<DateTime<Utc>>,
    pub first_throttled: Option<DateTime<Utc>>,
    /// Band start (°C) → output speed of the successful calls in it.
    pub bands: BTreeMap<i64, Avg>,
    /// The epoch minute of the first successful call with a reading, and the output speed of
    /// those within [`FIRST_MIN`] minutes of it.
    pub first_minute: Option<i64>,
    pub early: Avg,
    /// Epoch minute → output speed, for the last [`LAST_MIN`] minutes seen only.
    pub recent: BTreeMap<i64, Avg>,
}

impl ModelHeat {
    /// Folds one call in; a call with neither a reading nor a throttle flag changes nothing.
    pub fn add(&mut self, r: &Record) {
        let at = DateTime::parse_from_rfc3339(&r.timestamp)
            .ok()
            .map(|t| t.to_utc());
        if let Some(throttled) = r.throttled {
            self.throttle_known += 1;
            if throttled {
                self.throttled += 1;
                self.first_throttled = earliest(self.first_throttled, at);
            }
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
        self.first = earliest(self.first, at);
        let (true, Some(at)) = (r.success, at) else {
            return;
        };
        let band = (t / BAND_C as f64).floor() as i64 * BAND_C;
        self.bands.entry(band).or_default().add(r.output_speed_tps);
        let minute = at.timestamp().div_euclid(60);
        let first = *self.first_minute.get_or_insert(minute);
        if (first..first + FIRST_MIN).contains(&minute) {
            self.early.add(r.output_speed_tps);
        }
        let last = self.recent.keys().next_back().copied().unwrap_or(minute);
        if minute > last - LAST_MIN {
            self.recent
                .entry(minute)
                .or_default()
                .add(r.output_speed_tps);
            let newest = last.max(minute);
            self.recent.retain(|m, _| *m > newest - LAST_MIN);
        }
    }

    /// Seconds from the first reading to the first throttled call.
    pub fn first_throttled_after_sec(&self) -> Option<f64> {
        let (a, b) = (self.first?, self.first_throttled?);
        Some(((b - a).num_milliseconds() as f64 / 1e3).max(0.0))
    }

    /// Mean output speed of the first 5 minutes and of the last 30, once the calls span at least
    /// 35 minutes (shorter, the two windows would overlap).
    pub fn first_and_sustained_tps(&self) -> Option<(f64, f64)> {
        let first = self.first_minute?;
        let last = *self.recent.keys().next_back()?;
        if last - first + 1 < FIRST_MIN + LAST_MIN {
            return None;
        }
        let mut sustained = Avg::default();
        for v in self.recent.values() {
            sustained.merge(v);
        }
        Some((self.early.value()?, sustained.value()?))
    }

    /// Throttled calls over the calls a source told about.
    pub fn throttled_share(&self) -> Option<f64> {
        (self.throttle_known > 0).then(|| self.throttled as f64 / self.throttle_known as f64)
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn call(minute: i64, temp: f64, speed: f64, throttled: bool) -> Record {
        let at = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .to_utc()
            + Duration::minutes(minute);
        let mut r = crate::soak::stats::tests::record("t", "q", "x", true, None);
        r.timestamp = at.to_rfc3339();
        r.output_speed_tps = Some(speed);
        r.cpu_temp_c = Some(temp);
        r.throttled = Some(throttled);
        r
    }

    #[test]
    fn an_hour_that_heats_up_gives_bands_the_first_throttle_and_the_sustained_speed() {
        // 60 tok/s below 70 °C for 10 minutes, then 40 tok/s at 82 °C, throttled from minute 20.
        let mut h = ModelHeat::default();
        for m in 0..60 {
            h.add(&if m < 10 {
                call(m, 65.0, 60.0, false)
            } else {
                call(m, 82.0, 40.0, m >= 20)
            });
        }
        assert_eq!(h.peak_c, Some(82.0));
        assert_eq!((h.throttled, h.throttle_known), (40, 60));
        assert_eq!(h.first_throttled_after_sec(), Some(1200.0));
        assert_eq!(h.bands[&60].value(), Some(60.0));
        assert_eq!(h.bands[&80].value(), Some(40.0));
        assert_eq!(h.first_and_sustained_tps(), Some((60.0, 40.0)));
        assert_eq!(h.recent.len(), 30, "only the last 30 minutes are kept");
    }

    #[test]
    fn under_35_minutes_there_is_no_sustained_figure() {
        let mut h = ModelHeat::default();
        for m in 0..34 {
            h.add(&call(m, 70.0, 50.0, false));
        }
        assert_eq!(h.first_and_sustained_tps(), None);
        assert_eq!(h.first_throttled_after_sec(), None);
        assert_eq!(h.throttled_share(), Some(0.0));
    }
}
