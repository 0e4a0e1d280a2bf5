//! `llmpulse run` with no config file, as the seed's benchmark script is called: the targets
//! from `--url`/`--provider` and `--model`, the questions from `--prompt`, `--prompts-file` and
//! `--quality-eval`, one flat `--output results.csv` beside the store. Against the simulator as
//! a real HTTP server, and against the real llama.cpp server in CI.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::{BIN, Scratch, Sim, ok};

/// `llmpulse run ARGS…` in `dir`, its spool there too.
fn run_in(dir: &Scratch, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(&dir.0)
        .arg("run")
        .args(args)
        .env("XDG_CACHE_HOME", dir.0.join("cache"))
        .output()
        .unwrap()
}

fn csv_rows(path: &Path) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    (header, r.records().map(Result::unwrap).collect())
}

#[test]
fn the_seed_scripts_command_line_measures_two_models_with_quality_questions() {
    let sim = Sim::start(&["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "12"]);
    let dir = Scratch::new("quick-run");
    let said = ok(&run_in(
        &dir,
        &[
            "--url",
            &sim.base_url,
            "--model",
            "llama3.1:8b",
            "--model",
            "qwen2.5:7b",
            "--prompt",
            "Explain AI",
            "--prompt",
            "Write a poem",
            "--runs",
            "2",
            "--timeout",
            "600",
            "--output",
            "results.csv",
            "--quality-eval",
        ],
    ));
    // One target per model, named after it.
    assert!(
        said.contains("llama3.1_8b") && said.contains("qwen2.5_7b"),
        "{said}"
    );
    let (header, rows) = csv_rows(&dir.0.join("results.csv"));
    // The seed's benchmark columns come first.
    assert_eq!(
        header[..6],
        [
            "timestamp",
            "industry",
            "question",
            "llm_provider",
            "llm_model",
            "latency_sec"
        ]
    );
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (question, model, success, task) = (
        col("question"),
        col("llm_model"),
        col("success"),
        col("task"),
    );
    // Every question (the two prompts and the quality suites') × 2 models × 2 runs.
    let quality: usize = ["reasoning", "creativity", "knowledge", "instruction"]
        .iter()
        .map(|s| {
            std::fs::read_to_string(format!("{}/../suites/{s}.toml", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .matches("[[questions]]")
                .count()
        })
        .sum();
    assert_eq!(rows.len(), (2 + quality) * 2 * 2);
    assert!(rows.iter().all(|r| &r[success] == "true"));
    for m in ["llama3.1:8b", "qwen2.5:7b"] {
        let asked = |q: &str| {
            rows.iter()
                .filter(|r| &r[model] == m && &r[question] == q)
                .count()
        };
        assert_eq!(asked("Explain AI"), 2, "{m}");
        assert_eq!(asked("Write a poem"), 2, "{m}");
    }
    let tasks: std::collections::BTreeSet<&str> = rows.iter().map(|r| &r[task]).collect();
    for t in ["general", "complex_reasoning", "instruction_following"] {
        assert!(tasks.contains(t), "{t} in {tasks:?}");
    }
    // The store layout is written as well, and the simulator saw the model names as given.
    assert!(
        support::walk(&dir.0.join("results"))
            .iter()
            .any(|p| p.ends_with("manifest.json"))
    );
    let models: std::collections::BTreeSet<String> = sim
        .log()
        .iter()
        .filter_map(|e| e["model"].as_str().map(str::to_string))
        .collect();
    assert!(
        models.contains("llama3.1:8b") && models.contains("qwen2.5:7b"),
        "{models:?}"
    );
}

#[test]
fn a_prompts_file_grades_against_its_references_and_a_bad_line_is_named() {
    let sim = Sim::start(&["--ttft-ms", "2", "--itl-ms", "1", "--output-tokens", "12"]);
    let dir = Scratch::new("quick-prompts");
    dir.write(
        "prompts.txt",
        "# one prompt a line, or JSON\nExplain AI\n\
         {\"prompt\": \"Say hello\", \"reference\": \"Hello there, nice to meet you.\", \"id\": \"hello\"}\n",
    );
    ok(&run_in(
        &dir,
        &[
            "--url",
            &sim.base_url,
            "--model",
            "m",
            "--prompts-file",
            "prompts.txt",
            "--no-stream",
            "--output",
            "out.jsonl",
        ],
    ));
    let rows: Vec<Value> = std::fs::read_to_string(dir.0.join("out.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    let hello = rows.iter().find(|r| r["question_id"] == "hello").unwrap();
    // Scored against its reference, as a suite's conversation question is.
    assert!(hello["scores"]["bleu"].is_number(), "{hello:#}");
    assert_eq!(hello["streamed"], false);

    dir.write(
        "bad.txt",
        "Explain AI\n{\"prompt\": \"x\", \"refrence\": \"typo\"}\n",
    );
    let out = run_in(
        &dir,
        &[
            "--url",
            &sim.base_url,
            "--model",
            "m",
            "--prompts-file",
            "bad.txt",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.txt:2:") && err.contains("refrence"),
        "{err}"
    );
}

#[test]
fn flag_mistakes_name_the_flag() {
    let dir = Scratch::new("quick-errors");
    let cases: [(&[&str], &str); 4] = [
        (&["--url", "http://127.0.0.1:9/v1"], "--model"),
        (
            &["--provider", "nope", "--model", "m"],
            "--provider nope: unknown",
        ),
        (
            &["--url", "localhost:8080", "--model", "m"],
            "--url localhost:8080",
        ),
        (&["--provider", "groq", "--model", "m"], "GROQ_API_KEY"),
    ];
    for (args, says) in cases {
        let out = Command::new(BIN)
            .current_dir(&dir.0)
            .arg("run")
            .args(args)
            .env_remove("GROQ_API_KEY")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!dir.0.join("results").exists(), "{args:?} wrote a run");
    }
}

#[test]
fn a_real_llama_cpp_server_measured_from_the_command_line() {
    let Some(url) = support::service_url("LLMPULSE_LLAMA_URL") else {
        return;
    };
    let dir = Scratch::new("quick-llama");
    ok(&run_in(
        &dir,
        &[
            "--url",
            &url,
            "--model",
            "smollm2",
            "--prompt",
            "Name one colour.",
            "--max-tokens",
            "16",
            "--temperature",
            "0",
            "--concurrency",
            "1",
            "--output",
            "results.csv",
        ],
    ));
    let (header, rows) = csv_rows(&dir.0.join("results.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][col("success")], "true", "{:?}", rows[0]);
    assert!(rows[0][col("ttft_sec")].parse::<f64>().unwrap() > 0.0);
    assert!(rows[0][col("answer_chars")].parse::<u32>().unwrap() > 0);
    assert_eq!(&rows[0][col("llm_model")], "smollm2");
}

#[test]
fn local_measures_every_model_the_servers_on_this_host_serve_and_says_where_it_looked() {
    // An Ollama-shaped simulator: `--local` reads its own endpoints (`/api/tags`, `/api/show`).
    let sim = Sim::start(&["--kind", "ollama", "--ttft-ms", "5", "--output-tokens", "8"]);
    let root = sim.base_url.trim_end_matches("/v1").to_string();
    let dir = Scratch::new("quick-local");
    let said = ok(&run_in(
        &dir,
        &[
            "--local",
            "--url",
            &root,
            "--prompt",
            "Explain AI",
            "--output",
            "local.jsonl",
        ],
    ));
    assert!(said.contains("ollama-sim"), "{said}");
    let rows: Vec<Value> = std::fs::read_to_string(dir.0.join("local.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &Value| r["llm_model"] == "sim")
        .collect();
    assert_eq!(rows.len(), 1, "one model, one prompt");
    let r = &rows[0];
    // Measured through the server's native API, as a config written by discovery would.
    assert_eq!(r["llm_provider"], "ollama-native");
    assert_eq!(r["success"], true, "{r}");

    // A size limit that leaves every model out is an error that says why.
    let out = run_in(&dir, &["--local", "--url", &root, "--max-size-gb", "0.001"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--local: no model to measure"), "{err}");
    assert!(
        err.contains("left out") && err.contains("--max-size-gb"),
        "{err}"
    );
    assert!(
        err.contains("11434 (ollama)"),
        "it names the ports it looked on: {err}"
    );
}
