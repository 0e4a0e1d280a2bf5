//! The record: one row per (question, target, repetition), and its JSONL and CSV forms.
//!
//! The first eleven fields keep the names and meanings of the seed batch evaluator, so its data
//! and ours compare directly; the fields after them make a number trustworthy (see DESIGN.md).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Target;
use crate::error_kind::ErrorKind;
use crate::measure::Throughput;
pub use crate::provider::AttemptStats;
use crate::provider::CallOutcome;
use crate::suite::{Prompt, Question};
use crate::tokens::TokenSource;
use llmpulse_score as score;

mod counts;
mod csv_row;
mod files;
pub use counts::attempt_cost;
use counts::{TokenCounts, cost_of};
pub use csv_row::RowWriter;
pub use files::{read_jsonl, write_csv, write_csv_row, write_jsonl};

/// One measured call. Optional fields are `null` in JSON and empty in CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    // -- the seed's columns, in the seed's order --
    /// RFC 3339 UTC, when the request was sent.
    pub timestamp: String,
    /// The question's industry or category, from the suite.
    pub industry: String,
    /// The question as asked (the prompt's user text).
    pub question: String,
    /// The target's provider preset (`groq`, `openrouter`, `openai-compatible`, `sim`…).
    pub llm_provider: String,
    /// The model as the request named it.
    pub llm_model: String,
    /// Request sent → last byte of the answer (or of the failure).
    pub latency_sec: f64,
    /// `response_tokens / latency_sec`; `null` for a failed call.
    pub throughput_tps: Option<f64>,
    /// The call returned a complete answer.
    pub success: bool,
    /// Share of key facts found in the answer; `null` for a failed call.
    pub coverage_score: Option<f64>,
    /// Token counts; `response_tokens` includes reasoning tokens (see `token_source`).
    pub prompt_tokens: Option<u32>,
    pub response_tokens: Option<u32>,

    // -- what makes the numbers trustworthy --
    /// The run's id (`20261125T213424Z-9c5621`: its start, UTC, and a random suffix).
    pub run_id: String,
    /// The campaign's name; null outside a campaign.
    pub campaign: Option<String>,
    /// The campaign slot the run filled; null outside a campaign.
    pub slot: Option<u64>,
    /// The question's id in its suite.
    pub question_id: String,
    /// The target's name in the config.
    pub target: String,
    /// Which asking of the question on this target, from 0 (`repetitions`).
    pub repetition: u32,
    /// What the question measures (`rag`, `complex_reasoning`, `structured_output`, `tool_use`…).
    pub task: String,
    /// `judge` on a judge's call grading another call's answer (`llmpulse judge`); null for
    /// the calls a suite asks.
    #[serde(default)]
    pub role: Option<String>,
    /// Whether the answer was streamed.
    pub streamed: bool,
    /// Over HTTP: the connection set-up (name lookup, TCP, and TLS for https) when this call
    /// opened a new connection, seconds: `dns_sec` + `tcp_connect_sec` + `tls_handshake_sec`
    /// where those are timed apart. Part of `ttfb_sec`, `ttft_sec` and `latency_sec` with the
    /// `client` clock, not with `kernel` or `socket` (those run from the request's first byte
    /// written). Null when the call reused a connection (`connection_reused`) or was not made
    /// over HTTP.
    #[serde(default)]
    pub connect_sec: Option<f64>,
    #[serde(default)]
    pub connection_reused: Option<bool>,
    /// Of `connect_sec`: the host name's lookup (the system resolver, or the target's
    /// `dns_servers` through llmpulse's own caching resolver; null for an IP address or a
    /// reused connection).
    #[serde(default)]
    pub dns_sec: Option<f64>,
    /// Of `connect_sec`: the TCP handshake, where llmpulse opens the socket itself (the
    /// `kernel` and `socket` clocks, http and https); null on the `client` clock, where the
    /// HTTP client's connector does TCP and TLS together.
    #[serde(default)]
    pub tcp_connect_sec: Option<f64>,
    /// Of `connect_sec`: the TLS handshake over https, from the TCP connection up to the first
    /// byte of the request (`kernel` and `socket` clocks); null over plain http, on a reused
    /// connection and on the `client` clock.
    #[serde(default)]
    pub tls_handshake_sec: Option<f64>,
    /// The TLS version agreed (`TLSv1.3`, `TLSv1.2`) on the `kernel` and `socket` clocks over
    /// https, for new and reused connections alike; null over plain http.
    #[serde(default)]
    pub tls_version: Option<String>,
    /// The address the call's connection reached (`203.0.113.7:443`, `[2001:db8::1]:443`): the
    /// name's resolution at the time, which tells an IPv4 path from an IPv6 one and one edge
    /// of a provider's network from another. Null without HTTP.
    #[serde(default)]
    pub remote_addr: Option<String>,
    /// The response's HTTP version (`HTTP/1.1`, `HTTP/2.0`); null without HTTP.
    #[serde(default)]
    pub http_version: Option<String>,
    /// Where the call's times were taken. `kernel` (http and https targets on Linux, HTTP/1.1
    /// and HTTP/2, the default):
    /// "sent" is the moment the request's first byte was written to the socket and each arrival
    /// is the kernel's receive time of its packet (`SO_TIMESTAMPNS`), so neither waits for a
    /// busy thread; `socket`: the same stamps taken in user space at the socket write and read
    /// (other systems, or `clock = "socket"`); `client`: from the hand-over to the HTTP client to
    /// where the reading task sees the bytes (a proxy in `HTTPS_PROXY`, the in-process
    /// simulator, or `clock = "client"`); `packet` (`clock = "packet"`, Linux with
    /// `CAP_NET_RAW`): each arrival is a packet capture's receive time of the TCP segment that
    /// brought it, so events that waited together for a busy reader keep their own times. Over
    /// https the stamps are taken beneath TLS: a chunk's arrival is that of the packet that
    /// completed its TLS record. Over HTTP/2 each stream has its own: "sent" is its HEADERS
    /// frame written, and a chunk's arrival that of the read that completed its DATA frame.
    /// It names the weakest clock among the reads of this call's own response: a `kernel` call
    /// one of whose reads came without the kernel's stamp says `socket`, a `packet` call whose
    /// capture missed a segment says `kernel`.
    #[serde(default)]
    pub clock_source: Option<String>,
    /// Request sent → the response headers, seconds ("sent" as `clock_source` says).
    pub ttfb_sec: Option<f64>,
    /// Request sent → the first generated token of any kind (a role-only chunk is not a token).
    pub ttft_sec: Option<f64>,
    /// Request sent → the first *answer* token (later than `ttft_sec` for reasoning models).
    pub ttfat_sec: Option<f64>,
    /// `(response_tokens − 1) / (latency_sec − ttft_sec)`: decode speed after the first token.
    pub output_speed_tps: Option<f64>,
    /// `(latency_sec − ttft_sec) / (response_tokens − 1)`: time per output token.
    pub tpot_sec: Option<f64>,
    /// Stream chunks that carried output, and the gaps between them (`chunk_gap_p50_sec`,
    /// `chunk_gap_p99_sec`, `chunk_gap_max_sec`). A chunk is not a token.
    pub chunk_count: Option<u32>,
    pub chunk_gap_p50_sec: Option<f64>,
    pub chunk_gap_p99_sec: Option<f64>,
    pub chunk_gap_max_sec: Option<f64>,
    /// `usage` (the provider reported the counts) or `estimated` (4 characters a token, at least
    /// one per word).
    pub token_source: Option<TokenSource>,
    /// Reasoning tokens, when reported or estimated from the reasoning text.
    pub reasoning_tokens: Option<u32>,
    /// Requests made for this record (0 when skipped).
    pub attempts: u32,
    /// Attempts answered 429 (or a rate-limit error event): availability, not hidden by retries.
    pub rate_limited_count: u32,
    /// Time waiting for rate limiters and concurrency permits before the first attempt; never part
    /// of latency.
    pub queue_wait_sec: f64,
    /// Time waiting between attempts (backoff, `Retry-After`); never part of latency.
    pub retry_wait_sec: f64,
    /// Time the call waited before it was sent for the agent's duty cycle or a cooldown (the
    /// temperature guard): never part of its latency, nor of `queue_wait_sec`.
    #[serde(default)]
    pub paused_sec: f64,
    /// Open-loop profiles (`constant`, `poisson`): when the call was due to go out (RFC 3339,
    /// microseconds), and how late it went (`schedule_lag_sec`: `timestamp` − `scheduled_at`,
    /// waits for rate limits included). Null in a closed loop.
    #[serde(default)]
    pub scheduled_at: Option<String>,
    #[serde(default)]
    pub schedule_lag_sec: Option<f64>,
    /// With an SLO (`[load] slo`, `--slo`): whether the call succeeded within every limit.
    #[serde(default)]
    pub slo_met: Option<bool>,
    /// The provider's headroom after the call, from `x-ratelimit-remaining-requests` and
    /// `x-ratelimit-remaining-tokens` (`ratelimit_remaining_tokens`).
    pub ratelimit_remaining_requests: Option<u64>,
    pub ratelimit_remaining_tokens: Option<u64>,
    /// Failover: on a fallback's record the target whose failure it stood in for; on that failure's
    /// record the fallback that answered (`failover_to`).
    pub failover_from: Option<String>,
    pub failover_to: Option<String>,
    /// What the call cost, USD, every attempt included: the provider's figure, else its tokens
    /// at the target's price, else (agent) its energy at the electricity price. Null when
    /// unknown; a failed call costs what it was billed (tokens reported), else nothing.
    pub cost_usd: Option<f64>,
    /// Where `cost_usd` came from: `provider`, `price_table`, `energy`, or null.
    #[serde(default)]
    pub cost_source: Option<crate::cost::CostSource>,
    /// The server's own timings of the call (Ollama's native API, llama.cpp's `timings`): model
    /// load, prompt processing, decode speed, and its first token as the server counts it
    /// (llama.cpp: the prompt time; Ollama: load + prompt eval): `server_load_sec`, `server_prefill_sec`, `server_decode_tps`, `server_ttft_sec`. Client `ttft_sec` minus
    /// `server_ttft_sec` is the network, HTTP and client's share.
    pub server_load_sec: Option<f64>,
    pub server_prefill_sec: Option<f64>,
    pub server_decode_tps: Option<f64>,
    #[serde(default)]
    pub server_ttft_sec: Option<f64>,
    /// Prompt tokens the server took from its prefix cache (llama.cpp's `timings.cache_n`,
    /// `usage.prompt_tokens_details.cached_tokens`, Anthropic's `cache_read_input_tokens`):
    /// 0 for a cold prompt, null when the server does not say. A warm prompt's TTFT is not
    /// the model's prefill speed.
    #[serde(default)]
    pub prompt_cached_tokens: Option<u32>,
    /// Why a call failed, one of the error kinds (`error_kind.rs`, listed under the record's
    /// fields in the book); null on success.
    pub error_kind: Option<ErrorKind>,
    /// The error in words (secrets redacted), and the HTTP status when there was one
    /// (`http_status`).
    pub error_message: Option<String>,
    pub http_status: Option<u16>,
    /// Why the answer ended, as the provider said (`stop`, `length`, `tool_calls`…).
    pub finish_reason: Option<String>,
    /// Share of the answer's content words found in the context or the question: a cheap
    /// faithfulness signal; null for a failed call.
    pub grounding_score: Option<f64>,
    /// For questions with a schema: whether the answer parses as JSON.
    pub json_valid: Option<bool>,
    /// The tool calls made, as a JSON array of `{id, name, arguments}`.
    pub tool_calls: Option<String>,
    /// For questions with tools: whether a call, native or written in the answer text, names
    /// an offered tool with arguments that parse as a JSON object.
    pub tool_call_valid: Option<bool>,
    /// For questions with tools: how the call was made (`native`, or written in the text as
    /// `hermes`, `fenced_json`, `json`, `call_syntax`); null when no call was found.
    #[serde(default)]
    pub tool_call_format: Option<String>,
    /// For tool questions: `explicit` (the prompt names the tool) or `implicit`.
    #[serde(default)]
    pub tool_prompt: Option<String>,
    /// For questions with an expected answer: whether the answer's final answer is right.
    #[serde(default)]
    pub answer_correct: Option<bool>,
    /// For questions with verifiable instructions: the share of them the answer follows.
    #[serde(default)]
    pub instructions_followed: Option<f64>,
    /// Scorer → score for every scorer the question names (each in its own unit: BLEU 0–100,
    /// WER a rate, most in [0, 1]); null for a failed call or a question with none. In CSV the
    /// object is written as JSON text.
    #[serde(default)]
    pub scores: Option<std::collections::BTreeMap<String, f64>>,
    /// The mean of `scores` mapped to [0, 1], higher better (`llmpulse_score::grade`); null
    /// for a failed call or a question with no scorer. A judge's grade joins it on the judge's
    /// record, not this one.
    #[serde(default)]
    pub quality_score: Option<f64>,
    /// The answer's length in characters (kept even when the call failed half way).
    pub answer_chars: u32,
    /// The answer text, or `null` when the config sets `keep_answers = false`.
    pub answer: Option<String>,
    /// SHA-256 of the answer text, hex: compares answers when `answer` is not kept.
    pub answer_sha256: String,
    /// The provider's request id header, for support tickets.
    pub provider_request_id: Option<String>,
    /// Request parameters as sent: sampling temperature and `max_tokens`.
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    /// Where it ran: `local:HOST`, `lambda:REGION`, `agent:ID`.
    pub origin: String,
    /// The llmpulse version that measured the call.
    pub llmpulse_version: String,
    /// SHA-256 over the config and the suite: runs with the same hash asked the same things.
    pub config_hash: String,
    /// The model's resident memory in MB while it answered, when the host can tell (an agent's
    /// telemetry, a server that reports it); `null` otherwise, and for every hosted API.
    #[serde(default)]
    pub memory_mb: Option<f64>,
    /// Where `memory_mb` came from: `ollama_ps` (the server's own figure), `server_rss` (the
    /// serving processes' peak resident memory during the call), `server_rss+gpu` (that plus
    /// the GPU memory in use).
    #[serde(default)]
    pub memory_source: Option<String>,
    /// Mean GPU utilisation during the call, percent (agent, NVML).
    #[serde(default)]
    pub gpu_util_pct: Option<f64>,
    /// The hottest GPU's peak temperature during the call, °C (agent, NVML).
    #[serde(default)]
    pub gpu_temp_c: Option<f64>,
    /// The hottest CPU sensor's peak during the call, °C (agent: Linux sysfs, macmon).
    #[serde(default)]
    pub cpu_temp_c: Option<f64>,
    /// Whether the machine throttled during the call, where a source can tell (agent), and
    /// why: `thermal` (the kernel's CPU throttle count rose), `gpu_thermal`, `gpu_power_cap`
    /// (NVML's clock-throttle reasons), comma-separated, in `throttle_reason`.
    #[serde(default)]
    pub throttled: Option<bool>,
    #[serde(default)]
    pub throttle_reason: Option<String>,
    /// Mean power of the measured devices during the call, watts.
    #[serde(default)]
    pub power_w: Option<f64>,
    /// The call's share of the measured devices' energy, joules (see `energy_source`).
    #[serde(default)]
    pub energy_j: Option<f64>,
    /// `nvml_counter`, `rapl`, `macmon` (counters over the call's window), `power_x_time`
    /// (mean power × time), or `none` (no energy source on this host; the manifest says why).
    #[serde(default)]
    pub energy_source: Option<String>,
    /// `energy_j` per response token.
    #[serde(default)]
    pub energy_per_token_j: Option<f64>,
    /// The agent host that measured the call.
    #[serde(default)]
    pub host_id: Option<String>,
    /// Sweeps (`llmpulse-agent sweep`): the server the agent started for this point and how.
    /// `server` is its kind (`llamacpp`, `vllm`, `command`), `server_version` as it reports it.
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub server_version: Option<String>,
    /// The model file's quantization as the server loaded it (`Q4_1`, `Q8_0`, `F16`).
    #[serde(default)]
    pub quantization: Option<String>,
    /// Flash attention: `on`, `off` or `auto`.
    #[serde(default)]
    pub flash_attn: Option<String>,
    /// KV cache type (`f16`, `q8_0`, `q4_0`) for K and V.
    #[serde(default)]
    pub kv_cache_type: Option<String>,
    /// Sweeps: the context size the server was started with.
    #[serde(default)]
    pub ctx_size: Option<u32>,
    /// Sweeps: the layers offloaded to the GPU.
    #[serde(default)]
    pub gpu_layers: Option<u32>,
    /// vLLM sweeps: the most sequences the server batches at once (`--max-num-seqs`).
    #[serde(default)]
    pub max_num_seqs: Option<u32>,
    /// Server start → ready (model loaded), seconds.
    #[serde(default)]
    pub load_time_sec: Option<f64>,
}

