//! The simulator stays honest: its `--kind vllm` and `--kind llamacpp` answers have the shapes
//! of the real servers' in CI (vLLM from PyPI, llama.cpp's `llama-server`). For `/v1/models`,
//! `/props`, `/metrics`, a plain answer and every kind of stream chunk (the role-only first
//! chunk, content, the finish, the usage chunk), every field the simulator sends must exist in
//! the real answer with the same JSON type, and the fields llmpulse reads must exist in both. A
//! simulator written by the client's authors cannot drift from what it imitates unseen.

#[path = "../../cli/tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use llmpulse_sim::{ServerKind, SimProfile, SimState};
use serde_json::{Value, json};
use support::service_url;

/// Every path in `v` with its JSON type: `/data/*/id: string`. Array items are merged under `*`;
/// map-like objects whose keys are data (llama.cpp's per-model settings) are not special-cased.
fn shape(v: &Value) -> BTreeMap<String, &'static str> {
    fn walk(v: &Value, at: String, out: &mut BTreeMap<String, &'static str>) {
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(items) => {
                for i in items {
                    walk(i, format!("{at}/*"), out);
                }
                "array"
            }
            Value::Object(m) => {
                for (k, x) in m {
                    walk(x, format!("{at}/{k}"), out);
                }
                "object"
            }
        };
        // A field that is null in one answer and set in another is the same field.
        let e = out.entry(at).or_insert(kind);
        if *e == "null" {
            *e = kind;
        }
    }
    let mut out = BTreeMap::new();
    walk(v, String::new(), &mut out);
    out
}

/// What the simulator sends that the real server does not, or sends with another type.
fn drift(sim: &Value, real: &Value) -> Vec<String> {
    let (s, r) = (shape(sim), shape(real));
    s.iter()
        .filter_map(|(path, kind)| match r.get(path) {
            None => Some(format!("{path} ({kind}) is not in the real answer")),
            Some(k) if k != kind && *kind != "null" && *k != "null" => Some(format!(
                "{path} is {kind} in the simulator, {k} in the real answer"
            )),
            _ => None,
        })
        .collect()
}

fn assert_same_shape(what: &str, sim: &Value, real: &Value, read: &[&str]) {
    let d = drift(sim, real);
    assert!(
        d.is_empty(),
        "{what}: the simulator drifted from the real server:\n  {}\nsimulator: {sim:#}\nreal: {real:#}",
        d.join("\n  ")
    );
    let (s, r) = (shape(sim), shape(real));
    for path in read {
        assert!(
            r.contains_key(*path),
            "{what}: the real answer has no {path}: {real:#}"
        );
        assert!(
            s.contains_key(*path),
            "{what}: the simulator has no {path}: {sim:#}"
        );
    }
}

fn sim(rt: &tokio::runtime::Runtime, kind: ServerKind) -> String {
    let state = Arc::new(
        SimState::new(SimProfile::default(), Default::default(), false).with_kind(Some(kind)),
    );
    let addr = rt
        .block_on(llmpulse_sim::server::spawn(
            "127.0.0.1:0".parse().unwrap(),
            state,
        ))
        .unwrap();
    format!("http://{addr}")
}

