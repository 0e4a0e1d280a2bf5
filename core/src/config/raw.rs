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
    /// The questions: `builtin:NAME` (rag-retail-finance, capabilities, reasoning, …) or a suite
    /// file, relative to this file. Default `builtin:rag-retail-finance`.
    pub(crate) suite: Option<Spanned<String>>,
    /// Each question is asked this many times per target (default 1).
    pub(crate) repetitions: Option<Spanned<i64>>,
    /// Calls in flight at once, over all targets (default 8).
    pub(crate) concurrency: Option<Spanned<i64>>,
    /// Where records go: a directory (relative to the working directory), `s3://bucket/prefix` or
    /// `gs://bucket/prefix` (default `results`).
    pub(crate) output: Option<Spanned<String>>,
    /// `false`: records keep only the answer's `answer_sha256` and length, not its text (default
    /// `true`).
    pub(crate) keep_answers: Option<bool>,
    /// The default per-call time limit, seconds, for targets that set none (default 120).
    pub(crate) timeout_sec: Option<Spanned<f64>>,
    /// A price file shared by many configs, relative to this file: `[provider."model"]` tables
    /// of prices; a target's own `price` wins.
    pub(crate) prices: Option<Spanned<String>>,
    /// The most one run may spend, USD.
    pub(crate) max_cost_usd: Option<Spanned<f64>>,
    /// The targets, one `[[targets]]` table each (below); at least one.
    #[serde(default)]
    pub(crate) targets: Vec<Spanned<RawTarget>>,
    /// A schedule of runs, each slot run exactly once (below).
    pub(crate) campaign: Option<Spanned<RawCampaign>>,
    /// Settings only `llmpulse-agent` reads (below).
    pub(crate) agent: Option<Spanned<RawAgent>>,
    /// How calls go out over time, and the SLO they are held to (below).
    pub(crate) load: Option<Spanned<RawLoad>>,
    /// How `llmpulse watch` compares recent runs with their baseline (below).
    pub(crate) watch: Option<Spanned<super::watch::RawWatch>>,
    /// Where `llmpulse watch --notify` sends alerts, one `[[notify]]` table each (below).
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
    /// `synchronous`, `concurrent:N`, `throughput`, `constant:RATE`, `poisson:RATE[,burstiness=B]`
    /// (calls per second; open loops) or `sweep[:STEPS]`; `--profile` overrides it.
    pub(crate) profile: Option<Spanned<String>>,
    /// The seed of the Poisson/gamma send schedule (the same seed, the same schedule).
    pub(crate) seed: Option<Spanned<i64>>,
    /// Calls per target sent before the measured ones, not recorded.
    pub(crate) warmup: Option<Spanned<i64>>,
    /// Limits each call is held to: `ttft=500ms,tpot=50ms,e2e=10s` (any of them); records get
    /// `slo_met`.
    pub(crate) slo: Option<Spanned<String>>,
}

