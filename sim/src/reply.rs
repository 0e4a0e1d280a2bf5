//! One reply: the status, headers and body events at their offsets, with its fault injected.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::answer::{FILLER, REASONING, answer_text, jittered, tokenize};
use crate::profile::{Fault, SimProfile};
use crate::request::{ChatMessage, ChatRequest, message_text};
use crate::schedule::{Event, Reply};
use crate::wire::{Answer, Piece, Wire};

pub(crate) fn error_reply(status: u16, message: &str, request_id: &str) -> Reply {
    let body = json!({"error": {"message": message, "type": "sim_error", "code": status}});
    Reply {
        status,
        headers: vec![("x-request-id", request_id.to_string())],
        content_type: "application/json",
        headers_at: Duration::ZERO,
        events: vec![(Duration::ZERO, Event::Data(Bytes::from(body.to_string())))],
    }
}

pub(crate) fn build_reply(
    wire: Wire,
    p: &SimProfile,
    req: &ChatRequest,
    fault: Fault,
    request_id: &str,
    rng: &mut ChaCha8Rng,
    scripted: Option<&str>,
) -> Reply {
    if let Some(reply) = fault_reply(wire, p, req, fault, request_id) {
        return reply;
    }

    let (prompt, prompt_tokens) = prompt_of(req);

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
    let reasoning_text = reasoning_text(p.reasoning_tokens as usize);
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
    let mut tool = req.tool_to_call();
    let args_text;
    let mut finish = finish;
    let mut tool_args: Vec<&str> = Vec::new();
    let mut written_call = None;
    if let Some(name) = &tool {
        let question = prompt.lines().last().unwrap_or_default();
        let query: String = question.chars().take(60).collect();
        args_text = match scripted {
            Some(args) => args.to_string(),
            None => json!({ "query": query }).to_string(),
        };
        let object = || json!({ "name": name, "arguments": { "query": query } }).to_string();
        written_call = match p.tool_calls_in_text.as_str() {
            "hermes" => Some(format!("<tool_call>\n{}\n</tool_call>", object())),
            "fenced_json" => Some(format!("I will call the tool.\n```json\n{}\n```", object())),
            "json" => Some(object()),
            "call_syntax" => Some(format!("{name}(query={})", json!(query))),
            _ => None,
        };
        match &written_call {
            Some(text) => answer = tokenize(text),
            None => {
                tool_args = tokenize(&args_text);
                answer = Vec::new();
                finish = "tool_calls";
            }
        }
    }
    if written_call.is_some() {
        // The call is in the text: no native call.
        tool = None;
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
    let mut headers = vec![("x-request-id", request_id.to_string())];
    if fault == Fault::HugeHeaders {
        headers.push(crate::hostile::huge_header());
    }

    let n_tokens = reasoning.len() + answer.len() + tool_args.len();
    let times = token_times(start, n_tokens, p, rng);
    let end = times.last().copied().unwrap_or(start);

    let tool = tool.map(|name| (call_id, name));
    let pieces = pieces(
        &times,
        &reasoning,
        &answer,
        &tool_args,
        tool,
        p.tokens_per_chunk as usize,
    );
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

/// The reply of a fault that replaces the answer altogether (an error status, a hostile body).
fn fault_reply(
    wire: Wire,
    p: &SimProfile,
    req: &ChatRequest,
    fault: Fault,
    request_id: &str,
) -> Option<Reply> {
    Some(match fault {
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
            r
        }
        Fault::ServerError => error_reply(500, "Internal server error (simulated)", request_id),
        Fault::Endless | Fault::LineWithoutEnd => {
            let stream = req.stream.unwrap_or(wire.streams_by_default());
            crate::hostile::reply(wire, fault, stream, p, request_id)
        }
        _ => return None,
    })
}

/// Token times: the first at `start` + ttft, then one every itl (each jittered).
fn token_times(start: Duration, n: usize, p: &SimProfile, rng: &mut ChaCha8Rng) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    let mut t = start + jittered(p.ttft_ms, p.jitter, rng);
    for i in 0..n {
        if i > 0 {
            t += jittered(p.itl_ms, p.jitter, rng);
        }
        times.push(t);
    }
    times
}

/// The neutral pieces of the answer, `per` tokens each, at the time of their last token:
/// reasoning, then the answer, then the tool call (`(call id, tool name)`) if there is one.
fn pieces(
    times: &[Duration],
    reasoning: &[&str],
    answer: &[&str],
    tool_args: &[&str],
    tool: Option<(String, String)>,
    per: usize,
) -> Vec<(Duration, Piece)> {
    let mut pieces: Vec<(Duration, Piece)> = Vec::with_capacity(times.len() / per + 2);
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
    if let Some((call_id, name)) = tool {
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
    pieces
}

/// The last user message, and the prompt's size in tokens (the system prompt and every
/// message).
fn prompt_of(req: &ChatRequest) -> (String, u32) {
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
    (prompt, prompt_tokens)
}

/// At least `tokens` tokens of reasoning text.
fn reasoning_text(tokens: usize) -> String {
    let mut text = String::new();
    while tokenize(&text).len() < tokens {
        text.push_str(REASONING);
    }
    text
}
