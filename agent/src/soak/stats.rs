//! What a soak knows about itself while it runs: the live summary (`test_summary.json`) and the
//! model profile database (`profiles.json`), both folded from records, so a restarted soak
//! rebuilds them from what it stored. Every map is keyed by model, scenario, category, error kind
//! or hour, so the state stays small for any length of soak.

use std::collections::BTreeMap;
use std::path::Path;

use crate::metrics::{Exposition, label};
use chrono::{DateTime, Utc};
use llmpulse_core::record::Record;
use serde::{Deserialize, Serialize};

use super::heat::ModelHeat;
pub use super::profiles::{Count, ModelInfo, ModelProfile, Profiles};
use super::scenario::{Scenario, index_of};

/// The name of the target a provider-failover call is first sent to (it always fails).
pub const FAILOVER_PROBE: &str = "failover-probe";

/// Successes out of calls, plus sums for means.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub calls: u64,
    pub successes: u64,
    /// Sums over successful calls.
    pub latency_sum: f64,
    pub ttft_sum: f64,
    pub ttft_n: u64,
    pub output_tps_sum: f64,
    pub output_tps_n: u64,
}

impl Tally {
    fn add(&mut self, r: &Record) {
        self.calls += 1;
        if r.success {
            self.successes += 1;
            self.latency_sum += r.latency_sec;
            if let Some(t) = r.ttft_sec {
                self.ttft_sum += t;
                self.ttft_n += 1;
            }
            if let Some(s) = r.output_speed_tps {
                self.output_tps_sum += s;
                self.output_tps_n += 1;
            }
        }
    }

    pub fn success_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.successes as f64 / self.calls as f64)
    }
    pub fn mean_latency(&self) -> Option<f64> {
        (self.successes > 0).then(|| self.latency_sum / self.successes as f64)
    }
    pub fn mean_ttft(&self) -> Option<f64> {
        (self.ttft_n > 0).then(|| self.ttft_sum / self.ttft_n as f64)
    }
    pub fn mean_output_tps(&self) -> Option<f64> {
        (self.output_tps_n > 0).then(|| self.output_tps_sum / self.output_tps_n as f64)
    }

    /// The figures a reader wants, computed.
    fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "calls": self.calls,
            "successes": self.successes,
            "success_rate": self.success_rate().map(round4),
            "avg_latency_sec": self.mean_latency().map(round4),
            "avg_ttft_sec": self.mean_ttft().map(round4),
            "avg_output_tps": self.mean_output_tps().map(round4),
        })
    }
}

/// A running mean that survives a restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Avg {
    pub sum: f64,
    pub n: u64,
}

impl Avg {
    pub(super) fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.sum += v;
            self.n += 1;
        }
    }
    pub(super) fn merge(&mut self, o: &Avg) {
        self.sum += o.sum;
        self.n += o.n;
    }
    pub fn value(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// One hour of the soak (host hardware as the telemetry saw it during calls).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hour {
    pub calls: u64,
    pub successes: u64,
    pub memory_mb: Avg,
    pub power_w: Avg,
    pub gpu_temp_c: Avg,
}

/// The last call seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latest {
    pub timestamp: String,
    pub target: String,
    pub scenario: Option<String>,
    pub success: bool,
    pub latency_sec: f64,
    pub ttft_sec: Option<f64>,
    pub output_speed_tps: Option<f64>,
    pub error_kind: Option<String>,
}

