//! Other work sharing the CPUs while a benchmark measures: `LLMPULSE_BENCH_PRESSURE=N` starts N
//! shell loops that never sleep, at the default priority, as separate processes; they are
//! killed when the [`Pressure`] is dropped.

use std::process::{Child, Command};

pub struct Pressure(Vec<Child>);

impl Pressure {
    pub fn from_env() -> Pressure {
        let n: usize = std::env::var("LLMPULSE_BENCH_PRESSURE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Pressure(
            (0..n)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .expect("start a busy loop")
                })
                .collect(),
        )
    }

    /// How many busy loops run.
    pub fn count(&self) -> usize {
        self.0.len()
    }
}

impl Drop for Pressure {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
