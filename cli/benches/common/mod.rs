//! What the benchmarks share: running `llmpulse` and reading its peak memory from the kernel,
//! and finding the peer tools' Python.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

pub const BIN: &str = env!("CARGO_BIN_EXE_llmpulse");

/// Wall time and peak resident memory (bytes) of one `llmpulse` run, with `XDG_CACHE_HOME` at
/// `cache` (where the run's journal is staged).
pub fn measure(args: &[&str], cache: &Path) -> (f64, u64) {
    measure_program(Path::new(BIN), args, cache)
}

/// [`measure`] for any program (a peer tool beside llmpulse).
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also returns its peak memory"
)]
pub fn measure_program(program: &Path, args: &[&str], cache: &Path) -> (f64, u64) {
    let start = Instant::now();
    let child = Command::new(program)
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start llmpulse");
    let mut status = 0;
    // SAFETY: rusage is plain data the kernel fills; the pid is our own child, reaped once here.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = start.elapsed().as_secs_f64();
    assert!(pid > 0, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{} {args:?} failed",
        program.display()
    );
    // Linux reports ru_maxrss in KiB.
    (wall, usage.ru_maxrss as u64 * 1024)
}

/// The Python of the analysis peers (Otava, DuckDB: `benches/peers/install.sh --analysis`), or
/// `LLMPULSE_ANALYSIS_PYTHON`; `None` when neither is there.
pub fn analysis_python() -> Option<std::path::PathBuf> {
    let p = std::env::var_os("LLMPULSE_ANALYSIS_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/llmpulse-peers/analysis-venv/bin/python")
        });
    p.exists().then_some(p)
}
