//! Load against offered rate: each open-loop run of a target (records with `scheduled_at`) is a
//! point whose offered rate is read off its send schedule, with the latency, TTFT, achieved
//! rate and goodput it got. A rate sweep (`--profile sweep`) or a few runs at different rates
//! make a curve: where latency turns up and goodput stops growing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::dist::{Dist, Rate};
use crate::row::Row;
use crate::side::parse_time;

/// (target, run id) → that run's open-loop calls.
pub type RunLoads = BTreeMap<(String, String), RunLoad>;

/// One target's open-loop calls in one run.
#[derive(Debug, Clone)]
pub struct RunLoad {
    /// The first and last due times of the run's calls, and how many there were.
    scheduled: Option<(DateTime<Utc>, DateTime<Utc>)>,
    calls: u64,
    /// From the first send to the last answer.
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ok: u64,
    slo: Rate,
    latency: Dist,
    ttft: Dist,
}

impl Default for RunLoad {
    fn default() -> Self {
        RunLoad {
            scheduled: None,
            calls: 0,
            span: None,
            ok: 0,
            slo: Rate::default(),
            latency: Dist::seconds(),
            ttft: Dist::seconds(),
        }
    }
}

impl RunLoad {
    /// Folds in one record sent at `at`; records with no `scheduled_at` (closed loops) are
    /// not folded (the caller skips them).
    pub fn add(&mut self, r: &Row<'_>, at: DateTime<Utc>, due: DateTime<Utc>) {
        self.calls += 1;
        self.scheduled = Some(match self.scheduled {
            Some((a, b)) => (a.min(due), b.max(due)),
            None => (due, due),
        });
        let end = at + chrono::Duration::microseconds((r.latency_sec * 1e6) as i64);
        self.span = Some(match self.span {
            Some((a, b)) => (a.min(at), b.max(end)),
            None => (at, end),
        });
        self.slo.add(r.slo_met);
        if r.success {
            self.ok += 1;
            self.latency.add(r.latency_sec);
            if let Some(t) = r.ttft_sec {
                self.ttft.add(t);
            }
        }
    }
}

impl RunLoad {
    /// The same run read by two workers (its files split between them).
    pub fn merge(&mut self, o: &RunLoad) {
        let widen = |a: Option<(DateTime<Utc>, DateTime<Utc>)>,
                     b: Option<(DateTime<Utc>, DateTime<Utc>)>| match (a, b) {
            (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
            (x, None) | (None, x) => x,
        };
        self.scheduled = widen(self.scheduled, o.scheduled);
        self.span = widen(self.span, o.span);
        self.calls += o.calls;
        self.ok += o.ok;
        self.slo.merge(&o.slo);
        self.latency.merge(&o.latency);
        self.ttft.merge(&o.ttft);
    }
}

/// Folds `r` into the per-run load figures when it was sent on a schedule.
pub fn fold(loads: &mut RunLoads, r: &Row<'_>, at: DateTime<Utc>) {
    let Some(due) = r.scheduled_at.as_deref().and_then(|s| parse_time(s).ok()) else {
        return;
    };
    let key = (r.target.to_string(), r.run_id.to_string());
    loads.entry(key).or_default().add(r, at, due);
}

/// One run of one target, as a point on its rate curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatePoint {
    pub run_id: String,
    /// Calls per second the schedule asked for; null when every call was due at once (the
    /// `throughput` profile).
    pub offered_rps: Option<f64>,
    /// Calls answered per second, first send to last answer.
    pub achieved_rps: Option<f64>,
    pub calls: u64,
    pub success: f64,
    pub latency_p50_sec: Option<f64>,
    pub latency_p99_sec: Option<f64>,
    pub ttft_p50_sec: Option<f64>,
    /// With an SLO: the share of calls that met it, and those calls per second.
    pub slo_attainment: Option<f64>,
    pub goodput_rps: Option<f64>,
}

/// A target's points, by offered rate (the throughput run last).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateCurve {
    pub target: String,
    pub points: Vec<RatePoint>,
}

