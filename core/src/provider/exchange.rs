//! One request/response exchange, whatever the protocol: time limits ([`Deadlines`]), the
//! state of a response being read ([`Reading`]), the server-sent-event loop that stamps arrival
//! times, error bodies, and the final checks. A protocol ([`Dialect`]) only says what each event
//! or body means.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::body::{bounded, ndjson_lines};
use super::deadlines::Deadlines;
use super::outcome::{CallError, CallOutcome, ToolCall};
use super::transport::{HttpRequest, RawResponse, SocketClock, Transport, TransportError};
use crate::config::Target;
use crate::error_kind::ErrorKind;
use crate::measure::{Meter, Output};
use crate::retry::RateLimitInfo;
use crate::secret::{Secret, scrub};
use crate::stop::Stop;
use crate::suite::Prompt;

/// The most of an error body kept for its message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// What one stream event meant.
pub(crate) enum Step {
    /// Nothing to measure (a comment, a ping).
    Skip,
    /// A chunk, carrying this kind of output (or none).
    Chunk(Output),
    /// The answer is complete.
    Done,
    /// Reading must stop (the dialect recorded why with [`Reading::fail`]).
    Stop,
}

/// How a protocol frames a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Server-sent events (`event:` / `data:` lines, blank line between events).
    Sse,
    /// One JSON object per line (Ollama's native API).
    Ndjson,
}

/// A wire protocol: what its stream events and whole bodies mean.
pub(crate) trait Dialect: Sync {
    /// The path of the request under the target's base URL.
    fn path(&self) -> &'static str;
    /// The request's headers (content type, auth, the target's own).
    fn headers(&self, target: &Target) -> HeaderMap;
    /// The request's JSON body.
    fn request(&self, target: &Target, prompt: &Prompt) -> Value;
    /// How its streams are framed.
    fn framing(&self) -> Framing {
        Framing::Sse
    }
    /// One server-sent event named `event` (`message` when unnamed) with `data`.
    fn event(&self, r: &mut Reading, event: &str, data: &str) -> Step;
    /// A whole non-streamed response body.
    fn body(&self, r: &mut Reading, bytes: &[u8]);
}

pub(crate) fn secrets(target: &Target) -> Vec<&Secret> {
    target
        .api_key
        .iter()
        .chain(target.headers.iter().map(|(_, v)| v))
        .collect()
}

/// Adds the target's own headers (values may carry secrets: all marked sensitive).
pub(crate) fn add_target_headers(headers: &mut HeaderMap, target: &Target) {
    for (k, v) in &target.headers {
        if let (Ok(name), Ok(mut value)) = (
            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
            reqwest::header::HeaderValue::from_str(v.expose()),
        ) {
            value.set_sensitive(true);
            headers.insert(name, value);
        }
    }
}

/// Merges the target's `extra` fields into a request body (they win over llmpulse's own).
pub(crate) fn merge_extra(body: &mut Value, target: &Target) {
    if let Value::Object(map) = body {
        for (k, v) in &target.extra {
            map.insert(k.clone(), v.clone());
        }
    }
}

/// Asks `prompt` of `target` in `dialect` and measures the answer; `run_deadline` cancels the
/// call when the run must end.
pub(crate) async fn call(
    target: &Target,
    transport: &dyn Transport,
    prompt: &Prompt,
    dialect: &dyn Dialect,
    run_deadline: Option<Instant>,
    stop: Option<Stop>,
) -> CallOutcome {
    let request = HttpRequest {
        method: http::Method::POST,
        path: dialect.path(),
        headers: dialect.headers(target),
        body: dialect.request(target, prompt).to_string().into_bytes(),
    };
    exchange(target, transport, request, dialect, run_deadline, stop).await
}

