//! `llmpulse report` and `llmpulse select` end to end: runs in a store in, files and JSON out.
//! The small fixture below is written by hand so every figure can be checked against a value
//! worked out on paper.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::{BIN, Scratch, both_stores_with_bucket, ok};

fn llmpulse(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn target<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == name)
        .unwrap_or_else(|| panic!("no target {name}"))
}

fn close(a: &Value, b: f64) {
    let a = a.as_f64().unwrap_or_else(|| panic!("not a number: {a}"));
    assert!((a - b).abs() < 1e-4, "{a} != {b}");
}

/// One record of the fixture, with only the fields a report reads.
fn rec(
    target: &str,
    at: &str,
    latency: f64,
    ok: bool,
    coverage: Option<f64>,
    limited: u32,
) -> Value {
    json!({
        "timestamp": at, "industry": "retail", "question": "q", "llm_provider": "sim",
        "llm_model": format!("{target}-model"), "latency_sec": latency,
        "throughput_tps": if ok { Some(100.0 / latency) } else { None },
        "success": ok, "coverage_score": coverage, "prompt_tokens": 50,
        "response_tokens": if ok { Some(100) } else { None },
        "run_id": "x", "campaign": "fx", "slot": 0, "question_id": "q1", "target": target,
        "repetition": 0, "task": "rag", "ttft_sec": if ok { Some(latency / 4.0) } else { None },
        "output_speed_tps": if ok { Some(120.0) } else { None },
        "rate_limited_count": limited,
        "error_kind": if ok { None } else { Some("http_5xx") },
        "grounding_score": coverage, "answer_chars": 400, "answer_sha256": "00",
        "origin": "test", "attempts": 1
    })
}

/// Writes one run (records file + manifest) below `root`, the way `llmpulse run` lays it out.
fn write_run(root: &Path, run_id: &str, slot: u64, started: &str, rows: &[Value]) {
    let text: String = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r["run_id"] = json!(run_id);
            r["slot"] = json!(slot);
            format!("{r}\n")
        })
        .collect();
    write_run_bytes(root, run_id, slot, started, text.as_bytes(), rows.len());
}

fn write_run_bytes(root: &Path, run_id: &str, slot: u64, started: &str, bytes: &[u8], rows: usize) {
    let key = format!("records/date=2026-11-20/{run_id}.jsonl");
    std::fs::create_dir_all(root.join("records/date=2026-11-20")).unwrap();
    std::fs::write(root.join(&key), bytes).unwrap();
    let manifest = json!({
        "run_id": run_id, "started_at": started, "finished_at": started, "campaign": "fx",
        "slot": slot, "origin": "test", "llmpulse_version": "0", "config_hash": "h",
        "suite": "s", "targets": ["a", "b"], "records": rows, "successes": rows,
        "files": [{"path": key, "rows": rows, "bytes": bytes.len(),
                   "sha256": hex::encode(Sha256::digest(bytes))}]
    });
    std::fs::create_dir_all(root.join(format!("runs/{run_id}"))).unwrap();
    std::fs::write(
        root.join(format!("runs/{run_id}/manifest.json")),
        manifest.to_string(),
    )
    .unwrap();
}

/// Target `a`: latencies 1, 2, 3, 4, 10 s and one failure; target `b`: four calls of 2 s, two
/// of which met a 429. Campaign `fx` has slots 0, 1 and 3 (slot 2 is missing).
fn fixture(root: &Path) {
    write_run(
        root,
        "run-0",
        0,
        "2026-11-20T00:00:00Z",
        &[
            rec("a", "2026-11-20T00:00:01.000Z", 1.0, true, Some(1.0), 0),
            rec("a", "2026-11-20T00:00:02.000Z", 2.0, true, Some(0.5), 0),
            rec("b", "2026-11-20T00:00:03.000Z", 2.0, true, Some(1.0), 1),
        ],
    );
    write_run(
        root,
        "run-1",
        1,
        "2026-11-20T01:00:00Z",
        &[
            rec("a", "2026-11-20T01:00:01.000Z", 3.0, true, Some(0.5), 0),
            rec("a", "2026-11-20T01:00:02.000Z", 0.5, false, None, 0),
            rec("b", "2026-11-20T01:00:03.000Z", 2.0, true, Some(1.0), 1),
        ],
    );
    write_run(
        root,
        "run-3",
        3,
        "2026-11-20T03:00:00Z",
        &[
            rec("a", "2026-11-20T03:00:01.000Z", 4.0, true, Some(1.0), 0),
            rec("a", "2026-11-20T03:00:02.000Z", 10.0, true, Some(0.75), 0),
            rec("b", "2026-11-20T03:00:03.000Z", 2.0, true, Some(0.5), 0),
            rec("b", "2026-11-20T03:00:04.000Z", 2.0, true, Some(0.5), 0),
        ],
    );
}