/// The curve of every target with at least two open-loop runs at a known rate.
pub fn curves(loads: &RunLoads) -> Vec<RateCurve> {
    let mut out: Vec<RateCurve> = Vec::new();
    for ((target, run_id), l) in loads {
        let secs = |s: Option<(DateTime<Utc>, DateTime<Utc>)>| {
            s.map(|(a, b)| (b - a).num_microseconds().unwrap_or(0) as f64 / 1e6)
        };
        let offered = secs(l.scheduled)
            .filter(|s| *s > 0.0 && l.calls > 1)
            .map(|s| (l.calls - 1) as f64 / s);
        let span = secs(l.span).filter(|s| *s > 0.0);
        let point = RatePoint {
            run_id: run_id.clone(),
            offered_rps: offered,
            achieved_rps: span.map(|s| l.ok as f64 / s),
            calls: l.calls,
            success: l.ok as f64 / l.calls.max(1) as f64,
            latency_p50_sec: l.latency.hist_quantile(0.5),
            latency_p99_sec: l.latency.hist_quantile(0.99),
            ttft_p50_sec: l.ttft.hist_quantile(0.5),
            slo_attainment: (l.slo.n > 0).then(|| l.slo.ok as f64 / l.slo.n as f64),
            goodput_rps: span.filter(|_| l.slo.n > 0).map(|s| l.slo.ok as f64 / s),
        };
        match out.last_mut() {
            Some(c) if &c.target == target => c.points.push(point),
            _ => out.push(RateCurve {
                target: target.clone(),
                points: vec![point],
            }),
        }
    }
    out.retain(|c| c.points.iter().filter(|p| p.offered_rps.is_some()).count() >= 2);
    for c in &mut out {
        c.points.sort_by(|a, b| {
            let key = |p: &RatePoint| p.offered_rps.unwrap_or(f64::INFINITY);
            key(a).total_cmp(&key(b))
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(run: &str, due: &str, at: &str, latency: f64, met: bool) -> String {
        format!(
            r#"{{"timestamp":"{at}","industry":"x","llm_provider":"p","llm_model":"m","latency_sec":{latency},"throughput_tps":null,"success":true,"coverage_score":null,"prompt_tokens":1,"response_tokens":1,"question_id":"q","target":"t","task":"qa","ttft_sec":0.1,"output_speed_tps":null,"grounding_score":null,"origin":"o","run_id":"{run}","scheduled_at":"{due}","slo_met":{met}}}"#
        )
    }

    #[test]
    fn each_open_loop_run_is_a_point_at_the_rate_its_schedule_asked() {
        let mut loads = RunLoads::new();
        let mut lines = Vec::new();
        // Run a: 5 calls due 1 s apart (1/s), each 0.5 s, all meeting the SLO.
        for k in 0..5 {
            let t = format!("2026-11-27T10:00:0{k}Z");
            lines.push(row("a", &t, &t, 0.5, true));
        }
        // Run b: 5 calls due 0.2 s apart (5/s), each 2 s, two meeting it.
        for k in 0..5 {
            let t = format!("2026-11-27T11:00:00.{:03}Z", k * 200);
            lines.push(row("b", &t, &t, 2.0, k < 2));
        }
        // A closed-loop run: no schedule, no point.
        lines.push(
            row("c", "", "2026-11-27T12:00:00Z", 1.0, true).replace(r#","scheduled_at":"""#, ""),
        );
        for l in &lines {
            let r: Row<'_> = serde_json::from_str(l).unwrap();
            let at = parse_time(&r.timestamp).unwrap();
            fold(&mut loads, &r, at);
        }
        let c = curves(&loads);
        assert_eq!(c.len(), 1);
        let p = &c[0].points;
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].run_id, "a");
        assert!((p[0].offered_rps.unwrap() - 1.0).abs() < 1e-9);
        assert!((p[1].offered_rps.unwrap() - 5.0).abs() < 1e-9);
        // b: 5 answers from 0 s to 0.8 s + 2 s = 2.8 s; 2 met the SLO.
        assert!((p[1].achieved_rps.unwrap() - 5.0 / 2.8).abs() < 1e-9);
        assert!((p[1].goodput_rps.unwrap() - 2.0 / 2.8).abs() < 1e-9);
        assert_eq!(p[1].slo_attainment, Some(0.4));
        assert!((p[1].latency_p50_sec.unwrap() - 2.0).abs() < 0.05);
    }
}
