//! Configs from a discovery: `llmpulse-agent discover --write-config` writes a ready config with
//! one target per chosen model, an `[agent]` table and a commented campaign; `llmpulse run
//! --local` takes the targets alone.

use std::fmt::Write as _;

use super::{Discovery, Kind};

/// A target name from a server kind and a model name: letters, digits, `-`, `_`, `.`.
pub fn target_name(kind: Kind, model: &str) -> String {
    let model = model.rsplit('/').next().unwrap_or(model);
    let model = model.strip_suffix(".gguf").unwrap_or(model);
    let mut out = format!("{}-", kind.preset().trim_end_matches("-native"));
    let mut dash = false;
    for c in model.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c.to_ascii_lowercase());
            dash = false;
        } else if !dash {
            out.push('-');
            dash = true;
        }
    }
    out.trim_end_matches('-').to_string()
}

fn quote(s: &str) -> String {
    // A TOML basic string: serde_json's escaping is a subset TOML accepts.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The config text for the models `d` kept (those without `excluded`).
pub fn write(d: &Discovery, agent_id: &str, output: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Written by `llmpulse-agent discover --write-config`: one target per model found.\n\
         # Check it, then: llmpulse-agent serve --config THIS_FILE\n"
    );
    let _ = writeln!(t, "suite = \"builtin:rag-retail-finance\"");
    let _ = writeln!(t, "repetitions = 1");
    let _ = writeln!(
        t,
        "# One call at a time: a local server shares one device, and per-call memory and energy\n\
         # are exact only when calls do not overlap.\nconcurrency = 1"
    );
    let _ = writeln!(
        t,
        "output = {}   # or s3://bucket/prefix, gs://bucket/prefix",
        quote(output)
    );
    let _ = writeln!(t, "timeout_sec = 300\n");
    let _ = writeln!(
        t,
        "[agent]\nid = {}\nlisten = \"127.0.0.1:9464\"\nsample_hz = 10\n",
        quote(agent_id)
    );
    let _ = writeln!(
        t,
        "# Runs on a schedule with `serve` (uncomment and set the dates):\n\
         # [campaign]\n# name = \"{agent_id}\"\n# start = \"2026-12-01T00:00:00Z\"\n\
         # end = \"2026-12-31T00:00:00Z\"\n# every = \"6h\"\n"
    );
    t.push_str(&targets(d, ""));
    t
}

/// The `[[targets]]` tables for the models `d` kept, one each, named after server and model,
/// each with the `extra` lines (settings every target shares, TOML ending in a newline).
pub fn targets(d: &Discovery, extra: &str) -> String {
    let mut t = String::new();
    let mut names = std::collections::HashSet::new();
    for s in &d.servers {
        for m in s.models.iter().filter(|m| m.excluded.is_none()) {
            let mut name = target_name(s.kind, &m.name);
            let base = name.clone();
            let mut k = 2;
            while !names.insert(name.clone()) {
                name = format!("{base}-{k}");
                k += 1;
            }
            let _ = writeln!(t, "[[targets]]");
            let _ = writeln!(t, "name = {}", quote(&name));
            let _ = writeln!(t, "provider = {}", quote(s.kind.preset()));
            let _ = writeln!(t, "model = {}", quote(&m.name));
            let _ = writeln!(t, "base_url = {}", quote(&s.api_base));
            t.push_str(extra);
            let mut about = Vec::new();
            if let Some(b) = m.size_bytes {
                about.push(format!("{:.2} GB", b as f64 / 1e9));
            }
            if let Some(q) = &m.quantization {
                about.push(q.clone());
            }
            if let Some(c) = m.context_length {
                about.push(format!("context {c}"));
            }
            if !about.is_empty() {
                let _ = writeln!(t, "# {}", about.join(", "));
            }
            let _ = writeln!(t);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe() {
        assert_eq!(target_name(Kind::Ollama, "qwen3:8b"), "ollama-qwen3-8b");
        assert_eq!(
            target_name(Kind::LlamaCpp, "/models/SmolLM2-135M.Q8_0.gguf"),
            "llamacpp-smollm2-135m.q8_0"
        );
        assert_eq!(
            target_name(Kind::LmStudio, "google/gemma-3-4b"),
            "lmstudio-gemma-3-4b"
        );
    }
}
