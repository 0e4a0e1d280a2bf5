//! Provider presets: the base URL, key variable and extra headers of each known service, as
//! data. A preset is never a code path of its own; every OpenAI-compatible service goes through
//! `provider::openai`.

use serde::Deserialize;

/// The wire protocol a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OpenAI chat completions (`/chat/completions`): most services and local servers.
    Openai,
    /// Anthropic Messages (`/messages`).
    Anthropic,
    /// Ollama's native chat API (`/chat` under `…/api`), which reports the server's own
    /// prefill and decode timings.
    Ollama,
}

/// The two ways servers take a JSON Schema for the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonMode {
    /// `response_format = {type: "json_schema", json_schema: {name, schema, strict}}` (OpenAI).
    JsonSchema,
    /// `response_format = {type: "json_object", schema}` (llama.cpp, some local servers).
    JsonObject,
}

/// One named preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// The `provider = "…"` value.
    pub name: &'static str,
    /// Default base URL (ending before `/chat/completions`); `None` when the config must give one.
    pub base_url: Option<&'static str>,
    /// The environment variable holding the API key, if the service takes one.
    pub api_key_env: Option<&'static str>,
    /// Whether a call without a key is certain to fail (hosted services).
    pub key_required: bool,
    /// Headers sent with every request.
    pub headers: &'static [(&'static str, &'static str)],
    /// Whether the service accepts `stream_options.include_usage`.
    pub stream_usage: bool,
    /// How the service takes a JSON Schema for the answer.
    pub json_mode: JsonMode,
    /// The wire protocol.
    pub protocol: Protocol,
}

const fn hosted(name: &'static str, base_url: &'static str, key: &'static str) -> Preset {
    Preset {
        name,
        base_url: Some(base_url),
        api_key_env: Some(key),
        key_required: true,
        headers: &[],
        stream_usage: true,
        json_mode: JsonMode::JsonSchema,
        protocol: Protocol::Openai,
    }
}

const fn local(name: &'static str, base_url: Option<&'static str>) -> Preset {
    Preset {
        name,
        base_url,
        api_key_env: None,
        key_required: false,
        headers: &[],
        stream_usage: true,
        json_mode: JsonMode::JsonSchema,
        protocol: Protocol::Openai,
    }
}

/// Every preset, in the order the README lists them.
pub const PRESETS: &[Preset] = &[
    hosted("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    Preset {
        headers: &[
            ("HTTP-Referer", "https://github.com/llmpulse/llmpulse"),
            ("X-Title", "llmpulse"),
        ],
        ..hosted(
            "openrouter",
            "https://openrouter.ai/api/v1",
            "OPENROUTER_API_KEY",
        )
    },
    hosted("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    hosted(
        "together",
        "https://api.together.xyz/v1",
        "TOGETHER_API_KEY",
    ),
    hosted(
        "fireworks",
        "https://api.fireworks.ai/inference/v1",
        "FIREWORKS_API_KEY",
    ),
    hosted(
        "deepinfra",
        "https://api.deepinfra.com/v1/openai",
        "DEEPINFRA_API_KEY",
    ),
    hosted("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    Preset {
        protocol: Protocol::Anthropic,
        ..hosted(
            "anthropic",
            "https://api.anthropic.com/v1",
            "ANTHROPIC_API_KEY",
        )
    },
    local("ollama", Some("http://127.0.0.1:11434/v1")),
    Preset {
        protocol: Protocol::Ollama,
        ..local("ollama-native", Some("http://127.0.0.1:11434/api"))
    },
    local("lmstudio", Some("http://127.0.0.1:1234/v1")),
    local("vllm", Some("http://127.0.0.1:8000/v1")),
    // llama.cpp's server answers 500 to `json_schema` response formats.
    Preset {
        json_mode: JsonMode::JsonObject,
        ..local("llamacpp", Some("http://127.0.0.1:8080/v1"))
    },
    local("exo", Some("http://127.0.0.1:52415/v1")),
    local("openai-compatible", None),
    local("sim", None),
];

/// The preset called `name`.
pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// The preset names, for error messages.
pub fn names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_hosted_ones_take_a_key() {
        let mut names: Vec<_> = PRESETS.iter().map(|p| p.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), PRESETS.len());
        for p in PRESETS.iter().filter(|p| p.key_required) {
            assert!(p.api_key_env.is_some(), "{}", p.name);
            assert!(p.base_url.unwrap().starts_with("https://"), "{}", p.name);
        }
    }
}