/// The soak's counters: the live summary's source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoakStats {
    pub all: Tally,
    pub by_model: BTreeMap<String, Tally>,
    pub by_scenario: BTreeMap<String, Tally>,
    /// error kind → calls, over every target (failover probes included).
    pub errors: BTreeMap<String, u64>,
    /// model → error kind → calls.
    pub errors_by_model: BTreeMap<String, BTreeMap<String, u64>>,
    /// Calls made in night mode.
    pub night_calls: u64,
    /// `YYYY-MM-DDTHH` (UTC) → the hour's figures; the oldest are dropped past a week.
    pub hours: BTreeMap<String, Hour>,
    pub latest: Option<Latest>,
    /// Times the soak moved to another model.
    pub rotations: u64,
    pub segments: u64,
    /// The agent's pacing over the segments so far: cooldowns (the temperature guard held new
    /// calls), their time, and the time calls waited for the duty cycle.
    #[serde(default)]
    pub cooldowns: u64,
    #[serde(default)]
    pub cooldown_sec: f64,
    #[serde(default)]
    pub duty_wait_sec: f64,
    /// Calls a sensor said were throttled.
    #[serde(default)]
    pub throttled_calls: u64,
    /// model → what heat did to its calls (models whose calls had a sensor reading).
    #[serde(default)]
    pub heat: BTreeMap<String, ModelHeat>,
}

/// A record of a call that was planned but never sent (the deadline or a stop came first).
pub(super) fn never_sent(r: &Record) -> bool {
    use llmpulse_core::error_kind::ErrorKind;
    matches!(
        r.error_kind,
        Some(ErrorKind::SkippedCancelled | ErrorKind::SkippedDeadline)
    )
}

/// Hours kept in `SoakStats::hours`.
const HOURS_KEPT: usize = 24 * 7;

/// The scenario of a soak record, from its question id (`c0000042-tool_calling-explicit`).
pub fn scenario_of(question_id: &str) -> Option<Scenario> {
    question_id.split('-').nth(1).and_then(Scenario::parse)
}

impl SoakStats {
    /// Adds one record (`night`: it was asked in night mode). A call the soak's end or a stop
    /// came before (`skipped_*`) was never sent: it says nothing of a model and counts only as
    /// an error kind.
    pub fn add(&mut self, r: &Record, night: bool) {
        if never_sent(r) {
            if let Some(k) = r.error_kind {
                *self.errors.entry(k.as_str().to_string()).or_default() += 1;
            }
            return;
        }
        let scenario = scenario_of(&r.question_id);
        self.all.add(r);
        if r.target != FAILOVER_PROBE {
            self.by_model.entry(r.target.clone()).or_default().add(r);
        }
        if let Some(s) = scenario {
            self.by_scenario
                .entry(s.name().to_string())
                .or_default()
                .add(r);
        }
        if let Some(k) = r.error_kind {
            let k = k.as_str().to_string();
            *self.errors.entry(k.clone()).or_default() += 1;
            *self
                .errors_by_model
                .entry(r.target.clone())
                .or_default()
                .entry(k)
                .or_default() += 1;
        }
        self.night_calls += u64::from(night);
        self.throttled_calls += u64::from(r.throttled == Some(true));
        let sensed = r.cpu_temp_c.is_some() || r.gpu_temp_c.is_some() || r.throttled.is_some();
        if sensed && r.target != FAILOVER_PROBE {
            self.heat.entry(r.target.clone()).or_default().add(r);
        }
        if let Some(hour) = r.timestamp.get(..13) {
            let h = self.hours.entry(hour.to_string()).or_default();
            h.calls += 1;
            h.successes += u64::from(r.success);
            h.memory_mb.add(r.memory_mb);
            h.power_w.add(r.power_w);
            h.gpu_temp_c.add(r.gpu_temp_c);
            while self.hours.len() > HOURS_KEPT {
                self.hours.pop_first();
            }
        }
        self.latest = Some(Latest {
            timestamp: r.timestamp.clone(),
            target: r.target.clone(),
            scenario: scenario.map(|s| s.name().to_string()),
            success: r.success,
            latency_sec: r.latency_sec,
            ttft_sec: r.ttft_sec,
            output_speed_tps: r.output_speed_tps,
            error_kind: r.error_kind.map(|k| k.as_str().to_string()),
        });
    }

