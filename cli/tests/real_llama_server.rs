//! End to end against a real LLM server: llama.cpp's OpenAI-compatible server (from PyPI's
//! llama-cpp-python) with SmolLM2-135M-Instruct, started by `.ci/run`, which sets
//! `LLMPULSE_LLAMA_URL`. Known behaviour of that server: no usage chunk in streams, 500 on
//! `json_schema` response formats (the `llamacpp` preset sends `json_object` + `schema`), tool
//! calls with a named `tool_choice`.

mod support;

use std::path::Path;
use std::sync::Mutex;

use serde_json::Value;
use support::{Scratch, by_target, f, run_records, service_url, target_as};

/// The server answers one request at a time: the tests take turns.
static SERVER: Mutex<()> = Mutex::new(());

fn llama(name: &str, url: &str, max_tokens: u32, extra: &str) -> String {
    let extra = format!("temperature = 0\nseed = 7\nmax_tokens = {max_tokens}\n{extra}");
    target_as(name, "llamacpp", url, "smollm2", &extra)
}

#[test]
fn streaming_and_plain_answers_are_measured() {
    let Some(url) = service_url("LLMPULSE_LLAMA_URL") else {
        return;
    };
    let _turn = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("llama-batch");
    let cfg = format!(
        "suite = \"suite.toml\"\nrepetitions = 2\nconcurrency = 1\n{}{}",
        llama("stream", &url, 48, ""),
        llama("plain", &url, 48, "stream = false")
    );
    let rows = run_records(&dir, &cfg, &[]);
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert_eq!(r["success"], true, "{r}");
        assert!(r["answer_chars"].as_u64().unwrap() > 0);
    }
    let s = by_target(&rows, "stream");
    let p = by_target(&rows, "plain");
    let (ttft, latency) = (f(&s["ttft_sec"]), f(&s["latency_sec"]));
    assert!(
        ttft > 0.0 && ttft < latency,
        "ttft {ttft}, latency {latency}"
    );
    assert!(s["chunk_count"].as_u64().unwrap() > 1);
    // This server sends no usage in streams: the counts are estimates, and say so.
    assert_eq!(s["token_source"], "estimated");
    assert_eq!(p["token_source"], "usage");
    assert!(p["ttft_sec"].is_null());
    // The estimate is in a reasonable band of the server's own count for the same prompt
    // (temperature 0, same seed: the same answer).
    let ratio = |a: &Value, b: &Value| f(a) / f(b);
    let out_ratio = ratio(&s["response_tokens"], &p["response_tokens"]);
    let in_ratio = ratio(&s["prompt_tokens"], &p["prompt_tokens"]);
    assert!(
        (0.5..=2.0).contains(&out_ratio),
        "response tokens estimated/usage = {out_ratio}"
    );
    assert!(
        (0.5..=2.0).contains(&in_ratio),
        "prompt tokens estimated/usage = {in_ratio}"
    );
}

#[test]
fn json_constrained_answers_parse_and_tool_calls_parse() {
    let Some(url) = service_url("LLMPULSE_LLAMA_URL") else {
        return;
    };
    let _turn = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("llama-capabilities");
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/capabilities.toml");
    let cfg = format!(
        "suite = \"{}\"\nconcurrency = 1\n{}",
        suite.display(),
        llama("smol", &url, 96, "")
    );
    let rows = run_records(&dir, &cfg, &[]);
    let row = |id: &str| rows.iter().find(|r| r["question_id"] == id).unwrap();
    for id in ["structured-01", "structured-02"] {
        let r = row(id);
        assert_eq!(r["success"], true, "{r}");
        assert_eq!(r["json_valid"], true, "{id}: {}", r["answer"]);
    }
    // A named tool_choice makes the server call that tool; its arguments must parse.
    let r = row("tool-01");
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["tool_call_valid"], true, "{}", r["tool_calls"]);
    let calls: Value = serde_json::from_str(r["tool_calls"].as_str().unwrap()).unwrap();
    assert_eq!(calls[0]["name"], "get_inventory");
}

