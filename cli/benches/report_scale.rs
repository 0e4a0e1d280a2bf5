//! Report at scale: `llmpulse report` over SYNTHETIC histories of 100,000 and 1,000,000 records
//! (written once by `llmpulse synth` into target/), timing each run and reading its peak memory
//! from the kernel (wait4's max RSS). The figures to watch are the ratios between the sizes:
//! time should grow with records, memory should not.
//!
//!   cargo bench -p llmpulse --bench report_scale                 # 100k and 1M
//!   cargo bench -p llmpulse --bench report_scale -- --quick      # 100k only, one run
//!   cargo bench -p llmpulse --bench report_scale -- --records 250000

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{BIN, measure};

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
    println!("report over synthetic histories ({cores} cores; best of {repeats} runs)");
    println!(
        "{:>10} {:>8} {:>9} {:>12} {:>14}",
        "records", "runs", "wall s", "peak MiB", "records/s"
    );
    let mut rows = Vec::new();
    for records in sizes {
        let dir = history(records);
        let out = std::env::temp_dir().join(format!("llmpulse-bench-report-{records}"));
        let (mut best_wall, mut peak) = (f64::INFINITY, 0u64);
        for _ in 0..repeats {
            let (wall, rss) = measure(
                &[
                    "report",
                    "--from",
                    dir.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                ],
                &std::env::temp_dir(),
            );
            best_wall = best_wall.min(wall);
            peak = peak.max(rss);
        }
        let runs = records.div_ceil(80);
        println!(
            "{records:>10} {runs:>8} {best_wall:>9.2} {:>12.0} {:>14.0}",
            peak as f64 / 1_048_576.0,
            records as f64 / best_wall
        );
        rows.push((records, best_wall, peak));
    }
    if let [(r0, w0, m0), (r1, w1, m1)] = rows[..] {
        println!(
            "{}× the records: {:.2}× the time, {:.2}× the peak memory",
            r1 / r0,
            w1 / w0,
            m1 as f64 / m0 as f64
        );
    }
}
