//! The simulator: an OpenAI-compatible chat server with exact, seeded timings and injected
//! faults. It is a product feature (`llmpulse sim`, `provider = "sim"`) and the ground truth the
//! measurement code is tested and benchmarked against.
//!
//! [`SimProfile`] says how a model behaves; [`SimState::plan`] turns one request into a
//! [`Reply`]: a status, headers, and a schedule of body events at exact offsets. The schedule is
//! played out either over HTTP ([`server`]) or in-process ([`inprocess`]) by the same
//! [`play`] function, which logs when each event was actually handed to the transport.

pub mod inprocess;
pub mod server;
mod wire;

pub use wire::Wire;
use wire::{Answer, Piece};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::Stream;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How a simulated model behaves. Every rate is a probability per request; at most one fault
/// is injected per request, so the fault rates may add up to at most 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimProfile {
    /// Time from the request to the first generated token (reasoning or answer), ms.
    pub ttft_ms: f64,
    /// Time between generated tokens, ms.
    pub itl_ms: f64,
    /// Relative random spread applied to every delay (0.1 = ±10%).
    pub jitter: f64,
    /// Tokens packed into one stream chunk.
    pub tokens_per_chunk: u32,
    /// Answer length in tokens (before `max_tokens`), ± `jitter`.
    pub output_tokens: u32,
    /// Reasoning tokens sent (as `reasoning_content`) before the answer.
    pub reasoning_tokens: u32,
    /// Report usage (in the stream only when the client asks with `stream_options`).
    pub usage: bool,
    /// Open the stream with a role-only chunk, as OpenAI does.
    pub role_chunk: bool,
    /// Share of the prompt's context sentences the answer repeats (drives coverage).
    pub recall: f64,
    /// Seed for every random choice.
    pub seed: u64,
    /// Rate of HTTP 429 replies with `Retry-After`.
    pub fault_429: f64,
    /// The `Retry-After` value sent with a 429, seconds.
    pub retry_after_sec: f64,
    /// Rate of HTTP 500 replies.
    pub fault_500: f64,
    /// Rate of streams cut (connection dropped) halfway through the answer.
    pub fault_cut: f64,
    /// Rate of streams with a malformed JSON chunk halfway through.
    pub fault_malformed: f64,
    /// Rate of 200 streams that carry an error event halfway through.
    pub fault_error_event: f64,
    /// Rate of replies whose headers come only after `slow_first_byte_ms`.
    pub fault_slow_first_byte: f64,
    pub slow_first_byte_ms: f64,
    /// Report a cost in usage (`usage.cost`, as OpenRouter does) at this price per million
    /// tokens; 0 reports none.
    pub cost_per_mtok: f64,
    /// The memory the model takes once loaded, reported by Ollama's `GET /api/ps`, MB; 0
    /// reports none.
    pub memory_mb: f64,
}

impl Default for SimProfile {
    fn default() -> Self {
        SimProfile {
            ttft_ms: 200.0,
            itl_ms: 10.0,
            jitter: 0.0,
            tokens_per_chunk: 1,
            output_tokens: 120,
            reasoning_tokens: 0,
            usage: true,
            role_chunk: true,
            recall: 0.8,
            seed: 0,
            fault_429: 0.0,
            retry_after_sec: 1.0,
            fault_500: 0.0,
            fault_cut: 0.0,
            fault_malformed: 0.0,
            fault_error_event: 0.0,
            fault_slow_first_byte: 0.0,
            slow_first_byte_ms: 2000.0,
            cost_per_mtok: 0.0,
            memory_mb: 0.0,
        }
    }
}

