//! The OpenAI chat-completions protocol, streaming (SSE) and not: the request body, and the
//! reading of answers, usage and errors as they arrive. Every OpenAI-compatible service goes
//! through here (Groq, OpenRouter, vLLM, llama.cpp, Ollama, LM Studio, Exo, the simulator).

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::exchange::{Dialect, Reading, Step, add_target_headers, merge_extra, truncate};
use super::outcome::{ServerTimings, Usage};
use crate::config::Target;
use crate::error_kind::ErrorKind;
use crate::measure::Output;
use crate::preset::JsonMode;
use crate::suite::Prompt;

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
    super::prompt_cache::apply(&mut body, target);
    merge_extra(&mut body, target);
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
    add_target_headers(&mut headers, target);
    headers
}

/// The chat-completions dialect.
pub(crate) struct OpenAi;

impl Dialect for OpenAi {
    fn path(&self) -> &'static str {
        "/chat/completions"
    }

    fn headers(&self, target: &Target) -> HeaderMap {
        request_headers(target)
    }

    fn request(&self, target: &Target, prompt: &Prompt) -> Value {
        request_body(target, prompt)
    }

    fn event(&self, r: &mut Reading, event: &str, data: &str) -> Step {
        if data == "[DONE]" {
            return Step::Done;
        }
        if data.is_empty() {
            return Step::Skip;
        }
        let chunk: ChunkWire = match serde_json::from_str(data) {
            Ok(c) => c,
            Err(e) => {
                if event == "error" {
                    r.stream_error(&json!({ "message": data }));
                } else {
                    r.fail(
                        ErrorKind::BadResponse,
                        format!("malformed stream chunk ({e}): {}", truncate(data, 200)),
                    );
                }
                return Step::Stop;
            }
        };
        if let Some(error) = chunk.error {
            let error = error.get("error").cloned().unwrap_or(error);
            r.stream_error(&error);
            return Step::Stop;
        }
        let mut output = Output::Nothing;
        for choice in chunk.choices {
            if let Some(delta) = choice.delta.or(choice.message) {
                let o = apply(r, delta);
                if o != Output::Nothing {
                    output = o;
                }
            }
            if choice.finish_reason.is_some() {
                r.out.finish_reason = choice.finish_reason;
            }
        }
        if let Some(u) = chunk.usage {
            r.out.usage = Some(u.into());
        }
        if let Some(t) = chunk.timings.and_then(server_timings) {
            r.out.server = t;
        }
        Step::Chunk(output)
    }

    fn body(&self, r: &mut Reading, bytes: &[u8]) {
        let parsed: ChunkWire = match serde_json::from_slice(bytes) {
            Ok(c) => c,
            Err(e) => {
                r.fail(
                    ErrorKind::BadResponse,
                    format!(
                        "the response is not a chat completion ({e}): {}",
                        truncate(&String::from_utf8_lossy(bytes), 200)
                    ),
                );
                return;
            }
        };
        if let Some(error) = parsed.error {
            let error = error.get("error").cloned().unwrap_or(error);
            r.stream_error(&error);
            return;
        }
        let Some(choice) = parsed.choices.into_iter().next() else {
            r.fail(ErrorKind::BadResponse, "the response has no choices".into());
            return;
        };
        if let Some(m) = choice.message.or(choice.delta) {
            apply(r, m);
        }
        r.out.finish_reason = choice.finish_reason;
        r.out.usage = parsed.usage.map(Into::into);
        if let Some(t) = parsed.timings.and_then(server_timings) {
            r.out.server = t;
        }
    }
}

