//! The OpenAI chat-completions protocol, streaming (SSE) and not: the request body, and the
//! reading of answers, usage and errors as they arrive. Every OpenAI-compatible service goes
//! through here (Groq, OpenRouter, vLLM, llama.cpp, Ollama, LM Studio, Exo, the simulator).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chrono::Utc;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::timeout_at;

use super::{
    CallError, CallOutcome, HttpRequest, RawResponse, ToolCall, Transport, TransportError, Usage,
};
use crate::config::{JsonMode, Target};
use crate::error_kind::ErrorKind;
use crate::measure::{Meter, Output};
use crate::retry::RateLimitInfo;
use crate::secret::{Secret, scrub};
use crate::suite::Prompt;

/// The most of an error body kept for its message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// The JSON body of a chat-completions request for `target`.
pub fn request_body(target: &Target, prompt: &Prompt) -> Value {
    let p = &target.params;
    let mut body = json!({
        "model": target.model,
        "messages": prompt.messages,
        "stream": p.stream,
    });
    if let Some(schema) = &prompt.schema {
        body["response_format"] = match p.json_mode {
            JsonMode::JsonSchema => json!({
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": true},
            }),
            JsonMode::JsonObject => json!({"type": "json_object", "schema": schema}),
        };
    }
    if !prompt.tools.is_empty() {
        body["tools"] = json!(prompt.tools);
        if let Some(choice) = &prompt.tool_choice {
            body["tool_choice"] = choice.clone();
        }
    }
    if p.stream && p.stream_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    if let Some(t) = p.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(m) = p.max_tokens {
        body["max_tokens"] = json!(m);
    }
    if let Some(t) = p.top_p {
        body["top_p"] = json!(t);
    }
    if let Some(s) = p.seed {
        body["seed"] = json!(s);
    }
    if let Value::Object(map) = &mut body {
        for (k, v) in &target.extra {
            map.insert(k.clone(), v.clone());
        }
    }
    body
}

fn request_headers(target: &Target) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if target.params.stream {
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    }
    if let Some(key) = &target.api_key
        && let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
    {
        v.set_sensitive(true);
        headers.insert(AUTHORIZATION, v);
    }
    for (k, v) in &target.headers {
        if let (Ok(name), Ok(mut value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v.expose()),
        ) {
            value.set_sensitive(true);
            headers.insert(name, value);
        }
    }
    headers
}

fn secrets(target: &Target) -> Vec<&Secret> {
    target
        .api_key
        .iter()
        .chain(target.headers.iter().map(|(_, v)| v))
        .collect()
}

/// Sends one chat request for `target` over `transport` and measures the answer. `run_deadline`
/// cancels the call when the run must end.
pub async fn call(
    target: &Target,
    transport: &dyn Transport,
    prompt: &Prompt,
    run_deadline: Option<Instant>,
) -> CallOutcome {
    let body = request_body(target, prompt).to_string().into_bytes();
    let request = HttpRequest {
        path: "/chat/completions",
        headers: request_headers(target),
        body,
    };
    let sent_at = Utc::now();
    let sent = Instant::now();
    let mut reading = Reading::new(sent, target.params.stream);
    reading.out.sent_at = sent_at;
    let deadlines = Deadlines::new(target, sent, run_deadline);

    let (limit, kind) = deadlines.next(false, None);
    let response = match timeout_at(limit.into(), transport.send(request)).await {
        Err(_) => {
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
                TransportError::Request(m) => (ErrorKind::Request, m),
            };
            reading.fail(kind, message);
            None
        }
        Ok(Ok(r)) => Some(r),
    };
    if let Some(resp) = response {
        reading.meter.headers(Instant::now());
        reading.out.http_status = Some(resp.status);
        reading.out.provider_request_id = request_id(&resp.headers);
        reading.out.rate_limit =
            RateLimitInfo::from_headers(&resp.headers, resp.status, std::time::SystemTime::now());
        if !(200..300).contains(&resp.status) {
            reading.read_error(resp, &deadlines).await;
        } else if target.params.stream {
            reading.read_stream(resp, &deadlines).await;
        } else {
            reading.read_json(resp, &deadlines).await;
        }
    }
    let mut out = reading.finish();
    if let Some(e) = &mut out.error {
        e.message = scrub(&e.message, &secrets(target));
    }
    out
}

