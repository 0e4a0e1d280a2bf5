//! Long-duration soak runs (`llmpulse-agent soak`): hours of calls drawn by weight from seven
//! scenarios, rotating between models, slower at night, with a live summary, a per-model profile
//! database and a morning report.
//!
//! A soak is a sequence of short segments, each an ordinary run with its own manifest, so every
//! report reads a soak as it reads any run. Before a segment starts, its calls are written to the
//! soak's state file; a soak restarted with the same config reads the state, keeps the records
//! its interrupted segment already journaled and asks only the calls that have none.
//!
//! This module reads and checks the `[soak]` table; [`scenario`] draws calls, [`clock`] is the
//! wall clock night mode reads, [`loader`] loads and unloads models through the server's API at
//! each rotation, [`state`] is what survives a restart, [`stats`] the live summary (with
//! [`heat`], what heat did to each model), [`profiles`] the model profile database, [`report`]
//! the morning report, [`run`] the loop.

pub mod clock;
pub mod heat;
mod live;
pub mod loader;
pub mod options;
pub mod profiles;
pub mod report;
pub mod run;
pub mod scenario;
pub mod segment;
pub mod state;
pub mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{FixedOffset, NaiveTime};
use llmpulse_core::suite::line_col;
use serde::Deserialize;
use toml::Spanned;

