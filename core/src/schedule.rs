//! Campaigns, slots and triggers (DESIGN.md, "Scheduling").
//!
//! A campaign runs from `start` to `end` at a cadence (`14 per 12h`, or `every 51m`): slot `k`
//! starts at `start + k × interval`. A trigger (EventBridge Scheduler, Cloud Scheduler, GitHub
//! cron, a person) asks for the due slot; a create-only claim makes sure each slot runs once, so
//! a trigger only has to fire at least once inside every slot. This module computes slots,
//! reads trigger expressions, and checks whether a trigger can serve a cadence.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::Shard;

/// A validated campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Slots per `window`: `14 per 12h` is 14 and 12 h; `every 51m` is 1 and 51 min.
    pub per_window: u32,
    pub window: Duration,
    /// How the cadence was written, for messages: `14 per 12h`, `every 51m`.
    pub cadence: String,
    /// Let a trigger run the oldest slot that has no claim yet, not only the due one.
    pub catch_up: bool,
    /// Each origin claims every slot once (the same campaign measured from several places);
    /// otherwise one run per slot.
    pub per_origin: bool,
    /// A claim older than this whose run wrote no manifest is considered dead.
    pub claim_timeout: Duration,
    /// `watch_after_run`: every entry point that runs a slot watches the history after it.
    pub watch_after_run: bool,
    /// `publish_report`: every entry point that runs a slot publishes the dashboard after it.
    pub publish_report: bool,
    /// The most the campaign may spend, USD, in total and per UTC day (`spend/{name}.json`).
    pub budget_usd: Option<f64>,
    pub daily_budget_usd: Option<f64>,
}

/// One slot of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub index: u64,
    pub start: DateTime<Utc>,
}

/// The claim object written (create-only) before a slot runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub campaign: String,
    pub slot: u64,
    pub slot_start: DateTime<Utc>,
    pub run_id: String,
    #[serde(default)]
    pub shard: Option<Shard>,
    pub claimed_at: DateTime<Utc>,
    pub origin: String,
    pub llmpulse_version: String,
}

impl Campaign {
    /// The average time between slot starts.
    pub fn interval(&self) -> Duration {
        self.window / self.per_window.max(1)
    }

    /// Nanoseconds from the start to slot `index`, exactly (integer arithmetic, so that slot 14
    /// of `14 per 12h` starts at 12:00:00 sharp).
    fn offset_ns(&self, index: u64) -> i128 {
        self.window.as_nanos() as i128 * i128::from(index) / i128::from(self.per_window.max(1))
    }

    /// The number of slots: every slot that starts before `end`.
    pub fn slot_count(&self) -> u64 {
        let span = (self.end - self.start).num_nanoseconds().unwrap_or(0) as i128;
        if span <= 0 {
            return 0;
        }
        // The smallest k with offset(k) >= span.
        let per = i128::from(self.per_window.max(1));
        let window = self.window.as_nanos() as i128;
        let k = (span * per + window - 1) / window;
        k as u64
    }

    /// Slot `index`, if the campaign has it.
    pub fn slot(&self, index: u64) -> Option<Slot> {
        (index < self.slot_count()).then(|| Slot {
            index,
            start: self.start + chrono::Duration::nanoseconds(self.offset_ns(index) as i64),
        })
    }

    /// Every slot.
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        (0..self.slot_count()).filter_map(|i| self.slot(i))
    }

    /// The slot running at `now`: the last one that started at or before it. `None` before the
    /// start or after the end.
    pub fn due(&self, now: DateTime<Utc>) -> Option<Slot> {
        if now < self.start || now >= self.end {
            return None;
        }
        let since = (now - self.start).num_nanoseconds().unwrap_or(0) as i128;
        let per = i128::from(self.per_window.max(1));
        let index = (since * per / self.window.as_nanos() as i128) as u64;
        self.slot(index)
    }
}

/// Parses a duration such as `12h`, `51m`, `90s`, `1h30m`, `4d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("'{s}' is not a duration ({e}): write e.g. 12h, 51m, 90s"))
}

/// A trigger expression.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// `rate(5 minutes)`: every interval from when the schedule is created.
    Rate(Duration),
    /// A cron expression, normalised to five fields (minute hour day-of-month month weekday).
    Cron {
        expr: String,
        cron: Box<croner::Cron>,
    },
}

