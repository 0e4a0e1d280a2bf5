//! `llmpulse watch` beside Apache Otava (E-divisive means, the reference tool for change
//! detection in performance histories) on SYNTHETIC histories with known changes: 34 targets,
//! 4 runs a day for 21 days, 20 questions a run, run-level noise and bursts of failures, and in
//! the last 3 days target 1 40% slower, target 2's success 99% → 85%, target 3's coverage
//! 0.90 → 0.68, target 4 30% faster. Otava is fed per-run aggregates (median latency, success
//! rate, mean coverage per target and run), as it is used in practice. Outside CI:
//!
//!   benches/peers/install.sh --analysis      # Otava and DuckDB into a venv, once
//!   cargo bench -p llmpulse --bench watch_otava [-- --seeds 5]

use std::path::Path;
use std::process::Command;

mod common;

use common::BIN;
use serde_json::Value;

/// (target, metric, direction) of the four changes.
const CHANGES: [(&str, &str, &str); 4] = [
    ("synthetic-1", "latency_p50", "worse"),
    ("synthetic-2", "success_rate", "worse"),
    ("synthetic-3", "coverage", "worse"),
    ("synthetic-4", "latency_p50", "better"),
];
const RUNS: usize = 84;
/// The changes begin with run 72 (the last 12 runs, 3 days).
const CHANGE_AT: usize = 72;

fn changed(target: &str) -> bool {
    CHANGES.iter().any(|(t, _, _)| *t == target)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = match args.iter().position(|a| a == "--seeds") {
        Some(i) => args[i + 1].parse().expect("--seeds N"),
        None if args.iter().any(|a| a == "--quick") => 1,
        None => 5,
    };
    let otava = common::analysis_python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/peers/otava_compare.py");
    if otava.is_none() {
        println!("Otava is not installed (benches/peers/install.sh --analysis): watch alone");
    }
    println!(
        "{:>5} {:>14} {:>18} {:>14} {:>18} {:>22}",
        "seed", "watch found", "watch false", "otava found", "otava false", "otava false, last 3d"
    );
    let mut totals = [0usize; 5];
    for seed in 1..=seeds {
        let dir = std::env::temp_dir().join(format!("llmpulse-bench-watch-otava-{seed}"));
        let _ = std::fs::remove_dir_all(&dir);
        let status = Command::new(BIN)
            .args([
                "synth",
                "--scenario",
                "changes",
                "--targets",
                "34",
                "--questions",
                "20",
            ])
            .args(["--every", "6h", "--records", &(RUNS * 34 * 20).to_string()])
            .args([
                "--start",
                "2026-11-01T00:00:00Z",
                "--seed",
                &seed.to_string(),
                "--out",
            ])
            .arg(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("llmpulse synth");
        assert!(status.success());
        let out = Command::new(BIN)
            .args([
                "watch",
                "--until",
                "2026-11-22T00:00:00Z",
                "--json",
                "--fail-on",
                "never",
            ])
            .arg("--from")
            .arg(&dir)
            .output()
            .expect("llmpulse watch");
        let findings: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["kind"] == "finding")
            .collect();
        let found = CHANGES
            .iter()
            .filter(|(t, m, d)| {
                findings
                    .iter()
                    .any(|f| f["target"] == *t && f["metric"] == *m && f["direction"] == *d)
            })
            .count();
        let false_alarms = findings
            .iter()
            .filter(|f| !changed(f["target"].as_str().unwrap_or_default()))
            .count();
        let (mut o_found, mut o_false, mut o_recent) = (None, None, None);
        if let Some(py) = &otava {
            let out = Command::new(py)
                .arg(&script)
                .arg(&dir)
                .output()
                .expect("run otava_compare.py");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: Value = serde_json::from_slice(&out.stdout).expect("otava's JSON");
            let cps = v["change_points"].as_array().cloned().unwrap_or_default();
            let near = |c: &Value| c["index"].as_u64().unwrap_or(0) as usize + 2 >= CHANGE_AT;
            o_found = Some(
                CHANGES
                    .iter()
                    .filter(|(t, m, _)| {
                        cps.iter()
                            .any(|c| c["target"] == *t && c["metric"] == *m && near(c))
                    })
                    .count(),
            );
            let stable: Vec<&Value> = cps
                .iter()
                .filter(|c| !changed(c["target"].as_str().unwrap_or_default()))
                .collect();
            o_false = Some(stable.len());
            o_recent = Some(stable.iter().filter(|c| near(c)).count());
        }
        let show = |v: Option<usize>| v.map_or("-".to_string(), |n| n.to_string());
        println!(
            "{seed:>5} {:>14} {:>18} {:>14} {:>18} {:>22}",
            format!("{found} of 4"),
            false_alarms,
            o_found.map_or("-".into(), |n| format!("{n} of 4")),
            show(o_false),
            show(o_recent)
        );
        for (t, v) in
            totals
                .iter_mut()
                .zip([Some(found), Some(false_alarms), o_found, o_false, o_recent])
        {
            *t += v.unwrap_or(0);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!(
        "{:>5} {:>14} {:>18} {:>14} {:>18} {:>22}",
        "all",
        format!("{} of {}", totals[0], 4 * seeds),
        totals[1],
        format!("{} of {}", totals[2], 4 * seeds),
        totals[3],
        totals[4]
    );
}
