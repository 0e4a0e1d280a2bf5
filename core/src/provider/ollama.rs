//! Ollama's native chat API (`POST {base}/chat`, base `http://127.0.0.1:11434/api`): NDJSON
//! streams whose last line carries the server's own timings (`load_duration`,
//! `prompt_eval_duration`, `eval_count`, `eval_duration`, in nanoseconds). Those go into the
//! record beside llmpulse's client-side figures, so the two can be compared. Ollama's
//! OpenAI-compatible endpoint is the `ollama` preset; this one is `ollama-native`.

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::exchange::{Dialect, Framing, Reading, Step, add_target_headers, merge_extra, truncate};
use super::outcome::{ServerTimings, Usage};
use crate::config::Target;
use crate::error_kind::ErrorKind;
use crate::measure::Output;
use crate::suite::Prompt;

/// The JSON body of a native chat request: parameters go under `options`, a schema under
/// `format`, tools as they are (Ollama takes the OpenAI tool format).
pub fn request_body(target: &Target, prompt: &Prompt) -> Value {
    let p = &target.params;
    let mut options = serde_json::Map::new();
    if let Some(t) = p.temperature {
        options.insert("temperature".into(), json!(t));
    }
    if let Some(t) = p.top_p {
        options.insert("top_p".into(), json!(t));
    }
    if let Some(s) = p.seed {
        options.insert("seed".into(), json!(s));
    }
    if let Some(m) = p.max_tokens {
        options.insert("num_predict".into(), json!(m));
    }
    let mut body = json!({
        "model": target.model,
        "messages": prompt.messages,
        "stream": p.stream,
    });
    if !options.is_empty() {
        body["options"] = Value::Object(options);
    }
    if let Some(schema) = &prompt.schema {
        body["format"] = schema.clone();
    }
    if !prompt.tools.is_empty() {
        body["tools"] = json!(prompt.tools);
    }
    super::prompt_cache::apply(&mut body, target);
    merge_extra(&mut body, target);
    body
}

fn request_headers(target: &Target) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    add_target_headers(&mut headers, target);
    headers
}

/// The native chat dialect.
pub(crate) struct Ollama;

#[derive(Deserialize)]
struct LineWire {
    #[serde(default)]
    message: Option<MessageWire>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    load_duration: Option<u64>,
    #[serde(default)]
    prompt_eval_count: Option<u32>,
    #[serde(default)]
    prompt_eval_duration: Option<u64>,
    #[serde(default)]
    eval_count: Option<u32>,
    #[serde(default)]
    eval_duration: Option<u64>,
}

#[derive(Deserialize)]
struct MessageWire {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<Value>>,
}

fn ns(v: Option<u64>) -> Option<f64> {
    v.map(|n| n as f64 / 1e9)
}

/// Applies one line; returns what it carried, and whether it was the last.
fn line(r: &mut Reading, l: LineWire) -> (Output, bool) {
    let mut output = Output::Nothing;
    if let Some(m) = l.message {
        if let Some(t) = m.thinking.filter(|t| !t.is_empty()) {
            r.push_reasoning(&t);
            output = Output::Reasoning;
        }
        for call in m.tool_calls.unwrap_or_default() {
            // Ollama sends each call whole, its arguments as an object.
            let f = call.get("function").cloned().unwrap_or_default();
            let args = match f.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            r.tool_call_piece(&json!({"function": {"name": f.get("name"), "arguments": args}}));
            output = Output::ToolCall;
        }
        if let Some(c) = m.content.filter(|c| !c.is_empty()) {
            r.push_answer(&c);
            output = Output::Answer;
        }
    }
    if l.done {
        r.out.finish_reason = Some(l.done_reason.unwrap_or_else(|| "stop".into()));
        r.out.usage = Some(Usage {
            prompt_tokens: l.prompt_eval_count,
            completion_tokens: l.eval_count,
            ..Usage::default()
        });
        let (load_sec, prefill_sec) = (ns(l.load_duration), ns(l.prompt_eval_duration));
        r.out.server = ServerTimings {
            load_sec,
            prefill_sec,
            // Ollama loads the model (when it must), then evaluates the prompt, then samples.
            ttft_sec: prefill_sec.map(|p| p + load_sec.unwrap_or(0.0)),
            cached_tokens: None,
            decode_tps: match (l.eval_count, ns(l.eval_duration)) {
                (Some(n), Some(d)) if d > 0.0 => Some(f64::from(n) / d),
                _ => None,
            },
        };
    }
    (output, l.done)
}

/// How long the memory probe may take: it runs after the answer and must never hold a run up.
const PS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Deserialize)]
struct PsWire {
    #[serde(default)]
    models: Vec<PsModel>,
}