    /// Adds what one segment's pacing did.
    pub fn add_pace(&mut self, p: llmpulse_core::pace::PaceReport) {
        self.cooldowns += p.cooldowns;
        self.cooldown_sec += p.cooldown_sec;
        self.duty_wait_sec += p.duty_wait_sec;
    }

    /// The live summary: what `test_summary.json` holds.
    pub fn summary(
        &self,
        name: &str,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
        night: bool,
        current_model: Option<&str>,
        rewrites: u64,
    ) -> serde_json::Value {
        let elapsed = (now - started_at).num_milliseconds() as f64 / 1e3;
        let map = |m: &BTreeMap<String, Tally>| -> serde_json::Map<String, serde_json::Value> {
            m.iter().map(|(k, v)| (k.clone(), v.view())).collect()
        };
        serde_json::json!({
            "soak": name,
            "started_at": started_at.to_rfc3339(),
            "written_at": now.to_rfc3339(),
            "rewrites": rewrites,
            "elapsed_sec": elapsed,
            "night_mode": night,
            "current_model": current_model,
            "calls": self.all.calls,
            "successes": self.all.successes,
            "success_rate": self.all.success_rate().map(round4),
            "calls_per_minute": (elapsed > 0.0).then(|| round4(self.all.calls as f64 * 60.0 / elapsed)),
            "night_calls": self.night_calls,
            "rotations": self.rotations,
            "segments": self.segments,
            "cooldowns": self.cooldowns,
            "cooldown_sec": round4(self.cooldown_sec),
            "duty_wait_sec": round4(self.duty_wait_sec),
            "throttled_calls": self.throttled_calls,
            "models": map(&self.by_model),
            "scenarios": map(&self.by_scenario),
            "errors": self.errors,
            "latest": self.latest,
        })
    }

    /// One line for a terminal.
    pub fn line(&self, elapsed_sec: f64, current_model: Option<&str>, night: bool) -> String {
        format!(
            "{:>6.0}s  {} calls  {:.1}% ok  model {}{}  errors {}",
            elapsed_sec,
            self.all.calls,
            self.all.success_rate().unwrap_or(0.0) * 100.0,
            current_model.unwrap_or("-"),
            if night { "  (night)" } else { "" },
            self.errors.values().sum::<u64>(),
        )
    }
}