/// The time limits of one call, and which `error_kind` each gives.
struct Deadlines {
    sent: Instant,
    total: Instant,
    run: Option<Instant>,
    first_token: Option<Duration>,
    idle: Option<Duration>,
    limits: crate::config::Timeouts,
}

impl Deadlines {
    fn new(target: &Target, sent: Instant, run: Option<Instant>) -> Self {
        let t = &target.timeouts;
        Deadlines {
            sent,
            total: sent + t.total,
            run,
            first_token: t.first_token,
            idle: t.idle,
            limits: t.clone(),
        }
    }

    /// The next limit that can fire: before the first token, after activity at `last`.
    fn next(&self, got_token: bool, last: Option<Instant>) -> (Instant, ErrorKind) {
        let mut best = (self.total, ErrorKind::Timeout);
        let mut consider = |at: Instant, kind| {
            if at < best.0 {
                best = (at, kind);
            }
        };
        if let Some(run) = self.run {
            consider(run, ErrorKind::Deadline);
        }
        if !got_token && let Some(ft) = self.first_token {
            consider(self.sent + ft, ErrorKind::FirstTokenTimeout);
        }
        if got_token && let (Some(idle), Some(last)) = (self.idle, last) {
            consider(last + idle, ErrorKind::IdleTimeout);
        }
        best
    }

