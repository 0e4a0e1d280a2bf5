//! Starting `llmpulse sim` as a process of its own: for the benchmarks that hold a tool's
//! figures against the simulator's request log, and for the end-to-end tests
//! (`tests/support`, which pulls this file in by path).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts `BIN sim --port 0 ARGS` (`BIN` the `llmpulse` binary) and returns it with its base URL
/// (`…/v1`), read from the line it prints once it listens.
pub fn start(bin: &str, args: &[&str]) -> (Child, String) {
    let mut child = Command::new(bin)
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
        .unwrap_or_else(|| panic!("unexpected first line from llmpulse sim: {line}"))
        .to_string();
    (child, url)
}