impl Trigger {
    /// Parses `rate(N minutes|hours|days)`, EventBridge `cron(m h dom mon dow year)` or a
    /// five-field cron expression (Cloud Scheduler, GitHub Actions, crontab).
    pub fn parse(s: &str) -> Result<Trigger, String> {
        let s = s.trim();
        if let Some(inner) = s.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            let (n, unit) = inner
                .trim()
                .split_once(' ')
                .ok_or_else(|| format!("'{s}': write rate(5 minutes)"))?;
            let n: u64 = n
                .parse()
                .map_err(|_| format!("'{s}': the rate must be a whole number"))?;
            let secs = match unit.trim().trim_end_matches('s') {
                "minute" => 60,
                "hour" => 3600,
                "day" => 86_400,
                u => return Err(format!("'{s}': unknown unit '{u}' (minutes, hours, days)")),
            };
            if n == 0 {
                return Err(format!("'{s}': the rate must be at least 1"));
            }
            return Ok(Trigger::Rate(Duration::from_secs(n * secs)));
        }
        let expr = match s.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            Some(inner) => {
                let fields: Vec<&str> = inner.split_whitespace().collect();
                if fields.len() != 6 {
                    return Err(format!(
                        "'{s}': EventBridge cron has six fields (minutes hours day-of-month month day-of-week year)"
                    ));
                }
                fields[..5]
                    .iter()
                    .map(|f| if *f == "?" { "*" } else { f })
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            None => s.to_string(),
        };
        if expr.split_whitespace().count() != 5 {
            return Err(format!(
                "'{s}': a cron expression has five fields (minute hour day-of-month month day-of-week)"
            ));
        }
        let cron = croner::Cron::from_str(&expr).map_err(|e| format!("'{s}': {e}"))?;
        Ok(Trigger::Cron {
            expr,
            cron: Box::new(cron),
        })
    }

    /// The times it fires in `[from, to)`.
    pub fn fires(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        match self {
            Trigger::Rate(d) => {
                let step = chrono::Duration::from_std(*d).unwrap_or(chrono::Duration::MAX);
                let mut out = Vec::new();
                let mut t = from;
                while t < to {
                    out.push(t);
                    t += step;
                }
                out
            }
            Trigger::Cron { cron, .. } => cron
                .iter_from(from, croner::Direction::Forward)
                .take_while(|t| *t < to)
                .collect(),
        }
    }

    /// Plain words on how a `*/N` minute step really fires, when N does not divide 60.
    pub fn step_warning(&self) -> Option<String> {
        let Trigger::Cron { expr, .. } = self else {
            return None;
        };
        let minute = expr.split_whitespace().next()?;
        let n: u32 = minute.strip_prefix("*/")?.parse().ok()?;
        if 60 % n == 0 {
            return None;
        }
        let minutes: Vec<String> = (0..60).step_by(n as usize).map(|m| m.to_string()).collect();
        let per_hour = minutes.len();
        Some(format!(
            "`{minute}` in the minute field fires at minutes {} of every hour ({per_hour} times an hour, {} a day), not every {n} minutes: a cron step restarts at each hour",
            minutes.join(" and "),
            per_hour * 24
        ))
    }
}

/// How well a trigger serves a campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriggerCheck {
    /// Fires over the whole campaign.
    pub fires: usize,
    /// Fires per cadence window (e.g. per 12h), on average.
    pub fires_per_window: f64,
    /// Slots with at least one fire inside them.
    pub slots_served: u64,
    /// Slots with no fire inside them: they would never run.
    pub slots_missed: Vec<u64>,
    /// The longest wait from a slot's start to its first fire.
    pub worst_delay: Duration,
}

impl TriggerCheck {
    pub fn serves(&self) -> bool {
        self.slots_missed.is_empty()
    }
}

/// Checks `trigger` against every slot of `campaign`.
pub fn check(campaign: &Campaign, trigger: &Trigger) -> TriggerCheck {
    let fires = trigger.fires(campaign.start, campaign.end);
    let mut missed = Vec::new();
    let mut served = 0;
    let mut worst = Duration::ZERO;
    let mut i = 0;
    let slots: Vec<Slot> = campaign.slots().collect();
    for (k, slot) in slots.iter().enumerate() {
        let next = slots.get(k + 1).map_or(campaign.end, |s| s.start);
        while i < fires.len() && fires[i] < slot.start {
            i += 1;
        }
        if i < fires.len() && fires[i] < next {
            served += 1;
            worst = worst.max((fires[i] - slot.start).to_std().unwrap_or_default());
        } else {
            missed.push(slot.index);
        }
    }
    let windows = (campaign.end - campaign.start)
        .to_std()
        .unwrap_or_default()
        .as_secs_f64()
        / campaign.window.as_secs_f64();
    TriggerCheck {
        fires: fires.len(),
        fires_per_window: if windows > 0.0 {
            fires.len() as f64 / windows
        } else {
            0.0
        },
        slots_served: served,
        slots_missed: missed,
        worst_delay: worst,
    }
}