/// Sends `request` for `target` over `transport` and reads the answer in `dialect`.
/// `run_deadline` cancels the call when the run must end.
async fn exchange(
    target: &Target,
    transport: &dyn Transport,
    request: HttpRequest,
    dialect: &dyn Dialect,
    run_deadline: Option<Instant>,
    stop: Option<Stop>,
) -> CallOutcome {
    let sent_at = Utc::now();
    let sent = Instant::now();
    let mut reading = Reading::new(sent, target.params.stream);
    reading.max_answer = target.max_answer_bytes;
    reading.out.sent_at = sent_at;
    let mut deadlines = Deadlines::new(target, sent, run_deadline, stop);

    let (limit, kind) = deadlines.next(false, None);
    let mut clock = None;
    let response = match deadlines.within(limit, kind, transport.send(request)).await {
        Err(kind) => {
            reading.fail(kind, deadlines.message(kind));
            None
        }
        Ok(Err(e)) => {
            let (kind, message) = match e {
                TransportError::Timeout => {
                    (ErrorKind::Timeout, deadlines.message(ErrorKind::Timeout))
                }
                TransportError::ConnectTimeout => (
                    ErrorKind::ConnectTimeout,
                    deadlines.message(ErrorKind::ConnectTimeout),
                ),
                TransportError::Connect(m) => (ErrorKind::Connect, m),
                TransportError::Tls(m) => (ErrorKind::Tls, m),
                TransportError::Request(m) => (ErrorKind::Request, m),
            };
            reading.fail(kind, message);
            None
        }
        Ok(Ok(r)) => Some(r),
    };
    if let Some(resp) = response {
        clock = resp.clock.clone();
        if let Some(written) = clock.as_ref().and_then(SocketClock::written) {
            // Stamped at the socket: the call's times, and its time limits, run from the
            // request's first byte written.
            reading.sent_on_wire(written);
            deadlines.rebase(written);
        }
        reading.meter.headers(arrival(clock.as_ref()));
        reading.out.connect = resp.connect;
        reading.out.http_version = resp.http_version;
        reading.out.peer = resp.peer;
        reading.out.http_status = Some(resp.status);
        reading.out.provider_request_id = request_id(&resp.headers);
        reading.out.rate_limit =
            RateLimitInfo::from_headers(&resp.headers, resp.status, std::time::SystemTime::now());
        if !(200..300).contains(&resp.status) {
            reading.read_error(resp, &deadlines).await;
        } else if target.params.stream {
            reading
                .read_stream(resp, &deadlines, dialect, target.max_answer_bytes)
                .await;
        } else if let Some(bytes) = reading
            .collect(resp, &deadlines, target.max_answer_bytes)
            .await
        {
            if bytes.len() >= target.max_answer_bytes {
                reading.out.answer = text_of(bytes);
                reading.too_large(target.max_answer_bytes);
            } else {
                dialect.body(&mut reading, &bytes);
            }
        }
    }
    let mut out = reading.finish();
    // The clock the stamps came from; a call that got no response says the transport's own.
    out.clock = clock
        .as_ref()
        .map_or(transport.clock(), SocketClock::source);
    if let Some(e) = &mut out.error {
        e.message = scrub(&e.message, &secrets(target));
    }
    out
}

