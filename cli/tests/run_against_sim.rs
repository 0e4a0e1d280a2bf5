//! End to end: `llmpulse sim` started as a real HTTP server, `llmpulse run` measuring it, and the
//! records checked the way a user would read them.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{BIN, Scratch, Sim, by_target, f, ok, records, run, run_records, target, walk};

#[test]
fn timings_match_the_simulators_schedule() {
    // 300 ms to the first token, then 19 more tokens 20 ms apart: the answer ends at 680 ms.
    let sim = Sim::start(&[
        "--ttft-ms",
        "300",
        "--itl-ms",
        "20",
        "--output-tokens",
        "20",
    ]);
    let dir = Scratch::new("timings");
    let cfg = format!(
        "suite = \"suite.toml\"\n{}{}",
        target("stream", &sim.base_url, ""),
        target("plain", &sim.base_url, "stream = false")
    );
    let rows = run_records(&dir, &cfg, &[]);
    assert_eq!(rows.len(), 2);

    let s = by_target(&rows, "stream");
    assert_eq!(s["success"], true);
    let (ttft, latency) = (f(&s["ttft_sec"]), f(&s["latency_sec"]));
    // At least the configured delays, and close to them (loopback adds well under 200 ms).
    assert!((0.300..0.500).contains(&ttft), "ttft {ttft}");
    assert!((0.680..0.900).contains(&latency), "latency {latency}");
    // The role-only chunk came at once, yet it is not the first token.
    assert!(f(&s["ttfb_sec"]) < 0.2, "ttfb {}", s["ttfb_sec"]);
    assert_eq!(s["response_tokens"], 20);
    assert_eq!(s["token_source"], "usage");
    assert_eq!(s["chunk_count"], 20);
    let gap = f(&s["chunk_gap_p50_sec"]);
    assert!((0.015..0.060).contains(&gap), "chunk gap {gap}");
    // 19 tokens after the first in ~380 ms: about 50 tokens/s.
    let speed = f(&s["output_speed_tps"]);
    assert!((35.0..=52.0).contains(&speed), "output speed {speed}");

    let p = by_target(&rows, "plain");
    assert_eq!(p["success"], true);
    assert!(p["ttft_sec"].is_null());
    assert!(f(&p["latency_sec"]) >= 0.680);
    assert_eq!(p["streamed"], false);
}

