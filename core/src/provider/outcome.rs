//! What one call produced, success or not: [`CallOutcome`] with its usage, server timings,
//! tool calls and error; and how a call went across its attempts ([`AttemptStats`]).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::error_kind::ErrorKind;
use crate::measure::Timings;
use crate::retry::RateLimitInfo;

/// Token usage as reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub reasoning_tokens: Option<u32>,
    /// Prompt tokens the server took from its prefix cache instead of computing them
    /// (`usage.prompt_tokens_details.cached_tokens`, Anthropic's `cache_read_input_tokens`).
    pub cached_prompt_tokens: Option<u32>,
    /// What the provider says the call cost, in USD (OpenRouter's `usage.cost`).
    pub cost_usd: Option<f64>,
}

/// Timings the server measured itself, per call: Ollama's native API and llama.cpp's
/// `timings` object report them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerTimings {
    /// Loading the model, when the call had to.
    pub load_sec: Option<f64>,
    /// Processing the prompt (prefill).
    pub prefill_sec: Option<f64>,
    /// Generated tokens per second of decode time.
    pub decode_tps: Option<f64>,
    /// The request's arrival → its first token, as the server counts it (llama.cpp: the prompt
    /// time, its first token is sampled when the prompt is done; Ollama: load + prompt eval).
    pub ttft_sec: Option<f64>,
    /// Prompt tokens the server reused from its cache (llama.cpp's `timings.cache_n`).
    pub cached_tokens: Option<u32>,
}

/// Why a call failed, with a message safe to store (no secrets).
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    pub kind: ErrorKind,
    pub message: String,
}

/// Everything one call produced, success or not. A failed call keeps whatever arrived.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// When the request was sent (the record's `timestamp`).
    pub sent_at: DateTime<Utc>,
    /// The same moment on the monotonic clock.
    pub sent: Instant,
    /// When each chunk that carried output arrived, after `sent` (not in records: the benchmark
    /// and the agent's live view use them).
    pub chunk_offsets: Vec<Duration>,
    pub timings: Timings,
    pub streamed: bool,
    pub answer: String,
    pub reasoning: String,
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    pub http_status: Option<u16>,
    pub provider_request_id: Option<String>,
    /// What the response headers said about the provider's limits.
    pub rate_limit: RateLimitInfo,
    /// Tool calls, assembled from their streamed pieces.
    pub tool_calls: Vec<ToolCall>,
    /// The server's own timings, when it reports them.
    pub server: ServerTimings,
    /// The model's memory as the server reported it after the call (Ollama's `/api/ps`), MB.
    pub memory_mb: Option<f64>,
    /// Over HTTP: the connection's set-up (TCP, and TLS for https, and its phases) when this
    /// call opened a new connection, `None` when it reused one.
    pub connect: Option<Option<super::transport::Connected>>,
    /// The HTTP version of the response.
    pub http_version: Option<&'static str>,
    /// The connection's far end and TLS version.
    pub peer: Option<super::transport::Peer>,
    /// Where the call's timestamps were taken.
    pub clock: super::ClockSource,
    pub error: Option<CallError>,
}

/// One tool call the model made.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them (JSON text, unless the model got it wrong).
    pub arguments: String,
}

impl CallOutcome {
    pub fn success(&self) -> bool {
        self.error.is_none()
    }

    /// An outcome with nothing in it yet: the start of every call's outcome.
    pub(crate) fn empty(sent_at: DateTime<Utc>, sent: Instant, streamed: bool) -> Self {
        CallOutcome {
            sent_at,
            sent,
            chunk_offsets: Vec::new(),
            timings: Timings::default(),
            streamed,
            answer: String::new(),
            reasoning: String::new(),
            usage: None,
            finish_reason: None,
            http_status: None,
            provider_request_id: None,
            rate_limit: RateLimitInfo::default(),
            tool_calls: Vec::new(),
            server: ServerTimings::default(),
            memory_mb: None,
            connect: None,
            http_version: None,
            peer: None,
            clock: super::ClockSource::Client,
            error: None,
        }
    }

    /// The outcome of a call that was never sent.
    pub fn not_sent(kind: ErrorKind, message: String) -> Self {
        CallOutcome {
            error: Some(CallError { kind, message }),
            ..CallOutcome::empty(Utc::now(), Instant::now(), false)
        }
    }
}

/// How a call went across its attempts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptStats {
    /// Requests sent (0 when the call was skipped).
    pub attempts: u32,
    /// Attempts answered with a rate-limit error.
    pub rate_limited: u32,
    /// Time spent waiting for a permit or the target's rate limiter (never latency).
    pub queue_wait: std::time::Duration,
    /// Time spent waiting between attempts (backoff or the provider's `Retry-After`).
    pub retry_wait: std::time::Duration,
    /// Time spent paused before an attempt for the duty cycle or a cooldown (never latency).
    pub paused: std::time::Duration,
    /// What the attempts before the last were billed, USD (a retried call that had produced
    /// tokens): part of the record's `cost_usd`.
    pub earlier_cost_usd: f64,
}