/// The first `n` questions of a bundled suite, as a suite file of their own.
fn first_questions(dir: &Scratch, suite: &str, n: usize) -> std::path::PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../suites/{suite}.toml"));
    let text = std::fs::read_to_string(path).unwrap();
    let mut parts = text.split("\n[[questions]]\n");
    let head = parts.next().unwrap();
    let kept: Vec<&str> = parts.take(n).collect();
    dir.write(
        &format!("{suite}-{n}.toml"),
        &format!("{head}\n[[questions]]\n{}", kept.join("\n[[questions]]\n")),
    )
}

/// A real small model's answers are graded by every scorer their questions name, and the same
/// model as a judge finishes and says how many of its replies held a grade: a 135M model is a
/// poor judge, and the pipeline must say so rather than invent grades.
#[test]
fn graded_suites_and_a_judge_run_against_a_real_model() {
    let Some(url) = service_url("LLMPULSE_LLAMA_URL") else {
        return;
    };
    let _turn = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("llama-graded");
    for (suite, scorers) in [
        (
            "structured",
            &["field_accuracy", "json_valid", "schema_valid"][..],
        ),
        ("knowledge", &["answer_correct"][..]),
        (
            "conversation",
            &["bleu", "clarity", "relevance", "rougeL", "task_completion"][..],
        ),
    ] {
        let path = first_questions(&dir, suite, 3);
        let run = Scratch::new(&format!("llama-graded-{suite}"));
        let cfg = format!(
            "suite = \"{}\"\nconcurrency = 1\n{}",
            path.display(),
            llama("smol", &url, 64, "")
        );
        let rows = run_records(&run, &cfg, &[]);
        assert_eq!(rows.len(), 3, "{suite}");
        for r in &rows {
            assert_eq!(r["success"], true, "{r}");
            let mut names: Vec<&str> = r["scores"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            names.sort();
            assert_eq!(names, scorers, "{suite}: {r}");
            let q = r["quality_score"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&q), "{r}");
        }
        if suite == "structured" {
            // Constrained decoding still lets a 135M model write a raw newline inside a string,
            // which is not JSON: such an answer must fail the schema too, not pass on a guess.
            for r in &rows {
                let parses = serde_json::from_str::<Value>(r["answer"].as_str().unwrap()).is_ok();
                assert_eq!(r["json_valid"], parses, "{}", r["answer"]);
                if !parses {
                    assert_eq!(r["scores"]["schema_valid"], 0.0, "{}", r["answer"]);
                    assert_eq!(r["scores"]["field_accuracy"], 0.0, "{}", r["answer"]);
                }
            }
        }
    }

    // The judge: the same model grades conversation answers against a rubric.
    let suite = dir.write(
        "rubric.toml",
        "name = \"rubric\"\n[[questions]]\nid = \"r1\"\nindustry = \"support\"\n\
         question = \"A customer's parcel is late. Reply to them.\"\n\
         rubric = \"Apologises, explains what happens next, and is polite.\"\n",
    );
    let cfg = format!(
        "suite = \"{}\"\nconcurrency = 1\nrepetitions = 2\n{}",
        suite.display(),
        llama("smol", &url, 48, "")
    );
    let rows = run_records(&dir, &cfg, &[]);
    assert_eq!(rows.len(), 2);
    let judge_cfg = dir.write(
        "judge.toml",
        &format!(
            "suite = \"{}\"\n{}",
            suite.display(),
            llama("judge", &url, 48, "")
        ),
    );
    let out = std::process::Command::new(support::BIN)
        .args(["judge", "--config"])
        .arg(&judge_cfg)
        .arg("--from")
        .arg(dir.0.join("out"))
        .arg("--to")
        .arg(dir.0.join("judged"))
        .args(["--suite", suite.to_str().unwrap()])
        .output()
        .unwrap();
    let said = support::ok(&out);
    let judged = support::records(&dir.0.join("judged"));
    let calls: Vec<&Value> = judged.iter().filter(|r| r["role"] == "judge").collect();
    // Greedy decoding: the same answer twice is one judgement (the cache), else two.
    assert!((1..=2).contains(&calls.len()), "{said}");
    let graded = calls
        .iter()
        .filter(|c| c["scores"]["judge"].is_number())
        .count();
    assert!(
        said.contains(&format!("{} calls without a grade", calls.len() - graded)),
        "{said}"
    );
    for c in &calls {
        assert_eq!(c["success"], true, "{c}");
        assert_eq!(c["temperature"], 0.0);
    }
}

