//! [`SimProfile`]: how a simulated model behaves, and the [`Fault`]s it can inject.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

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
    /// Rate of replies that never end: 64 KiB content chunks every `itl_ms` for a stream, an
    /// endless JSON body for a plain request.
    pub fault_endless: f64,
    /// Rate of replies that send one line forever, never a newline.
    pub fault_line_without_end: f64,
    /// Rate of replies with a 1 MiB response header.
    pub fault_huge_headers: f64,
    /// Report a cost in usage (`usage.cost`, as OpenRouter does) at this price per million
    /// tokens; 0 reports none.
    pub cost_per_mtok: f64,
    /// The memory the model takes once loaded, reported by Ollama's `GET /api/ps`, MB; 0
    /// reports none.
    pub memory_mb: f64,
    /// What discovery endpoints say of the model (`llmpulse sim --kind`): its file size, MB
    /// (0: the size follows from `parameters` at 4.5 bits a weight).
    pub size_mb: f64,
    /// Parameter count as servers write it (`"135M"`, `"7B"`).
    pub parameters: String,
    /// Quantization as servers write it (`"Q4_K_M"`).
    pub quantization: String,
    /// Architecture family (`"llama"`).
    pub family: String,
    /// Context length the model is loaded with.
    pub context_length: u32,
    /// Ollama's capability names: `completion`, `tools`, `vision`, `thinking`, `embedding`.
    pub capabilities: Vec<String>,
    /// Loaded before any request (LM Studio's `state`, Ollama's `/api/ps`).
    pub loaded: bool,
    /// How long a load request takes (Ollama's `/api/generate` without a prompt, LM Studio's
    /// `POST /api/v1/models/load`), ms.
    pub load_ms: f64,
    /// Asked with tools, write the call in the answer text instead of a native tool call, as
    /// small local models often do: `hermes` (`<tool_call>{…}</tool_call>`), `fenced_json`,
    /// `json`, `call_syntax` (`name(key="…")`); empty: a native call.
    pub tool_calls_in_text: String,
    /// Scripted tool calls: tool name → the arguments (JSON text, or anything: a malformed reply
    /// is a test too) to give each time that tool is called, in order; the last repeats.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub script: std::collections::BTreeMap<String, Vec<String>>,
}

/// The values of `tool_calls_in_text` (empty: native calls).
pub const TEXT_TOOL_CALLS: [&str; 5] = ["", "hermes", "fenced_json", "json", "call_syntax"];

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
            fault_endless: 0.0,
            fault_line_without_end: 0.0,
            fault_huge_headers: 0.0,
            fault_slow_first_byte: 0.0,
            slow_first_byte_ms: 2000.0,
            cost_per_mtok: 0.0,
            memory_mb: 0.0,
            size_mb: 0.0,
            parameters: "135M".into(),
            quantization: "Q4_K_M".into(),
            family: "llama".into(),
            context_length: 4096,
            capabilities: vec!["completion".into()],
            loaded: false,
            load_ms: 0.0,
            tool_calls_in_text: String::new(),
            script: Default::default(),
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
            ("size_mb", self.size_mb),
            ("load_ms", self.load_ms),
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
            ("fault_endless", self.fault_endless),
            ("fault_line_without_end", self.fault_line_without_end),
            ("fault_huge_headers", self.fault_huge_headers),
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
        if !TEXT_TOOL_CALLS.contains(&self.tool_calls_in_text.as_str()) {
            return Err(format!(
                "tool_calls_in_text must be one of {}, found \"{}\"",
                TEXT_TOOL_CALLS[1..].join(", "),
                self.tool_calls_in_text
            ));
        }
        if self.tokens_per_chunk == 0 {
            return Err("tokens_per_chunk must be at least 1".into());
        }
        if parameter_count(&self.parameters).is_none() {
            return Err(format!(
                "parameters must be a count like \"135M\" or \"7B\", found \"{}\"",
                self.parameters
            ));
        }
        Ok(())
    }

    /// The model file's size in bytes: `size_mb`, or the parameters at 4.5 bits each.
    pub fn size_bytes(&self) -> u64 {
        if self.size_mb > 0.0 {
            return (self.size_mb * 1_048_576.0).round() as u64;
        }
        let n = parameter_count(&self.parameters).unwrap_or(0.0);
        (n * 4.5 / 8.0).round() as u64
    }
}

/// `"135M"` → 1.35e8, `"7B"` → 7e9.
pub fn parameter_count(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, scale) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1e3),
        'M' | 'm' => (&s[..s.len() - 1], 1e6),
        'B' | 'b' => (&s[..s.len() - 1], 1e9),
        'T' | 't' => (&s[..s.len() - 1], 1e12),
        _ => (s, 1.0),
    };
    let n: f64 = num.parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n * scale)
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
    Endless,
    LineWithoutEnd,
    HugeHeaders,
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
            "endless" => Fault::Endless,
            "line_without_end" => Fault::LineWithoutEnd,
            "huge_headers" => Fault::HugeHeaders,
            _ => return None,
        })
    }
}

/// The request header that forces a fault, whatever the profile's rates say.
pub const FAULT_HEADER: &str = "x-sim-fault";

pub(crate) fn pick_fault(p: &SimProfile, rng: &mut ChaCha8Rng) -> Fault {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (rate, fault) in [
        (p.fault_429, Fault::RateLimited),
        (p.fault_500, Fault::ServerError),
        (p.fault_cut, Fault::Cut),
        (p.fault_malformed, Fault::Malformed),
        (p.fault_error_event, Fault::ErrorEvent),
        (p.fault_slow_first_byte, Fault::SlowFirstByte),
        (p.fault_endless, Fault::Endless),
        (p.fault_line_without_end, Fault::LineWithoutEnd),
        (p.fault_huge_headers, Fault::HugeHeaders),
    ] {
        acc += rate;
        if u < acc {
            return fault;
        }
    }
    Fault::None
}
