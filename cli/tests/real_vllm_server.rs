//! End to end against a real vLLM (0.32.0, PyPI's CPU build) serving SmolLM2-135M-Instruct,
//! started by `.ci/vllm-server.sh`, which sets `LLMPULSE_VLLM_URL`. Known behaviour of that
//! server: a role-only first chunk (`"content": ""`) sent together with the first token, one
//! chunk per token, usage in a last chunk with no choices when asked for, named tool choices and
//! `json_schema` answers by guided decoding, and its own timings on `/metrics`.

mod support;

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::Value;
use support::{Scratch, f, run_records, service_url, target_as};

/// The tests that read the server's counters take turns, so that a delta is one run's.
static SERVER: Mutex<()> = Mutex::new(());

fn vllm(name: &str, url: &str, max_tokens: u32, extra: &str) -> String {
    let extra = format!("temperature = 0\nseed = 7\nmax_tokens = {max_tokens}\n{extra}");
    target_as(name, "vllm", url, "smollm2-vllm", &extra)
}

/// The capabilities suite, streamed and not: every answer arrives, the JSON answers parse, the
/// named tool is called with arguments that parse, and the token counts are the server's.
#[test]
fn the_capabilities_suite_streamed_and_not() {
    let Some(url) = service_url("LLMPULSE_VLLM_URL") else {
        return;
    };
    let _turn = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("vllm-capabilities");
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/capabilities.toml");
    let cfg = format!(
        "suite = \"{}\"\nconcurrency = 1\n{}{}",
        suite.display(),
        vllm("stream", &url, 96, ""),
        vllm("plain", &url, 96, "stream = false")
    );
    let rows = run_records(&dir, &cfg, &[]);
    let questions = std::fs::read_to_string(&suite)
        .unwrap()
        .matches("[[questions]]")
        .count();
    assert_eq!(rows.len(), 2 * questions);
    let row = |target: &str, id: &str| {
        rows.iter()
            .find(|r| r["target"] == target && r["question_id"] == id)
            .unwrap_or_else(|| panic!("no record of {target}/{id}"))
    };
    for r in &rows {
        assert_eq!(r["success"], true, "{r}");
        // vLLM reports usage streamed (stream_options.include_usage) and not.
        assert_eq!(r["token_source"], "usage", "{r}");
        assert!(r["response_tokens"].as_u64().unwrap() > 0, "{r}");
    }
    for target in ["stream", "plain"] {
        for id in ["structured-01", "structured-02"] {
            let r = row(target, id);
            assert_eq!(r["json_valid"], true, "{target}/{id}: {}", r["answer"]);
        }
        // This vLLM (0.32.0, CPU) does not hold a named tool's arguments to their schema for
        // SmolLM2: the model writes free text, as a call or as `<tool_call>` text in the answer.
        // The grade must say what came back: valid only when a call to the tool was made and
        // its arguments, assembled from their pieces, parse as an object.
        let r = row(target, "tool-01");
        let valid = match r["tool_calls"].as_str() {
            None => false,
            Some(text) => {
                let calls: Value = serde_json::from_str(text).unwrap();
                calls[0]["name"] == "get_inventory"
                    && calls[0]["arguments"]
                        .as_str()
                        .and_then(|a| serde_json::from_str::<Value>(a).ok())
                        .is_some_and(|a| a.is_object())
            }
        };
        assert_eq!(r["tool_call_valid"], valid, "{target}: {r}");
    }
    for r in rows.iter().filter(|r| r["target"] == "stream") {
        // The same prompt, the same count, whichever way the answer came.
        let plain = row("plain", r["question_id"].as_str().unwrap());
        assert_eq!(r["prompt_tokens"], plain["prompt_tokens"], "{r}\n{plain}");
        let (ttft, latency) = (f(&r["ttft_sec"]), f(&r["latency_sec"]));
        assert!(ttft > 0.0 && ttft < latency, "{r}");
    }
    // One chunk per token: the role-only first chunk and the usage chunk carry no output and
    // are not counted (counting the role chunk would make one more chunk than tokens).
    let text_answers: Vec<&Value> = rows
        .iter()
        .filter(|r| r["target"] == "stream" && r["tool_calls"].is_null())
        .collect();
    assert!(!text_answers.is_empty());
    for r in &text_answers {
        let (chunks, tokens) = (
            r["chunk_count"].as_u64().unwrap(),
            r["response_tokens"].as_u64().unwrap(),
        );
        assert!(chunks <= tokens, "{chunks} chunks for {tokens} tokens: {r}");
    }
    assert!(
        text_answers
            .iter()
            .any(|r| r["chunk_count"] == r["response_tokens"]),
        "no answer with one chunk per token"
    );
}