/// A rate sweep against a server that answers one request at a time: the throughput pass queues
/// every call behind the others, so its median time to first token is far above the
/// synchronous pass's.
#[test]
fn a_rate_sweep_shows_a_one_at_a_time_server_queueing() {
    let Some(url) = service_url("LLMPULSE_LLAMA_URL") else {
        return;
    };
    let _turn = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("llama-sweep");
    let suite = dir.write(
        "one.toml",
        "name = \"one\"\n[[questions]]\nid = \"q\"\nindustry = \"x\"\nquestion = \"Say hello.\"\n",
    );
    let cfg = dir.write(
        "config.toml",
        &format!(
            "suite = \"{}\"\nrepetitions = 6\n{}",
            suite.display(),
            llama("smol", &url, 8, "")
        ),
    );
    let out = std::process::Command::new(support::BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .arg("--output")
        .arg(dir.0.join("out"))
        .args(["--profile", "sweep:1"])
        .env("XDG_CACHE_HOME", dir.0.join("cache"))
        .output()
        .unwrap();
    let said = support::ok(&out);
    let ttft = |pass: &str| -> f64 {
        let row = said
            .lines()
            .find(|l| l.trim_start_matches('│').trim_start().starts_with(pass))
            .unwrap_or_else(|| panic!("no {pass} row: {said}"));
        row.split('┆').nth(6).unwrap().trim().parse().unwrap()
    };
    let (sync, all) = (ttft("synchronous"), ttft("throughput"));
    assert!(
        all > 2.0 * sync,
        "TTFT p50: synchronous {sync} s, throughput {all} s\n{said}"
    );
}

/// The case pipeline against a real 135M model as generator and validator: it writes poor or
/// invalid cases, and the pipeline must say so (counts of invalid, rejected and kept) and
/// finish, with every call recorded.
#[test]
fn generate_with_a_small_real_model_finishes_and_counts_what_it_made() {
    let Some(url) = service_url("LLMPULSE_LLAMA_URL") else {
        return;
    };
    let _turn = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("llama-generate");
    let cfg = dir.write(
        "gen.toml",
        &format!(
            "[generate]\ngenerator = \"smol\"\nvalidators = [\"smol\"]\ncount = 2\nmax_rounds = 1\n{}",
            llama("smol", &url, 160, "")
        ),
    );
    let out = std::process::Command::new(support::BIN)
        .args(["generate", "--config"])
        .arg(&cfg)
        .arg("--output")
        .arg(dir.0.join("gen"))
        .output()
        .unwrap();
    let said = support::ok(&out);
    let line = said.lines().next().unwrap_or_default();
    assert!(line.starts_with("2 cases asked of smol:"), "{said}");
    let calls = support::records(&dir.0.join("gen"));
    let generator = calls.iter().filter(|c| c["role"] == "generator").count();
    assert!((2..=4).contains(&generator), "{said}");
    assert!(
        line.contains(&format!("{generator} generator calls")),
        "{said}"
    );
}

/// An A/B test between two settings of the real model finishes with a verdict on every metric.
#[test]
fn an_ab_test_against_the_real_model_gives_every_verdict() {
    let Some(url) = service_url("LLMPULSE_LLAMA_URL") else {
        return;
    };
    let _turn = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("llama-ab");
    let suite = dir.write(
        "one.toml",
        "name = \"one\"\n[[questions]]\nid = \"q\"\nindustry = \"x\"\nquestion = \"Name a colour.\"\n",
    );
    let cfg = dir.write(
        "ab.toml",
        &format!(
            "suite = \"{}\"\nrepetitions = 2\nconcurrency = 1\n{}{}",
            suite.display(),
            llama("short", &url, 8, ""),
            llama("long", &url, 24, "")
        ),
    );
    let out = dir.0.join("ab");
    let said = support::ok(
        &std::process::Command::new(support::BIN)
            .args(["ab", "--quiet", "--rounds", "2", "--config"])
            .arg(&cfg)
            .arg("--output")
            .arg(&out)
            .env("XDG_CACHE_HOME", dir.0.join("cache"))
            .output()
            .unwrap(),
    );
    assert!(said.contains("2 rounds, 4 paired calls"), "{said}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics_report.json")).unwrap()).unwrap();
    assert_eq!(report["verdicts"].as_array().unwrap().len(), 5);
}
