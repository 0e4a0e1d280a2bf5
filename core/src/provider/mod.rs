//! Talking to a target: the [`Transport`] that moves bytes (HTTP with reqwest, or the in-process
//! simulator) and the protocol that gives them meaning ([`openai`]). [`Client`] puts the two
//! together for one configured target and turns one question into one [`CallOutcome`].

pub mod http;
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

use crate::config::{Endpoint, Target};
use crate::error_kind::ErrorKind;
use crate::measure::Timings;
use crate::sim::inprocess::InProcess;
use crate::suite::Message;

/// A request ready to go: a path under the target's base URL, headers (auth values marked
/// sensitive, so `Debug` hides them) and a JSON body.
pub struct HttpRequest {
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
    Timeout,
    Request(String),
}

/// Moves a request to a target and hands back the response as it arrives.
pub trait Transport: Send + Sync {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<RawResponse, TransportError>>;
}

/// Token usage as reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub reasoning_tokens: Option<u32>,
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
    pub error: Option<CallError>,
}

impl CallOutcome {
    pub fn success(&self) -> bool {
        self.error.is_none()
    }
}

/// One configured target, ready to be called.
#[derive(Clone)]
pub struct Client {
    target: Arc<Target>,
    transport: Arc<dyn Transport>,
}

impl Client {
    /// Builds the client for `target`; `http` is shared by all HTTP targets of a run.
    pub fn new(target: Target, http: &reqwest::Client) -> Self {
        let transport: Arc<dyn Transport> = match &target.endpoint {
            Endpoint::Http { base_url } => {
                Arc::new(http::HttpTransport::new(http.clone(), base_url.clone()))
            }
            Endpoint::Sim(profile) => Arc::new(InProcess::new((**profile).clone())),
        };
        Client {
            target: Arc::new(target),
            transport,
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Asks `messages` once and measures the answer.
    pub async fn call(&self, messages: &[Message]) -> CallOutcome {
        openai::call(&self.target, self.transport.as_ref(), messages).await
    }
}