/// Working triggers for `campaign` on each platform: fire often enough that every slot sees a
/// fire early in it (the claim makes the extra fires harmless no-ops).
pub fn proposals(campaign: &Campaign) -> Vec<(&'static str, String, String)> {
    // Fire at most a quarter of the way into a slot, on a step that divides the hour.
    let quarter = campaign.interval().as_secs() / 60 / 4;
    let step = [30u64, 20, 15, 10, 5, 1]
        .into_iter()
        .find(|s| *s <= quarter.max(1))
        .unwrap_or(1);
    let gh = step.max(5);
    vec![
        (
            "EventBridge Scheduler",
            format!("rate({step} minute{})", if step == 1 { "" } else { "s" }),
            "flexible time window OFF; retry policy and a dead-letter queue for failed invocations".into(),
        ),
        (
            "Cloud Scheduler",
            format!("*/{step} * * * *"),
            "UTC; attempt deadline ≥ the run's duration (max 30 min for HTTP targets)".into(),
        ),
        (
            "GitHub Actions",
            format!("*/{gh} * * * *"),
            "5 minutes is GitHub's minimum; scheduled runs can start late or be dropped at busy times, so fire often and let the claim deduplicate".into(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// The seed's campaign: 14 runs per 12 hours for 4 days.
    fn seed() -> Campaign {
        Campaign {
            name: "seed".into(),
            start: t("2026-12-01T00:00:00Z"),
            end: t("2026-12-05T00:00:00Z"),
            per_window: 14,
            window: Duration::from_secs(12 * 3600),
            cadence: "14 per 12h".into(),
            catch_up: false,
            per_origin: false,
            claim_timeout: Duration::from_secs(3600),
            watch_after_run: false,
            publish_report: false,
            budget_usd: None,
            daily_budget_usd: None,
        }
    }

    #[test]
    fn fourteen_per_twelve_hours_for_four_days_is_112_slots() {
        let c = seed();
        assert_eq!(c.slot_count(), 112);
        assert_eq!(c.slot(0).unwrap().start, c.start);
        // 12h / 14 = 51 min 25.714 s
        assert_eq!(
            c.slot(1).unwrap().start,
            t("2026-12-01T00:51:25.714285714Z")
        );
        assert_eq!(
            c.slot(111).unwrap().start,
            t("2026-12-04T23:08:34.285714285Z")
        );
        assert_eq!(c.slot(14).unwrap().start, t("2026-12-01T12:00:00Z"));
        assert!(c.slot(112).is_none());
    }

    #[test]
    fn due_slot() {
        let c = seed();
        assert_eq!(c.due(t("2026-11-30T23:59:59Z")), None);
        assert_eq!(c.due(t("2026-12-01T00:51:00Z")).unwrap().index, 0);
        assert_eq!(c.due(t("2026-12-01T00:52:00Z")).unwrap().index, 1);
        assert_eq!(c.due(t("2026-12-04T23:59:59Z")).unwrap().index, 111);
        assert_eq!(c.due(t("2026-12-05T00:00:00Z")), None);
    }

    #[test]
    fn star_slash_51_fires_at_minutes_0_and_51() {
        let trig = Trigger::parse("*/51 * * * *").unwrap();
        let fires = trig.fires(t("2026-12-01T00:00:00Z"), t("2026-12-01T02:00:00Z"));
        let minutes: Vec<String> = fires
            .iter()
            .map(|f| f.format("%H:%M").to_string())
            .collect();
        assert_eq!(minutes, ["00:00", "00:51", "01:00", "01:51"]);
        let w = trig.step_warning().unwrap();
        assert!(w.contains("minutes 0 and 51 of every hour"), "{w}");
        assert!(w.contains("48 a day"), "{w}");
        // 24 fires per 12h, not 14. It still serves 14 per 12h, by luck: no gap between its
        // fires (51 min) is longer than a slot (51 min 26 s). With the claim, the extra fires
        // are no-ops.
        let c = check(&seed(), &trig);
        assert_eq!(c.fires_per_window, 24.0);
        assert!(c.serves());
        // The same trigger cannot serve one run an hour at a given minute... or 30 per 12h.
        let mut dense = seed();
        dense.per_window = 30;
        let c = check(&dense, &trig);
        assert!(!c.serves());
        assert!(!c.slots_missed.is_empty());
    }

    #[test]
    fn proposed_triggers_serve_every_slot() {
        let c = seed();
        for (platform, expr, _) in proposals(&c) {
            let trig = Trigger::parse(&expr).unwrap();
            let check = check(&c, &trig);
            assert!(
                check.serves(),
                "{platform} {expr}: missed {:?}",
                check.slots_missed
            );
            assert!(
                check.worst_delay <= c.interval() / 4,
                "{platform}: {:?}",
                check.worst_delay
            );
        }
    }

    #[test]
    fn eventbridge_forms_parse() {
        assert!(
            matches!(Trigger::parse("rate(5 minutes)").unwrap(), Trigger::Rate(d) if d == Duration::from_secs(300))
        );
        assert!(
            matches!(Trigger::parse("rate(1 hour)").unwrap(), Trigger::Rate(d) if d == Duration::from_secs(3600))
        );
        let c = Trigger::parse("cron(0/10 * * * ? *)").unwrap();
        assert_eq!(
            c.fires(t("2026-12-01T00:00:00Z"), t("2026-12-01T01:00:00Z"))
                .len(),
            6
        );
        assert!(Trigger::parse("rate(0 minutes)").is_err());
        assert!(Trigger::parse("cron(* * *)").is_err());
        assert!(Trigger::parse("every day").is_err());
    }
}
