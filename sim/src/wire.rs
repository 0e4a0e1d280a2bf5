//! How the simulator frames an answer on the wire: OpenAI chat-completions chunks or Anthropic
//! Messages events. [`super::build_reply`] decides what is said and when, as neutral
//! [`Piece`]s; this module only writes them in one protocol or the other.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::profile::Fault;
use crate::schedule::Event;

/// The protocol a request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// `POST /v1/chat/completions`
    OpenAi,
    /// `POST /v1/messages`
    Anthropic,
    /// `POST /api/chat` (Ollama's native API: NDJSON, server timings in the last line)
    Ollama,
}

/// One piece of generated output.
#[derive(Debug, Clone)]
pub(super) enum Piece {
    Reasoning(String),
    Answer(String),
    /// The first piece of a tool call, carrying its id and name.
    ToolStart {
        id: String,
        name: String,
        args: String,
    },
    ToolArgs(String),
}

/// Everything needed to frame one successful answer.
pub(super) struct Answer<'a> {
    pub request_id: &'a str,
    pub model: &'a str,
    pub created: u64,
    /// Pieces with the offsets at which they go out, ascending.
    pub pieces: Vec<(Duration, Piece)>,
    /// OpenAI's finish reason: `stop`, `length` or `tool_calls`.
    pub finish: &'a str,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub reasoning_tokens: u32,
    /// Report usage at all.
    pub usage: bool,
    /// The client asked for usage in the stream (OpenAI's `stream_options.include_usage`).
    pub include_usage: bool,
    pub role_chunk: bool,
    pub start: Duration,
    pub end: Duration,
    pub fault: Fault,
    /// What the call "cost", reported as OpenRouter does (`usage.cost`).
    pub cost_usd: Option<f64>,
}

