//! The parts of a chat request (OpenAI, Anthropic or Ollama shaped) the simulator reads.

use serde::Deserialize;
use serde_json::json;

/// The parts of an OpenAI chat request the simulator reads.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatRequest {
    pub(crate) model: String,
    /// Anthropic's system prompt (a string or text blocks).
    #[serde(default)]
    pub(crate) system: serde_json::Value,
    #[serde(default)]
    pub(crate) messages: Vec<ChatMessage>,
    #[serde(default)]
    pub(crate) stream: Option<bool>,
    #[serde(default)]
    pub(crate) stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub(crate) max_tokens: Option<u32>,
    #[serde(default)]
    pub(crate) max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub(crate) response_format: Option<serde_json::Value>,
    #[serde(default)]
    pub(crate) tools: Vec<serde_json::Value>,
    #[serde(default)]
    pub(crate) tool_choice: Option<serde_json::Value>,
}

impl ChatRequest {
    /// The function the simulated model calls: the named `tool_choice`, else the first tool.
    pub(crate) fn tool_to_call(&self) -> Option<String> {
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
pub(crate) struct ChatMessage {
    pub(crate) role: String,
    #[serde(default)]
    pub(crate) content: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub(crate) include_usage: bool,
}

pub(crate) fn message_text(m: &ChatMessage) -> String {
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