use clock::Window;
use scenario::{Scenario, Weights};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSoak {
    name: Option<Spanned<String>>,
    dir: Option<Spanned<String>>,
    duration: Option<Spanned<String>>,
    until: Option<Spanned<String>>,
    calls: Option<Spanned<i64>>,
    summary_interval: Option<Spanned<String>>,
    rotate_every: Option<Spanned<Vec<i64>>>,
    segment_calls: Option<Spanned<i64>>,
    pause: Option<Spanned<String>>,
    burst: Option<Spanned<i64>>,
    seed: Option<Spanned<i64>>,
    context_length: Option<Spanned<i64>>,
    timezone: Option<Spanned<String>>,
    failover_url: Option<Spanned<String>>,
    weights: Option<Spanned<BTreeMap<String, f64>>>,
    night: Option<Spanned<RawNight>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNight {
    start: Option<Spanned<String>>,
    end: Option<Spanned<String>>,
    pause: Option<Spanned<String>>,
    burst: Option<Spanned<i64>>,
    weights: Option<Spanned<BTreeMap<String, f64>>>,
    duty: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
struct RawFile {
    soak: Option<Spanned<RawSoak>>,
}

/// Night mode: within `window` (local time), longer pauses, smaller bursts, and optionally
/// another mix of scenarios.
#[derive(Debug, Clone, PartialEq)]
pub struct Night {
    pub window: Window,
    pub pause: Duration,
    pub burst: u32,
    pub weights: Option<Weights>,
    /// The night's own duty cycle (over `[agent] duty` and `--duty`), in (0, 1].
    pub duty: Option<f64>,
}

/// A checked `[soak]` table.
#[derive(Debug, Clone)]
pub struct Soak {
    pub name: String,
    /// Where the live summary, the profiles, the state and the morning report are written
    /// (relative to the working directory, like `output`).
    pub dir: PathBuf,
    pub duration: Option<Duration>,
    pub until: Option<NaiveTime>,
    /// The soak ends after this many calls (or at its duration or `until`, whichever is first):
    /// the same calls whatever the machine's speed.
    pub calls: Option<u64>,
    pub summary_interval: Duration,
    /// A rotation stays on a model for a random number of calls in `rotate_every.0..=.1`.
    pub rotate_every: (u32, u32),
    /// The most calls in one segment (one run).
    pub segment_calls: u32,
    /// Between two calls, by day.
    pub pause: Duration,
    /// Calls in one concurrent-load burst, by day.
    pub burst: u32,
    pub seed: u64,
    /// Context length assumed for a model whose server does not say.
    pub context_length: u32,
    pub timezone: Option<FixedOffset>,
    /// Where the failing half of a provider-failover call is sent (default: a port that refuses).
    pub failover_url: String,
    pub weights: Weights,
    pub night: Night,
}

/// What a `[soak]` table is wrong about: file, line, field.
#[derive(Debug, thiserror::Error)]
#[error("{origin}:{line}: soak.{field}: {message}")]
pub struct SoakError {
    pub origin: String,
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl Soak {
    /// Reads `[soak]` from a config's text (a file without one gets every default).
    pub fn parse(text: &str, origin: &str) -> Result<Soak, SoakError> {
        let err = |pos: usize, field: &str, message: String| SoakError {
            origin: origin.to_string(),
            line: line_col(text, pos).0,
            field: field.to_string(),
            message,
        };
        let file: RawFile = toml::from_str(text).map_err(|e| {
            let pos = e.span().map_or(0, |s| s.start);
            err(pos, "", e.message().to_string())
        })?;
        let (at, raw) = match file.soak {
            Some(s) => (s.span().start, Some(s.into_inner())),
            None => (0, None),
        };
        let raw = raw.unwrap_or(RawSoak {
            name: None,
            dir: None,
            duration: None,
            until: None,
            calls: None,
            summary_interval: None,
            rotate_every: None,
            segment_calls: None,
            pause: None,
            burst: None,
            seed: None,
            context_length: None,
            timezone: None,
            failover_url: None,
            weights: None,
            night: None,
        });
        let span = |v: &Option<Spanned<String>>| v.as_ref().map_or(at, |v| v.span().start);
        let duration = |v: &Option<Spanned<String>>, field: &str, default: Option<Duration>| match v
        {
            None => Ok(default),
            Some(s) => humantime::parse_duration(s.get_ref())
                .map(Some)
                .map_err(|e| err(s.span().start, field, format!("'{}': {e}", s.get_ref()))),
        };
        let time = |v: &Option<Spanned<String>>, field: &str, default: &str| {
            let s = v.as_ref().map_or(default, |v| v.get_ref().as_str());
            parse_hhmm(s).ok_or_else(|| {
                err(
                    span(v),
                    field,
                    format!("'{s}' is not a time of day: write HH:MM"),
                )
            })
        };
        let count = |v: &Option<Spanned<i64>>, field: &str, default: u32, max: i64| match v {
            None => Ok(default),
            Some(n) if (1..=max).contains(n.get_ref()) => Ok(*n.get_ref() as u32),
            Some(n) => Err(err(
                n.span().start,
                field,
                format!("{} is out of range 1..={max}", n.get_ref()),
            )),
        };
        let weights = |v: &Option<Spanned<BTreeMap<String, f64>>>, field: &str| match v {
            None => Ok(None),
            Some(w) => parse_weights(w.get_ref())
                .map(Some)
                .map_err(|m| err(w.span().start, field, m)),
        };

        let name = raw
            .name
            .as_ref()
            .map_or("soak".to_string(), |n| n.get_ref().clone());
        if !llmpulse_core::layout::is_safe_name(&name) {
            return Err(err(
                span(&raw.name),
                "name",
                format!("'{name}': use letters, digits, '-', '_' or '.'"),
            ));
        }
        let rotate_every = match &raw.rotate_every {
            None => (5, 10),
            Some(r) => match r.get_ref().as_slice() {
                [a, b] if *a >= 1 && a <= b && *b <= 1_000_000 => (*a as u32, *b as u32),
                _ => {
                    return Err(err(
                        r.span().start,
                        "rotate_every",
                        "give [MIN, MAX] calls per model, 1 ≤ MIN ≤ MAX".into(),
                    ));
                }
            },
        };
        let summary_interval = duration(
            &raw.summary_interval,
            "summary_interval",
            Some(Duration::from_secs(300)),
        )?
        .unwrap_or_default();
        if summary_interval < Duration::from_secs(1) {
            return Err(err(
                span(&raw.summary_interval),
                "summary_interval",
                "must be at least 1s".into(),
            ));
        }
        let timezone = match &raw.timezone {
            None => None,
            Some(z) => Some(z.get_ref().parse::<FixedOffset>().map_err(|_| {
                err(
                    z.span().start,
                    "timezone",
                    format!("'{}' is not an offset like +01:00", z.get_ref()),
                )
            })?),
        };
        let burst = count(&raw.burst, "burst", 8, 10_000)?;
        let night = match &raw.night {
            None => Night {
                window: Window {
                    start: time(&None, "night.start", "22:00")?,
                    end: time(&None, "night.end", "06:00")?,
                },
                pause: Duration::from_secs(30),
                burst: 1,
                weights: None,
                duty: None,
            },
            Some(n) => {
                let n = n.get_ref();
                Night {
                    window: Window {
                        start: time(&n.start, "night.start", "22:00")?,
                        end: time(&n.end, "night.end", "06:00")?,
                    },
                    pause: duration(&n.pause, "night.pause", Some(Duration::from_secs(30)))?
                        .unwrap_or_default(),
                    burst: count(&n.burst, "night.burst", 1, 10_000)?,
                    weights: weights(&n.weights, "night.weights")?,
                    duty: match &n.duty {
                        Some(d) if !(*d.get_ref() > 0.0 && *d.get_ref() <= 1.0) => {
                            return Err(err(
                                d.span().start,
                                "night.duty",
                                format!(
                                    "expected a share of the time above 0 and at most 1, found {}",
                                    d.get_ref()
                                ),
                            ));
                        }
                        Some(d) => Some(*d.get_ref()),
                        None => None,
                    },
                }
            }
        };
        let until = match &raw.until {
            None => None,
            Some(_) => Some(time(&raw.until, "until", "")?),
        };
        Ok(Soak {
            name,
            dir: PathBuf::from(raw.dir.as_ref().map_or("soak", |d| d.get_ref().as_str())),
            duration: duration(&raw.duration, "duration", None)?,
            until,
            calls: match &raw.calls {
                None => None,
                Some(n) if *n.get_ref() >= 1 => Some(*n.get_ref() as u64),
                Some(n) => {
                    return Err(err(
                        n.span().start,
                        "calls",
                        format!("{} calls: give at least 1", n.get_ref()),
                    ));
                }
            },
            summary_interval,
            rotate_every,
            segment_calls: count(&raw.segment_calls, "segment_calls", 10, 10_000)?,
            pause: duration(&raw.pause, "pause", Some(Duration::from_secs(2)))?.unwrap_or_default(),
            burst,
            seed: raw.seed.as_ref().map_or(1, |s| *s.get_ref() as u64),
            context_length: count(&raw.context_length, "context_length", 8192, 10_000_000)?,
            timezone,
            failover_url: raw
                .failover_url
                .as_ref()
                .map_or("http://127.0.0.1:9/v1".into(), |u| u.get_ref().clone()),
            weights: weights(&raw.weights, "weights")?.unwrap_or_default(),
            night,
        })
    }
}

fn parse_hhmm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M").ok()
}

/// A weights table: scenario names → non-negative weights; scenarios not named keep the seed's
/// default weight.
fn parse_weights(w: &BTreeMap<String, f64>) -> Result<Weights, String> {
    let mut out = Weights::default();
    for (k, v) in w {
        let Some(s) = Scenario::parse(k) else {
            let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
            return Err(format!("'{k}' is not a scenario: use {}", names.join(", ")));
        };
        if !v.is_finite() || *v < 0.0 {
            return Err(format!("{k} = {v}: a weight is a number ≥ 0"));
        }
        out.0[s as usize] = *v;
    }
    if out.total() <= 0.0 {
        return Err("at least one scenario needs a weight above 0".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Soak, SoakError> {
        Soak::parse(text, "soak.toml")
    }

    #[test]
    fn a_config_without_soak_gets_the_seeds_defaults() {
        let s = parse("suite = \"x\"\n").unwrap();
        assert_eq!(s.rotate_every, (5, 10));
        assert_eq!(s.weights, Weights::default());
        assert_eq!(s.summary_interval, Duration::from_secs(300));
        assert_eq!(s.night.window.start, parse_hhmm("22:00").unwrap());
        assert_eq!(s.dir, PathBuf::from("soak"));
    }

    #[test]
    fn every_setting_is_read() {
        let s = parse(
            r#"
[soak]
name = "overnight"
duration = "4h"
until = "07:00"
summary_interval = "10s"
rotate_every = [3, 4]
pause = "500ms"
burst = 4
timezone = "+09:00"
weights = { tool_calling = 5.0, large_context = 0 }
[soak.night]
start = "23:00"
end = "05:30"
pause = "1m"
burst = 2
duty = 0.5
weights = { prompt_variety = 1 }
"#,
        )
        .unwrap();
        assert_eq!(s.duration, Some(Duration::from_secs(4 * 3600)));
        assert_eq!(s.until, parse_hhmm("07:00"));
        assert_eq!(s.rotate_every, (3, 4));
        assert_eq!(s.weights.0[Scenario::ToolCalling as usize], 5.0);
        assert_eq!(s.weights.0[Scenario::LargeContext as usize], 0.0);
        assert_eq!(s.night.pause, Duration::from_secs(60));
        assert_eq!(s.night.burst, 2);
        assert_eq!(s.night.duty, Some(0.5));
        assert_eq!(s.timezone.unwrap().local_minus_utc(), 9 * 3600);
        assert!(s.night.weights.is_some());
    }

    #[test]
    fn mistakes_name_the_line_and_field() {
        let e = parse("[soak]\nname = \"x\"\nweights = { juggling = 1.0 }\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "weights"));
        assert!(e.message.contains("'juggling' is not a scenario"), "{e}");
        let e = parse("[soak]\n\nrotate_every = [9, 2]\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "rotate_every"));
        let e = parse("[soak]\nduration = \"forever\"\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "duration"));
        let e = parse("[soak.night]\nstart = \"10pm\"\n").unwrap_err();
        assert_eq!(e.field, "night.start");
        assert!(
            e.to_string().starts_with("soak.toml:2: soak.night.start:"),
            "{e}"
        );
        let e = parse("[soak]\npauses = \"1s\"\n").unwrap_err();
        assert!(e.message.contains("unknown field `pauses`"), "{e}");
    }
}
