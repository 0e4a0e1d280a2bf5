//! `llmpulse watch` over synthetic histories shaped like a real schedule (4 runs a day, 20
//! questions a run, run-level network noise, now and then a burst of failures): it finds every
//! real change, calls nothing on unchanged targets, reports improvements as improvements, and
//! answers with its exit code.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{BIN, Scratch};

/// 21 days at 4 runs a day; the last run starts at 2026-11-21T18:00Z.
const RUNS: u64 = 84;
const UNTIL: &str = "2026-11-22T00:00:00Z";

fn synth(dir: &std::path::Path, scenario: &str, targets: u32, seed: u64, extra: &[&str]) {
    let records = (RUNS * u64::from(targets) * 20).to_string();
    let out = Command::new(BIN)
        .args([
            "synth",
            "--scenario",
            scenario,
            "--every",
            "6h",
            "--questions",
            "20",
        ])
        .args(["--targets", &targets.to_string(), "--records", &records])
        .args([
            "--start",
            "2026-11-01T00:00:00Z",
            "--seed",
            &seed.to_string(),
        ])
        .args(extra)
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn watch(from: &std::path::Path, args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = Command::new(BIN)
        .arg("watch")
        .arg("--from")
        .arg(from)
        .args(["--until", UNTIL, "--json"])
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn findings(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["kind"] == "finding").collect()
}

#[test]
fn every_change_is_found_with_when_it_began_and_improvements_do_not_fail() {
    let dir = Scratch::new("watch-changes");
    synth(&dir.0, "changes", 12, 7, &[]);
    let (code, lines, err) = watch(&dir.0, &[]);
    assert_eq!(code, 1, "a regression exits 1: {err}");
    let found = findings(&lines);
    let has = |target: &str, metric: &str, direction: &str| {
        found
            .iter()
            .any(|f| f["target"] == target && f["metric"] == metric && f["direction"] == direction)
    };
    assert!(has("synthetic-1", "latency_p50", "worse"), "{found:#?}");
    assert!(has("synthetic-2", "success_rate", "worse"), "{found:#?}");
    assert!(has("synthetic-3", "coverage", "worse"), "{found:#?}");
    assert!(has("synthetic-4", "latency_p50", "better"), "{found:#?}");
    // Only the four changed targets, and the improvement never as a regression.
    for f in &found {
        let t = f["target"].as_str().unwrap();
        assert!(
            ["synthetic-1", "synthetic-2", "synthetic-3", "synthetic-4"].contains(&t),
            "a finding on an unchanged target: {f}"
        );
        if t == "synthetic-4" {
            assert_eq!(f["direction"], "better", "{f}");
        }
    }
    // Each finding carries both sides with their n and interval, the test and the step.
    let f = found
        .iter()
        .find(|f| f["target"] == "synthetic-2" && f["metric"] == "success_rate")
        .unwrap();
    assert!(f["baseline"]["value"].as_f64().unwrap() > 0.95);
    assert!(f["current"]["value"].as_f64().unwrap() < 0.9);
    assert_eq!(f["current"]["n"], 12, "3 days of 4 runs: {f}");
    assert!(f["baseline"]["ci"][0].as_f64() < f["baseline"]["ci"][1].as_f64());
    assert!(f["q_value"].as_f64().unwrap() <= 0.01);
    assert!(f["p_value"].as_f64().unwrap() <= f["q_value"].as_f64().unwrap());
    // The changes began with run 72 (2026-11-19T00:00Z); the step is placed within a run.
    let since = f["since"].as_str().unwrap();
    assert!(
        since.starts_with("2026-11-18T18") || since.starts_with("2026-11-19T0"),
        "{since}"
    );
    assert_eq!(f["runs"].as_array().unwrap().len(), 2);

    // Improvements alone never fail the gate; --fail-on never passes whatever was found.
    let (code, _, _) = watch(&dir.0, &["--target", "synthetic-4"]);
    assert_eq!(code, 0, "an improvement is not a regression");
    let (code, _, _) = watch(&dir.0, &["--fail-on", "never"]);
    assert_eq!(code, 0);
}

#[test]
fn three_weeks_of_thirty_unchanged_targets_raise_at_most_one_finding() {
    // 3 seeds × 30 targets × 84 runs × 20 questions = 151,200 calls with no change at all.
    let mut total = Vec::new();
    for seed in [11, 12, 13] {
        let dir = Scratch::new(&format!("watch-stable-{seed}"));
        synth(&dir.0, "stable", 30, seed, &[]);
        let (code, lines, err) = watch(&dir.0, &[]);
        let found: Vec<Value> = findings(&lines).into_iter().cloned().collect();
        assert!(
            code == 0 || !found.is_empty(),
            "exit {code} with no finding: {err}"
        );
        total.extend(found);
    }
    assert!(total.len() <= 1, "false alarms: {total:#?}");
}

#[test]
fn too_few_runs_are_skipped_and_say_so_never_a_false_alarm() {
    let dir = Scratch::new("watch-thin");
    synth(&dir.0, "changes", 5, 3, &[]);
    // A window of 3 runs cannot be sure of anything: every metric is skipped, with the reason.
    let (code, lines, _) = watch(&dir.0, &["--window-runs", "3"]);
    assert_eq!(code, 0);
    assert!(findings(&lines).is_empty());
    let skipped: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "skipped").collect();
    assert!(!skipped.is_empty());
    assert!(
        skipped
            .iter()
            .all(|s| s["reason"].as_str().unwrap().contains("too few runs")),
        "{skipped:#?}"
    );
}