/// What the runner knows about a call besides its outcome.
pub struct CallContext<'a> {
    pub run_id: &'a str,
    pub campaign: Option<&'a str>,
    pub slot: Option<u64>,
    pub origin: &'a str,
    pub config_hash: &'a str,
    pub keep_answers: bool,
    pub target: &'a Target,
    pub question: &'a Question,
    pub prompt: &'a Prompt,
    pub repetition: u32,
    pub stats: &'a AttemptStats,
    /// Set on a fallback's record: the target it stood in for.
    pub failover_from: Option<&'a str>,
    /// Set on a failed call's record when a fallback answered instead.
    pub failover_to: Option<&'a str>,
    /// When an open-loop profile meant the call to go out.
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The SLO the call is held to, if any.
    pub slo: Option<&'a crate::load::Slo>,
    /// The question's context, key facts and text reduced to terms once for the run (the
    /// runner's); `None` reduces them for this call.
    pub sources: Option<&'a score::Sources>,
}

impl Record {
    /// Builds the record of one call: token accounting, derived speeds and scores.
    pub fn from_call(cx: &CallContext<'_>, out: &CallOutcome) -> Record {
        let mut r = Record::measured(cx, out);
        r.answer = cx.keep_answers.then(|| out.answer.clone());
        r
    }

