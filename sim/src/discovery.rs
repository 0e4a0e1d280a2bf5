//! What a simulated server says about itself and its models, in the documented shapes of the
//! servers the agent discovers (`llmpulse sim --kind`): Ollama, LM Studio, vLLM, llama.cpp's
//! `llama-server` and Exo. Each function returns one endpoint's JSON body; the HTTP server only
//! routes to them.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::profile::SimProfile;

/// The server a simulator pretends to be on its discovery endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    Ollama,
    LmStudio,
    Vllm,
    LlamaCpp,
    Exo,
}

impl ServerKind {
    pub const ALL: [ServerKind; 5] = [
        ServerKind::Ollama,
        ServerKind::LmStudio,
        ServerKind::Vllm,
        ServerKind::LlamaCpp,
        ServerKind::Exo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Ollama => "ollama",
            ServerKind::LmStudio => "lmstudio",
            ServerKind::Vllm => "vllm",
            ServerKind::LlamaCpp => "llamacpp",
            ServerKind::Exo => "exo",
        }
    }

    pub fn parse(s: &str) -> Option<ServerKind> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The version string the simulated server reports.
    pub fn version(self) -> &'static str {
        match self {
            ServerKind::Ollama => "0.12.6",
            ServerKind::LmStudio => "0.3.30",
            ServerKind::Vllm => "0.11.0",
            ServerKind::LlamaCpp => "b6800-sim",
            ServerKind::Exo => "1.0.0",
        }
    }
}

/// One model in the simulated catalogue.
pub struct Entry<'a> {
    pub name: &'a str,
    pub profile: &'a SimProfile,
    /// Loaded now (by the profile, or because it was asked).
    pub loaded: bool,
}

fn has(p: &SimProfile, capability: &str) -> bool {
    p.capabilities.iter().any(|c| c == capability)
}

