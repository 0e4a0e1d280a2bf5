//! Telling servers apart and reading each one's models from its own endpoints, in the shapes
//! their documentation gives:
//!
//! - llama.cpp `llama-server`: `GET /props` (`model_path`, `total_slots`, `build_info`,
//!   `default_generation_settings.n_ctx`), `GET /v1/models` (`meta.size`, `meta.n_params`),
//!   `GET /health` (503 while loading).
//! - Ollama: `GET /api/version`, `GET /api/tags`, `GET /api/ps`, `POST /api/show`.
//! - LM Studio: `GET /api/v0/models` (`type`, `quantization`, `state`, `max_context_length`) and,
//!   on newer versions, `GET /api/v1/models` (`size_bytes`, `loaded_instances`).
//! - Exo: `GET /state`, `GET /models`.
//! - vLLM: `GET /v1/models` (`owned_by = "vllm"`, `max_model_len`), `GET /version`.
//! - Anything else answering `GET /v1/models`: an OpenAI-compatible server.
//!
//! The parsers take the JSON bodies and do no IO, so each is tested on documented examples.

use serde_json::{Map, Value};

use super::{Kind, Model, Server};

/// What one GET gave.
enum Got {
    /// Nothing listens there (or it did not answer in time).
    Nothing,
    /// An HTTP status other than 2xx.
    Status(u16),
    Json(Value),
    /// 2xx, but not JSON.
    Other,
}

/// The most of a discovery answer read: model lists are kilobytes; a server that sends more
/// is not one of these.
pub const MAX_BODY: usize = 4 << 20;