#[derive(Deserialize)]
struct PsModel {
    #[serde(default)]
    name: String,
    #[serde(default)]
    model: String,
    size: u64,
}

/// The memory `target`'s model takes on the server, from `GET {base}/ps` (Ollama lists loaded
/// models with their `size` in bytes), in MB. `None` when the server does not say: any error,
/// a slow answer, or the model not listed. A name without a tag matches `:latest`.
pub async fn loaded_memory_mb(target: &Target, transport: &dyn super::Transport) -> Option<f64> {
    use futures_util::StreamExt;
    let request = super::HttpRequest {
        method: http::Method::GET,
        path: "/ps",
        headers: request_headers(target),
        body: Vec::new(),
    };
    let read = async {
        let resp = transport.send(request).await.ok()?;
        if resp.status != 200 {
            return None;
        }
        let mut body = Vec::new();
        let mut stream = resp.body;
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk.ok()?);
        }
        serde_json::from_slice::<PsWire>(&body).ok()
    };
    let ps = tokio::time::timeout(PS_TIMEOUT, read).await.ok()??;
    memory_of(&ps, &target.model)
}

/// The `size` of `model` in a `/api/ps` answer, in MB.
fn memory_of(ps: &PsWire, model: &str) -> Option<f64> {
    let tagged = format!("{model}:latest");
    ps.models
        .iter()
        .find(|m| {
            [&m.name, &m.model]
                .iter()
                .any(|n| *n == model || **n == tagged)
        })
        .map(|m| m.size as f64 / 1_048_576.0)
}

impl Dialect for Ollama {
    fn path(&self) -> &'static str {
        "/chat"
    }

    fn headers(&self, target: &Target) -> HeaderMap {
        request_headers(target)
    }

    fn request(&self, target: &Target, prompt: &Prompt) -> Value {
        request_body(target, prompt)
    }

    fn framing(&self) -> Framing {
        Framing::Ndjson
    }

    fn event(&self, r: &mut Reading, _event: &str, data: &str) -> Step {
        let l: LineWire = match serde_json::from_str(data) {
            Ok(l) => l,
            Err(e) => {
                r.fail(
                    ErrorKind::BadResponse,
                    format!("malformed stream line ({e}): {}", truncate(data, 200)),
                );
                return Step::Stop;
            }
        };
        if let Some(error) = &l.error {
            r.stream_error(&json!({ "message": error }));
            return Step::Stop;
        }
        match line(r, l) {
            (_, true) => Step::Done,
            (output, false) => Step::Chunk(output),
        }
    }

    fn body(&self, r: &mut Reading, bytes: &[u8]) {
        match serde_json::from_slice::<LineWire>(bytes) {
            Ok(l) if l.error.is_some() => {
                let error = l.error.unwrap_or_default();
                r.stream_error(&json!({ "message": error }));
            }
            Ok(l) => {
                line(r, l);
            }
            Err(e) => r.fail(
                ErrorKind::BadResponse,
                format!(
                    "the response is not a chat response ({e}): {}",
                    truncate(&String::from_utf8_lossy(bytes), 200)
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_sizes_are_found_by_name_with_or_without_the_latest_tag() {
        // The shape of Ollama's documented example.
        let ps: PsWire = serde_json::from_str(
            r#"{"models":[{"name":"gemma3:latest","model":"gemma3:latest","size":6591830464,
                "digest":"a2af","details":{"format":"gguf"},"expires_at":"2025-10-17T16:47:07Z",
                "size_vram":5333539264,"context_length":4096}]}"#,
        )
        .unwrap();
        let mb = 6_591_830_464.0 / 1_048_576.0;
        assert_eq!(memory_of(&ps, "gemma3"), Some(mb));
        assert_eq!(memory_of(&ps, "gemma3:latest"), Some(mb));
        assert_eq!(memory_of(&ps, "gemma3:27b"), None);
    }
    use crate::config::Config;

    #[test]
    fn body_puts_parameters_under_options() {
        let t = Config::parse(
            "[[targets]]\nname = \"o\"\nprovider = \"ollama-native\"\nmodel = \"llama3.2\"\ntemperature = 0.2\nmax_tokens = 64\nseed = 3\n",
            "t.toml",
            ".".into(),
            &|_| None,
        )
        .unwrap()
        .targets
        .remove(0);
        let prompt = Prompt {
            schema: Some(json!({"type": "object"})),
            ..Prompt::messages(vec![])
        };
        let b = request_body(&t, &prompt);
        assert_eq!(
            b["options"],
            json!({"temperature": 0.2, "num_predict": 64, "seed": 3})
        );
        assert_eq!(b["format"], json!({"type": "object"}));
        assert_eq!(b["stream"], true);
    }
}
