//! How a target asks for a cold prompt (`prompt_cache = "off"`): every server that reuses the
//! prefix of a prompt it saw before is asked not to, in the way it understands.
//!
//! - llama.cpp: `cache_prompt: false` (the server's own switch).
//! - vLLM: a unique `cache_salt` per call (prefix-cache blocks are keyed by the salt, so no
//!   block of another call matches; the prompt itself is untouched).
//! - Anthropic: nothing to do (its cache holds only what a request marks with `cache_control`).
//! - Everyone else (OpenAI, Ollama, LM Studio, …): a unique nonce line at the start of the
//!   first message, so no cached prefix matches past the chat template's fixed opening. It
//!   adds a few prompt tokens, counted in `prompt_tokens` like the rest of the prompt.

use serde_json::Value;

use crate::config::{PromptCache, Target};

/// Makes `body` (a chat request for `target`) ask for a cold prompt when the target says so.
pub(crate) fn apply(body: &mut Value, target: &Target) {
    if target.params.prompt_cache == PromptCache::On {
        return;
    }
    match target.provider.as_str() {
        "llamacpp" => body["cache_prompt"] = Value::Bool(false),
        "vllm" => body["cache_salt"] = Value::String(nonce()),
        _ => {
            if let Some(Value::String(content)) = body
                .get_mut("messages")
                .and_then(|m| m.get_mut(0))
                .and_then(|m| m.get_mut("content"))
            {
                *content = format!("[{}]\n{content}", nonce());
            }
        }
    }
}

/// 64 random bits in hex: no two calls of a run (or of a lifetime) share one.
fn nonce() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(provider: &str, cache: &str) -> Target {
        let cfg = crate::config::Config::parse(
            &format!(
                "[[targets]]\nname = \"t\"\nprovider = \"{provider}\"\nmodel = \"m\"\n\
                 base_url = \"http://127.0.0.1:1/v1\"\nprompt_cache = \"{cache}\"\n"
            ),
            "t.toml",
            ".".into(),
            &|_| None,
        )
        .unwrap();
        cfg.targets[0].clone()
    }

    fn body() -> Value {
        json!({"model": "m", "messages": [{"role": "user", "content": "Explain AI"}]})
    }

    #[test]
    fn on_leaves_the_request_as_it_was() {
        let mut b = body();
        apply(&mut b, &target("llamacpp", "on"));
        assert_eq!(b, body());
    }

    #[test]
    fn llama_cpp_is_asked_not_to_reuse_its_cache() {
        let mut b = body();
        apply(&mut b, &target("llamacpp", "off"));
        assert_eq!(b["cache_prompt"], json!(false));
        assert_eq!(b["messages"], body()["messages"]);
    }

    #[test]
    fn vllm_gets_a_fresh_salt_per_call() {
        let t = target("vllm", "off");
        let (mut a, mut b) = (body(), body());
        apply(&mut a, &t);
        apply(&mut b, &t);
        assert_eq!(a["messages"], body()["messages"]);
        assert_ne!(a["cache_salt"], b["cache_salt"]);
    }

    #[test]
    fn other_servers_see_a_unique_first_line() {
        let t = target("openai-compatible", "off");
        let (mut a, mut b) = (body(), body());
        apply(&mut a, &t);
        apply(&mut b, &t);
        let (a, b) = (
            a["messages"][0]["content"].as_str().unwrap().to_string(),
            b["messages"][0]["content"].as_str().unwrap().to_string(),
        );
        assert!(
            a.ends_with("\nExplain AI") && b.ends_with("\nExplain AI"),
            "{a}"
        );
        assert_ne!(a, b);
    }

    #[test]
    fn a_misspelt_value_names_the_field() {
        let e = crate::config::Config::parse(
            "[[targets]]\nname = \"t\"\nprovider = \"llamacpp\"\nmodel = \"m\"\nprompt_cache = \"cold\"\n",
            "t.toml",
            ".".into(),
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("t.toml:5") && e.contains("on") && e.contains("off"),
            "{e}"
        );
    }
}
