//! Talking to a target: the [`Transport`] that moves bytes (HTTP with reqwest, or the in-process
//! simulator) and the protocol that gives them meaning ([`openai`]). [`Client`] puts the two
//! together for one configured target and turns one question into one [`CallOutcome`].

pub mod anthropic;
mod exchange;
pub mod http;
pub mod ollama;
pub mod openai;
pub mod preset;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::Stream;
use futures_util::future::BoxFuture;
use reqwest::header::HeaderMap;

use crate::config::{Endpoint, Protocol, Target};
use crate::error_kind::ErrorKind;
use crate::measure::Timings;
use crate::retry::RateLimitInfo;
use crate::sim::inprocess::InProcess;
use crate::suite::Prompt;

/// A request ready to go: a method, a path under the target's base URL, headers (auth values
/// marked sensitive, so `Debug` hides them) and a JSON body (empty for a GET).
pub struct HttpRequest {
    pub method: ::http::Method,
    pub path: &'static str,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A body chunk could not be read (connection reset, cut, decode error).
#[derive(Debug, Clone)]
pub struct BodyError(pub String);

/// A response body as it arrives.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>;

/// Status, headers and a body stream.
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: BodyStream,
}

/// Why a request got no response at all.
#[derive(Debug, Clone)]
pub enum TransportError {
    Connect(String),
    ConnectTimeout,
    Timeout,
    Request(String),
}

/// Moves a request to a target and hands back the response as it arrives.
pub trait Transport: Send + Sync {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<RawResponse, TransportError>>;
}

/// Token usage as reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub reasoning_tokens: Option<u32>,
    /// What the provider says the call cost, in USD (OpenRouter's `usage.cost`).
    pub cost_usd: Option<f64>,
}

/// Timings the server measured itself (Ollama's native API reports them).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerTimings {
    /// Loading the model, when the call had to.
    pub load_sec: Option<f64>,
    /// Processing the prompt (prefill).
    pub prefill_sec: Option<f64>,
    /// Generated tokens per second of decode time.
    pub decode_tps: Option<f64>,
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

/// One configured target, ready to be called.
#[derive(Clone)]
pub struct Client {
    target: Arc<Target>,
    transport: Arc<dyn Transport>,
}

impl Client {
    /// Builds the client for `target`, with its own connection pool.
    pub fn new(target: Target) -> Result<Self, reqwest::Error> {
        let transport: Arc<dyn Transport> = match &target.endpoint {
            Endpoint::Http { base_url } => {
                let http = http::build_client(target.timeouts.connect)?;
                Arc::new(http::HttpTransport::new(http, base_url.clone()))
            }
            Endpoint::Sim(profile) => Arc::new(InProcess::new((**profile).clone())),
        };
        Ok(Client {
            target: Arc::new(target),
            transport,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Asks `prompt` once and measures the answer; `run_deadline` cancels the call.
    pub async fn call(&self, prompt: &Prompt, run_deadline: Option<Instant>) -> CallOutcome {
        let dialect: &dyn exchange::Dialect = match self.target.protocol {
            Protocol::Openai => &openai::OpenAi,
            Protocol::Anthropic => &anthropic::Anthropic,
            Protocol::Ollama => &ollama::Ollama,
        };
        let mut outcome = exchange::call(
            &self.target,
            self.transport.as_ref(),
            prompt,
            dialect,
            run_deadline,
        )
        .await;
        // Asked after the answer is complete, so it never adds to the call's timings.
        if self.target.protocol == Protocol::Ollama && outcome.success() {
            outcome.memory_mb =
                ollama::loaded_memory_mb(&self.target, self.transport.as_ref()).await;
        }
        outcome
    }
}