    /// [`Record::from_call`], the answer moved into the record rather than copied: the runner's
    /// way, so that a call's answer (up to `max_answer_bytes`) is held once.
    pub fn from_call_taking(cx: &CallContext<'_>, out: &mut CallOutcome) -> Record {
        let mut r = Record::measured(cx, out);
        if cx.keep_answers {
            r.answer = Some(std::mem::take(&mut out.answer));
        }
        r
    }

    /// Everything but the answer text.
    fn measured(cx: &CallContext<'_>, out: &CallOutcome) -> Record {
        let success = out.success();
        let usage = out.usage.unwrap_or_default();
        let tokens = TokenCounts::of(cx.prompt, out, &usage);
        let t = &out.timings;
        let speeds = if success {
            Throughput::derive(t, tokens.response.unwrap_or(0))
        } else {
            Throughput::default()
        };
        let q = cx.question;
        let g = Grading::of(q, cx.sources, out);
        let grades = g.grades;
        let quality_score = grades.quality();
        let server = &out.server;
        let cost = cost_of(cx.target.price.as_ref(), &usage, &tokens, success).or((cx
            .stats
            .earlier_cost_usd
            > 0.0)
            .then_some((0.0, crate::cost::CostSource::PriceTable)));
        Record {
            timestamp: out
                .sent_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            industry: q.industry.clone(),
            question: q.question.clone(),
            llm_provider: cx.target.provider.clone(),
            llm_model: cx.target.model.clone(),
            latency_sec: round6(t.latency_sec),
            throughput_tps: speeds.throughput_tps.map(round6),
            success,
            coverage_score: g.coverage.map(round6),
            prompt_tokens: tokens.prompt,
            response_tokens: tokens.response,
            run_id: cx.run_id.to_string(),
            campaign: cx.campaign.map(str::to_string),
            slot: cx.slot,
            question_id: q.id.clone(),
            target: cx.target.name.clone(),
            repetition: cx.repetition,
            task: q.task.clone(),
            role: None,
            streamed: out.streamed,
            connect_sec: out.connect.flatten().map(|c| round6(c.total.as_secs_f64())),
            connection_reused: out.connect.map(|c| c.is_none()),
            dns_sec: out
                .connect
                .flatten()
                .and_then(|c| c.dns)
                .map(|d| round6(d.as_secs_f64())),
            tcp_connect_sec: out
                .connect
                .flatten()
                .and_then(|c| c.tcp)
                .map(|d| round6(d.as_secs_f64())),
            tls_handshake_sec: out
                .connect
                .flatten()
                .and_then(|c| c.tls)
                .map(|d| round6(d.as_secs_f64())),
            tls_version: out.peer.and_then(|p| p.tls_version).map(str::to_string),
            remote_addr: out.peer.and_then(|p| p.remote_addr).map(|a| a.to_string()),
            http_version: out.http_version.map(str::to_string),
            clock_source: Some(out.clock.as_str().to_string()),
            ttfb_sec: t.ttfb_sec.map(round6),
            ttft_sec: t.ttft_sec.map(round6),
            ttfat_sec: t.ttfat_sec.map(round6),
            output_speed_tps: speeds.output_speed_tps.map(round6),
            tpot_sec: speeds.tpot_sec.map(round6),
            chunk_count: out.streamed.then_some(t.chunk_count),
            chunk_gap_p50_sec: t.chunk_gap_p50_sec.map(round6),
            chunk_gap_p99_sec: t.chunk_gap_p99_sec.map(round6),
            chunk_gap_max_sec: t.chunk_gap_max_sec.map(round6),
            token_source: tokens.source,
            reasoning_tokens: tokens.reasoning,
            attempts: cx.stats.attempts,
            rate_limited_count: cx.stats.rate_limited,
            queue_wait_sec: round6(cx.stats.queue_wait.as_secs_f64()),
            retry_wait_sec: round6(cx.stats.retry_wait.as_secs_f64()),
            paused_sec: round6(cx.stats.paused.as_secs_f64()),
            scheduled_at: cx
                .scheduled_at
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            schedule_lag_sec: cx.scheduled_at.map(|at| {
                round6(((out.sent_at - at).num_microseconds().unwrap_or(0) as f64 / 1e6).max(0.0))
            }),
            slo_met: cx
                .slo
                .map(|slo| slo.met(success, t.ttft_sec, speeds.tpot_sec, t.latency_sec)),
            ratelimit_remaining_requests: out.rate_limit.remaining_requests,
            ratelimit_remaining_tokens: out.rate_limit.remaining_tokens,
            failover_from: cx.failover_from.map(str::to_string),
            failover_to: cx.failover_to.map(str::to_string),
            cost_usd: cost.map(|(c, _)| c + cx.stats.earlier_cost_usd),
            cost_source: cost.map(|(_, s)| s),
            server_load_sec: server.load_sec.map(round6),
            server_prefill_sec: server.prefill_sec.map(round6),
            server_decode_tps: server.decode_tps.map(round6),
            server_ttft_sec: server.ttft_sec.map(round6),
            prompt_cached_tokens: usage.cached_prompt_tokens.or(server.cached_tokens),
            error_kind: out.error.as_ref().map(|e| e.kind),
            error_message: out.error.as_ref().map(|e| e.message.clone()),
            http_status: out.http_status,
            finish_reason: out.finish_reason.clone(),
            grounding_score: g.grounding.map(round6),
            json_valid: grades.json_valid,
            tool_calls: (!out.tool_calls.is_empty())
                .then(|| serde_json::to_string(&out.tool_calls).unwrap_or_default()),
            tool_call_valid: grades.tool_call_valid,
            tool_call_format: grades.tool_calls.format.map(|f| f.as_str().to_string()),
            tool_prompt: q.tool_prompt.clone(),
            answer_correct: grades.answer_correct,
            instructions_followed: grades.instructions_followed.map(round6),
            scores: (!grades.scores.is_empty()).then(|| {
                grades
                    .scores
                    .iter()
                    .map(|(k, v)| (k.clone(), round6(*v)))
                    .collect()
            }),
            quality_score: quality_score.map(round6),
            answer_chars: out.answer.chars().count() as u32,
            answer: None,
            answer_sha256: hex::encode(Sha256::digest(out.answer.as_bytes())),
            provider_request_id: out.provider_request_id.clone(),
            temperature: cx.target.params.temperature,
            max_tokens: cx.target.params.max_tokens,
            origin: cx.origin.to_string(),
            llmpulse_version: crate::VERSION.to_string(),
            config_hash: cx.config_hash.to_string(),
            memory_mb: out.memory_mb.map(round6),
            memory_source: out.memory_mb.map(|_| "ollama_ps".to_string()),
            gpu_util_pct: None,
            gpu_temp_c: None,
            cpu_temp_c: None,
            throttled: None,
            throttle_reason: None,
            power_w: None,
            energy_j: None,
            energy_source: None,
            energy_per_token_j: None,
            host_id: None,
            server: None,
            server_version: None,
            quantization: None,
            flash_attn: None,
            kv_cache_type: None,
            ctx_size: None,
            gpu_layers: None,
            max_num_seqs: None,
            load_time_sec: None,
        }
    }
}