/// `[agent]`: settings only `llmpulse-agent` reads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    /// The agent host's id: records' `host_id` and origin `agent:ID` (default: the host name).
    pub(crate) id: Option<Spanned<String>>,
    /// Where `/metrics` and `/health` answer (default `127.0.0.1:9464`).
    pub(crate) listen: Option<Spanned<String>>,
    /// Telemetry samples per second, up to 100 (default 10).
    pub(crate) sample_hz: Option<Spanned<f64>>,
    /// Where runs are staged before they are published, relative to this file.
    pub(crate) spool: Option<Spanned<String>>,
    /// A local call costs its measured energy at this price (`cost_source = "energy"`).
    pub(crate) electricity_usd_per_kwh: Option<Spanned<f64>>,
    /// And its share of the machine's hour at this price.
    pub(crate) hardware_usd_per_hour: Option<Spanned<f64>>,
    /// Keep the model servers busy at most this share of wall time, in (0, 1] (`--duty` overrides
    /// it).
    pub(crate) duty: Option<Spanned<f64>>,
    /// No new call while the hottest CPU or GPU sensor is at least this hot, °C.
    pub(crate) max_temp_c: Option<Spanned<f64>>,
    /// Calls go again below this, °C (default 10 °C under `max_temp_c`).
    pub(crate) resume_temp_c: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCampaign {
    /// The campaign's name: records' `campaign`, and the claims' folder.
    pub(crate) name: Spanned<String>,
    /// When slot 0 starts (RFC 3339 date-time).
    pub(crate) start: Spanned<toml::Value>,
    /// When the campaign ends: no slot starts at or after it.
    pub(crate) end: Spanned<toml::Value>,
    /// Slots per `per`: `count = 14`, `per = "12h"` is 14 runs every 12 hours.
    pub(crate) count: Option<Spanned<i64>>,
    /// The period `count` slots share (`12h`, `1d`).
    pub(crate) per: Option<Spanned<String>>,
    /// Or one slot every this long (`51m`), instead of `count` and `per`.
    pub(crate) every: Option<Spanned<String>>,
    /// `true`: a trigger runs the oldest slot nobody claimed yet, not only the one due now.
    pub(crate) catch_up: Option<bool>,
    /// `true`: each origin (`lambda:eu-west-1`, `cloudrun:us-central1:…`, `agent:office`) claims
    /// and runs every slot once, so the same campaign deployed in several places measures from
    /// each; `false` (the default): one run per slot, whoever claims it first.
    pub(crate) per_origin: Option<bool>,
    /// A claim older than this whose run wrote no manifest is a dead run, which `--reclaim` may run
    /// again (default `1h`).
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
    /// Unique; letters, digits, `-`, `_`, `.`: the records' `target`.
    pub(crate) name: Spanned<String>,
    /// A preset (`groq`, `openrouter`, `openai`, `anthropic`, `ollama`, `vllm`, `llamacpp`,
    /// `openai-compatible`, `sim`…): its address, key variable and protocol.
    pub(crate) provider: Spanned<String>,
    /// The model the request names.
    pub(crate) model: Spanned<String>,
    /// The server's API base URL; overrides the preset's.
    pub(crate) base_url: Option<Spanned<String>>,
    /// The environment variable that holds the key; overrides the preset's. Keys are never in the
    /// file.
    pub(crate) api_key_env: Option<Spanned<String>>,
    /// `false`: one JSON response, no TTFT (default `true`).
    pub(crate) stream: Option<bool>,
    /// Ask for token usage in the stream (`stream_options.include_usage`).
    pub(crate) stream_usage: Option<bool>,
    /// Sampling temperature, 0 to 2.
    pub(crate) temperature: Option<Spanned<f64>>,
    /// The most tokens an answer may have.
    pub(crate) max_tokens: Option<Spanned<i64>>,
    /// Nucleus sampling, (0, 1].
    pub(crate) top_p: Option<Spanned<f64>>,
    /// The request's sampling seed, where the provider takes one.
    pub(crate) seed: Option<i64>,
    /// How a question's schema is sent: `json_schema` or `json_object`.
    pub(crate) json_mode: Option<JsonMode>,
    /// `off`: cold prompts, no reuse of the server's prefix cache (a unique prefix per call).
    pub(crate) prompt_cache: Option<super::PromptCache>,
    /// `off` (HTTP/1.1 only, the default), `auto` (HTTP/2 where an https server offers it) or
    /// `on` (HTTP/2 only, plain http included): concurrent calls then share a connection as
    /// streams, each stream timed by its own frames' packets, and open another past the
    /// server's limit of concurrent streams.
    pub(crate) http2: Option<super::Http2>,
    /// The API spoken, over the preset's: `openai` (chat completions), `anthropic` (Messages),
    /// `ollama` (native).
    pub(crate) protocol: Option<Protocol>,
    /// This target's per-call time limit, seconds.
    pub(crate) timeout_sec: Option<Spanned<f64>>,
    /// The most a new connection may take, seconds (default 10).
    pub(crate) connect_timeout_sec: Option<Spanned<f64>>,
    /// The most the first token may take after sending, seconds.
    pub(crate) first_token_timeout_sec: Option<Spanned<f64>>,
    /// The longest silence between chunks, seconds.
    pub(crate) idle_timeout_sec: Option<Spanned<f64>>,
    /// Requests per call at most; 1 = no retry (default 3).
    pub(crate) max_attempts: Option<Spanned<i64>>,
    /// The error kinds retried (default `rate_limited`, `http_5xx`, `connect`, `stream_error`).
    pub(crate) retry_on: Option<Vec<Spanned<String>>>,
    /// A longer `Retry-After` ends the retries, seconds (default 60).
    pub(crate) retry_max_wait_sec: Option<Spanned<f64>>,
    /// Requests per minute, evenly paced.
    pub(crate) rpm: Option<Spanned<i64>>,
    /// Tokens per minute (the prompt's estimate plus `max_tokens` per call).
    pub(crate) tpm: Option<Spanned<i64>>,
    /// This target's calls in flight at most.
    pub(crate) max_concurrency: Option<Spanned<i64>>,
    /// The most of a response read, bytes (default 4 MiB); past it the call is `answer_too_large`
    /// with the first part kept.
    pub(crate) max_answer_bytes: Option<Spanned<i64>>,
    /// Where times are taken: `kernel` (the default for HTTP/1.1 targets on Linux, http and
    /// https alike: TLS runs over llmpulse's own socket), `packet` (each TCP segment's own
    /// arrival from a packet capture, exact however busy the client; Linux, root or
    /// `CAP_NET_RAW`, else `kernel` with a warning), `socket` or `client` (records'
    /// `clock_source`).
    pub(crate) clock: Option<Spanned<String>>,
    /// A PEM file of roots trusted besides the system's, for an https target behind a private
    /// CA (a corporate gateway); relative to the config file.
    pub(crate) ca_file: Option<Spanned<String>>,
    /// DNS servers (`"10.0.0.2"`, `"1.1.1.1:53"`, `"[2606:4700::1111]:53"`) asked for the
    /// target's host through llmpulse's own resolver, its answers cached for the run as their
    /// TTL says; without it the system resolver (getaddrinfo) is asked. Either way `dns_sec`
    /// is the lookup's time.
    pub(crate) dns_servers: Option<Spanned<Vec<Spanned<String>>>>,
    /// The target that answers when this one fails after its retries (records link them with
    /// `failover_from`/`failover_to`).
    pub(crate) fallback: Option<Spanned<String>>,
    /// `true`: asked only as another target's fallback.
    pub(crate) fallback_only: Option<bool>,
    /// Extra request headers; values may use `${VAR}`, and never appear in records or logs.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, Spanned<String>>,
    /// Fields merged into the request body (`{ repetition_penalty = 1.1 }`).
    pub(crate) extra: Option<Spanned<toml::Table>>,
    /// For `provider = "sim"`: the simulator's settings (every setting of `llmpulse sim`:
    /// `ttft_ms`, `itl_ms`, faults…).
    pub(crate) sim: Option<Spanned<SimProfile>>,
    /// USD per million tokens: `input_per_mtok`, `output_per_mtok`, optional
    /// `cached_input_per_mtok`, `reasoning_per_mtok`, `per_call`.
    pub(crate) price: Option<Spanned<crate::cost::Price>>,
}