async fn get(root: &str, path: &str) -> (u16, String) {
    let r = support::http()
        .get(format!("{root}{path}"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get_json(root: &str, path: &str) -> Value {
    let (status, body) = get(root, path).await;
    assert_eq!(status, 200, "GET {root}{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {root}{path}: {e}: {body}"))
}

async fn first_model(root: &str) -> String {
    get_json(root, "/v1/models").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A chat answer, plain, and streamed with usage: the plain body and the stream's chunks sorted
/// into the role-only first chunk, content chunks, the finish chunk and the usage chunk (each
/// kind's chunks merged).
async fn chat(root: &str) -> (Value, BTreeMap<&'static str, Vec<Value>>) {
    let model = first_model(root).await;
    let body = |stream: bool| {
        let mut b = json!({
            "model": model,
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 8,
            "temperature": 0,
            "stream": stream,
        });
        // vLLM refuses stream options on a plain request (400).
        if stream {
            b["stream_options"] = json!({"include_usage": true});
        }
        b
    };
    let url = format!("{root}/v1/chat/completions");
    let plain: Value = support::http()
        .post(&url)
        .json(&body(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = support::http()
        .post(&url)
        .json(&body(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut chunks: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data.trim() == "[DONE]" {
            continue;
        }
        let c: Value = serde_json::from_str(data).unwrap();
        let choice = &c["choices"][0];
        let kind = if c["choices"].as_array().is_some_and(|a| a.is_empty()) {
            "usage"
        } else if !choice["finish_reason"].is_null() {
            "finish"
        } else if choice["delta"]["content"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
        {
            "content"
        } else {
            "role"
        };
        chunks.entry(kind).or_default().push(c);
    }
    (plain, chunks)
}

/// The family names and types of a `/metrics` page.
fn families(page: &str) -> BTreeSet<(String, String)> {
    page.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect()
}

fn compare_chat(
    kind: &str,
    sim: (Value, BTreeMap<&str, Vec<Value>>),
    real: (Value, BTreeMap<&str, Vec<Value>>),
) {
    assert_same_shape(
        &format!("{kind} chat answer"),
        &sim.0,
        &real.0,
        &[
            "/choices/*/message/content",
            "/choices/*/finish_reason",
            "/usage/prompt_tokens",
            "/usage/completion_tokens",
        ],
    );
    for chunk in ["role", "content", "finish", "usage"] {
        let (Some(s), Some(r)) = (sim.1.get(chunk), real.1.get(chunk)) else {
            panic!(
                "{kind}: a {chunk} chunk in one stream and not the other: simulator {:?}, real {:?}",
                sim.1.keys().collect::<Vec<_>>(),
                real.1.keys().collect::<Vec<_>>()
            );
        };
        // The chunks of a kind are compared as one array: paths begin with its `/*`.
        let read: &[&str] = match chunk {
            "content" => &["/*/choices/*/delta/content"],
            "usage" => &["/*/usage/prompt_tokens", "/*/usage/completion_tokens"],
            _ => &[],
        };
        assert_same_shape(
            &format!("{kind} {chunk} chunk"),
            &Value::Array(s.clone()),
            &Value::Array(r.clone()),
            read,
        );
    }
}

/// Every `/metrics` family the simulator exposes must exist on the real server too.
async fn compare_metrics(kind: &str, fake: &str, real: &str) {
    let (sim_page, real_page) = (get(fake, "/metrics").await.1, get(real, "/metrics").await.1);
    let missing: Vec<_> = families(&sim_page)
        .difference(&families(&real_page))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "{kind} /metrics families the real server lacks: {missing:?}"
    );
}

#[test]
fn the_vllm_simulator_has_the_real_vllms_shapes() {
    let Some(url) = service_url("LLMPULSE_VLLM_URL") else {
        return;
    };
    let real = url.trim_end_matches("/v1").to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = sim(&rt, ServerKind::Vllm);
    rt.block_on(async {
        assert_same_shape(
            "vLLM /v1/models",
            &get_json(&fake, "/v1/models").await,
            &get_json(&real, "/v1/models").await,
            &["/data/*/id", "/data/*/owned_by", "/data/*/max_model_len"],
        );
        assert_same_shape(
            "vLLM /version",
            &get_json(&fake, "/version").await,
            &get_json(&real, "/version").await,
            &["/version"],
        );
        compare_metrics("vLLM", &fake, &real).await;
        compare_chat("vLLM", chat(&fake).await, chat(&real).await);
    });
}

#[test]
fn the_llama_cpp_simulator_has_the_real_llama_servers_shapes() {
    let Some(url) = service_url("LLMPULSE_LLAMACPP_URL") else {
        return;
    };
    let real = url.trim_end_matches("/v1").to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = sim(&rt, ServerKind::LlamaCpp);
    rt.block_on(async {
        assert_same_shape(
            "llama.cpp /v1/models",
            &get_json(&fake, "/v1/models").await,
            &get_json(&real, "/v1/models").await,
            &["/data/*/id"],
        );
        assert_same_shape(
            "llama.cpp /props",
            &get_json(&fake, "/props").await,
            &get_json(&real, "/props").await,
            &["/default_generation_settings/n_ctx", "/model_path"],
        );
        compare_metrics("llama.cpp", &fake, &real).await;
        compare_chat("llama.cpp", chat(&fake).await, chat(&real).await);
    });
}