impl SimProfile {
    /// Checks ranges; the message names the offending setting.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("ttft_ms", self.ttft_ms),
            ("itl_ms", self.itl_ms),
            ("retry_after_sec", self.retry_after_sec),
            ("slow_first_byte_ms", self.slow_first_byte_ms),
            ("cost_per_mtok", self.cost_per_mtok),
            ("memory_mb", self.memory_mb),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(format!("{name} must be a non-negative number, found {v}"));
            }
        }
        for (name, v) in [("jitter", self.jitter), ("recall", self.recall)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be from 0 to 1, found {v}"));
            }
        }
        let rates = [
            ("fault_429", self.fault_429),
            ("fault_500", self.fault_500),
            ("fault_cut", self.fault_cut),
            ("fault_malformed", self.fault_malformed),
            ("fault_error_event", self.fault_error_event),
            ("fault_slow_first_byte", self.fault_slow_first_byte),
        ];
        for (name, v) in rates {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be a rate from 0 to 1, found {v}"));
            }
        }
        let total: f64 = rates.iter().map(|(_, v)| v).sum();
        if total > 1.0 + 1e-9 {
            return Err(format!(
                "the fault rates add up to {total}; at most one fault is injected per request, so they must add up to at most 1"
            ));
        }
        if self.tokens_per_chunk == 0 {
            return Err("tokens_per_chunk must be at least 1".into());
        }
        Ok(())
    }
}

/// A fault the simulator injects into one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    None,
    RateLimited,
    ServerError,
    Cut,
    Malformed,
    ErrorEvent,
    SlowFirstByte,
}

impl Fault {
    /// The fault named by an `x-sim-fault` request header value.
    pub fn from_header(value: &str) -> Option<Fault> {
        Some(match value {
            "none" => Fault::None,
            "429" | "rate_limited" => Fault::RateLimited,
            "500" | "server_error" => Fault::ServerError,
            "cut" => Fault::Cut,
            "malformed" => Fault::Malformed,
            "error_event" => Fault::ErrorEvent,
            "slow_first_byte" => Fault::SlowFirstByte,
            _ => return None,
        })
    }
}

/// The request header that forces a fault, whatever the profile's rates say.
pub const FAULT_HEADER: &str = "x-sim-fault";

/// One event of a reply body.
#[derive(Debug, Clone)]
pub enum Event {
    /// Bytes to send at the offset.
    Data(Bytes),
    /// Drop the connection at the offset.
    Cut,
}

/// What the simulator answers to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    /// When the headers go out, after the request arrived.
    pub headers_at: Duration,
    /// Body events and their offsets after the request arrived, ascending.
    pub events: Vec<(Duration, Event)>,
}

/// A log line per request: what was decided and when each body event actually went out.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub seq: u64,
    pub request_id: String,
    /// A hash of the request body: a retry of the same call has the same fingerprint.
    pub fingerprint: String,
    pub model: String,
    pub fault: Fault,
    pub status: u16,
    pub stream: bool,
    /// When the request arrived, milliseconds since the Unix epoch.
    pub received_unix_ms: f64,
    /// When the headers and each body event were handed to the transport, ms after arrival.
    pub headers_ms: Option<f64>,
    pub events_ms: Vec<f64>,
    #[serde(skip)]
    pub received: Option<Instant>,
}

impl LogEntry {
    /// The instant each body event went out (for in-process comparisons such as the benchmark).
    pub fn event_instants(&self) -> Vec<Instant> {
        let Some(r) = self.received else {
            return Vec::new();
        };
        self.events_ms
            .iter()
            .map(|ms| r + Duration::from_secs_f64(ms / 1000.0))
            .collect()
    }
}

/// A simulator's shared state: profiles by model, request counts (for deterministic seeds) and
/// the request log.
#[derive(Debug)]
pub struct SimState {
    default: SimProfile,
    models: HashMap<String, SimProfile>,
    seen: Mutex<HashMap<u64, u32>>,
    seq: std::sync::atomic::AtomicU64,
    log: Mutex<Vec<Arc<Mutex<LogEntry>>>>,
    keep_log: bool,
    /// Models asked so far: "loaded", as Ollama's `/api/ps` lists them.
    loaded: Mutex<std::collections::BTreeSet<String>>,
}

impl SimState {
    /// A simulator where every model behaves like `default`, except those in `models`.
    pub fn new(default: SimProfile, models: HashMap<String, SimProfile>, keep_log: bool) -> Self {
        SimState {
            default,
            models,
            seen: Mutex::new(HashMap::new()),
            seq: 0.into(),
            log: Mutex::new(Vec::new()),
            keep_log,
            loaded: Mutex::new(std::collections::BTreeSet::new()),
        }
    }

