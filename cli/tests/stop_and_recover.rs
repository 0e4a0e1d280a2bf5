//! A run that is stopped (SIGTERM, Ctrl-C) or killed keeps every call that finished: a stopped
//! run is published as partial at once; a killed run's journal is recovered by
//! `llmpulse upload`, and nothing is lost or written twice.

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{BIN, Scratch, Sim, records, target};

fn manifest(out: &Path) -> Value {
    let path = support::walk(&out.join("runs"))
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "manifest.json"))
        .expect("a manifest");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Lines in the journals under `spool`: the calls that finished so far.
fn journaled(spool: &Path) -> usize {
    if !spool.exists() {
        return 0;
    }
    support::walk(spool)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .count()
        })
        .sum()
}

/// `llmpulse run` over the bundled suite (20 calls, 2 at a time) against one target whose first
/// token takes `ttft_ms`, started in the background with `args`; returns the process, the
/// output and the spool directories.
fn slow_run(dir: &Scratch, sim: &Sim, args: &[&str]) -> (std::process::Child, PathBuf, PathBuf) {
    let cfg = dir.write(
        "config.toml",
        &format!(
            "suite = \"builtin:rag-retail-finance\"\nconcurrency = 2\n{}",
            target("slow", &sim.base_url, "max_attempts = 1")
        ),
    );
    let (out, spool) = (dir.0.join("out"), dir.0.join("spool"));
    let child = Command::new(BIN)
        .args(["run", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--output")
        .arg(&out)
        .arg("--spool")
        .arg(&spool)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, out, spool)
}

/// SIGTERM with calls in flight: no new call starts, the two in flight are cancelled after the
/// grace, the rest are `skipped_cancelled` with no attempt, the run is published with
/// `complete = false`, and the exit code says it was stopped.
#[test]
fn sigterm_stops_cleanly_and_publishes_a_partial_run() {
    let sim = Sim::start(&["--ttft-ms", "3000", "--itl-ms", "10"]);
    let dir = Scratch::new("sigterm");
    let (child, out, _) = slow_run(&dir, &sim, &["--stop-grace", "500ms"]);
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let t0 = Instant::now();
    let done = child.wait_with_output().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "stopped within the grace, not after the 3 s answers: {:?}",
        t0.elapsed()
    );
    assert_eq!(
        done.status.code(),
        Some(130),
        "stderr: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    let rows = records(&out);
    assert_eq!(rows.len(), 20, "every planned call has a record");
    let kinds: Vec<&str> = rows
        .iter()
        .map(|r| r["error_kind"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "cancelled").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "skipped_cancelled").count(),
        18,
        "{kinds:?}"
    );
    for r in rows
        .iter()
        .filter(|r| r["error_kind"] == "skipped_cancelled")
    {
        assert_eq!(r["attempts"], 0);
    }
    let m = manifest(&out);
    assert_eq!(m["complete"], false);
    assert_eq!(m["planned"], 20);
    assert_eq!(m["records"], 20);
}

/// `kill -9` in the middle of a 2,000-call run, then `llmpulse upload`: the published run has
/// every call the journal kept, no call twice, only the calls in flight (and the few records
/// being handed to the journal) missing, checked against the simulator's own log, and says it
/// is partial.
#[test]
fn kill_9_then_upload_recovers_every_finished_call() {
    let sim = Sim::start(&["--ttft-ms", "2", "--itl-ms", "0", "--output-tokens", "4"]);
    let dir = Scratch::new("kill9");
    let concurrency = 4;
    let cfg = dir.write(
        "config.toml",
        &format!(
            "suite = \"builtin:rag-retail-finance\"\nrepetitions = 100\nconcurrency = {concurrency}\n{}",
            target("t", &sim.base_url, "max_attempts = 1")
        ),
    );
    let out = dir.0.join("out");
    let spool = dir.0.join("spool");
    let mut child = Command::new(BIN)
        .args(["run", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--output")
        .arg(&out)
        .arg("--spool")
        .arg(&spool)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while journaled(&spool) < 300 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the run made no progress"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !out.join("runs").exists(),
        "nothing was published before the kill"
    );

    let up = Command::new(BIN)
        .args(["upload", "--spool"])
        .arg(&spool)
        .output()
        .unwrap();
    let said = support::ok(&up);
    assert!(said.contains("recovered"), "{said}");

    let rows = records(&out);
    let m = manifest(&out);
    assert_eq!(m["complete"], false);
    assert_eq!(m["planned"], 2000);
    assert_eq!(m["records"].as_u64().unwrap() as usize, rows.len());
    assert!(
        rows.len() >= 300 && rows.len() < 2000,
        "{} records",
        rows.len()
    );

    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["provider_request_id"].as_str().unwrap())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no call is written twice");
    // Every call whose answer the simulator finished sending was recorded, except at most the
    // ones in flight at the kill.
    let log = sim.log();
    let served: HashSet<&str> = log
        .iter()
        .filter(|e| !e["events_ms"].as_array().unwrap().is_empty())
        .map(|e| e["request_id"].as_str().unwrap())
        .collect();
    assert!(
        unique.is_subset(&served),
        "records of calls the server never answered"
    );
    // Lost: the calls in flight at the kill (at most `concurrency`; the server may have sent
    // their answers already) and the records on their way to the journal (the hand-over queue
    // between the calls and the journal is drained as fast as records come, so a few at most).
    let lost = served.len() - unique.len();
    assert!(
        lost <= 2 * concurrency,
        "{lost} answered calls lost (the {concurrency} in flight and a few being handed over may be)"
    );

    // A report counts the run and says it is partial.
    let rep = dir.0.join("report");
    support::ok(
        &Command::new(BIN)
            .args(["report", "--from"])
            .arg(&out)
            .arg("--out")
            .arg(&rep)
            .output()
            .unwrap(),
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(rep.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["runs"], 1);
    assert_eq!(summary["partial_runs"], 1);
    let md = std::fs::read_to_string(rep.join("summary.md")).unwrap();
    assert!(md.contains("1 of 1 run is partial"), "{md}");

    // The spool is empty now, and a second upload has nothing to do.
    let again = Command::new(BIN)
        .args(["upload", "--spool"])
        .arg(&spool)
        .output()
        .unwrap();
    assert!(support::ok(&again).contains("nothing to upload"));
}

/// A second signal exits at once, without waiting for the grace; the journal keeps every call
/// that ended (here the calls the first signal skipped), and `llmpulse upload` publishes them.
#[test]
fn a_second_signal_exits_at_once_and_upload_recovers_the_journal() {
    let sim = Sim::start(&["--ttft-ms", "5000", "--itl-ms", "10"]);
    let dir = Scratch::new("two-signals");
    let (child, out, spool) = slow_run(&dir, &sim, &["--stop-grace", "30s"]);
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: signals to our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let done = child.wait_with_output().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(done.status.code(), Some(130));
    assert!(
        !out.join("runs").exists(),
        "nothing published: it stopped at once"
    );

    let said = support::ok(
        &Command::new(BIN)
            .args(["upload", "--spool"])
            .arg(&spool)
            .output()
            .unwrap(),
    );
    assert!(said.contains("recovered"), "{said}");
    let rows = records(&out);
    assert_eq!(rows.len(), 18, "the 18 calls the first signal skipped");
    assert!(rows.iter().all(|r| r["error_kind"] == "skipped_cancelled"));
    let m = manifest(&out);
    assert_eq!(m["complete"], false);
    assert_eq!(m["planned"], 20);
}
