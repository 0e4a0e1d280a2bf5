//! Starting `llmpulse sim` as a process of its own, for the benchmarks that hold a tool's
//! figures against the simulator's request log.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts `llmpulse sim --port 0 ARGS` and returns it with its base URL (`…/v1`), read from the
/// line it prints once it listens.
pub fn start(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmpulse"))
        .args(["sim", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start llmpulse sim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the simulator's first line");
    let url = line
        .trim()
        .strip_prefix("llmpulse sim listening on ")
        .expect("the simulator says where it listens")
        .to_string();
    (child, url)
}