    /// The model names with their own profiles.
    pub fn model_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.models.keys().cloned().collect();
        names.sort();
        names
    }

    /// Ollama's `GET /api/ps` body: the models asked so far whose profile reports memory, with
    /// `size` (and `size_vram`, all of it) in bytes.
    pub fn ps(&self) -> serde_json::Value {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let models: Vec<serde_json::Value> = loaded
            .iter()
            .filter_map(|name| {
                let p = self.models.get(name).unwrap_or(&self.default);
                let bytes = (p.memory_mb * 1_048_576.0).round() as u64;
                (bytes > 0).then(|| {
                    serde_json::json!({
                        "name": name, "model": name, "size": bytes, "size_vram": bytes,
                        "digest": "sim", "expires_at": "2099-01-01T00:00:00Z",
                    })
                })
            })
            .collect();
        serde_json::json!({ "models": models })
    }

    /// A copy of the request log so far.
    pub fn log(&self) -> Vec<LogEntry> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter()
            .map(|e| e.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }

    /// Decides the reply to one request (`body` as sent, `forced` from [`FAULT_HEADER`]) and
    /// opens its log entry.
    pub fn plan(
        &self,
        wire: Wire,
        body: &[u8],
        forced: Option<Fault>,
    ) -> (Reply, Arc<Mutex<LogEntry>>) {
        let received = Instant::now();
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request_id = format!("sim-{seq}");
        let (reply, model, fault, stream) = match serde_json::from_slice::<ChatRequest>(body) {
            Ok(req) => {
                self.loaded
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(req.model.clone());
                let profile = self.models.get(&req.model).unwrap_or(&self.default);
                let mut rng = self.rng(profile.seed, body);
                let fault = forced.unwrap_or_else(|| pick_fault(profile, &mut rng));
                let reply = build_reply(wire, profile, &req, fault, &request_id, &mut rng);
                let stream = req.stream.unwrap_or(wire.streams_by_default());
                (reply, req.model, fault, stream)
            }
            Err(e) => (
                error_reply(400, &format!("invalid request body: {e}"), &request_id),
                String::new(),
                Fault::None,
                false,
            ),
        };
        let entry = Arc::new(Mutex::new(LogEntry {
            seq,
            request_id,
            fingerprint: format!("{:016x}", fnv1a(0, body)),
            model,
            fault,
            status: reply.status,
            stream,
            received_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            headers_ms: None,
            events_ms: Vec::with_capacity(reply.events.len()),
            received: Some(received),
        }));
        if self.keep_log {
            self.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(entry.clone());
        }
        (reply, entry)
    }

    /// A generator seeded by the profile seed, what the request asks (not how it wants it
    /// delivered: see [`content_key`]) and how many times this exact body was seen before: the
    /// same requests get the same replies, whatever their order, and the first streamed and the
    /// first plain request for a question get the same answer.
    fn rng(&self, seed: u64, body: &[u8]) -> ChaCha8Rng {
        let h = fnv1a(seed, &content_key(body));
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let n = seen.entry(fnv1a(seed, body)).or_insert(0);
        let occurrence = *n;
        *n += 1;
        ChaCha8Rng::seed_from_u64(h ^ u64::from(occurrence).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

/// The part of a request that decides its answer: everything but how it is delivered (`stream`,
/// `stream_options`). The same question gets the same answer, streamed or not.
fn content_key(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.remove("stream");
            map.remove("stream_options");
            serde_json::to_vec(&map).unwrap_or_else(|_| body.to_vec())
        }
        _ => body.to_vec(),
    }
}

fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn pick_fault(p: &SimProfile, rng: &mut ChaCha8Rng) -> Fault {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (rate, fault) in [
        (p.fault_429, Fault::RateLimited),
        (p.fault_500, Fault::ServerError),
        (p.fault_cut, Fault::Cut),
        (p.fault_malformed, Fault::Malformed),
        (p.fault_error_event, Fault::ErrorEvent),
        (p.fault_slow_first_byte, Fault::SlowFirstByte),
    ] {
        acc += rate;
        if u < acc {
            return fault;
        }
    }
    Fault::None
}

/// The parts of an OpenAI chat request the simulator reads.
#[derive(Debug, Deserialize)]
struct ChatRequest {
    model: String,
    /// Anthropic's system prompt (a string or text blocks).
    #[serde(default)]
    system: serde_json::Value,
    #[serde(default)]
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    response_format: Option<serde_json::Value>,
    #[serde(default)]
    tools: Vec<serde_json::Value>,
    #[serde(default)]
    tool_choice: Option<serde_json::Value>,
}

