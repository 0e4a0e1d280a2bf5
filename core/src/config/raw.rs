//! The config file as serde reads it: every value keeps its position (`Spanned`), so validation
//! can name the line of any bad value.

use std::collections::BTreeMap;

use llmpulse_sim::SimProfile;
use serde::Deserialize;
use toml::Spanned;

use crate::preset::{JsonMode, Protocol};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) suite: Option<Spanned<String>>,
    pub(crate) repetitions: Option<Spanned<i64>>,
    pub(crate) concurrency: Option<Spanned<i64>>,
    pub(crate) output: Option<Spanned<String>>,
    pub(crate) keep_answers: Option<bool>,
    pub(crate) timeout_sec: Option<Spanned<f64>>,
    /// A price file shared by many configs: `[provider."model"]` tables of [`crate::cost::Price`].
    pub(crate) prices: Option<Spanned<String>>,
    /// The most one run may spend, USD.
    pub(crate) max_cost_usd: Option<Spanned<f64>>,
    #[serde(default)]
    pub(crate) targets: Vec<Spanned<RawTarget>>,
    pub(crate) campaign: Option<Spanned<RawCampaign>>,
    pub(crate) agent: Option<Spanned<RawAgent>>,
    pub(crate) load: Option<Spanned<RawLoad>>,
    pub(crate) watch: Option<Spanned<super::watch::RawWatch>>,
    #[serde(default)]
    pub(crate) notify: Vec<Spanned<super::watch::RawNotify>>,
    /// `[sweep]`: read by `llmpulse-agent sweep`, which checks it; other commands ignore it.
    #[allow(dead_code)]
    pub(crate) sweep: Option<toml::Value>,
    /// `[soak]`: read by `llmpulse-agent soak`, which checks it; other commands ignore it.
    #[allow(dead_code)]
    pub(crate) soak: Option<toml::Value>,
    /// `[generate]`: read by `llmpulse generate`, which checks it; other commands ignore it.
    #[allow(dead_code)]
    pub(crate) generate: Option<toml::Value>,
}

/// `[load]`: how calls go out over time, and the SLO calls are held to.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLoad {
    pub(crate) profile: Option<Spanned<String>>,
    pub(crate) seed: Option<Spanned<i64>>,
    pub(crate) warmup: Option<Spanned<i64>>,
    pub(crate) slo: Option<Spanned<String>>,
}

/// `[agent]`: settings only `llmpulse-agent` reads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    pub(crate) id: Option<Spanned<String>>,
    pub(crate) listen: Option<Spanned<String>>,
    pub(crate) sample_hz: Option<Spanned<f64>>,
    pub(crate) spool: Option<Spanned<String>>,
    pub(crate) electricity_usd_per_kwh: Option<Spanned<f64>>,
    pub(crate) hardware_usd_per_hour: Option<Spanned<f64>>,
    pub(crate) duty: Option<Spanned<f64>>,
    pub(crate) max_temp_c: Option<Spanned<f64>>,
    pub(crate) resume_temp_c: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCampaign {
    pub(crate) name: Spanned<String>,
    pub(crate) start: Spanned<toml::Value>,
    pub(crate) end: Spanned<toml::Value>,
    pub(crate) count: Option<Spanned<i64>>,
    pub(crate) per: Option<Spanned<String>>,
    pub(crate) every: Option<Spanned<String>>,
    pub(crate) catch_up: Option<bool>,
    pub(crate) claim_timeout: Option<Spanned<String>>,
    /// Watch the history after each slot (and send its alerts).
    pub(crate) watch_after_run: Option<bool>,
    /// Publish the report into the store's `dashboard/` after each slot.
    pub(crate) publish_report: Option<bool>,
    /// The most the whole campaign may spend, USD, shared by every shard, slot and machine.
    pub(crate) budget_usd: Option<Spanned<f64>>,
    /// The most it may spend per UTC day.
    pub(crate) daily_budget_usd: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub(crate) name: Spanned<String>,
    pub(crate) provider: Spanned<String>,
    pub(crate) model: Spanned<String>,
    pub(crate) base_url: Option<Spanned<String>>,
    pub(crate) api_key_env: Option<Spanned<String>>,
    pub(crate) stream: Option<bool>,
    pub(crate) stream_usage: Option<bool>,
    pub(crate) temperature: Option<Spanned<f64>>,
    pub(crate) max_tokens: Option<Spanned<i64>>,
    pub(crate) top_p: Option<Spanned<f64>>,
    pub(crate) seed: Option<i64>,
    pub(crate) json_mode: Option<JsonMode>,
    pub(crate) prompt_cache: Option<super::PromptCache>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) timeout_sec: Option<Spanned<f64>>,
    pub(crate) connect_timeout_sec: Option<Spanned<f64>>,
    pub(crate) first_token_timeout_sec: Option<Spanned<f64>>,
    pub(crate) idle_timeout_sec: Option<Spanned<f64>>,
    pub(crate) max_attempts: Option<Spanned<i64>>,
    pub(crate) retry_on: Option<Vec<Spanned<String>>>,
    pub(crate) retry_max_wait_sec: Option<Spanned<f64>>,
    pub(crate) rpm: Option<Spanned<i64>>,
    pub(crate) tpm: Option<Spanned<i64>>,
    pub(crate) max_concurrency: Option<Spanned<i64>>,
    pub(crate) max_answer_bytes: Option<Spanned<i64>>,
    pub(crate) clock: Option<Spanned<String>>,
    pub(crate) fallback: Option<Spanned<String>>,
    pub(crate) fallback_only: Option<bool>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, Spanned<String>>,
    pub(crate) extra: Option<Spanned<toml::Table>>,
    pub(crate) sim: Option<Spanned<SimProfile>>,
    pub(crate) price: Option<Spanned<crate::cost::Price>>,
}
