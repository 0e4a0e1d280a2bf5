//! Helpers shared by the end-to-end tests: a `llmpulse sim` process, scratch directories,
//! `llmpulse run`, and reading records back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

#[path = "../../benches/common/sim.rs"]
mod sim;

/// The `llmpulse` binary (tests of the `cli` package; other packages' tests do not use it).
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_llmpulse") {
    Some(b) => b,
    None => "llmpulse",
};

/// Runs `llmpulse ARGS…` to its end and returns its output and its peak resident memory in
/// bytes (from `wait4`, so only this process is counted).
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also returns its peak memory"
)]
pub fn run_measured(args: &[&std::ffi::OsStr], envs: &[(&str, &std::ffi::OsStr)]) -> (i32, u64) {
    let child = Command::new(BIN)
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start llmpulse");
    let mut status = 0;
    // SAFETY: rusage is plain data the kernel fills; the pid is our own child, reaped once here.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert!(pid > 0, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    // Linux reports ru_maxrss in KiB.
    (code, usage.ru_maxrss as u64 * 1024)
}

/// An HTTP client for talking to the test servers (TLS set up as llmpulse sets it up).
pub fn http() -> reqwest::Client {
    llmpulse_core::provider::http::install_crypto();
    reqwest::Client::new()
}

/// A running `llmpulse sim`, killed on drop.
pub struct Sim {
    child: Child,
    pub base_url: String,
}

impl Sim {
    pub fn start(args: &[&str]) -> Sim {
        let (child, base_url) = sim::start(BIN, args);
        Sim { child, base_url }
    }

    /// The simulator's request log: per request, when it arrived and when each event went to
    /// the transport. Over https the test CA's certificate is taken as it is (a test server on
    /// loopback).
    pub fn log(&self) -> Vec<Value> {
        let url = self.base_url.replace("/v1", "/sim/log");
        llmpulse_core::provider::http::install_crypto();
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async { client.get(url).send().await.unwrap().json().await.unwrap() })
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("llmpulse-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub const ONE_QUESTION: &str = r#"
name = "one"
[[questions]]
id = "retail-01"
industry = "retail"
question = "Which category earned the most?"
context = ["Outerwear revenue was $18.4 million. Footwear revenue was $12.9 million."]
key_facts = ["Outerwear revenue was $18.4 million"]
"#;

pub fn run(dir: &Scratch, config: &str, envs: &[(&str, &str)]) -> Output {
    run_with(dir, config, envs, &[])
}

/// `llmpulse run --quiet --config DIR/config.toml --output DIR/out ARGS…`, with the one-question
/// suite at `DIR/suite.toml` unless the test wrote its own.
pub fn run_with(dir: &Scratch, config: &str, envs: &[(&str, &str)], args: &[&str]) -> Output {
    if !dir.0.join("suite.toml").exists() {
        dir.write("suite.toml", ONE_QUESTION);
    }
    let cfg = dir.write("config.toml", config);
    Command::new(BIN)
        .args(["run", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--output")
        .arg(dir.0.join("out"))
        .args(args)
        // Each test stages its runs in a spool of its own.
        .env("XDG_CACHE_HOME", dir.0.join("cache"))
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

/// Asserts that `out` exited 0 (showing its exit code, stdout and stderr when not) and returns
/// its stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// [`run`], which must succeed, then the records it wrote.
pub fn run_records(dir: &Scratch, config: &str, envs: &[(&str, &str)]) -> Vec<Value> {
    ok(&run(dir, config, envs));
    records(&dir.0.join("out"))
}

/// All records below `out`, in file order.
pub fn records(out: &Path) -> Vec<Value> {
    let mut rows = Vec::new();
    for day in std::fs::read_dir(out.join("records")).unwrap() {
        for f in std::fs::read_dir(day.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "jsonl") {
                for line in std::fs::read_to_string(&p).unwrap().lines() {
                    rows.push(serde_json::from_str(line).unwrap());
                }
            }
        }
    }
    rows
}

/// `llmpulse campaign status --json --config CFG`, as JSON.
pub fn campaign_status(cfg: &Path) -> Value {
    let out = Command::new(BIN)
        .args(["campaign", "status", "--json", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "campaign status: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `llmpulse report --from out --out r` in `dir`, and the `summary.json` it wrote.
pub fn report_summary(dir: &Path) -> Value {
    ok(&Command::new(BIN)
        .current_dir(dir)
        .args(["report", "--from", "out", "--out", "r"])
        .output()
        .unwrap());
    serde_json::from_slice(&std::fs::read(dir.join("r/summary.json")).unwrap()).unwrap()
}

/// A `[[targets]]` table for an OpenAI-compatible server at `base_url`, model `sim`.
pub fn target(name: &str, base_url: &str, extra: &str) -> String {
    target_as(name, "openai-compatible", base_url, "sim", extra)
}

/// A `[[targets]]` table with any provider preset and model, pointed at `base_url`.
pub fn target_as(name: &str, provider: &str, base_url: &str, model: &str, extra: &str) -> String {
    format!(
        "[[targets]]\nname = \"{name}\"\nprovider = \"{provider}\"\nbase_url = \"{base_url}\"\nmodel = \"{model}\"\n{extra}\n"
    )
}

pub fn by_target<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["target"] == name)
        .unwrap_or_else(|| panic!("no record for {name}"))
}

pub fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The URL of a service that `.ci/run` starts (`LLMPULSE_LLAMA_URL`, …). Outside CI a test
/// without it is skipped with a note; in CI (`CI` set) a missing service fails the test, so a
/// green CI never hides a test that did not run.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{var} is not set: .ci/run must start this service")
        }
        _ => {
            eprintln!("skipped: {var} is not set (.ci/run starts the service and sets it)");
            None
        }
    }
}

/// A TCP port free on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// For tests that need both object stores: `false` (the test is skipped, or fails in CI) when
/// either is not running; otherwise creates `bucket` on each and returns `true`.
pub fn both_stores_with_bucket(bucket: &str) -> bool {
    let (Some(_), Some(_)) = (
        service_url("AWS_ENDPOINT_URL"),
        service_url("STORAGE_EMULATOR_HOST"),
    ) else {
        return false;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        create_bucket("s3", bucket).await;
        create_bucket("gs", bucket).await;
    });
    true
}

/// Creates a bucket on the local S3 server (`s3`) or GCS emulator (`gs`); an existing one is
/// fine.
pub async fn create_bucket(kind: &str, name: &str) {
    let http = http();
    match kind {
        "s3" => {
            let url = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
            let r = http.put(format!("{url}/{name}")).send().await.unwrap();
            assert!(
                r.status().is_success() || r.status().as_u16() == 409,
                "{}",
                r.status()
            );
        }
        _ => {
            let host = std::env::var("STORAGE_EMULATOR_HOST").expect("STORAGE_EMULATOR_HOST");
            let r = http
                .post(format!("http://{host}/storage/v1/b?project=llmpulse"))
                .json(&serde_json::json!({"name": name}))
                .send()
                .await
                .unwrap();
            assert!(
                r.status().is_success() || r.status().as_u16() == 409,
                "{}",
                r.status()
            );
        }
    }
}
