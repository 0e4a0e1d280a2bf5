//! The thermal figures of one target ([`HeatFigures`]): the hottest sensor, the share of calls
//! throttled and how long after the first call the first throttling came, output speed by
//! temperature band, and a long run's sustained speed (its last 30 minutes) against its first
//! 5 minutes — "the thermal limits for continuous operation" in numbers.

use serde::Serialize;

use super::RateFigure;
use crate::aggregate::heat::{BAND_C, Heat};
use crate::dist::Mean;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeatFigures {
    pub calls_with_reading: u64,
    /// The hottest CPU or GPU reading of any call, °C.
    pub peak_c: Option<f64>,
    /// Calls throttled, of those a source could tell about.
    pub throttled: Option<RateFigure>,
    /// From the first call with a reading to the first throttled call, seconds.
    pub first_throttled_after_sec: Option<f64>,
    pub speed_by_band: Vec<BandFigure>,
    /// Mean output speed in the first 5 minutes and the last 30 of the target's calls, and
    /// the second over the first; absent for less than 35 minutes of calls.
    pub first_5min_speed_tps: Option<f64>,
    pub last_30min_speed_tps: Option<f64>,
    pub sustained_ratio: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BandFigure {
    pub from_c: f64,
    pub to_c: f64,
    pub calls: u64,
    pub output_speed_tps: Option<f64>,
}

impl HeatFigures {
    /// `None` when no call had a temperature reading or a throttle flag.
    pub fn of(h: &Heat) -> Option<HeatFigures> {
        if h.readings == 0 && h.throttled.n == 0 {
            return None;
        }
        let minute_mean = |from: i64, to: i64| {
            let mut m = Mean::default();
            for (_, v) in h.minutes.range(from..to) {
                m.merge(v);
            }
            m.value()
        };
        let (first5, last30) = match (h.minutes.keys().next(), h.minutes.keys().next_back()) {
            (Some(&a), Some(&b)) if b - a + 1 >= 35 => {
                (minute_mean(a, a + 5), minute_mean(b - 29, b + 1))
            }
            _ => (None, None),
        };
        Some(HeatFigures {
            calls_with_reading: h.readings,
            peak_c: h.peak_c,
            throttled: RateFigure::of(h.throttled),
            first_throttled_after_sec: match (h.first, h.first_throttled) {
                (Some(a), Some(b)) => Some(((b - a).num_milliseconds() as f64 / 1e3).max(0.0)),
                _ => None,
            },
            speed_by_band: h
                .bands
                .iter()
                .map(|(from, m)| BandFigure {
                    from_c: *from as f64,
                    to_c: *from as f64 + BAND_C,
                    calls: m.n,
                    output_speed_tps: m.value(),
                })
                .collect(),
            first_5min_speed_tps: first5,
            last_30min_speed_tps: last30,
            sustained_ratio: first5.zip(last30).map(|(a, b)| b / a),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Row;
    use chrono::{DateTime, Duration, Utc};

    fn call(minute: i64, temp: f64, speed: f64, throttled: bool) -> (String, DateTime<Utc>) {
        let at = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .to_utc()
            + Duration::minutes(minute);
        let json = format!(
            r#"{{"timestamp": "{}", "industry": "x", "llm_provider": "p", "llm_model": "m",
            "latency_sec": 1.0, "question_id": "q", "target": "t", "task": "rag",
            "success": true, "output_speed_tps": {speed}, "cpu_temp_c": {temp},
            "throttled": {throttled}}}"#,
            at.to_rfc3339()
        );
        (json, at)
    }

    #[test]
    fn a_machine_that_heats_up_slows_down_and_the_figures_say_by_how_much() {
        // An hour: 60 tok/s below 70 °C for the first 10 minutes, then 40 tok/s at 80+ °C,
        // throttled from minute 20.
        let mut h = Heat::default();
        for m in 0..60 {
            let (json, at) = if m < 10 {
                call(m, 65.0, 60.0, false)
            } else {
                call(m, 82.0, 40.0, m >= 20)
            };
            h.add(&serde_json::from_str::<Row<'_>>(&json).unwrap(), at);
        }
        let f = HeatFigures::of(&h).unwrap();
        assert_eq!(f.peak_c, Some(82.0));
        let t = f.throttled.unwrap();
        assert_eq!((t.k, t.n), (40, 60));
        assert_eq!(f.first_throttled_after_sec, Some(20.0 * 60.0));
        assert_eq!(f.first_5min_speed_tps, Some(60.0));
        assert_eq!(f.last_30min_speed_tps, Some(40.0));
        assert!((f.sustained_ratio.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        let bands: Vec<(f64, u64, Option<f64>)> = f
            .speed_by_band
            .iter()
            .map(|b| (b.from_c, b.calls, b.output_speed_tps))
            .collect();
        assert_eq!(bands, vec![(60.0, 10, Some(60.0)), (80.0, 50, Some(40.0))]);
    }
}