impl SoakStats {
    /// The soak's counters, for the agent's `/metrics`.
    pub fn expose(&self, soak: &str, night: bool, page: &mut Exposition) {
        let one = |v: f64| vec![(vec![label("soak", soak)], v)];
        let by = |key: &str, m: &BTreeMap<String, Tally>, f: &dyn Fn(&Tally) -> Option<f64>| {
            m.iter()
                .filter_map(|(k, t)| f(t).map(|v| (vec![label("soak", soak), label(key, k)], v)))
                .collect::<Vec<_>>()
        };
        let calls = |t: &Tally| Some(t.calls as f64);
        let ok = |t: &Tally| Some(t.successes as f64);
        let latency = |t: &Tally| t.mean_latency();
        let speed = |t: &Tally| t.mean_output_tps();
        page.counter(
            "llmpulse_soak_calls",
            "Calls the soak made (records).",
            one(self.all.calls as f64),
        );
        page.counter(
            "llmpulse_soak_successes",
            "Successful calls.",
            one(self.all.successes as f64),
        );
        page.counter(
            "llmpulse_soak_night_calls",
            "Calls made in night mode.",
            one(self.night_calls as f64),
        );
        page.counter(
            "llmpulse_soak_rotations",
            "Moves to the next model.",
            one(self.rotations as f64),
        );
        page.counter(
            "llmpulse_soak_cooldowns",
            "Times the temperature guard held new calls.",
            one(self.cooldowns as f64),
        );
        page.counter(
            "llmpulse_soak_cooldown_seconds",
            "Time the temperature guard held new calls.",
            one(self.cooldown_sec),
        );
        page.counter(
            "llmpulse_soak_duty_wait_seconds",
            "Time calls waited for the duty cycle.",
            one(self.duty_wait_sec),
        );
        page.counter(
            "llmpulse_soak_throttled_calls",
            "Calls a sensor said were throttled.",
            one(self.throttled_calls as f64),
        );
        page.gauge(
            "llmpulse_soak_night_mode",
            "1 while night mode is on.",
            one(f64::from(u8::from(night))),
        );
        page.counter(
            "llmpulse_soak_model_calls",
            "Calls per model.",
            by("model", &self.by_model, &calls),
        );
        page.counter(
            "llmpulse_soak_model_successes",
            "Successful calls per model.",
            by("model", &self.by_model, &ok),
        );
        page.gauge(
            "llmpulse_soak_model_latency_avg_seconds",
            "Mean latency of successful calls per model.",
            by("model", &self.by_model, &latency),
        );
        page.gauge(
            "llmpulse_soak_model_output_speed_avg_tps",
            "Mean output speed per model.",
            by("model", &self.by_model, &speed),
        );
        page.counter(
            "llmpulse_soak_scenario_calls",
            "Calls per scenario.",
            by("scenario", &self.by_scenario, &calls),
        );
        page.counter(
            "llmpulse_soak_scenario_successes",
            "Successful calls per scenario.",
            by("scenario", &self.by_scenario, &ok),
        );
        page.counter(
            "llmpulse_soak_errors",
            "Failed calls by error kind.",
            self.errors
                .iter()
                .map(|(k, n)| (vec![label("soak", soak), label("kind", k)], *n as f64)),
        );
    }
}

