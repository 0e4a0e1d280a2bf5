//! The two sides of a comparison (`--compare A B`): two targets or two time windows, and the
//! raw values sampled for each. Also the time grammar the CLI shares (`parse_time`).

use chrono::{DateTime, Utc};

use crate::dist::Rate;
use crate::row::Row;

/// Two sides of a comparison: raw values for exactly two groups, capped by reservoir sampling.
#[derive(Debug, Clone, Default)]
pub struct SideSample {
    pub calls: Rate,
    pub latency: Vec<f64>,
    pub ttft: Vec<f64>,
    pub output_speed: Vec<f64>,
    seen: u64,
    pub(crate) rng: u64,
}

/// Values kept per side of a comparison; beyond it, a uniform reservoir.
pub const SIDE_CAP: usize = 100_000;

impl SideSample {
    pub(crate) fn add(&mut self, r: &Row<'_>) {
        self.calls.add(Some(r.success));
        if !r.success {
            return;
        }
        self.seen += 1;
        let slot = if self.latency.len() < SIDE_CAP {
            None
        } else {
            // xorshift: a cheap, deterministic reservoir draw.
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let j = self.rng % self.seen;
            if (j as usize) < SIDE_CAP {
                Some(j as usize)
            } else {
                return;
            }
        };
        let put = |v: &mut Vec<f64>, x: Option<f64>| {
            let x = x.unwrap_or(f64::NAN);
            match slot {
                None => v.push(x),
                Some(i) => v[i] = x,
            }
        };
        put(&mut self.latency, Some(r.latency_sec));
        put(&mut self.ttft, r.ttft_sec);
        put(&mut self.output_speed, r.output_speed_tps);
    }

    pub(crate) fn merge(&mut self, o: &SideSample) {
        self.calls.merge(&o.calls);
        for (a, b) in [
            (&mut self.latency, &o.latency),
            (&mut self.ttft, &o.ttft),
            (&mut self.output_speed, &o.output_speed),
        ] {
            let room = SIDE_CAP.saturating_sub(a.len());
            a.extend(b.iter().take(room));
        }
        self.seen += o.seen;
    }

    /// The kept values of one metric, without the calls that did not report it.
    pub fn values(v: &[f64]) -> Vec<f64> {
        v.iter().copied().filter(|x| !x.is_nan()).collect()
    }
}

/// Which records go to which side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Side {
    Target(String),
    Window {
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
}

impl Side {
    /// `NAME` (a target) or `START..END` (RFC 3339 times or dates, END exclusive).
    pub fn parse(s: &str) -> Result<Side, String> {
        let Some((a, b)) = s.split_once("..") else {
            return Ok(Side::Target(s.to_string()));
        };
        Ok(Side::Window {
            since: parse_time(a)?,
            until: parse_time(b)?,
        })
    }

    pub fn label(&self) -> String {
        match self {
            Side::Target(t) => t.clone(),
            Side::Window { since, until } => format!(
                "{}..{}",
                since.format("%Y-%m-%dT%H:%MZ"),
                until.format("%Y-%m-%dT%H:%MZ")
            ),
        }
    }

    pub(crate) fn takes(&self, target: &str, at: DateTime<Utc>) -> bool {
        match self {
            Side::Target(t) => t == target,
            Side::Window { since, until } => *since <= at && at < *until,
        }
    }
}

/// Parses an RFC 3339 time or a `YYYY-MM-DD` date (midnight UTC).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| format!("'{s}' is neither an RFC 3339 time nor a YYYY-MM-DD date"))
}
