//! Prefix caches on the real servers in CI (llama.cpp's `llama-server`, vLLM): a repeated
//! prompt is served from the server's cache and its records say so (`prompt_cached_tokens`),
//! `prompt_cache = "off"` makes every call cold, and llama.cpp's own timings of each call land
//! in `server_ttft_sec`, `server_prefill_sec` and `server_decode_tps`.

mod support;

use serde_json::Value;
use support::{Scratch, f, report_summary, run_records, service_url, target_as};

/// One question with a context long enough to fill a cache block (vLLM on CPU caches whole
/// blocks of 128 tokens), asked three times by a target that lets the server cache and by one
/// that does not.
fn warm_and_cold(dir: &Scratch, provider: &str, url: &str, model: &str) -> Vec<Value> {
    let context: String = (0..40)
        .map(|i| {
            format!(
                "Store {i} of Northwind Outfitters sold {} jackets. ",
                100 + i * 7
            )
        })
        .collect();
    let suite = dir.write(
        "suite.toml",
        &format!(
            "name = \"cache\"\n[[questions]]\nid = \"q\"\nindustry = \"retail\"\ntask = \"rag\"\n\
             question = \"How many jackets did store 3 sell?\"\ncontext = [\"{context}\"]\n\
             key_facts = [\"121\"]\n"
        ),
    );
    let params = "temperature = 0\nmax_tokens = 4\n";
    let cfg = format!(
        "suite = \"{}\"\nconcurrency = 1\nrepetitions = 3\n{}{}",
        suite.display(),
        target_as("warm", provider, url, model, params),
        target_as(
            "cold",
            provider,
            url,
            model,
            &format!("{params}prompt_cache = \"off\"\n")
        ),
    );
    let rows = run_records(dir, &cfg, &[]);
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert_eq!(r["success"], true, "{r}");
    }
    let of = |t: &str| {
        rows.iter()
            .filter(|r| r["target"] == t)
            .cloned()
            .collect::<Vec<_>>()
    };
    let (warm, cold) = (of("warm"), of("cold"));
    for r in &cold {
        assert_eq!(r["prompt_cached_tokens"], 0, "asked cold, served warm: {r}");
    }
    assert!(
        warm.iter()
            .any(|r| r["prompt_cached_tokens"].as_u64() > Some(0)),
        "a prompt asked three times was never served from the cache: {warm:?}"
    );
    for r in &warm {
        let cached = r["prompt_cached_tokens"].as_u64().unwrap();
        assert!(cached < r["prompt_tokens"].as_u64().unwrap(), "{r}");
    }
    the_report_keeps_warm_and_cold_apart(dir, &warm, &cold);
    rows
}

/// The report counts each target's warm calls, and says in words when a target's TTFT pools
/// warm and cold calls.
fn the_report_keeps_warm_and_cold_apart(dir: &Scratch, warm: &[Value], cold: &[Value]) {
    let summary = report_summary(&dir.0);
    let figures = |name: &str| {
        summary["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == name)
            .unwrap()["prompt_cache"]
            .clone()
    };
    let hits = warm
        .iter()
        .filter(|r| r["prompt_cached_tokens"].as_u64() > Some(0))
        .count();
    assert_eq!(figures("warm")["warm"]["k"], hits as u64);
    assert_eq!(figures("warm")["warm"]["n"], 3);
    assert_eq!(figures("cold")["warm"]["k"], 0, "{cold:?}");
    let md = std::fs::read_to_string(dir.0.join("r/summary.md")).unwrap();
    assert_eq!(md.contains("Prompt cache, `warm`"), hits < 3, "{md}");
    assert!(!md.contains("Prompt cache, `cold`"), "{md}");
}

#[test]
fn llama_cpp_says_what_it_took_from_its_cache_and_how_long_it_took() {
    let Some(url) = service_url("LLMPULSE_LLAMACPP_URL") else {
        return;
    };
    let dir = Scratch::new("prompt-cache-llamacpp");
    let rows = warm_and_cold(&dir, "llamacpp", &url, "smollm2");
    for r in &rows {
        let (server, client) = (f(&r["server_ttft_sec"]), f(&r["ttft_sec"]));
        // The server's first token is inside the client's wait for it.
        assert!(
            server > 0.0 && server <= client,
            "server {server} s, client {client} s: {r}"
        );
        assert_eq!(r["server_prefill_sec"], r["server_ttft_sec"], "{r}");
        assert!(f(&r["server_decode_tps"]) > 0.0, "{r}");
    }
}

#[test]
fn vllm_serves_a_repeated_prompt_warm_and_a_salted_one_cold() {
    let Some(url) = service_url("LLMPULSE_VLLM_URL") else {
        return;
    };
    let dir = Scratch::new("prompt-cache-vllm");
    let rows = warm_and_cold(&dir, "vllm", &url, "smollm2-vllm");
    for r in &rows {
        // vLLM reports no per-call timings of its own (they are on /metrics).
        assert_eq!(r["server_ttft_sec"], Value::Null, "{r}");
    }
}