#[test]
fn faults_become_failed_records_and_keep_partial_answers() {
    let sim = Sim::start(&["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "40"]);
    let dir = Scratch::new("faults");
    // One attempt each: this test is about how each fault is recorded, not about retries.
    let with_fault =
        |f: &str| format!("max_attempts = 1\nheaders = {{ \"x-sim-fault\" = \"{f}\" }}");
    let cfg = format!(
        "suite = \"suite.toml\"\n{}{}{}{}{}",
        target("cut", &sim.base_url, &with_fault("cut")),
        target("event", &sim.base_url, &with_fault("error_event")),
        target("malformed", &sim.base_url, &with_fault("malformed")),
        target("limited", &sim.base_url, &with_fault("429")),
        target("broken", &sim.base_url, &with_fault("500")),
    );
    // Providers failing is what we measure, not a failure of the run.
    let rows = run_records(&dir, &cfg, &[]);
    assert_eq!(rows.len(), 5);

    let cut = by_target(&rows, "cut");
    assert_eq!(cut["success"], false);
    assert_eq!(cut["error_kind"], "stream_broken");
    assert!(
        cut["answer_chars"].as_u64().unwrap() > 0,
        "partial answer kept"
    );
    assert!(cut["answer"].as_str().unwrap().len() > 10);
    assert!(cut["throughput_tps"].is_null());

    let event = by_target(&rows, "event");
    assert_eq!(
        event["success"], false,
        "a 200 stream with an error event is a failure"
    );
    assert_eq!(event["http_status"], 200);
    assert_eq!(event["error_kind"], "stream_error");
    assert!(
        event["error_message"]
            .as_str()
            .unwrap()
            .contains("overloaded")
    );

    assert_eq!(by_target(&rows, "malformed")["error_kind"], "bad_response");
    let limited = by_target(&rows, "limited");
    assert_eq!(limited["error_kind"], "rate_limited");
    assert_eq!(limited["http_status"], 429);
    assert!(
        limited["error_message"]
            .as_str()
            .unwrap()
            .contains("retry-after")
    );
    assert_eq!(by_target(&rows, "broken")["error_kind"], "http_5xx");

    // The simulator saw exactly one request per target.
    assert_eq!(sim.log().len(), 5);
}

#[test]
fn missing_usage_is_estimated_and_says_so() {
    let sim = Sim::start(&["--ttft-ms", "10", "--itl-ms", "1", "--no-usage"]);
    let dir = Scratch::new("usage");
    let cfg = format!("suite = \"suite.toml\"\n{}", target("t", &sim.base_url, ""));
    let out = run(&dir, &cfg, &[]);
    assert!(out.status.success());
    let rows = records(&dir.0.join("out"));
    let r = &rows[0];
    assert_eq!(r["success"], true);
    assert_eq!(r["token_source"], "estimated");
    // The simulator made 120 tokens; the estimate is in the same range.
    let n = r["response_tokens"].as_u64().unwrap();
    assert!((60..=240).contains(&n), "estimated {n}");
}

#[test]
fn unreachable_target_is_a_connect_record_not_a_crash() {
    let dir = Scratch::new("connect");
    // Port 9 (discard) on loopback: nothing listens there.
    let cfg = format!(
        "suite = \"suite.toml\"\n{}",
        target("gone", "http://127.0.0.1:9/v1", "")
    );
    let rows = run_records(&dir, &cfg, &[]);
    assert_eq!(rows[0]["success"], false);
    assert_eq!(rows[0]["error_kind"], "connect");
}

#[test]
fn malformed_config_names_its_line_and_runs_nothing() {
    let dir = Scratch::new("badconfig");
    let cfg = "suite = \"suite.toml\"\n[[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"m\"\nmax_tokens = \"lots\"\n";
    let out = run(&dir, cfg, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.toml:6:"), "{err}");
    assert!(!dir.0.join("out").exists(), "nothing written");
}

#[test]
fn api_keys_never_reach_records_or_output() {
    let sim = Sim::start(&[
        "--ttft-ms",
        "5",
        "--itl-ms",
        "1",
        "--fault-500",
        "0.5",
        "--seed",
        "3",
    ]);
    let dir = Scratch::new("secrets");
    let key = "sk-llmpulse-test-4f1c9e";
    let cfg = format!(
        "suite = \"suite.toml\"\nrepetitions = 4\n{}",
        target(
            "keyed",
            &sim.base_url,
            "max_attempts = 1\napi_key_env = \"LLMPULSE_TEST_KEY\"\nheaders = { \"X-Api-Key\" = \"${LLMPULSE_TEST_KEY}\" }"
        )
    );
    let out = run(&dir, &cfg, &[("LLMPULSE_TEST_KEY", key)]);
    ok(&out);
    let rows = records(&dir.0.join("out"));
    assert_eq!(rows.len(), 4);
    assert!(String::from_utf8_lossy(&out.stdout).find(key).is_none());
    assert!(String::from_utf8_lossy(&out.stderr).find(key).is_none());
    for entry in walk(&dir.0.join("out")) {
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(!text.contains(key), "key found in {}", entry.display());
    }
}

#[test]
fn quickstart_needs_no_config_key_or_network() {
    let dir = Scratch::new("quickstart");
    let md = dir.0.join("summary.md");
    let out = Command::new(BIN)
        .args(["run", "--output"])
        .arg(dir.0.join("out"))
        .arg("--summary-markdown")
        .arg(&md)
        .env_remove("GROQ_API_KEY")
        .env_remove("OPENROUTER_API_KEY")
        .output()
        .unwrap();
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for t in [
        "groq-llama3-70b",
        "groq-kimi-k2",
        "openrouter-mistral-7b",
        "openrouter-deepseek-r1-8b",
    ] {
        assert!(stdout.contains(t), "summary lacks {t}:\n{stdout}");
    }
    let rows = records(&dir.0.join("out"));
    assert_eq!(rows.len(), 80, "20 questions x 4 targets");
    // The same summary as Markdown, one row per target (for a CI step summary).
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("| target | n | ok % |"), "{md}");
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("| groq-") || l.starts_with("| openrouter-"))
            .count(),
        4
    );
    let csv: Vec<PathBuf> = walk(&dir.0.join("out"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    assert_eq!(csv.len(), 1);
    let lines = std::fs::read_to_string(&csv[0]).unwrap();
    assert!(lines.starts_with("timestamp,industry,question,llm_provider,llm_model,latency_sec,throughput_tps,success,coverage_score,prompt_tokens,response_tokens,"));
    let manifest: Vec<PathBuf> = walk(&dir.0.join("out"))
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "manifest.json"))
        .collect();
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest[0]).unwrap()).unwrap();
    assert_eq!(m["records"], 80);
    assert_eq!(m["files"].as_array().unwrap().len(), 2);
}