#[test]
fn the_quickstart_run_then_a_report_writes_all_four_files() {
    let dir = Scratch::new("report-quickstart");
    ok(&llmpulse(&dir.0, &["run", "--quiet"]));
    let stdout = ok(&llmpulse(
        &dir.0,
        &["report", "--from", "results", "--out", "report"],
    ));
    let out = dir.0.join("report");
    for f in ["index.html", "summary.md", "comparison.txt", "summary.json"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["records"], 80);
    assert_eq!(summary["runs"], 1);
    assert_eq!(summary["targets"].as_array().unwrap().len(), 4);
    for t in summary["targets"].as_array().unwrap() {
        assert_eq!(t["calls"], 20, "{}", t["target"]);
        assert_eq!(t["latency_sec"]["ci_method"], "bootstrap");
        let p50 = &t["latency_sec"]["p50"];
        assert!(p50["lo"].as_f64() <= p50["value"].as_f64());
        assert!(p50["value"].as_f64() <= p50["hi"].as_f64());
    }
    // The page is self-contained: charts inline, no scripts or styles fetched from anywhere.
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    let charts = html.matches("<figure class=\"chart\"").count();
    assert!(charts >= 6, "{charts} charts");
    assert_eq!(html.matches("<svg").count(), charts);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| groq-llama3-70b"), "{md}");
    let txt = std::fs::read_to_string(out.join("comparison.txt")).unwrap();
    assert!(txt.contains("Total Latency (s)") && txt.contains("llama3-70b-8192"));
    assert!(stdout.contains("80 records from 1 run;"), "{stdout}");
}