/// The sum of a histogram (or a counter) on the server's `/metrics`.
fn metric_sum(url: &str, name: &str) -> f64 {
    let url = url.replace("/v1", "/metrics");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let text = rt.block_on(async { support::http().get(url).send().await.unwrap().text().await });
    text.unwrap()
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The client's time to first token against the server's own: vLLM stamps a request when it
/// arrives and when its first token is made, so the client (which adds the network, HTTP and
/// the read) may not be faster, nor slower by more than a loopback round trip and a busy core.
/// Taking the role-only chunk (sent with the first token here) or the response headers (sent
/// before the prompt is processed) for the first token would break the first bound.
#[test]
fn time_to_first_token_agrees_with_the_servers_own() {
    let Some(url) = service_url("LLMPULSE_VLLM_URL") else {
        return;
    };
    let _turn = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let ttft_sum = "vllm:time_to_first_token_seconds_sum";
    let mut client = Vec::new();
    let mut server = Vec::new();
    for i in 0..3 {
        let before = metric_sum(&url, ttft_sum);
        let run = Scratch::new(&format!("vllm-ttft-{i}"));
        // A long prompt, different each time (no prefix cache), makes prefill the larger part.
        let context = format!("Note {i}. {}", "Outerwear sold well. ".repeat(120));
        run.write(
            "suite.toml",
            &format!(
                "name = \"one\"\n[[questions]]\nid = \"q\"\nindustry = \"retail\"\n\
                 question = \"Which category sold well?\"\ncontext = [\"{context}\"]\n"
            ),
        );
        let cfg = format!("suite = \"suite.toml\"\n{}", vllm("s", &url, 8, ""));
        let rows = run_records(&run, &cfg, &[]);
        let after = metric_sum(&url, ttft_sum);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["success"], true, "{}", rows[0]);
        client.push(f(&rows[0]["ttft_sec"]));
        server.push(after - before);
    }
    for (c, s) in client.iter().zip(&server) {
        assert!(*s > 0.0, "the server counted no first token");
        assert!(
            *c >= *s - 0.002,
            "client {c:.4} s before the server's {s:.4} s"
        );
        assert!(*c - *s < 0.25, "client {c:.4} s, server {s:.4} s");
    }
}

/// Four calls at a time: a record for every call, each with its own answer, and the server had
/// them in flight together.
#[test]
fn concurrency_four_gives_a_record_per_call() {
    let Some(url) = service_url("LLMPULSE_VLLM_URL") else {
        return;
    };
    let _turn = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("vllm-concurrency");
    let cfg = format!(
        "suite = \"suite.toml\"\nrepetitions = 12\nconcurrency = 4\n{}",
        vllm("smol", &url, 24, "")
    );
    let rows = run_records(&dir, &cfg, &[]);
    assert_eq!(rows.len(), 12);
    let mut reps: Vec<u64> = rows
        .iter()
        .map(|r| r["repetition"].as_u64().unwrap())
        .collect();
    reps.sort();
    reps.dedup();
    assert_eq!(reps.len(), 12, "one record per repetition");
    let spans: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["success"], true, "{r}");
            assert_eq!(r["token_source"], "usage", "{r}");
            let t: DateTime<Utc> = r["timestamp"].as_str().unwrap().parse().unwrap();
            let start = t.timestamp_micros() as f64 / 1e6;
            (start, start + f(&r["latency_sec"]))
        })
        .collect();
    // The most calls in flight at one moment, from the records' own spans.
    let most = spans
        .iter()
        .map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count())
        .max()
        .unwrap();
    assert!(
        (2..=4).contains(&most),
        "{most} calls in flight at once: {spans:?}"
    );
}