    fn message(&self, kind: ErrorKind) -> String {
        match kind {
            ErrorKind::Deadline => "cancelled: the run's deadline was reached".into(),
            ErrorKind::FirstTokenTimeout => format!(
                "no generated token within {:?}",
                self.first_token.unwrap_or_default()
            ),
            ErrorKind::IdleTimeout => format!(
                "the stream was silent for more than {:?}",
                self.idle.unwrap_or_default()
            ),
            ErrorKind::ConnectTimeout => {
                format!("no connection within {:?}", self.limits.connect)
            }
            _ => format!("the answer was not complete within {:?}", self.limits.total),
        }
    }
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "request-id", "x-groq-id"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The state of one response being read.
struct Reading {
    meter: Meter,
    out: CallOutcome,
    ended: Option<Instant>,
}

#[derive(Deserialize)]
struct ChunkWire {
    #[serde(default)]
    choices: Vec<ChoiceWire>,
    #[serde(default)]
    usage: Option<UsageWire>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChoiceWire {
    #[serde(default)]
    delta: Option<MessageWire>,
    #[serde(default)]
    message: Option<MessageWire>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct MessageWire {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct UsageWire {
    #[serde(default)]
    prompt_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens_details: Option<DetailsWire>,
}

#[derive(Deserialize)]
struct DetailsWire {
    #[serde(default)]
    reasoning_tokens: Option<u32>,
}

impl From<UsageWire> for Usage {
    fn from(u: UsageWire) -> Self {
        Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            reasoning_tokens: u.completion_tokens_details.and_then(|d| d.reasoning_tokens),
        }
    }
}

impl Reading {
    fn new(sent: Instant, streamed: bool) -> Self {
        Reading {
            meter: Meter::new(sent),
            out: CallOutcome {
                sent_at: Utc::now(),
                sent,
                chunk_offsets: Vec::new(),
                timings: Default::default(),
                streamed,
                answer: String::new(),
                reasoning: String::new(),
                usage: None,
                finish_reason: None,
                http_status: None,
                provider_request_id: None,
                rate_limit: RateLimitInfo::default(),
                tool_calls: Vec::new(),
                error: None,
            },
            ended: None,
        }
    }

    fn fail(&mut self, kind: ErrorKind, message: String) {
        if self.out.error.is_none() {
            self.out.error = Some(CallError { kind, message });
        }
    }

    /// Applies one message or delta; returns what it carried.
    fn apply(&mut self, m: MessageWire) -> Output {
        let mut output = Output::Nothing;
        if let Some(r) = m
            .reasoning_content
            .or(m.reasoning)
            .filter(|r| !r.is_empty())
        {
            self.out.reasoning.push_str(&r);
            output = Output::Reasoning;
        }
        for piece in m.tool_calls.unwrap_or_default() {
            self.tool_call_piece(&piece);
            output = Output::ToolCall;
        }
        if let Some(c) = m.content.filter(|c| !c.is_empty()) {
            self.out.answer.push_str(&c);
            output = Output::Answer;
        }
        output
    }

    /// Adds one streamed piece of a tool call (or a whole one): pieces share an `index`; the
    /// first carries the id and name, the rest carry slices of the arguments.
    fn tool_call_piece(&mut self, piece: &Value) {
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

    fn stream_error(&mut self, error: &Value) {
        let message = error_message(error).unwrap_or_else(|| error.to_string());
        let code = error.get("code").or_else(|| error.get("status"));
        let rate_limited = code.is_some_and(|c| c == 429 || c == "429")
            || error
                .get("type")
                .is_some_and(|t| t == "rate_limit_exceeded");
        let kind = if rate_limited {
            ErrorKind::RateLimited
        } else {
            ErrorKind::StreamError
        };
        self.fail(kind, format!("error event in the stream: {message}"));
    }

    async fn read_stream(&mut self, resp: RawResponse, deadlines: &Deadlines) {
        // The instant the latest bytes arrived, stamped before any parsing, in ns after `sent`.
        let sent = self.meter.sent();
        let stamp = Arc::new(AtomicU64::new(0));
        let stamper = stamp.clone();
        let body = resp.body.map(move |r| {
            stamper.store(sent.elapsed().as_nanos() as u64, Ordering::Relaxed);
            r
        });
        let mut events = body.eventsource();
        let mut done = false;
        let mut got_token = false;
        loop {
            let (limit, kind) = deadlines.next(got_token, self.ended);
            let event = match timeout_at(limit.into(), events.next()).await {
                Err(_) => {
                    self.ended = Some(Instant::now());
                    self.fail(kind, deadlines.message(kind));
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    self.fail(ErrorKind::StreamBroken, format!("the stream broke: {e}"));
                    break;
                }
                Ok(Some(Ok(event))) => event,
            };
            let at = sent + Duration::from_nanos(stamp.load(Ordering::Relaxed));
            self.ended = Some(at);
            let data = event.data.trim();
            if data == "[DONE]" {
                done = true;
                break;
            }
            if data.is_empty() {
                continue;
            }
            let chunk: ChunkWire = match serde_json::from_str(data) {
                Ok(c) => c,
                Err(e) => {
                    if event.event == "error" {
                        self.stream_error(&json!({ "message": data }));
                    } else {
                        self.fail(
                            ErrorKind::BadResponse,
                            format!("malformed stream chunk ({e}): {}", truncate(data, 200)),
                        );
                    }
                    break;
                }
            };
            if let Some(error) = chunk.error {
                let error = error.get("error").cloned().unwrap_or(error);
                self.stream_error(&error);
                break;
            }
            let mut output = Output::Nothing;
            for choice in chunk.choices {
                if let Some(delta) = choice.delta.or(choice.message) {
                    let o = self.apply(delta);
                    if o != Output::Nothing {
                        output = o;
                    }
                }
                if choice.finish_reason.is_some() {
                    self.out.finish_reason = choice.finish_reason;
                }
            }
            if let Some(u) = chunk.usage {
                self.out.usage = Some(u.into());
            }
            got_token |= output != Output::Nothing;
            self.meter.chunk(at, output);
        }
        if self.out.error.is_none() && !done && self.out.finish_reason.is_none() {
            self.ended = Some(Instant::now());
            self.fail(
                ErrorKind::StreamBroken,
                "the stream ended before the answer was complete (no finish_reason, no [DONE])"
                    .into(),
            );
        }
    }

    async fn read_json(&mut self, resp: RawResponse, deadlines: &Deadlines) {
        let Some(bytes) = self.collect(resp, deadlines, usize::MAX).await else {
            return;
        };
        let parsed: ChunkWire = match serde_json::from_slice(&bytes) {
            Ok(c) => c,
            Err(e) => {
                self.fail(
                    ErrorKind::BadResponse,
                    format!(
                        "the response is not a chat completion ({e}): {}",
                        truncate(&String::from_utf8_lossy(&bytes), 200)
                    ),
                );
                return;
            }
        };
        if let Some(error) = parsed.error {
            let error = error.get("error").cloned().unwrap_or(error);
            self.stream_error(&error);
            return;
        }
        let Some(choice) = parsed.choices.into_iter().next() else {
            self.fail(ErrorKind::BadResponse, "the response has no choices".into());
            return;
        };
        if let Some(m) = choice.message.or(choice.delta) {
            self.apply(m);
        }
        self.out.finish_reason = choice.finish_reason;
        self.out.usage = parsed.usage.map(Into::into);
    }

    async fn read_error(&mut self, resp: RawResponse, deadlines: &Deadlines) {
        let status = resp.status;
        let retry_after = resp
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = self
            .collect(resp, deadlines, ERROR_BODY_LIMIT)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let detail = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| error_message(&v))
            .unwrap_or_else(|| truncate(text.trim(), 300));
        let mut message = format!("HTTP {status}: {detail}");
        if let Some(r) = retry_after {
            message.push_str(&format!(" (retry-after: {r})"));
        }
        self.out.error = None;
        self.fail(ErrorKind::from_status(status), message);
    }

    /// Reads the whole body (at most `max` bytes). `None` when reading failed (recorded).
    async fn collect(
        &mut self,
        mut resp: RawResponse,
        deadlines: &Deadlines,
        max: usize,
    ) -> Option<BytesMut> {
        let mut buf = BytesMut::new();
        // A whole body is one piece: only the total limit and the run's deadline apply.
        let (limit, kind) = deadlines.next(true, None);
        loop {
            match timeout_at(limit.into(), resp.body.next()).await {
                Err(_) => {
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
                    buf.extend_from_slice(&b[..b.len().min(room)]);
                    if buf.len() >= max {
                        break;
                    }
                }
            }
        }
        self.ended = Some(Instant::now());
        Some(buf)
    }

    fn finish(mut self) -> CallOutcome {
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

/// The human message of an error object: `{"error": {"message": …}}`, `{"error": "…"}` or
/// `{"message": …}`.
fn error_message(v: &Value) -> Option<String> {
    let e = v.get("error").unwrap_or(v);
    if let Some(s) = e.as_str() {
        return Some(s.to_string());
    }
    e.get("message").and_then(Value::as_str).map(str::to_string)
}

fn truncate(s: &str, max: usize) -> String {
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
    use super::*;

    fn apply(r: &mut Reading, delta: Value) {
        let m: MessageWire = serde_json::from_value(delta).unwrap();
        r.apply(m);
    }

    #[test]
    fn tool_call_pieces_assemble_openai_style() {
        let mut r = Reading::new(Instant::now(), true);
        apply(
            &mut r,
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}]}),
        );
        apply(
            &mut r,
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
        );
        apply(
            &mut r,
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
        );
        assert_eq!(r.out.tool_calls.len(), 1);
        let c = &r.out.tool_calls[0];
        assert_eq!((c.id.as_str(), c.name.as_str()), ("call_1", "get_weather"));
        assert_eq!(c.arguments, "{\"city\":\"Paris\"}");
    }

