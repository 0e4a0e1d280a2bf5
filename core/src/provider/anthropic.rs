//! The Anthropic Messages protocol (`POST /messages`), streaming and not: the request body, and
//! what each stream event means (`message_start` with input usage, `content_block_*` with text,
//! thinking and tool-use deltas, `message_delta` with the stop reason and output usage,
//! `message_stop`, `ping`, `error`). Measured by the same exchange as every other protocol.

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::exchange::{Dialect, Reading, Step, add_target_headers, merge_extra, truncate};
use super::outcome::Usage;
use crate::config::Target;
use crate::error_kind::ErrorKind;
use crate::measure::Output;
use crate::suite::Prompt;

/// The API version llmpulse speaks.
pub const API_VERSION: &str = "2023-06-01";

/// Anthropic requires `max_tokens`; this is used when the target sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The JSON body of a Messages request for `target`. System messages become `system`; OpenAI
/// tool definitions become Anthropic's (`input_schema`), and so does `tool_choice`.
pub fn request_body(target: &Target, prompt: &Prompt) -> Value {
    let p = &target.params;
    let system: Vec<&str> = prompt
        .messages
        .iter()
        .filter(|m| m.role == "system")
        .map(|m| m.content.as_str())
        .collect();
    let messages: Vec<Value> = prompt
        .messages
        .iter()
        .filter(|m| m.role != "system")
        .map(|m| json!({"role": m.role, "content": m.content}))
        .collect();
    let mut body = json!({
        "model": target.model,
        "max_tokens": p.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
        "stream": p.stream,
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if let Some(t) = p.temperature {
        // Anthropic's range is 0..=1.
        body["temperature"] = json!(t.min(1.0));
    }
    if let Some(t) = p.top_p {
        body["top_p"] = json!(t);
    }
    if !prompt.tools.is_empty() {
        let tools: Vec<Value> = prompt
            .tools
            .iter()
            .map(|t| {
                let f = t.get("function").unwrap_or(t);
                json!({
                    "name": f.get("name").cloned().unwrap_or(Value::Null),
                    "description": f.get("description").cloned().unwrap_or(json!("")),
                    "input_schema": f.get("parameters").cloned()
                        .unwrap_or(json!({"type": "object"})),
                })
            })
            .collect();
        body["tools"] = json!(tools);
        if let Some(choice) = &prompt.tool_choice {
            body["tool_choice"] = match choice.as_str() {
                Some("required") => json!({"type": "any"}),
                Some("none") => json!({"type": "none"}),
                Some(_) => json!({"type": "auto"}),
                None => match choice.pointer("/function/name") {
                    Some(name) => json!({"type": "tool", "name": name}),
                    None => choice.clone(),
                },
            };
        }
    }
    merge_extra(&mut body, target);
    body
}

fn request_headers(target: &Target) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
    if target.params.stream {
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    }
    if let Some(key) = &target.api_key
        && let Ok(mut v) = HeaderValue::from_str(key.expose())
    {
        v.set_sensitive(true);
        headers.insert("x-api-key", v);
    }
    add_target_headers(&mut headers, target);
    headers
}

/// The Messages dialect.
pub(crate) struct Anthropic;

#[derive(Deserialize)]
struct EventWire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<MessageWire>,
    #[serde(default)]
    content_block: Option<Value>,
    #[serde(default)]
    delta: Option<Value>,
    #[serde(default)]
    usage: Option<UsageWire>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct MessageWire {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    content: Vec<Value>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<UsageWire>,
}

#[derive(Deserialize, Default)]
struct UsageWire {
    #[serde(default)]
    input_tokens: Option<u32>,
    #[serde(default)]
    output_tokens: Option<u32>,
    /// Prompt tokens read from the prompt cache; not part of `input_tokens`.
    #[serde(default)]
    cache_read_input_tokens: Option<u32>,
    /// Prompt tokens written into the cache; not part of `input_tokens` either.
    #[serde(default)]
    cache_creation_input_tokens: Option<u32>,
}

/// Merges reported usage: input from `message_start`, output (cumulative) from `message_delta`.
fn add_usage(r: &mut Reading, u: &UsageWire) {
    let usage = r.out.usage.get_or_insert(Usage::default());
    if let Some(input) = u.input_tokens {
        // Anthropic counts cached prompt tokens apart; the record's prompt is all of them.
        let read = u.cache_read_input_tokens.unwrap_or(0);
        let written = u.cache_creation_input_tokens.unwrap_or(0);
        usage.prompt_tokens = Some(input.saturating_add(read).saturating_add(written));
        if u.cache_read_input_tokens.is_some() {
            usage.cached_prompt_tokens = u.cache_read_input_tokens;
        }
    }
    if u.output_tokens.is_some() {
        usage.completion_tokens = u.output_tokens;
    }
}

/// Applies one content block (whole or its start); returns what it carried.
fn block(r: &mut Reading, b: &Value) -> Output {
    match b.get("type").and_then(Value::as_str) {
        Some("text") => {
            let t = b.get("text").and_then(Value::as_str).unwrap_or_default();
            r.push_answer(t);
            if t.is_empty() {
                Output::Nothing
            } else {
                Output::Answer
            }
        }
        Some("thinking") => {
            let t = b
                .get("thinking")
                .and_then(Value::as_str)
                .unwrap_or_default();
            r.push_reasoning(t);
            if t.is_empty() {
                Output::Nothing
            } else {
                Output::Reasoning
            }
        }
        Some("tool_use") => {
            let input = b
                .get("input")
                .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()));
            r.tool_call_piece(&json!({
                "id": b.get("id").cloned().unwrap_or(json!("")),
                "function": {
                    "name": b.get("name").cloned().unwrap_or(json!("")),
                    "arguments": input.map(|i| i.to_string()).unwrap_or_default(),
                },
            }));
            Output::ToolCall
        }
        _ => Output::Nothing,
    }
}