/// Ollama `GET /api/tags`.
pub fn ollama_tags(models: &[Entry<'_>]) -> Value {
    let models: Vec<Value> = models
        .iter()
        .map(|m| {
            json!({
                "name": m.name, "model": m.name, "size": m.profile.size_bytes(),
                "modified_at": "2026-11-01T00:00:00Z", "digest": "sim",
                "details": ollama_details(m.profile),
            })
        })
        .collect();
    json!({ "models": models })
}

fn ollama_details(p: &SimProfile) -> Value {
    json!({
        "format": "gguf", "family": p.family, "families": [p.family],
        "parameter_size": p.parameters, "quantization_level": p.quantization,
    })
}

/// Ollama `GET /api/ps`: loaded models, with the memory they take (`memory_mb`, else the file).
pub fn ollama_ps(models: &[Entry<'_>]) -> Value {
    let models: Vec<Value> = models
        .iter()
        .filter(|m| m.loaded)
        .map(|m| {
            let bytes = if m.profile.memory_mb > 0.0 {
                (m.profile.memory_mb * 1_048_576.0).round() as u64
            } else {
                m.profile.size_bytes()
            };
            json!({
                "name": m.name, "model": m.name, "size": bytes, "size_vram": bytes,
                "digest": "sim", "expires_at": "2099-01-01T00:00:00Z",
                "context_length": m.profile.context_length,
                "details": ollama_details(m.profile),
            })
        })
        .collect();
    json!({ "models": models })
}

/// Ollama `POST /api/show`, or `None` for a model it does not have.
pub fn ollama_show(models: &[Entry<'_>], name: &str) -> Option<Value> {
    let m = models.iter().find(|m| m.name == name)?;
    let p = m.profile;
    let mut info = serde_json::Map::new();
    info.insert("general.architecture".into(), json!(p.family));
    info.insert(
        format!("{}.context_length", p.family),
        json!(p.context_length),
    );
    Some(json!({
        "details": ollama_details(p),
        "model_info": info,
        "capabilities": p.capabilities,
    }))
}

fn lmstudio_type(p: &SimProfile) -> &'static str {
    if has(p, "embedding") {
        "embeddings"
    } else if has(p, "vision") {
        "vlm"
    } else {
        "llm"
    }
}

/// LM Studio `GET /api/v0/models`.
pub fn lmstudio_v0(models: &[Entry<'_>]) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|m| {
            json!({
                "id": m.name, "object": "model", "type": lmstudio_type(m.profile),
                "publisher": "sim", "arch": m.profile.family, "compatibility_type": "gguf",
                "quantization": m.profile.quantization,
                "state": if m.loaded { "loaded" } else { "not-loaded" },
                "max_context_length": m.profile.context_length,
            })
        })
        .collect();
    json!({ "object": "list", "data": data })
}

/// LM Studio `GET /api/v1/models` (newer versions): sizes and loaded instances.
pub fn lmstudio_v1(models: &[Entry<'_>]) -> Value {
    let models: Vec<Value> = models
        .iter()
        .map(|m| {
            let p = m.profile;
            let instances: Vec<Value> = if m.loaded {
                vec![json!({"id": m.name, "config": {"context_length": p.context_length}})]
            } else {
                Vec::new()
            };
            json!({
                "type": lmstudio_type(p), "publisher": "sim", "key": m.name,
                "display_name": m.name, "architecture": p.family, "format": "gguf",
                "quantization": {"name": p.quantization},
                "size_bytes": p.size_bytes(), "params_string": p.parameters,
                "max_context_length": p.context_length, "loaded_instances": instances,
                "capabilities": {"vision": has(p, "vision"), "trained_for_tool_use": has(p, "tools")},
            })
        })
        .collect();
    json!({ "models": models })
}

/// vLLM `GET /v1/models`.
pub fn vllm_models(models: &[Entry<'_>]) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|m| {
            json!({
                "id": m.name, "object": "model", "owned_by": "vllm", "root": m.name,
                "max_model_len": m.profile.context_length,
            })
        })
        .collect();
    json!({ "object": "list", "data": data })
}

/// The one model a llama.cpp server serves: the first loaded one, else the first.
fn served<'a, 'b>(models: &'a [Entry<'b>]) -> Option<&'a Entry<'b>> {
    models.iter().find(|m| m.loaded).or(models.first())
}