#[test]
fn figures_match_values_worked_out_by_hand() {
    let dir = Scratch::new("report-figures");
    fixture(&dir.0.join("store"));
    ok(&llmpulse(
        &dir.0,
        &["report", "--from", "store", "--out", "r"],
    ));
    let s = read_json(&dir.0.join("r/summary.json"));
    assert_eq!(s["records"], 10);
    let a = target(&s, "a");
    assert_eq!(a["calls"], 6);
    // Success 5 of 6; Wilson 95%: centre (5/6 + z²/12)/(1 + z²/6) ± … = 0.4365 to 0.9699.
    assert_eq!(a["success"]["k"], 5);
    close(&a["success"]["rate"]["value"], 5.0 / 6.0);
    close(&a["success"]["rate"]["lo"], 0.436_497);
    close(&a["success"]["rate"]["hi"], 0.969_947);
    // Latency of the successes [1, 2, 3, 4, 10], linear interpolation between ranks:
    // p50 = 3, p90 = 4 + 0.6 × 6 = 7.6, p95 = 4 + 0.8 × 6 = 8.8, p99 = 4 + 0.96 × 6 = 9.76.
    let l = &a["latency_sec"];
    assert_eq!(l["n"], 5);
    close(&l["p50"]["value"], 3.0);
    close(&l["p90"]["value"], 7.6);
    close(&l["p95"]["value"], 8.8);
    close(&l["p99"]["value"], 9.76);
    close(&l["mean"], 4.0);
    // Coverage over successes: (1 + 0.5 + 0.5 + 1 + 0.75) / 5.
    close(&a["coverage"]["mean"], 0.75);
    assert_eq!(a["coverage"]["n"], 5);
    assert_eq!(a["errors"]["http_5xx"], 1);
    // Target b: 2 of 4 calls met a 429: 50%, Wilson 0.1500 to 0.8500.
    let b = target(&s, "b");
    close(&b["rate_limited"]["rate"]["value"], 0.5);
    close(&b["rate_limited"]["rate"]["lo"], 0.150_039);
    close(&b["rate_limited"]["rate"]["hi"], 0.849_961);
    // Campaign fx: slots 0, 1, 3 of 0..=3 → 3 of 4, slot 2 missing.
    let c = &s["campaigns"][0];
    assert_eq!(c["campaign"], "fx");
    assert_eq!(c["expected_slots"], 4);
    assert_eq!(c["present_slots"], 3);
    close(&c["completeness"], 0.75);
    assert_eq!(c["missing_slots"], json!([2]));
    // Every fixture call is a RAG question: one task cell per target.
    let tasks = s["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[0]["key"], "rag");
    assert_eq!(tasks[0]["success"]["n"], 6);
    // Hourly buckets: a has calls at hours 0, 1 and 3.
    let series = s["series"].as_array().unwrap();
    let sa = series.iter().find(|x| x["target"] == "a").unwrap();
    assert_eq!(sa["points"].as_array().unwrap().len(), 3);
    close(&sa["points"][1]["success_rate"], 0.5);
}

#[test]
fn filters_select_targets_and_a_time_window() {
    let dir = Scratch::new("report-filters");
    fixture(&dir.0.join("store"));
    ok(&llmpulse(
        &dir.0,
        &["report", "--from", "store", "--out", "r", "--targets", "b"],
    ));
    let s = read_json(&dir.0.join("r/summary.json"));
    assert_eq!(s["records"], 4);
    assert_eq!(s["targets"].as_array().unwrap().len(), 1);
    // From 01:00 (inclusive) to 03:00 (exclusive): run-1's three records only.
    ok(&llmpulse(
        &dir.0,
        &[
            "report",
            "--from",
            "store",
            "--out",
            "w",
            "--since",
            "2026-11-20T01:00:00Z",
            "--until",
            "2026-11-20T03:00:00Z",
        ],
    ));
    let w = read_json(&dir.0.join("w/summary.json"));
    assert_eq!(w["records"], 3);
    assert_eq!(target(&w, "a")["calls"], 2);
    // A filter that keeps nothing is an error, not an empty report.
    let out = llmpulse(
        &dir.0,
        &[
            "report",
            "--from",
            "store",
            "--out",
            "x",
            "--campaign",
            "other",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no records at store match"));
}

#[test]
fn a_campaign_definition_sets_the_expected_slots() {
    let dir = Scratch::new("report-campaign");
    fixture(&dir.0.join("store"));
    dir.write(
        "campaign.toml",
        r#"
suite = "builtin:rag-retail-finance"
[campaign]
name = "fx"
start = 2026-11-20T00:00:00Z
end = 2026-11-21T00:00:00Z
count = 1
per = "1h"
[[targets]]
name = "a"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
model = "m"
"#,
    );
    // Until 05:00 UTC five slots (0–4) have started; 0, 1 and 3 are present.
    ok(&llmpulse(
        &dir.0,
        &[
            "report",
            "--from",
            "store",
            "--out",
            "r",
            "--config",
            "campaign.toml",
            "--until",
            "2026-11-20T05:00:00Z",
        ],
    ));
    let c = &read_json(&dir.0.join("r/summary.json"))["campaigns"][0];
    assert_eq!(c["expected_slots"], 5);
    assert_eq!(c["expected_from"], "campaign definition");
    close(&c["completeness"], 0.6);
    assert_eq!(c["missing_slots"], json!([2, 4]));
}

#[test]
fn compare_two_targets_with_mann_whitney_and_two_proportions() {
    let dir = Scratch::new("report-compare");
    fixture(&dir.0.join("store"));
    let stdout = ok(&llmpulse(
        &dir.0,
        &[
            "report",
            "--from",
            "store",
            "--out",
            "r",
            "--compare",
            "a",
            "b",
        ],
    ));
    let c = &read_json(&dir.0.join("r/summary.json"))["comparison"];
    let lat = c["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "latency_sec")
        .unwrap();
    // a = [1, 2, 3, 4, 10], b = [2, 2, 2, 2]: the five 2s share rank 4, so a's rank sum is
    // 1 + 4 + 7 + 8 + 9 = 29 and U = 29 − 15 = 14; with the tie correction σ² = 13.889,
    // z = (14 − 10)/σ = 1.0733, p = 0.2831.
    assert_eq!(lat["mann_whitney_u"], 14.0);
    close(&lat["p_value"], 0.283_131);
    close(&lat["difference"]["value"], -1.0);
    // Success 5/6 against 4/4: the pooled test says no evidence of a difference.
    assert_eq!(c["success"]["a"]["k"], 5);
    assert_eq!(c["success"]["b"]["k"], 4);
    assert!(c["success"]["p_value"].as_f64().unwrap() > 0.05);
    assert!(stdout.contains("no evidence of a difference"), "{stdout}");
    let html = std::fs::read_to_string(dir.0.join("r/index.html")).unwrap();
    assert!(html.contains("<h2>Comparison</h2>"));
    // Two windows of target a: hours 0–2 ([1, 2, 3] s and the failure) against hour 3 onwards
    // ([4, 10] s): medians 2 and 7.
    ok(&llmpulse(
        &dir.0,
        &[
            "report",
            "--from",
            "store",
            "--out",
            "w",
            "--compare",
            "2026-11-20..2026-11-20T02:00:00Z",
            "2026-11-20T02:00:00Z..2026-11-21",
            "--target",
            "a",
        ],
    ));
    let w = &read_json(&dir.0.join("w/summary.json"))["comparison"];
    assert_eq!(w["target"], "a");
    let lat = &w["metrics"][0];
    assert_eq!(lat["metric"], "latency_sec");
    assert_eq!(
        (lat["n_a"].as_u64(), lat["n_b"].as_u64()),
        (Some(3), Some(2))
    );
    close(&lat["median_a"], 2.0);
    close(&lat["median_b"], 7.0);
    assert_eq!(w["success"]["a"]["n"], 4);

    // An unknown target is an error that lists the ones there are.
    let out = llmpulse(
        &dir.0,
        &[
            "report",
            "--from",
            "store",
            "--out",
            "r",
            "--compare",
            "a",
            "zz",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'zz'") && err.contains("a, b"), "{err}");
}

#[test]
fn bad_lines_and_altered_files_are_named_and_the_rest_is_reported() {
    let dir = Scratch::new("report-bad-input");
    let store = dir.0.join("store");
    fixture(&store);
    // A run whose second line is not JSON.
    let good = rec("b", "2026-11-20T04:00:00.000Z", 2.0, true, Some(1.0), 0).to_string();
    let bytes = format!("{good}\n{{\"timestamp\": oops\n{good}\n");
    write_run_bytes(
        &store,
        "run-4",
        4,
        "2026-11-20T04:00:00Z",
        bytes.as_bytes(),
        3,
    );
    // A run whose records file was changed after its manifest was written.
    write_run(
        &store,
        "run-5",
        5,
        "2026-11-20T05:00:00Z",
        &[rec("b", "2026-11-20T05:00:00.000Z", 2.0, true, None, 0)],
    );
    let path = store.join("records/date=2026-11-20/run-5.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("2.0", "0.2");
    std::fs::write(&path, text).unwrap();

    ok(&llmpulse(
        &dir.0,
        &["report", "--from", "store", "--out", "r"],
    ));
    let s = read_json(&dir.0.join("r/summary.json"));
    assert_eq!(s["records"], 12, "10 + the two good lines of run-4");
    assert_eq!(s["bad_lines"], 1);
    let problems = s["problems"].to_string();
    assert!(problems.contains("run-4.jsonl:2:"), "{problems}");
    assert!(
        problems.contains("run-5.jsonl: SHA-256") && problems.contains("file skipped"),
        "{problems}"
    );
    let md = std::fs::read_to_string(dir.0.join("r/summary.md")).unwrap();
    assert!(md.contains("## Data problems"));
}

#[test]
fn the_same_records_give_the_same_figures() {
    let dir = Scratch::new("report-reproducible");
    ok(&llmpulse(
        &dir.0,
        &[
            "synth",
            "--records",
            "8000",
            "--out",
            "h",
            "--start",
            "2026-11-01",
        ],
    ));
    let figures = |out: &str| {
        ok(&llmpulse(&dir.0, &["report", "--from", "h", "--out", out]));
        let mut s = read_json(&dir.0.join(out).join("summary.json"));
        s.as_object_mut().unwrap().remove("generated_at");
        s
    };
    // Files are folded on several threads in whatever order they finish; the figures (bootstrap
    // intervals included) must not depend on it.
    let first = figures("r1");
    assert_eq!(first["records"], 8000);
    assert_eq!(first, figures("r2"));
}

#[test]
fn a_location_without_runs_is_a_clear_error() {
    let dir = Scratch::new("report-empty");
    std::fs::create_dir_all(dir.0.join("empty")).unwrap();
    let out = llmpulse(&dir.0, &["report", "--from", "empty", "--out", "r"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no runs at empty"), "{err}");
}

#[test]
fn select_returns_the_known_best_and_refuses_to_guess() {
    let dir = Scratch::new("select");
    // The synthetic history is built so that target 0 is the fastest, target 2 never returns
    // valid JSON, and memory grows with the target number (1000 + 2000 × i MB).
    ok(&llmpulse(
        &dir.0,
        &[
            "synth",
            "--records",
            "4000",
            "--out",
            "h",
            "--start",
            "2026-11-01",
        ],
    ));
    let pick = |args: &[&str]| -> Value {
        let mut all = vec!["select", "--from", "h"];
        all.extend_from_slice(args);
        serde_json::from_str(&ok(&llmpulse(&dir.0, &all))).unwrap()
    };
    let speed = pick(&["--task", "speed_critical"]);
    assert_eq!(speed["selected_model"], "synthetic-model-0");
    assert_eq!(speed["recommended_config"]["temperature"], 0.7);
    assert_eq!(speed["alternatives"].as_array().unwrap().len(), 3);
    assert!(speed["why"][0].as_str().unwrap().contains("synthetic-0"));

    let structured = pick(&[
        "--task",
        "structured_output",
        "--targets",
        "synthetic-2,synthetic-3",
    ]);
    assert_eq!(structured["selected_model"], "synthetic-model-3");

    // Only targets 0 and 1 fit in 4000 MB; of them, 1 is slower.
    let small = pick(&["--agent", "translation", "--max-memory", "4000"]);
    assert_eq!(small["selected_model"], "synthetic-model-0");
    let excluded = small["excluded"].to_string();
    assert!(excluded.contains("above the 4000 MB limit"), "{excluded}");

    // 40 records are 10 calls per target: too few to choose from.
    ok(&llmpulse(
        &dir.0,
        &[
            "synth",
            "--records",
            "40",
            "--questions",
            "5",
            "--out",
            "thin",
            "--start",
            "2026-11-01",
        ],
    ));
    let out = llmpulse(
        &dir.0,
        &["select", "--from", "thin", "--task", "speed_critical"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let refusal: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = refusal["error"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("too few records"), "{reason}");
    assert!(
        refusal["error"]["excluded"]
            .to_string()
            .contains("only 10 calls")
    );
    // The refusal names the flag that lowers the bar, and to what; with it, select chooses.
    assert!(reason.contains("pass --min-calls 10"), "{reason}");
    let thin = llmpulse(
        &dir.0,
        &[
            "select",
            "--from",
            "thin",
            "--task",
            "speed_critical",
            "--min-calls",
            "10",
        ],
    );
    ok(&thin);
    let chosen: Value = serde_json::from_slice(&thin.stdout).unwrap();
    assert!(chosen["selected_model"].is_string(), "{chosen}");
}

#[test]
fn reports_read_runs_from_s3_and_gcs() {
    if !both_stores_with_bucket("reports") {
        return;
    }
    let dir = Scratch::new("report-remote");
    for scheme in ["s3", "gs"] {
        let location = format!("{scheme}://reports/run-{}", std::process::id());
        ok(&llmpulse(
            &dir.0,
            &[
                "run",
                "--quiet",
                "--output",
                &location,
                "--targets",
                "groq-llama3-70b",
            ],
        ));
        let out = format!("r-{scheme}");
        ok(&llmpulse(
            &dir.0,
            &["report", "--from", &location, "--out", &out],
        ));
        let s = read_json(&dir.0.join(out).join("summary.json"));
        assert_eq!(s["records"], 20, "{scheme}");
        assert_eq!(s["source"], location);
        assert_eq!(target(&s, "groq-llama3-70b")["calls"], 20);
    }
}

/// Writes `rows` as one run below `dir/store`, reports it into `dir/report` and returns the
/// report's `summary.json`.
fn one_run_report(dir: &Scratch, rows: &[Value], run_id: &str) -> Value {
    let root = dir.0.join("store");
    write_run(&root, run_id, 0, "2026-11-20T10:00:00Z", rows);
    let out = llmpulse(
        &dir.0,
        &[
            "report",
            "--from",
            root.to_str().unwrap(),
            "--out",
            "report",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    read_json(&dir.0.join("report/summary.json"))
}

/// The time to first token split into set-up, TTFB and headers → first token, per target, from
/// values worked out by hand: a slow provider shows after the headers, not in the network.
#[test]
fn the_time_to_first_token_is_split_into_setup_headers_and_first_token() {
    let dir = Scratch::new("report-split");
    // (ttfb, ttft, connect_sec): the first call opened the connection, the others reused it.
    let calls = [
        (0.10, 0.50, Some(0.04)),
        (0.20, 0.60, None),
        (0.30, 0.90, None),
    ];
    let rows: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (ttfb, ttft, connect))| {
            let mut r = rec("a", &format!("2026-11-20T10:0{i}:00Z"), 2.0, true, None, 0);
            r["ttfb_sec"] = json!(ttfb);
            r["ttft_sec"] = json!(ttft);
            r["connect_sec"] = json!(connect);
            r["connection_reused"] = json!(connect.is_none());
            if connect.is_some() {
                // Its phases: a 2 ms lookup, a 3 ms TCP and a 35 ms TLS handshake.
                r["dns_sec"] = json!(0.002);
                r["tcp_connect_sec"] = json!(0.003);
                r["tls_handshake_sec"] = json!(0.035);
            }
            r
        })
        .collect();
    let summary = one_run_report(&dir, &rows, "20261120T100000Z-aaaaaa");
    let split = &target(&summary, "a")["ttft_split"];
    assert_eq!(split["new_connections"]["k"], 1);
    assert_eq!(split["new_connections"]["n"], 3);
    close(&split["setup_sec"]["p50"]["value"], 0.04);
    close(&split["tls_sec"]["p50"]["value"], 0.035);
    close(&split["ttfb_sec"]["p50"]["value"], 0.20);
    // Headers → first token: 0.4, 0.4, 0.6.
    close(&split["headers_to_first_token_sec"]["p50"]["value"], 0.40);
    // One origin: no by-origin figures.
    assert!(target(&summary, "a").get("origins").is_none());
    let md = std::fs::read_to_string(dir.0.join("report/summary.md")).unwrap();
    assert!(md.contains("## Time to first token, split"), "{md}");
    assert!(
        md.contains(" 2.0 / 3.0 / 35.0 |"),
        "the set-up's phases, ms: {md}"
    );
    assert!(!md.contains("## By origin"));
    let page = std::fs::read_to_string(dir.0.join("report/index.html")).unwrap();
    assert!(page.contains("id=\"ttft-split\""));
}

/// One target measured from two origins: each apart, so a slow network at one origin (its TTFB)
/// is not read as the model's.
#[test]
fn a_target_measured_from_two_origins_is_reported_per_origin() {
    let dir = Scratch::new("report-origins");
    // (origin, ttfb, ttft): eu's network adds 0.3 s before the headers; the model is the same.
    let calls = [
        ("lambda:eu-west-1", 0.35, 0.55),
        ("lambda:eu-west-1", 0.40, 0.60),
        ("lambda:eu-west-1", 0.45, 0.65),
        ("agent:office", 0.05, 0.25),
        ("agent:office", 0.10, 0.30),
        ("agent:office", 0.15, 0.35),
    ];
    let rows: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (origin, ttfb, ttft))| {
            let mut r = rec("a", &format!("2026-11-20T10:0{i}:00Z"), 2.0, true, None, 0);
            r["origin"] = json!(origin);
            r["ttfb_sec"] = json!(ttfb);
            r["ttft_sec"] = json!(ttft);
            r
        })
        .collect();
    let summary = one_run_report(&dir, &rows, "20261120T100000Z-bbbbbb");
    let origins = target(&summary, "a")["origins"].as_array().unwrap().clone();
    let by = |name: &str| {
        origins
            .iter()
            .find(|o| o["origin"] == name)
            .unwrap_or_else(|| panic!("no origin {name}"))
            .clone()
    };
    let (eu, office) = (by("lambda:eu-west-1"), by("agent:office"));
    close(&eu["ttft_sec"]["p50"]["value"], 0.60);
    close(&eu["ttfb_sec"]["p50"]["value"], 0.40);
    close(&office["ttft_sec"]["p50"]["value"], 0.30);
    close(&eu["network_share"], 0.40 / 0.60);
    close(&office["network_share"], 0.10 / 0.30);
    assert_eq!(eu["success"]["n"], 3);
    let md = std::fs::read_to_string(dir.0.join("report/summary.md")).unwrap();
    assert!(
        md.contains("## By origin") && md.contains("lambda:eu-west-1"),
        "{md}"
    );
}
