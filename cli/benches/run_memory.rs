//! A run's memory against its length: `llmpulse run` with one in-process simulated target at
//! zero delay (16 tokens an answer), 10,000 and 100,000 calls, timing each run and reading its
//! peak resident memory from the kernel (`wait4`). Records go to a journal as they finish, so
//! the peak should not grow with the calls.
//!
//!   cargo bench -p llmpulse --bench run_memory                 # 10k and 100k calls
//!   cargo bench -p llmpulse --bench run_memory -- --quick      # 10k only
//!   cargo bench -p llmpulse --bench run_memory -- --calls 250000

mod common;

use common::measure;

/// Peak memory a 100,000-call run may take (the bound).
const LIMIT_MIB: f64 = 150.0;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let sizes: Vec<u64> = match args.iter().position(|a| a == "--calls") {
        Some(i) => vec![args[i + 1].parse().expect("--calls N")],
        None if quick => vec![10_000],
        None => vec![10_000, 100_000],
    };
    let root = std::env::temp_dir().join("llmpulse-bench-run-memory");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("llmpulse run against a zero-delay in-process simulator ({cores} cores)");
    println!(
        "{:>10} {:>9} {:>12} {:>10}",
        "calls", "wall s", "peak MiB", "calls/s"
    );
    let mut rows = Vec::new();
    for calls in sizes {
        // The bundled suite has 20 questions.
        let config = root.join(format!("run-{calls}.toml"));
        std::fs::write(
            &config,
            format!(
                "suite = \"builtin:rag-retail-finance\"\nrepetitions = {}\nconcurrency = 64\n\
                 [[targets]]\nname = \"zero\"\nprovider = \"sim\"\nmodel = \"zero\"\n\
                 [targets.sim]\nttft_ms = 0\nitl_ms = 0\noutput_tokens = 16\n",
                calls / 20
            ),
        )
        .unwrap();
        let out = root.join(format!("out-{calls}"));
        let (wall, peak) = measure(
            &[
                "run",
                "--quiet",
                "--config",
                config.to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
            ],
            &root.join("cache"),
        );
        let mib = peak as f64 / 1_048_576.0;
        println!(
            "{calls:>10} {wall:>9.2} {mib:>12.1} {:>10.0}",
            calls as f64 / wall
        );
        rows.push((calls, mib));
        let _ = std::fs::remove_dir_all(&out);
    }
    if let [(c0, m0), (c1, m1)] = rows[..] {
        println!("{}× the calls: {:.2}× the peak memory", c1 / c0, m1 / m0);
    }
    if let Some((calls, mib)) = rows.iter().find(|(c, _)| *c >= 100_000) {
        assert!(
            *mib < LIMIT_MIB,
            "{calls} calls took {mib:.1} MiB, over the {LIMIT_MIB} MiB bound"
        );
    }
}