pub(super) fn round4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new one, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// The call index of a soak record (None for a record that is not a soak call).
pub fn call_index(r: &Record) -> Option<u64> {
    index_of(&r.question_id)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A successful soak record of 20 tokens in 2 s (the other soak modules' tests build on it).
    pub(in crate::soak) fn record(
        target: &str,
        qid: &str,
        industry: &str,
        ok: bool,
        tool: Option<bool>,
    ) -> Record {
        let mut r: Record = serde_json::from_str(
            r#"{"timestamp": "2026-11-27T22:10:00.000Z", "industry": "", "question": "q?",
            "llm_provider": "sim", "llm_model": "m", "latency_sec": 2.0, "throughput_tps": 10.0,
            "success": true, "coverage_score": null, "prompt_tokens": 5, "response_tokens": 20,
            "run_id": "r", "campaign": null, "slot": null, "question_id": "", "target": "",
            "repetition": 0, "task": "t", "streamed": true, "ttfb_sec": 0.4, "ttft_sec": 0.5,
            "ttfat_sec": 0.5, "output_speed_tps": 12.0, "tpot_sec": 0.08, "chunk_count": 20,
            "chunk_gap_p50_sec": 0.08, "chunk_gap_p99_sec": 0.1, "chunk_gap_max_sec": 0.1,
            "token_source": "usage", "reasoning_tokens": null, "attempts": 1,
            "rate_limited_count": 0, "queue_wait_sec": 0.0, "retry_wait_sec": 0.0,
            "ratelimit_remaining_requests": null, "ratelimit_remaining_tokens": null,
            "failover_from": null, "failover_to": null, "cost_usd": null,
            "server_load_sec": null, "server_prefill_sec": null, "server_decode_tps": null,
            "error_kind": null, "error_message": null, "http_status": 200,
            "finish_reason": "stop", "grounding_score": null, "json_valid": null,
            "tool_calls": null, "tool_call_valid": null, "answer_chars": 1, "answer": null,
            "answer_sha256": "x", "provider_request_id": null, "temperature": null,
            "max_tokens": null, "origin": "o", "llmpulse_version": "0.1.0", "config_hash": "h"}"#,
        )
        .expect("a record");
        r.target = target.into();
        r.question_id = qid.into();
        r.industry = industry.into();
        r.success = ok;
        r.tool_call_valid = tool;
        if !ok {
            r.error_kind = Some(llmpulse_core::error_kind::ErrorKind::Connect);
        }
        r
    }

    #[test]
    fn profiles_keep_the_seeds_fields_and_merge_across_soaks() {
        let mut p = Profiles::default();
        let info = ModelInfo {
            model_id: "m".into(),
            provider: "sim".into(),
            size_gb: Some(4.1),
            context_length: Some(8192),
        };
        p.add(
            &record(
                "a",
                "c0000001-tool_calling-explicit",
                "tools_explicit",
                true,
                Some(true),
            ),
            Some(&info),
        );
        p.add(
            &record(
                "a",
                "c0000002-tool_calling-implicit",
                "tools_implicit",
                true,
                Some(false),
            ),
            None,
        );
        p.add(
            &record("a", "c0000003-prompt_variety-devops", "devops", false, None),
            None,
        );
        p.add(
            &record(
                FAILOVER_PROBE,
                "c0000004-provider_failover-devops",
                "devops",
                false,
                None,
            ),
            None,
        );
        let v = p.to_json();
        let a = &v["a"];
        assert_eq!(a["tests_run"], 3);
        assert_eq!(a["successes"], 2);
        assert_eq!(a["avg_response_time"], 2.0);
        assert_eq!(a["tool_call_success_rate"], 0.5);
        assert_eq!(a["tool_calls_explicit"]["success"], 1);
        assert_eq!(a["estimated_size_gb"], 4.1);
        assert_eq!(a["context_length"], 8192);
        assert_eq!(a["prompt_categories"]["devops"]["count"], 1);
        assert_eq!(a["prompt_categories"]["devops"]["success"], 0);
        assert!(v.get(FAILOVER_PROBE).is_none());
        let back = Profiles::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(back, p);
        let twice = p.merged(&back);
        assert_eq!(twice.0["a"].tests_run, 6);
        assert_eq!(twice.0["a"].tool_calls_implicit.count, 2);
    }

    #[test]
    fn the_summary_counts_by_model_scenario_and_error() {
        let mut s = SoakStats::default();
        s.add(
            &record("a", "c0000001-streaming-devops", "devops", true, None),
            false,
        );
        s.add(
            &record("b", "c0000002-streaming-devops", "devops", false, None),
            true,
        );
        let t0 = DateTime::parse_from_rfc3339("2026-11-27T22:00:00Z")
            .unwrap()
            .to_utc();
        let v = s.summary(
            "n",
            t0,
            t0 + chrono::TimeDelta::seconds(60),
            true,
            Some("b"),
            3,
        );
        assert_eq!(v["calls"], 2);
        assert_eq!(v["success_rate"], 0.5);
        assert_eq!(v["calls_per_minute"], 2.0);
        assert_eq!(v["scenarios"]["streaming"]["calls"], 2);
        assert_eq!(v["models"]["a"]["avg_latency_sec"], 2.0);
        assert_eq!(v["errors"]["connect"], 1);
        assert_eq!(v["night_calls"], 1);
        assert_eq!(v["latest"]["target"], "b");
        let mut exposition = crate::metrics::Exposition::default();
        s.expose("n", true, &mut exposition);
        let page = exposition.text();
        for line in [
            "llmpulse_soak_calls_total{soak=\"n\"} 2",
            "llmpulse_soak_night_mode{soak=\"n\"} 1",
            "llmpulse_soak_model_calls_total{soak=\"n\",model=\"a\"} 1",
            "llmpulse_soak_scenario_successes_total{soak=\"n\",scenario=\"streaming\"} 1",
            "llmpulse_soak_errors_total{soak=\"n\",kind=\"connect\"} 1",
        ] {
            assert!(page.contains(line), "{line} not in\n{page}");
        }
    }
}