impl ChatRequest {
    /// The function the simulated model calls: the named `tool_choice`, else the first tool.
    fn tool_to_call(&self) -> Option<String> {
        if self.tool_choice.as_ref().is_some_and(|c| c == "none") {
            return None;
        }
        // OpenAI names a function as {function: {name}}, Anthropic as {type: "tool", name}.
        let name_of = |v: &serde_json::Value| {
            v.pointer("/function/name")
                .or_else(|| v.get("name"))
                .and_then(|n| n.as_str())
                .map(str::to_string)
        };
        if self
            .tool_choice
            .as_ref()
            .is_some_and(|c| c.get("type") == Some(&json!("none")))
        {
            return None;
        }
        self.tool_choice
            .as_ref()
            .and_then(name_of)
            .or_else(|| self.tools.first().and_then(name_of))
    }
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

fn message_text(m: &ChatMessage) -> String {
    match &m.content {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Splits text into simulated tokens: a word with its leading space, long words in pieces of
/// six characters. Concatenating the tokens gives the text back.
pub fn tokenize(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    let mut word_chars = 0;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                out.push(&text[start..i]);
                start = i;
                in_word = false;
            }
        } else {
            if in_word && word_chars == 6 {
                out.push(&text[start..i]);
                start = i;
                word_chars = 0;
            }
            if !in_word {
                in_word = true;
                word_chars = 0;
            }
            word_chars += 1;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

const FILLER: &str = "These figures come from the provided context and describe the period it covers. \
Taken together they show where the business stands and which trends matter most for the next quarter. ";

const REASONING: &str = "Let me read the context carefully and find the figures the question asks about, \
then check each one against the passages before I write the answer. ";

/// The answer text: context sentences kept with probability `recall`, then filler.
fn answer_text(prompt: &str, recall: f64, rng: &mut ChaCha8Rng) -> String {
    let mut answer = String::new();
    for line in prompt.lines() {
        let line = line.trim();
        let line = match line.strip_prefix('[') {
            Some(rest) => rest.split_once("] ").map_or(line, |(_, s)| s),
            None => line,
        };
        if line.is_empty()
            || line.ends_with(':')
            || line.starts_with("Question:")
            || line.starts_with("Use only")
        {
            continue;
        }
        for sentence in line.split_inclusive(". ") {
            if rng.random::<f64>() < recall {
                answer.push_str(sentence.trim());
                answer.push(' ');
            }
        }
    }
    if answer.is_empty() {
        answer.push_str("The context does not contain enough information to answer that. ");
    }
    answer
}

fn jittered(ms: f64, jitter: f64, rng: &mut ChaCha8Rng) -> Duration {
    let factor = if jitter > 0.0 {
        1.0 + rng.random_range(-jitter..=jitter)
    } else {
        1.0
    };
    Duration::from_secs_f64((ms * factor).max(0.0) / 1000.0)
}

fn error_reply(status: u16, message: &str, request_id: &str) -> Reply {
    let body = json!({"error": {"message": message, "type": "sim_error", "code": status}});
    Reply {
        status,
        headers: vec![("x-request-id", request_id.to_string())],
        content_type: "application/json",
        headers_at: Duration::ZERO,
        events: vec![(Duration::ZERO, Event::Data(Bytes::from(body.to_string())))],
    }
}

fn build_reply(
    wire: Wire,
    p: &SimProfile,
    req: &ChatRequest,
    fault: Fault,
    request_id: &str,
    rng: &mut ChaCha8Rng,
) -> Reply {
    match fault {
        Fault::RateLimited => {
            let mut r = error_reply(429, "Rate limit reached (simulated)", request_id);
            r.headers.push((
                "retry-after",
                format!("{}", p.retry_after_sec.ceil() as u64),
            ));
            r.headers.push((
                "retry-after-ms",
                format!("{}", (p.retry_after_sec * 1000.0).round() as u64),
            ));
            return r;
        }
        Fault::ServerError => {
            return error_reply(500, "Internal server error (simulated)", request_id);
        }
        _ => {}
    }

    let prompt = req
        .messages
        .iter()
        .filter(|m| m.role == "user")
        .map(message_text)
        .next_back()
        .unwrap_or_default();
    let all_text: String = std::iter::once(message_text(&ChatMessage {
        role: "system".into(),
        content: req.system.clone(),
    }))
    .chain(req.messages.iter().map(message_text))
    .collect::<Vec<_>>()
    .join("\n");
    let prompt_tokens = tokenize(&all_text).len() as u32;

    let mut text = answer_text(&prompt, p.recall, rng);
    let spread = (f64::from(p.output_tokens) * p.jitter).round() as i64;
    let wanted = (i64::from(p.output_tokens) + rng.random_range(-spread..=spread)).max(1) as usize;
    while tokenize(&text).len() < wanted {
        text.push_str(FILLER);
    }
    let limit = req
        .max_completion_tokens
        .or(req.max_tokens)
        .map(|m| m as usize);
    let (n_answer, finish) = match limit {
        Some(l) if l < wanted => (l, "length"),
        _ => (wanted, "stop"),
    };
    let mut reasoning_text = String::new();
    while tokenize(&reasoning_text).len() < p.reasoning_tokens as usize {
        reasoning_text.push_str(REASONING);
    }
    let reasoning: Vec<&str> = tokenize(&reasoning_text)
        .into_iter()
        .take(p.reasoning_tokens as usize)
        .collect();
    let mut answer: Vec<&str> = tokenize(&text).into_iter().take(n_answer).collect();
    // Structured output: the answer wrapped in a JSON object. Tool use: a call instead of text.
    let json_text;
    if req.response_format.is_some() {
        json_text = json!({ "answer": answer.concat().trim() }).to_string();
        answer = tokenize(&json_text);
    }
    let tool = req.tool_to_call();
    let args_text;
    let mut finish = finish;
    let mut tool_args: Vec<&str> = Vec::new();
    if tool.is_some() {
        let question = prompt.lines().last().unwrap_or_default();
        args_text = json!({ "query": question.chars().take(60).collect::<String>() }).to_string();
        tool_args = tokenize(&args_text);
        answer = Vec::new();
        finish = "tool_calls";
    }
    let call_id = format!("call_{request_id}");
    let completion_tokens = (reasoning.len() + answer.len() + tool_args.len()) as u32;

    let start = if fault == Fault::SlowFirstByte {
        jittered(p.slow_first_byte_ms, p.jitter, rng)
    } else {
        Duration::ZERO
    };
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let headers = vec![("x-request-id", request_id.to_string())];

    // Token times: the first at ttft, then one every itl.
    let n_tokens = reasoning.len() + answer.len() + tool_args.len();
    let mut times = Vec::with_capacity(n_tokens);
    let mut t = start + jittered(p.ttft_ms, p.jitter, rng);
    for i in 0..n_tokens {
        if i > 0 {
            t += jittered(p.itl_ms, p.jitter, rng);
        }
        times.push(t);
    }
    let end = times.last().copied().unwrap_or(start);

    // The neutral pieces of the answer, each at the time of its last token.
    let per = p.tokens_per_chunk as usize;
    let mut pieces: Vec<(Duration, Piece)> = Vec::with_capacity(n_tokens / per + 2);
    let mut offset = 0;
    for (j, group) in reasoning.chunks(per).enumerate() {
        pieces.push((
            times[offset + j * per + group.len() - 1],
            Piece::Reasoning(group.concat()),
        ));
    }
    offset += reasoning.len();
    for (j, group) in answer.chunks(per).enumerate() {
        pieces.push((
            times[offset + j * per + group.len() - 1],
            Piece::Answer(group.concat()),
        ));
    }
    offset += answer.len();
    if let Some(name) = &tool {
        for (j, group) in tool_args.chunks(per).enumerate() {
            let at = times[offset + j * per + group.len() - 1];
            let piece = if j == 0 {
                Piece::ToolStart {
                    id: call_id.clone(),
                    name: name.clone(),
                    args: group.concat(),
                }
            } else {
                Piece::ToolArgs(group.concat())
            };
            pieces.push((at, piece));
        }
    }
    let answer = Answer {
        request_id,
        model: &req.model,
        created,
        pieces,
        finish,
        prompt_tokens,
        completion_tokens,
        reasoning_tokens: reasoning.len() as u32,
        usage: p.usage,
        include_usage: req.stream_options.as_ref().is_some_and(|o| o.include_usage)
            || wire == Wire::Anthropic,
        role_chunk: p.role_chunk,
        start,
        end,
        fault,
        cost_usd: (p.cost_per_mtok > 0.0)
            .then(|| f64::from(prompt_tokens + completion_tokens) * p.cost_per_mtok / 1e6),
    };
    if !req.stream.unwrap_or(wire.streams_by_default()) {
        return Reply {
            status: 200,
            headers,
            content_type: "application/json",
            headers_at: end,
            events: vec![(end, Event::Data(wire.body(&answer)))],
        };
    }
    Reply {
        status: 200,
        headers,
        content_type: wire.stream_content_type(),
        headers_at: start,
        events: wire.stream(&answer),
    }
}

/// The connection was dropped on purpose.
#[derive(Debug)]
pub struct Cut;

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the simulator")
    }
}

impl std::error::Error for Cut {}

/// Plays a reply's body events at their offsets from `received`, logging when each went out.
pub fn play(
    events: Vec<(Duration, Event)>,
    received: Instant,
    log: Arc<Mutex<LogEntry>>,
) -> impl Stream<Item = Result<Bytes, Cut>> + Send + 'static {
    let received = tokio::time::Instant::from_std(received);
    futures_util::stream::unfold((events.into_iter(), false), move |(mut it, done)| {
        let log = log.clone();
        async move {
            if done {
                return None;
            }
            let (at, event) = it.next()?;
            tokio::time::sleep_until(received + at).await;
            let sent_ms = received.elapsed().as_secs_f64() * 1000.0;
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .events_ms
                .push(sent_ms);
            match event {
                Event::Data(b) => Some((Ok(b), (it, false))),
                Event::Cut => Some((Err(Cut), (it, true))),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(p: SimProfile) -> SimState {
        SimState::new(p, HashMap::new(), true)
    }

    fn body(stream: bool) -> Vec<u8> {
        json!({
            "model": "m", "stream": stream, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Context:\n[1] Sales were 5 million. Costs were 3 million.\n\nQuestion: What were sales?"}],
        })
        .to_string()
        .into_bytes()
    }

    fn data(events: &[(Duration, Event)]) -> Vec<String> {
        events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Data(b) => Some(String::from_utf8_lossy(b).into_owned()),
                Event::Cut => None,
            })
            .collect()
    }

    #[test]
    fn tokenize_round_trips() {
        let text = "Revenue rose 14% in extraordinary circumstances.";
        let toks = tokenize(text);
        assert_eq!(toks.concat(), text);
        assert_eq!(&toks[..3], ["Revenu", "e", " rose"]);
        assert!(toks.iter().all(|t| t.trim().chars().count() <= 6));
    }

    #[test]
    fn stream_schedule_follows_the_profile() {
        let p = SimProfile {
            ttft_ms: 100.0,
            itl_ms: 10.0,
            output_tokens: 20,
            tokens_per_chunk: 2,
            ..Default::default()
        };
        let (reply, _) = state(p).plan(Wire::OpenAi, &body(true), None);
        assert_eq!(reply.status, 200);
        let d = data(&reply.events);
        assert!(d[0].contains("\"role\":\"assistant\""));
        assert!(d.last().unwrap().contains("[DONE]"));
        assert!(d.iter().any(|c| c.contains("\"usage\"")));
        // role chunk at 0, first content chunk when its 2nd token is due: 100 + 10 ms
        assert_eq!(reply.events[1].0, Duration::from_millis(110));
        // 20 tokens: the last at 100 + 19 * 10 ms
        assert_eq!(reply.events.last().unwrap().0, Duration::from_millis(290));
        // 10 content chunks
        assert_eq!(
            d.iter()
                .filter(|c| c.contains("\"content\":\"") && !c.contains("\"role\""))
                .count(),
            10
        );
    }

    #[test]
    fn faults_can_be_forced() {
        let s = state(SimProfile::default());
        let (r, _) = s.plan(Wire::OpenAi, &body(true), Some(Fault::RateLimited));
        assert_eq!(r.status, 429);
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| *k == "retry-after" && v == "1")
        );
        let (r, _) = s.plan(Wire::OpenAi, &body(true), Some(Fault::Cut));
        assert!(matches!(r.events.last().unwrap().1, Event::Cut));
        let (r, _) = s.plan(Wire::OpenAi, &body(true), Some(Fault::ErrorEvent));
        assert!(data(&r.events).last().unwrap().contains("\"error\""));
    }