#[test]
fn a_target_without_runs_in_the_window_is_named_and_fails_the_any_gate() {
    let dir = Scratch::new("watch-silent");
    synth(&dir.0, "stable", 3, 5, &[]);
    // Four days after the last run: every target has gone silent.
    let out = Command::new(BIN)
        .args([
            "watch",
            "--until",
            "2026-11-25T00:00:00Z",
            "--fail-on",
            "any",
            "--from",
        ])
        .arg(&dir.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("synthetic-0: no runs in the window"),
        "{text}"
    );
}

#[test]
fn inside_github_actions_findings_are_annotations_and_a_step_summary() {
    let dir = Scratch::new("watch-gha");
    synth(&dir.0, "changes", 5, 9, &[]);
    let summary = dir.0.join("summary.md");
    let out = Command::new(BIN)
        .args(["watch", "--until", UNTIL, "--from"])
        .arg(dir.0.join("records").parent().unwrap())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l
                .starts_with("::error title=llmpulse regression::synthetic-2: success_rate worse")),
        "{text}"
    );
    assert!(
        text.contains("::notice title=llmpulse improvement::synthetic-4"),
        "{text}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("## llmpulse watch") && md.contains("| synthetic-3 | coverage |"),
        "{md}"
    );
}

#[test]
fn errors_exit_2_and_name_what_failed() {
    let out = Command::new(BIN)
        .args(["watch", "--from", "/nonexistent/llmpulse-watch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/llmpulse-watch"), "{err}");
}

/// The same target measured from two places, one far slower to reach (the campaign moved
/// region halfway): from each origin alone nothing changed, so `watch --by-origin` follows
/// `m @ origin` apart and finds nothing, where one pooled series reads the move as a TTFT
/// regression.
#[test]
fn runs_from_several_origins_are_watched_per_origin() {
    let dir = Scratch::new("watch-origins");
    dir.write("suite.toml", support::ONE_QUESTION);
    let out = dir.0.join("out");
    let config = |ttft: u32| {
        format!(
            "suite = \"suite.toml\"\nrepetitions = 3\n[[targets]]\nname = \"m\"\nprovider = \"sim\"\n\
             model = \"m\"\n[targets.sim]\nttft_ms = {ttft}\nitl_ms = 1\noutput_tokens = 5\njitter = 0\n"
        )
    };
    for (origin, ttft) in [("lambda:eu-west-1", 20), ("lambda:ap-south-1", 200)] {
        let cfg = dir.write(&format!("{ttft}.toml"), &config(ttft));
        for _ in 0..15 {
            let run = Command::new(BIN)
                .args(["run", "--quiet", "--config"])
                .arg(&cfg)
                .arg("--output")
                .arg(&out)
                .env("XDG_CACHE_HOME", dir.0.join("cache"))
                .env("LLMPULSE_ORIGIN", origin)
                .output()
                .unwrap();
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
        }
    }
    let until = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    let watch = |more: &[&str]| {
        let run = Command::new(BIN)
            .arg("watch")
            .arg("--from")
            .arg(&out)
            .args(["--window-runs", "5", "--until", &until, "--json"])
            .args(more)
            .env_remove("GITHUB_ACTIONS")
            .output()
            .unwrap();
        let lines: Vec<Value> = String::from_utf8_lossy(&run.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        (run.status.code(), lines)
    };
    let (code, lines) = watch(&["--by-origin"]);
    assert_eq!(findings(&lines), Vec::<&Value>::new(), "{lines:?}");
    assert_eq!(code, Some(0));
    // Pooled, the move reads as the model slowing down.
    let (code, lines) = watch(&[]);
    let pooled: Vec<_> = findings(&lines)
        .iter()
        .map(|f| (f["target"].as_str().unwrap(), f["metric"].as_str().unwrap()))
        .collect();
    assert!(pooled.contains(&("m", "ttft_p50")), "{pooled:?}");
    assert_eq!(code, Some(1));
}