/// A cut body as text, in its own buffer (no copy) unless it is not UTF-8: a character the cut
/// split in two is dropped; bytes that are not UTF-8 at all become U+FFFD (a copy).
fn text_of(mut bytes: Vec<u8>) -> String {
    match std::str::from_utf8(&bytes) {
        Ok(_) => {}
        Err(e) if e.error_len().is_none() => bytes.truncate(e.valid_up_to()),
        Err(_) => return String::from_utf8_lossy(&bytes).into_owned(),
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// Appends `piece` to `text`, growing it as a `String` does (doubling) but never to more room
/// than `max` bytes: an answer cut at `max_answer_bytes` holds at most that much, where doubling
/// would have held up to twice it, and three times while it moved.
fn push_bounded(text: &mut String, piece: &str, max: usize) {
    let need = text.len() + piece.len();
    if need > text.capacity() {
        let room = (text.capacity() * 2).max(need).min(max.max(need));
        text.reserve_exact(room - text.len());
    }
    text.push_str(piece);
}

pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "request-id", "x-groq-id"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Events as (name, data), whatever the framing.
type EventStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<(String, String), String>> + Send>>;

/// The state of one response being read.
pub(crate) struct Reading {
    pub(crate) meter: Meter,
    pub(crate) out: CallOutcome,
    pub(crate) ended: Option<Instant>,
    /// The target's `max_answer_bytes`: the answer and reasoning texts never hold more room
    /// than this (their growth is capped, not doubled past it).
    pub(crate) max_answer: usize,
}

impl Reading {
    pub(crate) fn new(sent: Instant, streamed: bool) -> Self {
        Reading {
            meter: Meter::new(sent),
            out: CallOutcome::empty(Utc::now(), sent, streamed),
            ended: None,
            max_answer: usize::MAX,
        }
    }

    /// Adds a piece of the answer.
    pub(crate) fn push_answer(&mut self, piece: &str) {
        push_bounded(&mut self.out.answer, piece, self.max_answer);
    }

    /// Adds a piece of the reasoning.
    pub(crate) fn push_reasoning(&mut self, piece: &str) {
        push_bounded(&mut self.out.reasoning, piece, self.max_answer);
    }

    /// The response passed `max` bytes: reading stopped, what came is kept.
    pub(crate) fn too_large(&mut self, max: usize) {
        if self.out.answer.len() > max {
            let mut end = max;
            while !self.out.answer.is_char_boundary(end) {
                end -= 1;
            }
            self.out.answer.truncate(end);
        }
        self.fail(
            ErrorKind::AnswerTooLarge,
            format!("the response passed max_answer_bytes ({max} bytes): reading stopped there"),
        );
    }

    /// The request's first byte went out at `written` (stamped at the socket): the call's times
    /// (and `sent_at`) run from there rather than from when it was handed to the transport, so
    /// connection set-up (`connect_sec`) and the client's own queueing are not in them.
    pub(crate) fn sent_on_wire(&mut self, written: Instant) {
        let sent = self.meter.sent();
        if written > sent {
            self.meter.rebase(written);
            self.out.sent = written;
            let waited = written - sent;
            self.out.sent_at += chrono::Duration::from_std(waited).unwrap_or_default();
        }
    }

    pub(crate) fn fail(&mut self, kind: ErrorKind, message: String) {
        if self.out.error.is_none() {
            self.out.error = Some(CallError { kind, message });
        }
    }

    /// Adds one streamed piece of a tool call (or a whole one): pieces share an `index`; the
    /// first carries the id and name, the rest carry slices of the arguments.
    pub(crate) fn tool_call_piece(&mut self, piece: &Value) {
        let index = piece
            .get("index")
            .and_then(Value::as_u64)
            .map(|i| i as usize);
        let slot = match index {
            Some(i) => {
                while self.out.tool_calls.len() <= i {
                    self.out.tool_calls.push(ToolCall::default());
                }
                &mut self.out.tool_calls[i]
            }
            None => {
                self.out.tool_calls.push(ToolCall::default());
                let last = self.out.tool_calls.len() - 1;
                &mut self.out.tool_calls[last]
            }
        };
        if let Some(id) = piece.get("id").and_then(Value::as_str) {
            slot.id = id.to_string();
        }
        if let Some(f) = piece.get("function") {
            // OpenAI sends the name once; llama.cpp repeats it in every piece.
            if let Some(name) = f.get("name").and_then(Value::as_str)
                && slot.name != name
            {
                slot.name.push_str(name);
            }
            match f.get("arguments") {
                Some(Value::String(a)) => slot.arguments.push_str(a),
                Some(other) if !other.is_null() => slot.arguments.push_str(&other.to_string()),
                _ => {}
            }
        }
    }

    pub(crate) fn stream_error(&mut self, error: &Value) {
        let message = error_message(error).unwrap_or_else(|| error.to_string());
        let code = error.get("code").or_else(|| error.get("status"));
        let rate_limited = code.is_some_and(|c| c == 429 || c == "429")
            || error
                .get("type")
                .is_some_and(|t| t == "rate_limit_exceeded" || t == "rate_limit_error");
        let kind = if rate_limited {
            ErrorKind::RateLimited
        } else {
            ErrorKind::StreamError
        };
        self.fail(kind, format!("error event in the stream: {message}"));
    }

    /// Reads a stream, handing each event (an SSE event, or an NDJSON line) to `dialect`.
    /// Arrival instants are stamped where the bytes come in, before any parsing.
    pub(crate) async fn read_stream(
        &mut self,
        resp: RawResponse,
        deadlines: &Deadlines,
        dialect: &dyn Dialect,
        max_bytes: usize,
    ) {
        let sent = self.meter.sent();
        let stamp = Arc::new(AtomicU64::new(0));
        let stamper = stamp.clone();
        let clock = resp.clock.clone();
        // The arrival instant is taken first, before anything else touches the bytes (or read
        // from the socket's stamp of them).
        let stamped = resp.body.map(move |r| {
            let at = arrival(clock.as_ref()).saturating_duration_since(sent);
            stamper.store(at.as_nanos() as u64, Ordering::Relaxed);
            r
        });
        let tripped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let body = bounded(stamped, max_bytes, tripped.clone());
        let mut events: EventStream = match dialect.framing() {
            Framing::Sse => Box::pin(
                body.eventsource()
                    .map(|r| r.map(|e| (e.event, e.data)).map_err(|e| e.to_string())),
            ),
            Framing::Ndjson => Box::pin(
                ndjson_lines(body)
                    .map(|r| r.map(|line| ("message".to_string(), line)).map_err(|e| e.0)),
            ),
        };
        let mut done = false;
        let mut got_token = false;
        loop {
            let (limit, kind) = deadlines.next(got_token, self.ended);
            let event = match deadlines.within(limit, kind, events.next()).await {
                Err(kind) => {
                    self.ended = Some(Instant::now());
                    self.fail(kind, deadlines.message(kind));
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(_))) if tripped.load(Ordering::Relaxed) => {
                    self.ended = Some(Instant::now());
                    self.too_large(max_bytes);
                    break;
                }
                Ok(Some(Err(e))) => {
                    self.fail(ErrorKind::StreamBroken, format!("the stream broke: {e}"));
                    break;
                }
                Ok(Some(Ok(event))) => event,
            };
            let at = sent + Duration::from_nanos(stamp.load(Ordering::Relaxed));
            self.ended = Some(at);
            match dialect.event(self, &event.0, event.1.trim()) {
                Step::Skip => {}
                Step::Chunk(output) => {
                    got_token |= output != Output::Nothing;
                    self.meter.chunk(at, output);
                }
                Step::Done => {
                    done = true;
                    break;
                }
                Step::Stop => break,
            }
        }
        if self.out.error.is_none() && !done && self.out.finish_reason.is_none() {
            self.ended = Some(Instant::now());
            self.fail(
                ErrorKind::StreamBroken,
                "the stream ended before the answer was complete (no end event, no finish reason)"
                    .into(),
            );
        }
    }

    pub(crate) async fn read_error(&mut self, resp: RawResponse, deadlines: &Deadlines) {
        let status = resp.status;
        let retry_after = resp
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let location = resp
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(redirect_target);
        let bytes = self
            .collect(resp, deadlines, ERROR_BODY_LIMIT)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let detail = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| error_message(&v))
            .unwrap_or_else(|| truncate(text.trim(), 300));
        let mut message = if (300..400).contains(&status) {
            let to = location
                .as_deref()
                .unwrap_or("nowhere readable (no Location header)");
            format!(
                "HTTP {status}: the target redirects to {to}; plain-HTTP targets with the kernel \
                 or socket clock follow no redirect: set base_url to where it points, or \
                 clock = \"client\""
            )
        } else {
            format!("HTTP {status}: {detail}")
        };
        if let Some(r) = retry_after {
            message.push_str(&format!(" (retry-after: {r})"));
        }
        self.out.error = None;
        self.fail(ErrorKind::from_status(status), message);
    }

    /// Reads the whole body (at most `max` bytes). `None` when reading failed (recorded).
    pub(crate) async fn collect(
        &mut self,
        mut resp: RawResponse,
        deadlines: &Deadlines,
        max: usize,
    ) -> Option<Vec<u8>> {
        let clock = resp.clock.clone();
        let mut buf: Vec<u8> = Vec::new();
        // A whole body is one piece: only the total limit and the run's deadline apply.
        let (limit, kind) = deadlines.next(true, None);
        loop {
            match deadlines.within(limit, kind, resp.body.next()).await {
                Err(kind) => {
                    self.ended = Some(Instant::now());
                    self.fail(kind, deadlines.message(kind));
                    return None;
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    self.fail(ErrorKind::StreamBroken, format!("the body broke: {}", e.0));
                    return None;
                }
                Ok(Some(Ok(b))) => {
                    let room = max.saturating_sub(buf.len());
                    let piece = &b[..b.len().min(room)];
                    // Doubling, capped at `max`: a body cut there holds no more room than it.
                    if buf.len() + piece.len() > buf.capacity() {
                        let want = (buf.capacity() * 2).max(buf.len() + piece.len()).min(max);
                        buf.reserve_exact(want - buf.len());
                    }
                    buf.extend_from_slice(piece);
                    if buf.len() >= max {
                        break;
                    }
                }
            }
        }
        self.ended = Some(arrival(clock.as_ref()));
        Some(buf)
    }

    pub(crate) fn finish(mut self) -> CallOutcome {
        if self.out.error.is_none()
            && self.out.answer.trim().is_empty()
            && self.out.tool_calls.is_empty()
        {
            let why = match &self.out.finish_reason {
                Some(f) => format!("the answer is empty (finish_reason: {f})"),
                None => "the answer is empty".to_string(),
            };
            self.fail(ErrorKind::EmptyAnswer, why);
        }
        let end = self.ended.unwrap_or_else(Instant::now);
        self.out.timings = self.meter.finish(end);
        self.out.chunk_offsets = self.meter.into_chunk_offsets();
        self.out
    }
}
/// When the latest bytes of a response arrived: the socket's stamp when there is one, now
/// otherwise.
fn arrival(clock: Option<&SocketClock>) -> Instant {
    clock
        .and_then(SocketClock::arrived)
        .unwrap_or_else(Instant::now)
}

