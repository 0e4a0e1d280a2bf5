//! The model profile database: one profile per model with the seed's fields (tests run,
//! successes, response time, tool calls explicit and implicit, size, context, scenarios and
//! prompt categories) plus memory, speed, energy and load time, folded from records and merged
//! across the soaks of a host.

use std::collections::{BTreeMap, BTreeSet};

use llmpulse_core::record::Record;
use serde::{Deserialize, Serialize};

use super::scenario::Scenario;
use super::stats::{Avg, FAILOVER_PROBE, never_sent, round4, scenario_of};

/// Successes out of calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Count {
    pub count: u64,
    pub success: u64,
}

impl Count {
    fn add(&mut self, ok: bool) {
        self.count += 1;
        self.success += u64::from(ok);
    }
    fn merge(&mut self, o: &Count) {
        self.count += o.count;
        self.success += o.success;
    }
    pub fn rate(&self) -> Option<f64> {
        (self.count > 0).then(|| self.success as f64 / self.count as f64)
    }
}

/// What is known of one model, as the seed's `model_profiles.json` kept it, plus memory, speed
/// and energy from the agent's telemetry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelProfile {
    pub model_id: String,
    pub provider: String,
    pub tests_run: u64,
    pub successes: u64,
    pub response_time: Avg,
    pub tool_calls_explicit: Count,
    pub tool_calls_implicit: Count,
    /// How the tool calls were written: `native`, `hermes`, `fenced_json`, `json`,
    /// `call_syntax` → calls.
    pub tool_call_formats: BTreeMap<String, u64>,
    pub estimated_size_gb: Option<f64>,
    pub context_length: Option<u32>,
    pub scenarios_tested: BTreeSet<String>,
    /// Scenario → successes out of calls: the capability matrix's cells.
    pub scenario_results: BTreeMap<String, Count>,
    pub prompt_categories: BTreeMap<String, Count>,
    pub memory_mb: Avg,
    pub output_tps: Avg,
    pub energy_per_token_j: Avg,
    pub load_time_sec: Avg,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

impl ModelProfile {
    pub fn avg_response_time(&self) -> Option<f64> {
        self.response_time.value()
    }

    pub fn tool_call_success_rate(&self) -> Option<f64> {
        let mut all = self.tool_calls_explicit;
        all.merge(&self.tool_calls_implicit);
        all.rate()
    }

    /// The profile as stored: the seed's field names, computed figures included.
    pub fn view(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "avg_response_time".into(),
                serde_json::json!(self.avg_response_time().map(round4)),
            );
            o.insert(
                "success_rate".into(),
                serde_json::json!(
                    (self.tests_run > 0)
                        .then(|| round4(self.successes as f64 / self.tests_run as f64))
                ),
            );
            o.insert(
                "tool_call_success_rate".into(),
                serde_json::json!(self.tool_call_success_rate().map(round4)),
            );
        }
        v
    }

    fn merge(&mut self, o: &ModelProfile) {
        self.tests_run += o.tests_run;
        self.successes += o.successes;
        self.response_time.merge(&o.response_time);
        self.tool_calls_explicit.merge(&o.tool_calls_explicit);
        self.tool_calls_implicit.merge(&o.tool_calls_implicit);
        for (k, n) in &o.tool_call_formats {
            *self.tool_call_formats.entry(k.clone()).or_default() += n;
        }
        self.estimated_size_gb = o.estimated_size_gb.or(self.estimated_size_gb);
        self.context_length = o.context_length.or(self.context_length);
        self.scenarios_tested
            .extend(o.scenarios_tested.iter().cloned());
        for (k, c) in &o.scenario_results {
            self.scenario_results.entry(k.clone()).or_default().merge(c);
        }
        for (k, c) in &o.prompt_categories {
            self.prompt_categories
                .entry(k.clone())
                .or_default()
                .merge(c);
        }
        self.memory_mb.merge(&o.memory_mb);
        self.output_tps.merge(&o.output_tps);
        self.energy_per_token_j.merge(&o.energy_per_token_j);
        self.load_time_sec.merge(&o.load_time_sec);
        self.first_seen = match (self.first_seen.take(), o.first_seen.clone()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_seen = self.last_seen.take().max(o.last_seen.clone());
    }
}

/// Model profiles by target name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profiles(pub BTreeMap<String, ModelProfile>);

/// What the soak knows of a model before any call: from discovery or the config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub model_id: String,
    pub provider: String,
    pub size_gb: Option<f64>,
    pub context_length: Option<u32>,
}

impl Profiles {
    /// Adds one record of target `target` (a failover probe is no model and is left out).
    pub fn add(&mut self, r: &Record, info: Option<&ModelInfo>) {
        if r.target == FAILOVER_PROBE || never_sent(r) {
            return;
        }
        let p = self.0.entry(r.target.clone()).or_default();
        if p.model_id.is_empty() {
            p.model_id = r.llm_model.clone();
            p.provider = r.llm_provider.clone();
        }
        if let Some(i) = info {
            p.estimated_size_gb = i.size_gb.or(p.estimated_size_gb);
            p.context_length = i.context_length.or(p.context_length);
        }
        p.tests_run += 1;
        p.successes += u64::from(r.success);
        if r.success {
            p.response_time.add(Some(r.latency_sec));
            p.output_tps.add(r.output_speed_tps);
        }
        p.memory_mb.add(r.memory_mb);
        p.energy_per_token_j.add(r.energy_per_token_j);
        let scenario = scenario_of(&r.question_id);
        if let Some(s) = scenario {
            p.scenarios_tested.insert(s.name().to_string());
            p.scenario_results
                .entry(s.name().to_string())
                .or_default()
                .add(r.success);
        }
        if let Some(f) = &r.tool_call_format {
            *p.tool_call_formats.entry(f.clone()).or_default() += 1;
        }
        match r.industry.as_str() {
            "tools_explicit" => p.tool_calls_explicit.add(r.tool_call_valid == Some(true)),
            "tools_implicit" => p.tool_calls_implicit.add(r.tool_call_valid == Some(true)),
            _ => {}
        }
        if matches!(
            scenario,
            Some(Scenario::PromptVariety | Scenario::ConcurrentLoad | Scenario::Streaming)
        ) {
            p.prompt_categories
                .entry(r.industry.clone())
                .or_default()
                .add(r.success);
        }
        p.first_seen = p.first_seen.take().or_else(|| Some(r.timestamp.clone()));
        p.last_seen = Some(r.timestamp.clone());
    }

    /// A load of `target`'s model through its server's API took `secs`.
    pub fn loaded(&mut self, target: &str, info: &ModelInfo, secs: f64) {
        let p = self.0.entry(target.to_string()).or_default();
        if p.model_id.is_empty() {
            p.model_id = info.model_id.clone();
            p.provider = info.provider.clone();
        }
        p.load_time_sec.add(Some(secs));
    }

    /// `self` plus `other`, model by model (profiles from earlier soaks of the host).
    pub fn merged(&self, other: &Profiles) -> Profiles {
        let mut out = self.clone();
        for (k, p) in &other.0 {
            match out.0.get_mut(k) {
                Some(mine) => mine.merge(p),
                None => {
                    out.0.insert(k.clone(), p.clone());
                }
            }
        }
        out
    }

    /// The stored form: model → profile with the computed figures.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.0.iter().map(|(k, p)| (k.clone(), p.view())).collect())
    }

    /// Reads the stored form back (computed figures are ignored).
    pub fn from_json(bytes: &[u8]) -> Result<Profiles, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// No model seen yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