/// Small local models often write a tool call in their answer instead of making it natively;
/// the record says the call was made, and how it was written.
#[test]
fn tool_calls_written_in_the_answer_are_found_and_their_format_named() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/capabilities.toml");
    for format in ["hermes", "fenced_json", "json", "call_syntax"] {
        let sim = Sim::start(&[
            "--ttft-ms",
            "2",
            "--itl-ms",
            "1",
            "--tool-calls-in-text",
            format,
        ]);
        let dir = Scratch::new(&format!("text-tool-calls-{format}"));
        let cfg = format!(
            "suite = \"{}\"\n{}",
            suite.display(),
            target("t", &sim.base_url, "")
        );
        let rows = run_records(&dir, &cfg, &[]);
        let tools: Vec<&Value> = rows
            .iter()
            .filter(|r| r["question_id"].as_str().unwrap().starts_with("tool"))
            .collect();
        assert_eq!(tools.len(), 2, "{format}");
        for r in tools {
            assert_eq!(r["tool_call_valid"], true, "{format}: {}", r["answer"]);
            assert_eq!(r["tool_call_format"], format, "{format}: {}", r["answer"]);
            assert!(r["tool_calls"].is_null(), "no native call");
            assert_eq!(r["finish_reason"], "stop");
        }
        for r in rows
            .iter()
            .filter(|r| !r["question_id"].as_str().unwrap().starts_with("tool"))
        {
            assert!(r["tool_call_format"].is_null(), "{r}");
        }
    }
}

#[test]
fn structured_output_and_tool_calls_over_the_wire() {
    let sim = Sim::start(&["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "20"]);
    let dir = Scratch::new("capabilities");
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/capabilities.toml");
    let cfg = format!(
        "suite = \"{}\"\n{}{}",
        suite.display(),
        target("streamed", &sim.base_url, ""),
        target("plain", &sim.base_url, "stream = false")
    );
    let rows = run_records(&dir, &cfg, &[]);
    assert_eq!(rows.len(), 12, "6 questions × 2 targets");
    for r in &rows {
        assert_eq!(r["success"], true, "{r}");
        let id = r["question_id"].as_str().unwrap();
        if id.starts_with("structured") {
            assert_eq!(r["json_valid"], true, "{id}");
            assert!(r["tool_call_valid"].is_null());
        } else if !id.starts_with("tool") {
            // Reasoning and creative questions ask for plain text.
            assert!(
                r["json_valid"].is_null() && r["tool_call_valid"].is_null(),
                "{id}"
            );
        } else {
            assert_eq!(r["tool_call_valid"], true, "{id}: {}", r["tool_calls"]);
            assert_eq!(r["tool_call_format"], "native", "{id}");
            let calls: Value = serde_json::from_str(r["tool_calls"].as_str().unwrap()).unwrap();
            let expected = if id == "tool-01" {
                "get_inventory"
            } else {
                "convert_currency"
            };
            assert_eq!(calls[0]["name"], expected);
            assert_eq!(r["finish_reason"], "tool_calls");
        }
    }
}

/// Reasoning questions carry their expected answer and instruction questions their verifiable
/// constraints: every answered call is graded, and the grades can be checked from the answer.
#[test]
fn expected_answers_and_instructions_are_graded_on_every_answer() {
    let sim = Sim::start(&["--ttft-ms", "1", "--itl-ms", "0", "--output-tokens", "30"]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
    for suite in ["reasoning", "instruction"] {
        let dir = Scratch::new(&format!("graded-{suite}"));
        let cfg = format!(
            "suite = \"{}\"\n{}",
            root.join(format!("{suite}.toml")).display(),
            target("t", &sim.base_url, "")
        );
        let rows = run_records(&dir, &cfg, &[]);
        assert!(rows.len() >= 20, "{suite}: {}", rows.len());
        for r in &rows {
            assert_eq!(r["success"], true, "{r}");
            let answer = r["answer"].as_str().unwrap();
            let quality = r["quality_score"].as_f64().unwrap();
            if suite == "reasoning" {
                let right = r["answer_correct"].as_bool().unwrap();
                assert_eq!(quality, f64::from(u8::from(right)), "{r}");
                assert!(r["instructions_followed"].is_null());
            } else {
                let share = r["instructions_followed"].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&share));
                assert_eq!(quality, share);
                assert!(r["answer_correct"].is_null());
                if r["question_id"] == "instr-03" {
                    // no commas, at least 15 words: recomputed here from the stored answer.
                    let met = u8::from(!answer.contains(','))
                        + u8::from(answer.split_whitespace().count() >= 15);
                    assert_eq!(share, f64::from(met) / 2.0, "{answer}");
                }
            }
        }
    }
}