#[derive(Deserialize)]
struct ChunkWire {
    #[serde(default)]
    choices: Vec<ChoiceWire>,
    #[serde(default)]
    usage: Option<UsageWire>,
    /// llama.cpp's own timings of the request, on its last chunk (or the whole answer). Read
    /// leniently: timings of a shape we do not know are dropped, never the answer with them.
    #[serde(default)]
    timings: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// llama.cpp's `timings`: milliseconds and tokens the server counted itself.
#[derive(Deserialize)]
struct TimingsWire {
    /// Prompt tokens taken from the server's cache.
    #[serde(default)]
    cache_n: Option<u32>,
    /// Time to process the prompt tokens that were not cached.
    #[serde(default)]
    prompt_ms: Option<f64>,
    #[serde(default)]
    predicted_per_second: Option<f64>,
}

/// llama.cpp's `timings` as server timings; `None` when they are not an object of numbers.
fn server_timings(v: Value) -> Option<ServerTimings> {
    // serde would read an array into the struct by position: only an object is timings.
    if !v.is_object() {
        return None;
    }
    serde_json::from_value::<TimingsWire>(v)
        .ok()
        .map(Into::into)
}

impl From<TimingsWire> for ServerTimings {
    fn from(t: TimingsWire) -> Self {
        let prefill_sec = t
            .prompt_ms
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map(|ms| ms / 1e3);
        ServerTimings {
            load_sec: None,
            prefill_sec,
            decode_tps: t.predicted_per_second.filter(|v| v.is_finite() && *v > 0.0),
            // llama.cpp samples the first token as soon as the prompt is processed.
            ttft_sec: prefill_sec,
            cached_tokens: t.cache_n,
        }
    }
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
    /// OpenAI, vLLM and llama.cpp: `cached_tokens`, the prompt tokens served from a cache.
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetailsWire>,
    /// OpenRouter reports what the call cost.
    #[serde(default)]
    cost: Option<f64>,
}

#[derive(Deserialize)]
struct DetailsWire {
    #[serde(default)]
    reasoning_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct PromptDetailsWire {
    #[serde(default)]
    cached_tokens: Option<u32>,
}

impl From<UsageWire> for Usage {
    fn from(u: UsageWire) -> Self {
        Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            reasoning_tokens: u.completion_tokens_details.and_then(|d| d.reasoning_tokens),
            cached_prompt_tokens: u.prompt_tokens_details.and_then(|d| d.cached_tokens),
            cost_usd: u.cost,
        }
    }
}

/// Applies one message or delta; returns what it carried.
fn apply(r: &mut Reading, m: MessageWire) -> Output {
    let mut output = Output::Nothing;
    if let Some(text) = m
        .reasoning_content
        .or(m.reasoning)
        .filter(|t| !t.is_empty())
    {
        r.push_reasoning(&text);
        output = Output::Reasoning;
    }
    for piece in m.tool_calls.unwrap_or_default() {
        r.tool_call_piece(&piece);
        output = Output::ToolCall;
    }
    if let Some(c) = m.content.filter(|c| !c.is_empty()) {
        r.push_answer(&c);
        output = Output::Answer;
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn feed(r: &mut Reading, delta: Value) {
        let m: MessageWire = serde_json::from_value(delta).unwrap();
        apply(r, m);
    }

    #[test]
    fn tool_call_pieces_assemble_openai_style() {
        let mut r = Reading::new(Instant::now(), true);
        feed(
            &mut r,
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}]}),
        );
        feed(
            &mut r,
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
        );
        feed(
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
            feed(
                &mut r,
                json!({"role": null, "content": null, "tool_calls": [{"index": 0,
                "id": "call__0", "type": "function",
                "function": {"name": "get_weather", "arguments": piece}}]}),
            );
        }
        feed(
            &mut r,
            json!({"role": "assistant", "content": null, "tool_calls": null}),
        );
        let c = &r.out.tool_calls[0];
        assert_eq!(c.name, "get_weather");
        assert_eq!(c.arguments, "{ \"city\": \"Paris\"}");
    }

    #[test]
    fn llama_cpp_timings_become_server_timings_and_garbage_ones_are_dropped() {
        let t = server_timings(json!({"cache_n": 12, "prompt_n": 20, "prompt_ms": 40.0,
            "predicted_n": 8, "predicted_ms": 80.0, "predicted_per_second": 100.0}))
        .unwrap();
        assert_eq!(t.prefill_sec, Some(0.04));
        assert_eq!(t.ttft_sec, Some(0.04));
        assert_eq!(t.decode_tps, Some(100.0));
        assert_eq!(t.cached_tokens, Some(12));
        assert_eq!(server_timings(json!("soon")), None);
        assert_eq!(server_timings(json!({"prompt_ms": "fast"})), None);
        // A whole answer whose timings are garbage is still a whole answer.
        let mut r = Reading::new(Instant::now(), false);
        OpenAi.body(
            &mut r,
            br#"{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"timings":[1,2]}"#,
        );
        assert!(r.out.error.is_none(), "{:?}", r.out.error);
        assert_eq!(r.out.answer, "hi");
        assert_eq!(r.out.server, ServerTimings::default());
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
