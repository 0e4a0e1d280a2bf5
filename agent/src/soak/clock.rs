//! The soak's wall clock: the real local time, or an injected start that then advances with
//! real time (tests start it just before the night window). Night mode reads it; nothing else in
//! the soak does.

use std::time::Instant;

use chrono::{DateTime, FixedOffset, Local, NaiveTime, TimeDelta};

/// Local wall-clock time for night mode.
#[derive(Debug, Clone)]
pub struct Clock {
    injected: Option<(DateTime<FixedOffset>, Instant)>,
    offset: Option<FixedOffset>,
}

impl Clock {
    /// The host's local time (or a fixed `offset` from UTC).
    pub fn real(offset: Option<FixedOffset>) -> Clock {
        Clock {
            injected: None,
            offset,
        }
    }

    /// Time that starts at `start` now and runs at the real rate, in `start`'s time zone.
    pub fn starting_at(start: DateTime<FixedOffset>) -> Clock {
        Clock {
            injected: Some((start, Instant::now())),
            offset: None,
        }
    }

    /// An injected clock's start is the soak's start: a resumed soak's clock goes on from
    /// where the first start's would be now, not from the start again.
    pub fn anchored(self, started_at: chrono::DateTime<chrono::Utc>) -> Clock {
        match self.injected {
            Some((start, _)) => {
                let since = (chrono::Utc::now() - started_at)
                    .to_std()
                    .unwrap_or_default();
                let at = Instant::now()
                    .checked_sub(since)
                    .unwrap_or_else(Instant::now);
                Clock {
                    injected: Some((start, at)),
                    offset: None,
                }
            }
            None => self,
        }
    }

    /// The local time now.
    pub fn now(&self) -> DateTime<FixedOffset> {
        match (&self.injected, self.offset) {
            (Some((start, at)), _) => {
                *start + TimeDelta::from_std(at.elapsed()).unwrap_or(TimeDelta::zero())
            }
            (None, Some(o)) => chrono::Utc::now().with_timezone(&o),
            (None, None) => Local::now().fixed_offset(),
        }
    }
}

/// A daily window of local time, `start..end`, that may pass midnight (22:00–06:00).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Window {
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start <= self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

/// The next instant at or after `now` whose local time is `at` (for `--until 07:00`).
pub fn next_at(now: DateTime<FixedOffset>, at: NaiveTime) -> DateTime<FixedOffset> {
    let today = now.date_naive().and_time(at);
    let candidate = today
        .and_local_timezone(*now.offset())
        .single()
        .unwrap_or(now);
    if candidate > now {
        candidate
    } else {
        candidate + TimeDelta::days(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }

    #[test]
    fn a_night_window_passes_midnight() {
        let night = Window {
            start: t("22:00"),
            end: t("06:00"),
        };
        assert!(night.contains(t("23:30")));
        assert!(night.contains(t("02:00")));
        assert!(!night.contains(t("06:00")));
        assert!(!night.contains(t("12:00")));
        let lunch = Window {
            start: t("12:00"),
            end: t("13:00"),
        };
        assert!(lunch.contains(t("12:30")) && !lunch.contains(t("13:30")));
    }

    #[test]
    fn until_means_the_next_time_of_day() {
        let now = DateTime::parse_from_rfc3339("2026-11-27T23:10:00+01:00").unwrap();
        assert_eq!(
            next_at(now, t("07:00")).to_rfc3339(),
            "2026-11-28T07:00:00+01:00"
        );
        assert_eq!(
            next_at(now, t("23:30")).to_rfc3339(),
            "2026-11-27T23:30:00+01:00"
        );
    }

    #[test]
    fn an_injected_clock_keeps_its_zone_and_advances() {
        let start = DateTime::parse_from_rfc3339("2026-11-27T21:59:59+09:00").unwrap();
        let c = Clock::starting_at(start);
        let now = c.now();
        assert!(now >= start && now - start < TimeDelta::seconds(5));
        assert_eq!(now.offset().local_minus_utc(), 9 * 3600);
        // A soak that started 10 minutes ago: its clock reads start + 10 minutes.
        let resumed = Clock::starting_at(start)
            .anchored(chrono::Utc::now() - TimeDelta::minutes(10))
            .now();
        let ahead = resumed - start;
        assert!(
            ahead >= TimeDelta::minutes(10)
                && ahead < TimeDelta::minutes(10) + TimeDelta::seconds(5)
        );
    }
}
