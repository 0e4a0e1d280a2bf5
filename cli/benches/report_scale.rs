//! Report and watch at scale: `llmpulse report` and `llmpulse watch` over SYNTHETIC histories
//! of 100,000 and 1,000,000 records (written once by `llmpulse synth` into target/), timing each
//! run and reading its peak memory from the kernel (wait4's max RSS), and beside them DuckDB's
//! per-target aggregate over the same JSONL files when it is installed (benches/peers/install.sh
//! --analysis). `watch` is given a baseline long enough to read every record. The figures to
//! watch are the ratios: between the sizes (time should grow with records, memory should not)
//! and between the tools in one run (the machine's noise cancels).
//!
//!   cargo bench -p llmpulse --bench report_scale                 # 100k and 1M
//!   cargo bench -p llmpulse --bench report_scale -- --quick      # 100k only, one run
//!   cargo bench -p llmpulse --bench report_scale -- --records 250000

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{BIN, measure, measure_program};

/// DuckDB's per-target aggregate over every JSONL file of a history: what a person would
/// write to check a report's table (count, success rate, latency p50 and p95, mean coverage).
const DUCKDB: &str = r#"
import sys, duckdb
files = sys.argv[1] + "/records/*/*.jsonl"
q = f'''SELECT target, count(*), avg(CASE WHEN success THEN 1 ELSE 0 END),
  quantile_cont(latency_sec, 0.5) FILTER (WHERE success),
  quantile_cont(latency_sec, 0.95) FILTER (WHERE success),
  avg(coverage_score)
FROM read_json('{files}', format = 'newline_delimited', columns = {{
  'target': 'VARCHAR', 'success': 'BOOLEAN', 'latency_sec': 'DOUBLE', 'coverage_score': 'DOUBLE'}})
GROUP BY target ORDER BY target'''
rows = duckdb.sql(q).fetchall()
assert rows, "no rows"
"#;

/// One tool's run: (wall seconds, peak bytes).
type Measured<'a> = Box<dyn Fn() -> (f64, u64) + 'a>;

fn history(records: u64) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-histories");
    let dir = root.join(format!("synthetic-{records}"));
    if !dir.join("done").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!(
            "writing a synthetic history of {records} records to {}",
            dir.display()
        );
        let status = Command::new(BIN)
            .args([
                "synth",
                "--records",
                &records.to_string(),
                "--start",
                "2026-01-01",
            ])
            .arg("--out")
            .arg(&dir)
            .status()
            .expect("run llmpulse synth");
        assert!(status.success());
        std::fs::write(dir.join("done"), b"").unwrap();
    }
    dir
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let sizes: Vec<u64> = match args.iter().position(|a| a == "--records") {
        Some(i) => vec![args[i + 1].parse().expect("--records N")],
        None if quick => vec![100_000],
        None => vec![100_000, 1_000_000],
    };
    let repeats = if quick { 1 } else { 3 };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let duckdb = common::analysis_python();
    println!(
        "report, watch{} over synthetic histories ({cores} cores; best of {repeats} runs, \
         interleaved; files in the page cache after the first)",
        if duckdb.is_some() { " and DuckDB" } else { "" }
    );
    println!(
        "{:>10} {:>8} {:>8} {:>9} {:>12} {:>14}",
        "records", "runs", "tool", "wall s", "peak MiB", "records/s"
    );
    let mut rows = Vec::new();
    for records in sizes {
        let dir = history(records);
        let out = std::env::temp_dir().join(format!("llmpulse-bench-report-{records}"));
        let d = dir.to_str().unwrap();
        let o = out.to_str().unwrap();
        let mut tools: Vec<(&str, Measured)> = vec![
            (
                "report",
                Box::new(|| measure(&["report", "--from", d, "--out", o], &std::env::temp_dir())),
            ),
            (
                "watch",
                Box::new(|| {
                    measure(
                        &[
                            "watch",
                            "--from",
                            d,
                            "--baseline",
                            "3650d",
                            "--json",
                            "--fail-on",
                            "never",
                        ],
                        &std::env::temp_dir(),
                    )
                }),
            ),
        ];
        if let Some(py) = &duckdb {
            let py = py.clone();
            tools.push((
                "duckdb",
                Box::new(move || measure_program(&py, &["-c", DUCKDB, d], &std::env::temp_dir())),
            ));
        }
        let mut best = vec![(f64::INFINITY, 0u64); tools.len()];
        for _ in 0..repeats {
            for (i, (_, run)) in tools.iter().enumerate() {
                let (wall, rss) = run();
                best[i].0 = best[i].0.min(wall);
                best[i].1 = best[i].1.max(rss);
            }
        }
        let runs = records.div_ceil(80);
        for ((name, _), (wall, peak)) in tools.iter().zip(&best) {
            println!(
                "{records:>10} {runs:>8} {name:>8} {wall:>9.2} {:>12.0} {:>14.0}",
                *peak as f64 / 1_048_576.0,
                records as f64 / wall
            );
        }
        if let Some((dw, _)) = best.get(2) {
            println!(
                "{:>28} report {:.2}× DuckDB's time, watch {:.2}×",
                "",
                best[0].0 / dw,
                best[1].0 / dw
            );
        }
        rows.push((records, best[0].0, best[0].1));
    }
    if let [(r0, w0, m0), (r1, w1, m1)] = rows[..] {
        println!(
            "report: {}× the records, {:.2}× the time, {:.2}× the peak memory",
            r1 / r0,
            w1 / w0,
            m1 as f64 / m0 as f64
        );
    }
}