    #[test]
    fn tool_call_pieces_assemble_llama_cpp_style() {
        // llama.cpp repeats the id and the name in every piece, and sends nulls.
        let mut r = Reading::new(Instant::now(), true);
        for piece in ["{", " \"city\": \"", "Paris\"}"] {
            apply(
                &mut r,
                json!({"role": null, "content": null, "tool_calls": [{"index": 0,
                "id": "call__0", "type": "function",
                "function": {"name": "get_weather", "arguments": piece}}]}),
            );
        }
        apply(
            &mut r,
            json!({"role": "assistant", "content": null, "tool_calls": null}),
        );
        let c = &r.out.tool_calls[0];
        assert_eq!(c.name, "get_weather");
        assert_eq!(c.arguments, "{ \"city\": \"Paris\"}");
    }

    #[test]
    fn request_body_sends_schema_the_way_the_target_takes_it() {
        let cfg = crate::config::Config::parse(
            "[[targets]]\nname = \"a\"\nprovider = \"llamacpp\"\nmodel = \"m\"\n\
             [[targets]]\nname = \"b\"\nprovider = \"openai-compatible\"\nbase_url = \"http://x/v1\"\nmodel = \"m\"\n",
            "t.toml",
            ".".into(),
            &|_| None,
        )
        .unwrap();
        let prompt = Prompt {
            schema: Some(json!({"type": "object"})),
            ..Prompt::messages(vec![])
        };
        let a = request_body(&cfg.targets[0], &prompt);
        assert_eq!(
            a["response_format"],
            json!({"type": "json_object", "schema": {"type": "object"}})
        );
        let b = request_body(&cfg.targets[1], &prompt);
        assert_eq!(b["response_format"]["type"], "json_schema");
        assert_eq!(
            b["response_format"]["json_schema"]["schema"],
            json!({"type": "object"})
        );
        assert_eq!(b["stream_options"], json!({"include_usage": true}));
    }
}