pub(crate) fn sse(event: Option<&str>, data: &Value) -> Event {
    Event::Data(Bytes::from(match event {
        Some(name) => format!("event: {name}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }))
}

pub(crate) fn anthropic_stop(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" => "tool_use",
        _ => "end_turn",
    }
}

pub(crate) fn ndjson(v: &Value) -> Event {
    Event::Data(Bytes::from(format!("{v}\n")))
}

impl Wire {
    /// Whether a request that does not say streams (Ollama's native API streams by default).
    pub(super) fn streams_by_default(self) -> bool {
        self == Wire::Ollama
    }

    /// The content type of a streamed answer.
    pub(super) fn stream_content_type(self) -> &'static str {
        match self {
            Wire::Ollama => "application/x-ndjson",
            _ => "text/event-stream",
        }
    }

    /// Ollama's last line: the finish, the counts and the server's own timings (ns).
    fn ollama_done(a: &Answer, created_at: &str) -> Value {
        let first = a.pieces.first().map_or(a.end, |(t, _)| *t);
        let mut v = json!({
            "model": a.model, "created_at": created_at,
            "message": {"role": "assistant", "content": ""},
            "done": true, "done_reason": if a.finish == "length" { "length" } else { "stop" },
            "total_duration": a.end.as_nanos() as u64,
            "load_duration": 1_000_000u64,
        });
        if a.usage {
            v["prompt_eval_count"] = json!(a.prompt_tokens);
            v["prompt_eval_duration"] = json!(first.saturating_sub(a.start).as_nanos() as u64);
            v["eval_count"] = json!(a.completion_tokens);
            v["eval_duration"] = json!(a.end.saturating_sub(first).as_nanos() as u64);
        }
        v
    }

    /// A whole (non-streamed) response body.
    pub(super) fn body(self, a: &Answer) -> Bytes {
        let text = |want: fn(&Piece) -> Option<&str>| -> String {
            a.pieces.iter().filter_map(|(_, p)| want(p)).collect()
        };
        let reasoning = text(|p| match p {
            Piece::Reasoning(t) => Some(t),
            _ => None,
        });
        let answer = text(|p| match p {
            Piece::Answer(t) => Some(t),
            _ => None,
        });
        let tool = a.pieces.iter().find_map(|(_, p)| match p {
            Piece::ToolStart { id, name, .. } => Some((id.clone(), name.clone())),
            _ => None,
        });
        let args = text(|p| match p {
            Piece::ToolStart { args, .. } | Piece::ToolArgs(args) => Some(args),
            _ => None,
        });
        let body = match self {
            Wire::OpenAi => {
                let mut message = json!({"role": "assistant", "content": answer});
                if let Some((id, name)) = &tool {
                    message["content"] = Value::Null;
                    message["tool_calls"] = json!([{
                        "id": id, "type": "function",
                        "function": {"name": name, "arguments": args},
                    }]);
                }
                if !reasoning.is_empty() {
                    message["reasoning_content"] = json!(reasoning);
                }
                let mut body = json!({
                    "id": a.request_id, "object": "chat.completion", "created": a.created,
                    "model": a.model,
                    "choices": [{"index": 0, "message": message, "finish_reason": a.finish}],
                });
                if a.usage {
                    body["usage"] = self.usage(a);
                }
                body
            }
            Wire::Ollama => {
                let mut done = Self::ollama_done(a, "1970-01-01T00:00:00Z");
                let mut message = json!({"role": "assistant", "content": answer});
                if !reasoning.is_empty() {
                    message["thinking"] = json!(reasoning);
                }
                if let Some((_, name)) = &tool {
                    let input: Value = serde_json::from_str(&args).unwrap_or(json!({}));
                    message["tool_calls"] =
                        json!([{"function": {"name": name, "arguments": input}}]);
                }
                done["message"] = message;
                done
            }
            Wire::Anthropic => {
                let mut content = Vec::new();
                if !reasoning.is_empty() {
                    content.push(json!({"type": "thinking", "thinking": reasoning}));
                }
                if !answer.is_empty() {
                    content.push(json!({"type": "text", "text": answer}));
                }
                if let Some((id, name)) = &tool {
                    let input: Value = serde_json::from_str(&args).unwrap_or(json!({}));
                    content
                        .push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
                }
                let mut body = json!({
                    "id": a.request_id, "type": "message", "role": "assistant", "model": a.model,
                    "content": content, "stop_reason": anthropic_stop(a.finish),
                });
                if a.usage {
                    body["usage"] = self.usage(a);
                }
                body
            }
        };
        Bytes::from(body.to_string())
    }

    fn usage(self, a: &Answer) -> Value {
        match self {
            Wire::OpenAi | Wire::Ollama => {
                let mut u = json!({
                    "prompt_tokens": a.prompt_tokens,
                    "completion_tokens": a.completion_tokens,
                    "total_tokens": a.prompt_tokens + a.completion_tokens,
                });
                // Only servers of reasoning models say it (llama.cpp and vLLM do not: the
                // shape test against them holds the simulator to that).
                if a.reasoning_tokens > 0 {
                    u["completion_tokens_details"] =
                        json!({"reasoning_tokens": a.reasoning_tokens});
                }
                if let Some(cost) = a.cost_usd {
                    u["cost"] = json!(cost);
                }
                u
            }
            Wire::Anthropic => json!({
                "input_tokens": a.prompt_tokens,
                "output_tokens": a.completion_tokens,
            }),
        }
    }

    /// A fault event standing in for the rest of the stream.
    fn fault_event(self, fault: Fault) -> Event {
        match (self, fault) {
            (_, Fault::Cut) => Event::Cut,
            (Wire::OpenAi, Fault::Malformed) => Event::Data(Bytes::from_static(
                b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tru\n\n",
            )),
            (Wire::Ollama, Fault::Malformed) => {
                Event::Data(Bytes::from_static(b"{\"message\":{\"content\":\"tru\n"))
            }
            (Wire::Ollama, _) => ndjson(&json!({"error": "model overloaded (simulated)"})),
            (Wire::Anthropic, Fault::Malformed) => Event::Data(Bytes::from_static(
                b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"tru\n\n",
            )),
            (Wire::OpenAi, _) => sse(
                None,
                &json!({"error": {"message": "Upstream provider overloaded (simulated)", "code": 502}}),
            ),
            (Wire::Anthropic, _) => sse(
                Some("error"),
                &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded (simulated)"}}),
            ),
        }
    }

    /// The stream events of an answer, with their offsets.
    pub(super) fn stream(self, a: &Answer) -> Vec<(Duration, Event)> {
        let mut events = Vec::with_capacity(a.pieces.len() + 8);
        let half = a.pieces.len() / 2;
        let faulty = !matches!(
            a.fault,
            Fault::None | Fault::SlowFirstByte | Fault::HugeHeaders
        );
        match self {
            Wire::Ollama => self.stream_ollama(a, half, faulty, &mut events),
            Wire::OpenAi => self.stream_openai(a, half, faulty, &mut events),
            Wire::Anthropic => self.stream_anthropic(a, half, faulty, &mut events),
        }
        events
    }

    /// Ollama's NDJSON lines, the last with the server's timings.
    fn stream_ollama(
        self,
        a: &Answer,
        half: usize,
        faulty: bool,
        events: &mut Vec<(Duration, Event)>,
    ) {
        let created_at = "1970-01-01T00:00:00Z";
        let line = |message: Value| {
            ndjson(&json!({"model": a.model, "created_at": created_at,
                           "message": message, "done": false}))
        };
        let mut tool_args = String::new();
        let mut tool_name = String::new();
        for (i, (at, piece)) in a.pieces.iter().enumerate() {
            if i == half && faulty {
                events.push((*at, self.fault_event(a.fault)));
                if a.fault != Fault::Malformed {
                    return;
                }
            }
            match piece {
                Piece::Reasoning(t) => events.push((
                    *at,
                    line(json!(
                    {"role": "assistant", "content": "", "thinking": t})),
                )),
                Piece::Answer(t) => {
                    events.push((*at, line(json!({"role": "assistant", "content": t}))))
                }
                Piece::ToolStart { name, args, .. } => {
                    tool_name = name.clone();
                    tool_args.push_str(args);
                }
                Piece::ToolArgs(t) => tool_args.push_str(t),
            }
            // Ollama sends a tool call whole, once its arguments are complete.
            let last_tool = matches!(piece, Piece::ToolStart { .. } | Piece::ToolArgs(_))
                && !matches!(a.pieces.get(i + 1), Some((_, Piece::ToolArgs(_))));
            if last_tool {
                let input: Value = serde_json::from_str(&tool_args).unwrap_or(json!({}));
                events.push((
                    *at,
                    line(json!({"role": "assistant", "content": "",
                    "tool_calls": [{"function": {"name": tool_name, "arguments": input}}]})),
                ));
            }
        }
        events.push((a.end, ndjson(&Self::ollama_done(a, created_at))));
    }

    /// OpenAI chat-completion chunks, then `[DONE]`.
    fn stream_openai(
        self,
        a: &Answer,
        half: usize,
        faulty: bool,
        events: &mut Vec<(Duration, Event)>,
    ) {
        let chunk = |delta: Value, finish: Option<&str>| {
            sse(
                None,
                &json!({
                    "id": a.request_id, "object": "chat.completion.chunk", "created": a.created,
                    "model": a.model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }),
            )
        };
        if a.role_chunk {
            events.push((
                a.start,
                chunk(json!({"role": "assistant", "content": ""}), None),
            ));
        }
        for (i, (at, piece)) in a.pieces.iter().enumerate() {
            if i == half && faulty {
                events.push((*at, self.fault_event(a.fault)));
                if a.fault != Fault::Malformed {
                    return;
                }
            }
            let delta = match piece {
                Piece::Reasoning(t) => json!({"reasoning_content": t}),
                Piece::Answer(t) => json!({"content": t}),
                Piece::ToolStart { id, name, args } => json!({"tool_calls": [{
                    "index": 0, "id": id, "type": "function",
                    "function": {"name": name, "arguments": args}}]}),
                Piece::ToolArgs(t) => {
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": t}}]})
                }
            };
            events.push((*at, chunk(delta, None)));
        }
        events.push((a.end, chunk(json!({}), Some(a.finish))));
        if a.usage && a.include_usage {
            events.push((
                a.end,
                sse(
                    None,
                    &json!({
                        "id": a.request_id, "object": "chat.completion.chunk", "created": a.created,
                        "model": a.model, "choices": [], "usage": self.usage(a),
                    }),
                ),
            ));
        }
        events.push((a.end, Event::Data(Bytes::from_static(b"data: [DONE]\n\n"))));
    }

    /// Anthropic Messages events, `message_start` to `message_stop`.
    fn stream_anthropic(
        self,
        a: &Answer,
        half: usize,
        faulty: bool,
        events: &mut Vec<(Duration, Event)>,
    ) {
        let mut message = json!({"id": a.request_id, "type": "message",
            "role": "assistant", "model": a.model, "content": []});
        if a.usage {
            message["usage"] = json!({"input_tokens": a.prompt_tokens, "output_tokens": 1});
        }
        events.push((
            a.start,
            sse(
                Some("message_start"),
                &json!({"type": "message_start", "message": message}),
            ),
        ));
        let mut block: Option<(usize, &str)> = None;
        let mut index = 0;
        for (i, (at, piece)) in a.pieces.iter().enumerate() {
            if i == half && faulty {
                events.push((*at, self.fault_event(a.fault)));
                if a.fault != Fault::Malformed {
                    return;
                }
            }
            let kind = match piece {
                Piece::Reasoning(_) => "thinking",
                Piece::Answer(_) => "text",
                Piece::ToolStart { .. } | Piece::ToolArgs(_) => "tool_use",
            };
            if block.map(|(_, k)| k) != Some(kind) {
                if let Some((n, _)) = block {
                    events.push((
                        *at,
                        sse(
                            Some("content_block_stop"),
                            &json!({"type": "content_block_stop", "index": n}),
                        ),
                    ));
                    index = n + 1;
                }
                let start = match piece {
                    Piece::Reasoning(_) => json!({"type": "thinking", "thinking": ""}),
                    Piece::Answer(_) => json!({"type": "text", "text": ""}),
                    Piece::ToolStart { id, name, .. } => {
                        json!({"type": "tool_use", "id": id, "name": name, "input": {}})
                    }
                    Piece::ToolArgs(_) => json!({"type": "tool_use", "input": {}}),
                };
                events.push((
                    *at,
                    sse(
                        Some("content_block_start"),
                        &json!({
                            "type": "content_block_start", "index": index, "content_block": start,
                        }),
                    ),
                ));
                block = Some((index, kind));
            }
            let delta = match piece {
                Piece::Reasoning(t) => json!({"type": "thinking_delta", "thinking": t}),
                Piece::Answer(t) => json!({"type": "text_delta", "text": t}),
                Piece::ToolStart { args, .. } | Piece::ToolArgs(args) => {
                    json!({"type": "input_json_delta", "partial_json": args})
                }
            };
            events.push((
                *at,
                sse(
                    Some("content_block_delta"),
                    &json!({
                        "type": "content_block_delta", "index": index, "delta": delta,
                    }),
                ),
            ));
            if i % 5 == 4 {
                events.push((*at, sse(Some("ping"), &json!({"type": "ping"}))));
            }
        }
        if let Some((n, _)) = block {
            events.push((
                a.end,
                sse(
                    Some("content_block_stop"),
                    &json!({"type": "content_block_stop", "index": n}),
                ),
            ));
        }
        let mut delta = json!({
            "type": "message_delta",
            "delta": {"stop_reason": anthropic_stop(a.finish), "stop_sequence": null},
        });
        if a.usage {
            delta["usage"] = json!({"output_tokens": a.completion_tokens});
        }
        events.push((a.end, sse(Some("message_delta"), &delta)));
        events.push((
            a.end,
            sse(Some("message_stop"), &json!({"type": "message_stop"})),
        ));
    }
}