    #[test]
    fn same_requests_get_the_same_replies() {
        let p = SimProfile {
            jitter: 0.3,
            fault_cut: 0.5,
            seed: 7,
            ..Default::default()
        };
        let a = state(p.clone());
        let b = state(p);
        for _ in 0..10 {
            let (ra, _) = a.plan(Wire::OpenAi, &body(true), None);
            let (rb, _) = b.plan(Wire::OpenAi, &body(true), None);
            let times = |r: &Reply| r.events.iter().map(|(t, _)| *t).collect::<Vec<_>>();
            assert_eq!(times(&ra), times(&rb));
        }
    }

    #[test]
    fn streamed_or_not_the_same_question_gets_the_same_answer() {
        let p = SimProfile {
            recall: 0.5,
            seed: 9,
            ..Default::default()
        };
        for _ in 0..5 {
            let s = state(p.clone());
            let text = |r: &Reply| {
                data(&r.events)
                    .iter()
                    .map(|d| {
                        d.split("\"content\":\"")
                            .nth(1)
                            .and_then(|c| c.split('"').next())
                            .unwrap_or_default()
                            .to_string()
                    })
                    .collect::<String>()
            };
            let (streamed, _) = s.plan(Wire::OpenAi, &body(true), None);
            let (plain, _) = s.plan(Wire::OpenAi, &body(false), None);
            assert_eq!(text(&streamed), text(&plain));
        }
    }