/// The body of `r`, or `None` past [`MAX_BODY`] or on a broken read.
async fn bounded_body(mut r: reqwest::Response) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = r.chunk().await {
        if body.len() + chunk.len() > MAX_BODY {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

async fn get(http: &reqwest::Client, url: &str) -> Got {
    match http.get(url).send().await {
        Err(_) => Got::Nothing,
        Ok(r) if !r.status().is_success() => Got::Status(r.status().as_u16()),
        Ok(r) => match bounded_body(r)
            .await
            .map(|b| serde_json::from_slice::<Value>(&b))
        {
            Some(Ok(v)) => Got::Json(v),
            _ => Got::Other,
        },
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Option<Value> {
    match get(http, url).await {
        Got::Json(v) => Some(v),
        _ => None,
    }
}

/// Finds out what serves `root` and reads its models. `Ok(None)`: nothing answers there.
pub async fn probe(http: &reqwest::Client, root: &str) -> Result<Option<Server>, String> {
    let props = match get(http, &format!("{root}/props")).await {
        Got::Nothing => return Ok(None),
        Got::Json(v) if v.get("model_path").is_some() || v.get("total_slots").is_some() => Some(v),
        _ => None,
    };
    if let Some(props) = props {
        let models = get_json(http, &format!("{root}/v1/models")).await;
        let health = get(http, &format!("{root}/health")).await;
        let loading = matches!(health, Got::Status(503));
        return Ok(Some(llamacpp(root, &props, models.as_ref(), loading)));
    }
    if let Some(v) = get_json(http, &format!("{root}/api/version")).await
        && let Some(version) = v.get("version").and_then(Value::as_str)
    {
        let tags = get_json(http, &format!("{root}/api/tags"))
            .await
            .unwrap_or(Value::Null);
        let ps = get_json(http, &format!("{root}/api/ps"))
            .await
            .unwrap_or(Value::Null);
        let mut server = ollama(root, version, &tags, &ps);
        for m in &mut server.models {
            let show = http
                .post(format!("{root}/api/show"))
                .json(&serde_json::json!({ "model": m.name }))
                .send()
                .await;
            if let Ok(r) = show
                && r.status().is_success()
                && let Some(body) = bounded_body(r).await
                && let Ok(v) = serde_json::from_slice::<Value>(&body)
            {
                ollama_show(m, &v);
            }
        }
        return Ok(Some(server));
    }
    if let Some(v0) = get_json(http, &format!("{root}/api/v0/models")).await
        && v0.get("data").is_some_and(Value::is_array)
    {
        let v1 = get_json(http, &format!("{root}/api/v1/models")).await;
        return Ok(Some(lmstudio(root, &v0, v1.as_ref())));
    }
    if let Some(state) = get_json(http, &format!("{root}/state")).await
        && let Some(models) = get_json(http, &format!("{root}/models")).await
    {
        return Ok(Some(exo(root, &models, &state)));
    }
    match get(http, &format!("{root}/v1/models")).await {
        Got::Json(v) if v.get("data").is_some_and(Value::is_array) => {
            let version = get_json(http, &format!("{root}/version"))
                .await
                .and_then(|v| v.get("version").and_then(Value::as_str).map(String::from));
            Ok(Some(openai(root, &v, version)))
        }
        Got::Nothing => Ok(None),
        Got::Status(s) => Err(format!(
            "answers HTTP {s} on /v1/models and none of the known servers' endpoints"
        )),
        _ => Err("answers, but not as any LLM server llmpulse knows".into()),
    }
}

fn server(kind: Kind, root: &str, version: Option<String>, models: Vec<Model>) -> Server {
    let api_base = match kind {
        // The native API: the server's own timings, and its memory from `/api/ps`.
        Kind::Ollama => format!("{root}/api"),
        _ => format!("{root}/v1"),
    };
    Server {
        kind,
        url: root.to_string(),
        api_base,
        version,
        pid: None,
        process: None,
        models,
        details: Map::new(),
    }
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(String::from)
}

fn u64_of(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn items<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter())
        .into_iter()
        .flatten()
}

/// `134515008` → `"135M"`.
pub fn parameters_text(n: u64) -> String {
    let n = n as f64;
    let (v, unit) = if n >= 1e12 {
        (n / 1e12, "T")
    } else if n >= 1e9 {
        (n / 1e9, "B")
    } else if n >= 1e6 {
        (n / 1e6, "M")
    } else {
        (n / 1e3, "K")
    };
    if v >= 10.0 {
        format!("{v:.0}{unit}")
    } else {
        format!("{v:.1}{unit}")
    }
}

/// The quantization written in a GGUF file name (`…Q4_K_M.gguf`, `…-f16.gguf`).
pub fn quantization_in_name(name: &str) -> Option<String> {
    let re =
        regex::Regex::new(r"(?i)(?:^|[.\-_])((?:IQ|Q)\d(?:_[A-Z0-9]+)*|BF16|F16|F32)(?:\.gguf)?$")
            .ok()?;
    let stem = name.rsplit('/').next().unwrap_or(name);
    let stem = stem.strip_suffix(".gguf").unwrap_or(stem);
    re.captures(stem).map(|c| c[1].to_ascii_uppercase())
}

/// llama.cpp's `llama-server`: one model, from `/props` and `/v1/models`.
pub fn llamacpp(root: &str, props: &Value, models: Option<&Value>, loading: bool) -> Server {
    let path = str_of(props, "model_path");
    let first = models.and_then(|m| m.get("data")?.as_array()?.first().cloned());
    let meta = first.as_ref().and_then(|m| m.get("meta").cloned());
    let name = first
        .as_ref()
        .and_then(|m| str_of(m, "id"))
        .or_else(|| path.clone())
        .unwrap_or_else(|| "default".into());
    let ctx = props
        .pointer("/default_generation_settings/n_ctx")
        .and_then(Value::as_u64);
    let quantization = str_of(props, "model_ftype")
        .or_else(|| path.as_deref().and_then(quantization_in_name))
        .or_else(|| quantization_in_name(&name));
    let mut capabilities = vec!["completion".to_string()];
    if props
        .pointer("/chat_template_caps/supports_tools")
        .and_then(Value::as_bool)
        == Some(true)
    {
        capabilities.push("tools".into());
    }
    if props.pointer("/modalities/vision").and_then(Value::as_bool) == Some(true) {
        capabilities.push("vision".into());
    }
    let model = Model {
        name,
        size_bytes: meta.as_ref().and_then(|m| u64_of(m, "size")),
        quantization,
        parameters: meta
            .as_ref()
            .and_then(|m| u64_of(m, "n_params"))
            .map(parameters_text),
        family: None,
        context_length: ctx,
        loaded: Some(!loading),
        memory_bytes: None,
        capabilities,
        excluded: None,
    };
    let mut s = server(
        Kind::LlamaCpp,
        root,
        str_of(props, "build_info"),
        vec![model],
    );
    for key in ["model_path", "total_slots", "build_info"] {
        if let Some(v) = props.get(key) {
            s.details.insert(key.into(), v.clone());
        }
    }
    if let Some(ctx) = ctx {
        s.details.insert("n_ctx".into(), ctx.into());
    }
    s
}

/// Ollama: `/api/tags` for the models, `/api/ps` for what is loaded.
pub fn ollama(root: &str, version: &str, tags: &Value, ps: &Value) -> Server {
    let models = items(tags, "models")
        .filter_map(|m| {
            let name = str_of(m, "name").or_else(|| str_of(m, "model"))?;
            let details = m.get("details").cloned().unwrap_or(Value::Null);
            let running = items(ps, "models").find(|p| {
                str_of(p, "name").as_deref() == Some(name.as_str())
                    || str_of(p, "model").as_deref() == Some(name.as_str())
            });
            Some(Model {
                size_bytes: u64_of(m, "size"),
                quantization: str_of(&details, "quantization_level"),
                parameters: str_of(&details, "parameter_size"),
                family: str_of(&details, "family"),
                context_length: running.and_then(|p| u64_of(p, "context_length")),
                loaded: Some(running.is_some()),
                memory_bytes: running.and_then(|p| u64_of(p, "size")),
                capabilities: Vec::new(),
                excluded: None,
                name,
            })
        })
        .collect();
    server(Kind::Ollama, root, Some(version.to_string()), models)
}

/// Ollama `/api/show`: capabilities, and the context length the model was trained for when
/// `/api/ps` did not say the loaded one.
pub fn ollama_show(model: &mut Model, show: &Value) {
    model.capabilities = items(show, "capabilities")
        .filter_map(|c| c.as_str().map(String::from))
        .collect();
    if model.context_length.is_none()
        && let Some(info) = show.get("model_info").and_then(Value::as_object)
    {
        model.context_length = info
            .iter()
            .find(|(k, _)| k.ends_with(".context_length"))
            .and_then(|(_, v)| v.as_u64());
    }
}

/// LM Studio: `/api/v0/models`, with sizes from `/api/v1/models` where the version has it.
pub fn lmstudio(root: &str, v0: &Value, v1: Option<&Value>) -> Server {
    let models = items(v0, "data")
        .filter_map(|m| {
            let name = str_of(m, "id")?;
            let detail = v1.and_then(|v| {
                items(v, "models")
                    .find(|x| str_of(x, "key").as_deref() == Some(name.as_str()))
                    .cloned()
            });
            let mut capabilities = match m.get("type").and_then(Value::as_str) {
                Some("embeddings") => vec!["embedding".to_string()],
                Some("vlm") => vec!["completion".into(), "vision".into()],
                _ => vec!["completion".into()],
            };
            if detail
                .as_ref()
                .and_then(|d| d.pointer("/capabilities/trained_for_tool_use"))
                .and_then(Value::as_bool)
                == Some(true)
            {
                capabilities.push("tools".into());
            }
            let loaded_ctx = detail.as_ref().and_then(|d| {
                d.pointer("/loaded_instances/0/config/context_length")
                    .and_then(Value::as_u64)
            });
            Some(Model {
                size_bytes: detail.as_ref().and_then(|d| u64_of(d, "size_bytes")),
                quantization: str_of(m, "quantization"),
                parameters: detail.as_ref().and_then(|d| str_of(d, "params_string")),
                family: str_of(m, "arch"),
                context_length: loaded_ctx.or_else(|| u64_of(m, "max_context_length")),
                loaded: str_of(m, "state").map(|s| s == "loaded"),
                memory_bytes: None,
                capabilities,
                excluded: None,
                name,
            })
        })
        .collect();
    server(Kind::LmStudio, root, None, models)
}

/// Exo: `/models` for the catalogue, `/state` for what runs.
pub fn exo(root: &str, models: &Value, state: &Value) -> Server {
    let running: Vec<String> = items(state, "instances")
        .filter_map(|i| str_of(i, "model_id"))
        .collect();
    let models = items(models, "data")
        .filter_map(|m| {
            let name = str_of(m, "id")?;
            Some(Model {
                size_bytes: u64_of(m, "storage_size_bytes"),
                context_length: u64_of(m, "context_length"),
                loaded: Some(running.contains(&name)),
                capabilities: vec!["completion".into()],
                name,
                ..Model::default()
            })
        })
        .collect();
    server(Kind::Exo, root, None, models)
}

/// `/v1/models` alone: vLLM when it says so, else a generic OpenAI-compatible server.
pub fn openai(root: &str, models: &Value, version: Option<String>) -> Server {
    let vllm = items(models, "data").any(|m| {
        m.get("owned_by").and_then(Value::as_str) == Some("vllm")
            || m.get("max_model_len").is_some()
    });
    let list = items(models, "data")
        .filter_map(|m| {
            let name = str_of(m, "id")?;
            Some(Model {
                context_length: u64_of(m, "max_model_len"),
                quantization: quantization_in_name(&name),
                size_bytes: m.pointer("/meta/size").and_then(Value::as_u64),
                name,
                ..Model::default()
            })
        })
        .collect();
    let kind = if vllm {
        Kind::Vllm
    } else {
        Kind::OpenAiCompatible
    };
    server(kind, root, version.filter(|_| vllm), list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn llamacpp_from_props_and_models() {
        // The shapes llama-server answers (b6800).
        let props = json!({
            "model_path": "/models/SmolLM2-135M-Instruct.Q8_0.gguf", "total_slots": 4,
            "build_info": "b6800-1a2b3c", "default_generation_settings": {"n_ctx": 2048}
        });
        let models = json!({"data": [{"id": "/models/SmolLM2-135M-Instruct.Q8_0.gguf",
            "meta": {"n_params": 134515008u64, "size": 144811008u64}}]});
        let s = llamacpp("http://h:8080", &props, Some(&models), false);
        assert_eq!(s.kind, Kind::LlamaCpp);
        assert_eq!(s.version.as_deref(), Some("b6800-1a2b3c"));
        let m = &s.models[0];
        assert_eq!(m.size_bytes, Some(144811008));
        assert_eq!(m.parameters.as_deref(), Some("135M"));
        assert_eq!(m.quantization.as_deref(), Some("Q8_0"));
        assert_eq!(m.context_length, Some(2048));
        assert_eq!(s.details["total_slots"], 4);
    }

    #[test]
    fn ollama_models_loaded_and_capabilities() {
        let tags = json!({"models": [
            {"name": "gemma3:4b", "size": 3338801804u64, "details": {"family": "gemma3",
             "parameter_size": "4.3B", "quantization_level": "Q4_K_M"}},
            {"name": "nomic-embed-text:latest", "size": 274302450u64, "details": {}}
        ]});
        let ps = json!({"models": [{"name": "gemma3:4b", "size": 6591830016u64,
            "size_vram": 6591830016u64, "context_length": 8192}]});
        let mut s = ollama("http://h:11434", "0.12.6", &tags, &ps);
        ollama_show(
            &mut s.models[0],
            &json!({"capabilities": ["completion", "vision"]}),
        );
        ollama_show(
            &mut s.models[1],
            &json!({"capabilities": ["embedding"],
            "model_info": {"nomic-bert.context_length": 2048}}),
        );
        let (g, e) = (&s.models[0], &s.models[1]);
        assert_eq!(g.loaded, Some(true));
        assert_eq!(g.memory_bytes, Some(6591830016));
        assert_eq!(g.context_length, Some(8192));
        assert_eq!(g.quantization.as_deref(), Some("Q4_K_M"));
        assert!(e.embedding_only());
        assert_eq!(e.loaded, Some(false));
        assert_eq!(e.context_length, Some(2048));
    }

    #[test]
    fn lmstudio_v0_with_v1_sizes() {
        let v0 = json!({"data": [
            {"id": "qwen2-vl-7b-instruct", "type": "vlm", "arch": "qwen2_vl",
             "quantization": "4bit", "state": "not-loaded", "max_context_length": 32768},
            {"id": "text-embedding-nomic", "type": "embeddings", "state": "loaded"}
        ]});
        let v1 = json!({"models": [{"key": "qwen2-vl-7b-instruct", "size_bytes": 4_800_000_000u64,
            "params_string": "7B", "capabilities": {"trained_for_tool_use": true},
            "loaded_instances": []}]});
        let s = lmstudio("http://h:1234", &v0, Some(&v1));
        let q = &s.models[0];
        assert_eq!(q.size_bytes, Some(4_800_000_000));
        assert_eq!(q.loaded, Some(false));
        assert_eq!(q.capabilities, ["completion", "vision", "tools"]);
        assert!(s.models[1].embedding_only());
    }

    #[test]
    fn vllm_or_generic() {
        let v =
            json!({"data": [{"id": "Qwen/Qwen3-8B", "owned_by": "vllm", "max_model_len": 32768}]});
        let s = openai("http://h:8000", &v, Some("0.11.0".into()));
        assert_eq!(s.kind, Kind::Vllm);
        assert_eq!(s.models[0].context_length, Some(32768));
        let g = json!({"data": [{"id": "smollm2", "owned_by": "me"}]});
        assert_eq!(openai("http://h:9", &g, None).kind, Kind::OpenAiCompatible);
    }

    #[test]
    fn names_and_counts() {
        assert_eq!(
            quantization_in_name("SmolLM2-135M-Instruct.Q4_1.gguf").as_deref(),
            Some("Q4_1")
        );
        assert_eq!(
            quantization_in_name("llama-3-8b-Q4_K_M.gguf").as_deref(),
            Some("Q4_K_M")
        );
        assert_eq!(
            quantization_in_name("model-f16.gguf").as_deref(),
            Some("F16")
        );
        assert_eq!(quantization_in_name("smollm2"), None);
        assert_eq!(parameters_text(7_241_732_096), "7.2B");
        assert_eq!(parameters_text(70_553_706_496), "71B");
    }
}