/// A successful answer's scores: coverage and grounding of the question's context, and every
/// grade its question names (tool calls native or written in the answer text: small local
/// models often write them). Nothing for a failed call.
struct Grading {
    coverage: Option<f64>,
    grounding: Option<f64>,
    grades: score::grade::Grades,
}

impl Grading {
    fn of(q: &Question, sources: Option<&score::Sources>, out: &CallOutcome) -> Grading {
        if !out.success() {
            return Grading {
                coverage: None,
                grounding: None,
                grades: score::grade::Grades::default(),
            };
        }
        let native: Vec<(String, String)> = out
            .tool_calls
            .iter()
            .map(|c| (c.name.clone(), c.arguments.clone()))
            .collect();
        let (coverage, grounding) = match sources {
            Some(s) => s.score(&out.answer),
            None => score::Sources::new(&q.context, &q.key_facts, &q.question).score(&out.answer),
        };
        Grading {
            coverage,
            grounding,
            grades: score::grade::grade(
                &q.grading,
                &score::grade::Answer {
                    text: &out.answer,
                    native_calls: &native,
                },
            ),
        }
    }
}

/// Microsecond resolution is all a network timing can honestly claim.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_COLUMNS: [&str; 11] = [
        "timestamp",
        "industry",
        "question",
        "llm_provider",
        "llm_model",
        "latency_sec",
        "throughput_tps",
        "success",
        "coverage_score",
        "prompt_tokens",
        "response_tokens",
    ];

    fn sample() -> Record {
        serde_json::from_str(
            r#"{"timestamp": "2026-11-25T10:30:00.000Z", "industry": "retail", "question": "q, with comma",
            "llm_provider": "groq", "llm_model": "llama3-70b-8192", "latency_sec": 2.34,
            "throughput_tps": 45.2, "success": true, "coverage_score": 0.78, "prompt_tokens": 150,
            "response_tokens": 200, "run_id": "r", "campaign": null, "slot": null,
            "question_id": "retail-01", "target": "t", "repetition": 0, "task": "rag",
            "streamed": true, "ttfb_sec": 0.1, "ttft_sec": 0.2, "ttfat_sec": 0.2,
            "output_speed_tps": 90.0, "tpot_sec": 0.011, "chunk_count": 150,
            "chunk_gap_p50_sec": 0.01, "chunk_gap_p99_sec": 0.03, "chunk_gap_max_sec": 0.05,
            "token_source": "usage", "reasoning_tokens": null, "attempts": 1,
            "rate_limited_count": 0, "queue_wait_sec": 0.0, "retry_wait_sec": 0.0,
            "ratelimit_remaining_requests": null, "ratelimit_remaining_tokens": null,
            "failover_from": null, "failover_to": null, "cost_usd": null,
            "server_load_sec": null, "server_prefill_sec": null, "server_decode_tps": null,
            "error_kind": null,
            "error_message": null, "http_status": 200, "finish_reason": "stop",
            "grounding_score": 0.9, "json_valid": null, "tool_calls": null,
            "tool_call_valid": null, "answer_chars": 5, "answer": "hello", "answer_sha256": "x",
            "provider_request_id": null, "temperature": null, "max_tokens": null,
            "origin": "local:test", "llmpulse_version": "0.1.0", "config_hash": "h"}"#,
        )
        .unwrap()
    }

    #[test]
    fn seed_columns_come_first_in_both_formats() {
        let mut csv = Vec::new();
        write_csv(&mut csv, &[sample()]).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        assert_eq!(&header[..11], &SEED_COLUMNS);

        let mut jsonl = Vec::new();
        write_jsonl(&mut jsonl, &[sample()]).unwrap();
        let line = String::from_utf8(jsonl).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        // serde_json without preserve_order sorts keys; check the text order instead.
        assert!(keys.len() > 11);
        let mut last = 0;
        for col in SEED_COLUMNS {
            let at = line.find(&format!("\"{col}\":")).unwrap();
            assert!(at >= last, "{col} out of order");
            last = at;
        }
    }

    #[test]
    fn jsonl_round_trips() {
        let mut jsonl = Vec::new();
        write_jsonl(&mut jsonl, &[sample(), sample()]).unwrap();
        let back = read_jsonl(&String::from_utf8(jsonl).unwrap()).unwrap();
        assert_eq!(back, vec![sample(), sample()]);
        assert!(read_jsonl("{}\n").unwrap_err().starts_with("line 1:"));
    }

    #[test]
    fn csv_quotes_commas_and_leaves_nulls_empty() {
        let mut csv = Vec::new();
        write_csv(&mut csv, &[sample()]).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        let row = csv.lines().nth(1).unwrap();
        assert!(row.contains("\"q, with comma\""));
        assert!(row.contains(",r,,,retail-01,")); // campaign and slot are empty
    }

    #[test]
    fn the_answer_cell_is_the_answer_itself_quoted_and_in_its_column() {
        let mut r = sample();
        r.answer = Some("line one, \"quoted\"\nline two".into());
        let mut csv = Vec::new();
        write_csv(&mut csv, &[r.clone()]).unwrap();
        let mut read = csv::Reader::from_reader(&csv[..]);
        let header = read.headers().unwrap().clone();
        let row = read.records().next().unwrap().unwrap();
        let col = header.iter().position(|h| h == "answer").unwrap();
        assert_eq!(&row[col], r.answer.as_deref().unwrap());
        assert_eq!(&row[col + 1], "x", "answer_sha256 follows it");
        assert_eq!(row.len(), header.len());
    }

    /// Every CSV cell says what the record's JSON says of its field: `null` empty, a string as
    /// itself (escapes undone), a number or boolean as its JSON text, an enum as its name, a
    /// nested value as its JSON: written straight from the record, held against its JSON tree.
    #[test]
    fn each_csv_cell_is_its_fields_json_value() {
        let mut r = sample();
        r.question = "a \"quoted\", back\\slash\nnew line, tab\t, é, \u{1} and 😀".into();
        r.error_message = Some("\u{7f}</script>".into());
        r.latency_sec = 5e-6;
        r.throughput_tps = Some(1e21);
        r.ttft_sec = Some(-0.0);
        r.queue_wait_sec = 0.1 + 0.2;
        r.prompt_tokens = Some(u32::MAX);
        r.answer = Some("the answer, \"as is\"".into());
        r.scores = Some([("z".to_string(), 0.5), ("a".to_string(), 1.0 / 3.0)].into());
        r.error_kind = Some(ErrorKind::FirstTokenTimeout);
        r.cost_source = Some(crate::cost::CostSource::PriceTable);
        r.cost_usd = Some(f64::NAN);
        r.tpot_sec = Some(f64::INFINITY);
        r.json_valid = Some(false);
        let mut csv = Vec::new();
        write_csv(&mut csv, &[r.clone()]).unwrap();
        let mut reader = csv::Reader::from_reader(&csv[..]);
        let header = reader.headers().unwrap().clone();
        let row = reader.records().next().unwrap().unwrap();
        let json = serde_json::to_value(&r).unwrap();
        for (name, got) in header.iter().zip(row.iter()) {
            let want = match &json[name] {
                _ if name == "answer" => r.answer.clone().unwrap(),
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(got, want, "column {name}");
        }
    }

    #[test]
    fn csv_writes_scores_as_json_text_in_the_column_order_of_jsonl() {
        let mut r = sample();
        r.scores = Some([("bleu".to_string(), 41.5), ("clarity".to_string(), 1.0)].into());
        let mut csv = Vec::new();
        write_csv(&mut csv, &[r.clone(), r.clone()]).unwrap();
        let text = String::from_utf8(csv).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let json: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(header.len(), json.as_object().unwrap().len());
        let line = serde_json::to_string(&r).unwrap();
        let in_json_order: Vec<usize> = header
            .iter()
            .map(|h| line.find(&format!("\"{h}\":")).unwrap())
            .collect();
        assert!(in_json_order.windows(2).all(|w| w[0] < w[1]), "{header:?}");
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2, "one header row, then the records");
        let at = header.iter().position(|h| h == "scores").unwrap();
        assert_eq!(&rows[0][at], r#"{"bleu":41.5,"clarity":1.0}"#);
    }
}