impl Dialect for Anthropic {
    fn path(&self) -> &'static str {
        "/messages"
    }

    fn headers(&self, target: &Target) -> HeaderMap {
        request_headers(target)
    }

    fn request(&self, target: &Target, prompt: &Prompt) -> Value {
        request_body(target, prompt)
    }

    fn event(&self, r: &mut Reading, event: &str, data: &str) -> Step {
        if data.is_empty() || event == "ping" {
            return Step::Skip;
        }
        let e: EventWire = match serde_json::from_str(data) {
            Ok(e) => e,
            Err(err) => {
                r.fail(
                    ErrorKind::BadResponse,
                    format!("malformed {event} event ({err}): {}", truncate(data, 200)),
                );
                return Step::Stop;
            }
        };
        match e.kind.as_str() {
            "message_start" => {
                if let Some(m) = &e.message {
                    if r.out.provider_request_id.is_none() {
                        r.out.provider_request_id = m.id.clone();
                    }
                    if let Some(u) = &m.usage {
                        add_usage(r, u);
                    }
                }
                Step::Chunk(Output::Nothing)
            }
            "content_block_start" => {
                let output = e
                    .content_block
                    .as_ref()
                    .map_or(Output::Nothing, |b| block(r, b));
                Step::Chunk(output)
            }
            "content_block_delta" => {
                let Some(d) = &e.delta else {
                    return Step::Chunk(Output::Nothing);
                };
                let text = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default();
                let output = match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        r.push_answer(text("text"));
                        Output::Answer
                    }
                    Some("thinking_delta") => {
                        r.push_reasoning(text("thinking"));
                        Output::Reasoning
                    }
                    Some("input_json_delta") => {
                        if let Some(last) = r.out.tool_calls.last_mut() {
                            last.arguments.push_str(text("partial_json"));
                        }
                        Output::ToolCall
                    }
                    _ => Output::Nothing,
                };
                Step::Chunk(output)
            }
            "message_delta" => {
                if let Some(reason) = e
                    .delta
                    .as_ref()
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    r.out.finish_reason = Some(reason.to_string());
                }
                if let Some(u) = &e.usage {
                    add_usage(r, u);
                }
                Step::Chunk(Output::Nothing)
            }
            "message_stop" => Step::Done,
            "error" => {
                let error = e.error.unwrap_or(json!({"message": data}));
                r.stream_error(&error);
                Step::Stop
            }
            _ => Step::Chunk(Output::Nothing),
        }
    }

    fn body(&self, r: &mut Reading, bytes: &[u8]) {
        let parsed: EventWire = match serde_json::from_slice(bytes) {
            Ok(m) => m,
            Err(e) => {
                r.fail(
                    ErrorKind::BadResponse,
                    format!(
                        "the response is not a message ({e}): {}",
                        truncate(&String::from_utf8_lossy(bytes), 200)
                    ),
                );
                return;
            }
        };
        if parsed.kind == "error" {
            let error = parsed.error.unwrap_or(json!({"message": "error"}));
            r.stream_error(&error);
            return;
        }
        let message: MessageWire = match serde_json::from_slice(bytes) {
            Ok(m) => m,
            Err(e) => {
                r.fail(
                    ErrorKind::BadResponse,
                    format!("the response is not a message ({e})"),
                );
                return;
            }
        };
        for b in &message.content {
            block(r, b);
        }
        r.out.finish_reason = message.stop_reason;
        if let Some(u) = &message.usage {
            add_usage(r, u);
        }
        if r.out.provider_request_id.is_none() {
            r.out.provider_request_id = message.id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::suite::Message;

    fn target() -> Target {
        Config::parse(
            "[[targets]]\nname = \"c\"\nprovider = \"anthropic\"\nmodel = \"claude\"\ntemperature = 1.5\n",
            "t.toml",
            ".".into(),
            &|k| (k == "ANTHROPIC_API_KEY").then(|| "sk-ant-test".into()),
        )
        .unwrap()
        .targets
        .remove(0)
    }

    #[test]
    fn body_moves_system_and_converts_tools() {
        let prompt = Prompt {
            messages: vec![
                Message {
                    role: "system",
                    content: "Be brief.".into(),
                },
                Message {
                    role: "user",
                    content: "Stock?".into(),
                },
            ],
            schema: None,
            tools: vec![
                json!({"type": "function", "function": {"name": "get_inventory",
                "description": "Units", "parameters": {"type": "object"}}}),
            ],
            tool_choice: Some(json!({"type": "function", "function": {"name": "get_inventory"}})),
        };
        let b = request_body(&target(), &prompt);
        assert_eq!(b["system"], "Be brief.");
        assert_eq!(
            b["messages"],
            json!([{"role": "user", "content": "Stock?"}])
        );
        assert_eq!(b["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(b["temperature"], 1.0);
        assert_eq!(b["tools"][0]["name"], "get_inventory");
        assert_eq!(b["tools"][0]["input_schema"], json!({"type": "object"}));
        assert_eq!(
            b["tool_choice"],
            json!({"type": "tool", "name": "get_inventory"})
        );
    }

    #[test]
    fn key_goes_in_x_api_key_marked_sensitive() {
        let h = request_headers(&target());
        assert!(h.get("x-api-key").unwrap().is_sensitive());
        assert_eq!(h.get("anthropic-version").unwrap(), API_VERSION);
        assert!(h.get("authorization").is_none());
    }
}
