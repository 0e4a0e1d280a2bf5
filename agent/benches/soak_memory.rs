//! A soak's memory over time: `llmpulse-agent soak` against two zero-delay in-process simulated
//! models with no pause, at full speed, reading the process's resident memory from
//! `/proc/PID/status` every second. The soak keeps counters, not records, so its memory should
//! stay flat: the peak within 20% of the figure after the first minute.
//!
//!   cargo bench -p llmpulse-agent --bench soak_memory                  # one hour
//!   cargo bench -p llmpulse-agent --bench soak_memory -- --minutes 5

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const AGENT: &str = env!("CARGO_BIN_EXE_llmpulse-agent");

/// The resident memory of `pid`, in MiB (Linux).
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let minutes: u64 = match args.iter().position(|a| a == "--minutes") {
        Some(i) => args[i + 1].parse().expect("--minutes N"),
        None if args.iter().any(|a| a == "--quick") => 2,
        None => 60,
    };
    let root = std::env::temp_dir().join("llmpulse-bench-soak-memory");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let config = root.join("soak.toml");
    let model = |name: &str| {
        format!(
            "[[targets]]\nname = \"{name}\"\nprovider = \"sim\"\nmodel = \"{name}\"\n\
             [targets.sim]\nttft_ms = 0\nitl_ms = 0\noutput_tokens = 16\n"
        )
    };
    std::fs::write(
        &config,
        format!(
            "suite = \"builtin:rag-retail-finance\"\noutput = \"{}\"\n{}{}\
             [soak]\nname = \"bench\"\ndir = \"soak\"\nduration = \"{minutes}m\"\n\
             summary_interval = \"10s\"\npause = \"0s\"\ncontext_length = 8192\n\
             [soak.night]\npause = \"0s\"\nburst = 8\n",
            root.join("out").display(),
            model("a"),
            model("b"),
        ),
    )
    .unwrap();
    if rss_mib(std::process::id()).is_none() {
        println!("soak_memory: /proc is not readable here; nothing measured");
        return;
    }
    let mut child = Command::new(AGENT)
        .current_dir(&root)
        .args(["soak", "--config"])
        .arg(&config)
        .arg("--spool")
        .arg(root.join("spool"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let began = Instant::now();
    let (mut at_one_minute, mut peak_after) = (None, 0f64);
    let mut next_line = 60;
    println!("llmpulse-agent soak, zero-delay simulator, no pause, {minutes} min");
    println!("{:>8} {:>10}", "minute", "RSS MiB");
    while child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_secs(1));
        let Some(rss) = rss_mib(child.id()) else {
            continue;
        };
        let t = began.elapsed();
        if t >= Duration::from_secs(60) {
            let base = *at_one_minute.get_or_insert(rss);
            peak_after = peak_after.max(rss);
            if t.as_secs() >= next_line {
                next_line += 60;
                println!(
                    "{:>8} {rss:>10.1}  ({:.2}× minute 1)",
                    t.as_secs() / 60,
                    rss / base
                );
            }
        }
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("soak/test_summary.json")).unwrap())
            .unwrap();
    println!(
        "{} calls; RSS after the first minute {:.1} MiB, peak after it {:.1} MiB ({:.2}×)",
        summary["calls"],
        at_one_minute.unwrap_or(0.0),
        peak_after,
        peak_after / at_one_minute.unwrap_or(f64::NAN)
    );
    if let Some(base) = at_one_minute {
        assert!(
            peak_after <= base * 1.2,
            "the soak's memory grew: {base:.1} MiB after a minute, {peak_after:.1} MiB at its peak"
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