/// The human message of an error object: `{"error": {"message": …}}`, `{"error": "…"}` or
/// `{"message": …}`.
pub(crate) fn error_message(v: &Value) -> Option<String> {
    let e = v.get("error").unwrap_or(v);
    if let Some(s) = e.as_str() {
        return Some(s.to_string());
    }
    e.get("message").and_then(Value::as_str).map(str::to_string)
}

/// Where a `Location` header points, for an error message: without its query, fragment or
/// user info, which may carry tokens.
fn redirect_target(location: &str) -> String {
    let bare = location.split(['?', '#']).next().unwrap_or_default();
    let bare = match bare.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => bare.to_string(),
    };
    truncate(&bare, 300)
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

impl std::fmt::Display for super::BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for super::BodyError {}

#[cfg(test)]
mod tests {
    use super::redirect_target;

    #[test]
    fn a_redirect_target_is_named_without_user_info_query_or_fragment() {
        assert_eq!(
            redirect_target("https://user:secret@api.example.com:8443/v1/chat?token=abc#x"),
            "https://api.example.com:8443/v1/chat"
        );
        assert_eq!(
            redirect_target("/v2/chat/completions?k=1"),
            "/v2/chat/completions"
        );
        assert_eq!(redirect_target("https://a.example"), "https://a.example");
    }
}