    #[test]
    fn fault_rates_must_add_up_to_at_most_one() {
        let p = SimProfile {
            fault_429: 0.6,
            fault_cut: 0.6,
            ..Default::default()
        };
        assert!(p.validate().unwrap_err().contains("add up to"));
    }

    #[test]
    fn usage_counts_tokens_of_the_answer() {
        let p = SimProfile {
            output_tokens: 30,
            reasoning_tokens: 5,
            ..Default::default()
        };
        let (r, _) = state(p).plan(Wire::OpenAi, &body(false), None);
        let d = data(&r.events);
        let v: serde_json::Value = serde_json::from_str(&d[0]).unwrap();
        assert_eq!(v["usage"]["completion_tokens"], 35);
        assert_eq!(
            v["usage"]["completion_tokens_details"]["reasoning_tokens"],
            5
        );
        let content = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert_eq!(tokenize(content).len(), 30);
    }

    #[test]
    fn tools_get_a_streamed_call_and_schemas_a_json_answer() {
        let mut b: serde_json::Value = serde_json::from_slice(&body(true)).unwrap();
        b["tools"] =
            json!([{"type": "function", "function": {"name": "lookup", "parameters": {}}}]);
        let (r, _) =
            state(SimProfile::default()).plan(Wire::OpenAi, b.to_string().as_bytes(), None);
        let d = data(&r.events);
        assert!(d.iter().any(|c| c.contains("\"name\":\"lookup\"")));
        assert!(
            d.iter()
                .any(|c| c.contains("\"finish_reason\":\"tool_calls\""))
        );

        let mut b: serde_json::Value = serde_json::from_slice(&body(false)).unwrap();
        b["response_format"] = json!({"type": "json_object"});
        let (r, _) =
            state(SimProfile::default()).plan(Wire::OpenAi, b.to_string().as_bytes(), None);
        let v: serde_json::Value = serde_json::from_str(&data(&r.events)[0]).unwrap();
        let content = v["choices"][0]["message"]["content"].as_str().unwrap();
        let parsed: serde_json::Value = serde_json::from_str(content).unwrap();
        assert!(parsed["answer"].is_string());
    }

    #[test]
    fn max_tokens_cuts_with_finish_reason_length() {
        let mut b: serde_json::Value = serde_json::from_slice(&body(false)).unwrap();
        b["max_tokens"] = json!(7);
        let (r, _) =
            state(SimProfile::default()).plan(Wire::OpenAi, b.to_string().as_bytes(), None);
        let v: serde_json::Value = serde_json::from_str(&data(&r.events)[0]).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["completion_tokens"], 7);
    }
}