/// llama.cpp `GET /v1/models`: the one model, with `meta` (size in bytes, parameters).
pub fn llamacpp_models(models: &[Entry<'_>]) -> Value {
    let data: Vec<Value> = served(models)
        .into_iter()
        .map(|m| {
            let p = m.profile;
            json!({
                "id": m.name, "object": "model", "owned_by": "llamacpp",
                "meta": {
                    "n_params": crate::profile::parameter_count(&p.parameters).unwrap_or(0.0) as u64,
                    "size": p.size_bytes(), "n_ctx_train": p.context_length, "n_vocab": 49152,
                },
            })
        })
        .collect();
    json!({ "object": "list", "data": data })
}

/// llama.cpp `GET /props`.
pub fn llamacpp_props(models: &[Entry<'_>]) -> Value {
    let Some(m) = served(models) else {
        return json!({});
    };
    json!({
        "model_path": format!("/models/{}.{}.gguf", m.name, m.profile.quantization),
        "model_ftype": m.profile.quantization,
        "total_slots": 4,
        "build_info": ServerKind::LlamaCpp.version(),
        "default_generation_settings": {"n_ctx": m.profile.context_length},
    })
}

/// llama.cpp `GET /slots`.
pub fn llamacpp_slots(models: &[Entry<'_>]) -> Value {
    let n_ctx = served(models).map_or(0, |m| m.profile.context_length);
    Value::Array(
        (0..4)
            .map(|id| json!({"id": id, "n_ctx": n_ctx, "is_processing": false}))
            .collect(),
    )
}

/// Exo `GET /models`.
pub fn exo_models(models: &[Entry<'_>]) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|m| {
            json!({
                "id": m.name, "object": "model", "owned_by": "exo", "name": m.name,
                "context_length": m.profile.context_length,
                "storage_size_bytes": m.profile.size_bytes(),
                "ready": m.loaded,
            })
        })
        .collect();
    json!({ "object": "list", "data": data })
}

/// Exo `GET /state`: the running instances and the node's memory.
pub fn exo_state(models: &[Entry<'_>]) -> Value {
    let instances: Vec<Value> = models
        .iter()
        .filter(|m| m.loaded)
        .map(|m| json!({"model_id": m.name, "status": "running"}))
        .collect();
    json!({ "instances": instances, "nodes": [{"id": "sim-node", "memory": {"ram_total_bytes": 17179869184u64}}] })
}

/// A Prometheus text page with the server's own counters (vLLM and llama.cpp serve one).
pub fn metrics(kind: ServerKind, requests: u64) -> String {
    match kind {
        ServerKind::Vllm => format!(
            "# HELP vllm:num_requests_running Number of requests running.\n# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{{model_name=\"sim\"}} 0\n# HELP vllm:request_success_total Finished requests.\n# TYPE vllm:request_success_total counter\nvllm:request_success_total{{model_name=\"sim\"}} {requests}\n"
        ),
        _ => format!(
            "# HELP llamacpp:requests_processing Requests processing.\n# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 0\n# HELP llamacpp:n_decode_total Decode calls.\n# TYPE llamacpp:n_decode_total counter\nllamacpp:n_decode_total {requests}\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    //! The simulated discovery answers against the servers' published API docs: every field the
    //! simulator sends is one the doc names, and the fields llmpulse reads are there. Field lists
    //! from Ollama's `docs/api.md` (`/api/tags`, `/api/ps`, `/api/show`) and LM Studio's "REST
    //! API v0" page (`/api/v0/models`, LM Studio 0.3.6 and newer), both as published on
    //! 2026-12-03. Exo's API has no published reference to hold it to.
    use super::*;

    fn keys(v: &Value) -> Vec<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    fn within(what: &str, v: &Value, documented: &[&str], read: &[&str]) {
        for k in keys(v) {
            assert!(
                documented.contains(&k.as_str()),
                "{what}: `{k}` is not in the doc"
            );
        }
        for k in read {
            assert!(v.get(*k).is_some(), "{what}: no `{k}`");
        }
    }

    #[test]
    fn discovery_answers_use_only_documented_fields() {
        let p = SimProfile {
            loaded: true,
            ..SimProfile::default()
        };
        let m = [Entry {
            name: "qwen3:8b",
            profile: &p,
            loaded: true,
        }];
        const DETAILS: [&str; 6] = [
            "parent_model",
            "format",
            "family",
            "families",
            "parameter_size",
            "quantization_level",
        ];
        let tags = &ollama_tags(&m)["models"][0];
        within(
            "ollama /api/tags",
            tags,
            &["name", "model", "modified_at", "size", "digest", "details"],
            &["name", "size", "details"],
        );
        within(
            "ollama details",
            &tags["details"],
            &DETAILS,
            &["parameter_size", "quantization_level"],
        );
        let ps = &ollama_ps(&m)["models"][0];
        within(
            "ollama /api/ps",
            ps,
            &[
                "name",
                "model",
                "size",
                "digest",
                "details",
                "expires_at",
                "size_vram",
                "context_length",
            ],
            &["name", "size_vram", "context_length"],
        );
        let show = ollama_show(&m, "qwen3:8b").unwrap();
        within(
            "ollama /api/show",
            &show,
            &[
                "modelfile",
                "parameters",
                "template",
                "details",
                "model_info",
                "capabilities",
                "modified_at",
            ],
            &["model_info", "capabilities"],
        );
        let v0 = &lmstudio_v0(&m)["data"][0];
        within(
            "lmstudio /api/v0/models",
            v0,
            &[
                "id",
                "object",
                "type",
                "publisher",
                "arch",
                "compatibility_type",
                "quantization",
                "state",
                "max_context_length",
            ],
            &["id", "type", "state", "max_context_length"],
        );
    }
}
