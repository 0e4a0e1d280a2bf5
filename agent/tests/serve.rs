//! `llmpulse-agent serve`: the daemon runs a campaign's slots as they come due into the local S3
//! server, each run with its telemetry, while `/metrics` (read by a Prometheus text parser) and
//! `/health` answer; SIGTERM ends it cleanly, the run going on published as partial.

#[path = "../../cli/tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmpulse_sim::{SimProfile, SimState};
use serde_json::Value;
use support::{ONE_QUESTION, Scratch, create_bucket, free_port, service_url};

const AGENT: &str = env!("CARGO_BIN_EXE_llmpulse-agent");

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A simulator on a local port (served by this test process, so the agent watches its memory).
fn sim(rt: &tokio::runtime::Runtime, profile: SimProfile) -> String {
    let state = Arc::new(SimState::new(profile, HashMap::new(), false));
    let addr = rt
        .block_on(llmpulse_sim::server::spawn(
            "127.0.0.1:0".parse().unwrap(),
            state,
        ))
        .unwrap();
    format!("http://{addr}/v1")
}

fn config(
    dir: &Scratch,
    output: &str,
    base_url: &str,
    start: chrono::DateTime<chrono::Utc>,
    every: &str,
    end_after: i64,
) -> std::path::PathBuf {
    dir.write("suite.toml", ONE_QUESTION);
    let end = start + chrono::Duration::seconds(end_after);
    dir.write(
        "agent.toml",
        &format!(
            "suite = \"suite.toml\"\nrepetitions = 3\nconcurrency = 1\noutput = \"{output}\"\n\
             [agent]\nid = \"serve-test\"\n\
             [campaign]\nname = \"agent-ci\"\nstart = \"{}\"\nend = \"{}\"\nevery = \"{every}\"\n\
             [[targets]]\nname = \"local\"\nprovider = \"openai-compatible\"\nmodel = \"m\"\n\
             base_url = \"{base_url}\"\n",
            start.to_rfc3339(),
            end.to_rfc3339()
        ),
    )
}

fn get(rt: &tokio::runtime::Runtime, url: &str) -> Option<String> {
    rt.block_on(async {
        let r = support::http().get(url).send().await.ok()?;
        r.text().await.ok()
    })
}

/// Parses a `/metrics` page with prometheus-parse; every sample line must parse.
fn scrape(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let sample_lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    assert_eq!(
        scrape.samples.len(),
        sample_lines,
        "a line the parser could not read:\n{text}"
    );
    scrape
}

fn value(s: &prometheus_parse::Scrape, name: &str) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == name)
        .and_then(|x| match x.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

#[test]
fn runs_two_slots_into_s3_with_telemetry_and_serves_metrics() {
    let Some(_) = service_url("AWS_ENDPOINT_URL") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = format!("agent-serve-{}", std::process::id());
    rt.block_on(create_bucket("s3", &bucket));
    let base = sim(
        &rt,
        SimProfile {
            ttft_ms: 50.0,
            itl_ms: 1.0,
            output_tokens: 30,
            ..SimProfile::default()
        },
    );
    let dir = Scratch::new("agent-serve");
    // Two 4-second slots, the first starting in 2 seconds.
    let start = chrono::Utc::now() + chrono::Duration::seconds(2);
    let cfg = config(&dir, &format!("s3://{bucket}/agent"), &base, start, "4s", 8);
    let port = free_port();
    let child = Command::new(AGENT)
        .args(["serve", "--config"])
        .arg(&cfg)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--spool"])
        .arg(dir.0.join("spool"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);

    // /metrics and /health while it serves.
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let mut pages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut healthy = None;
    let status = loop {
        if let Some(page) = get(&rt, &metrics) {
            pages.push(page);
            // The container image's HEALTHCHECK: the agent's own command against /health.
            if healthy.is_none() {
                healthy = Some(
                    Command::new(AGENT)
                        .args(["health", "--url"])
                        .arg(format!("http://127.0.0.1:{port}/health"))
                        .output()
                        .unwrap(),
                );
            }
        }
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not end with its campaign"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let stderr = std::io::read_to_string(child.0.stderr.take().unwrap()).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(!pages.is_empty(), "no /metrics page answered");
    let healthy = healthy.unwrap();
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    assert!(String::from_utf8_lossy(&healthy.stdout).contains(r#""status":"ok""#));
    let first = scrape(&pages[0]);
    assert!(
        value(&first, "llmpulse_agent_calls_in_flight").is_some(),
        "{}",
        pages[0]
    );
    assert!(value(&first, "llmpulse_agent_memory_used_bytes").unwrap() > 0.0);
    let last = scrape(pages.last().unwrap());
    let runs = value(&last, "llmpulse_agent_runs_total").unwrap();
    assert!(runs >= 1.0, "{}", pages.last().unwrap());
    assert!(value(&last, "llmpulse_agent_last_run_success_ratio").is_some());

    // Both slots in the store, each with its telemetry series and the host fingerprint.
    let env = |k: &str| std::env::var(k).ok();
    rt.block_on(async {
        let store = llmpulse_core::store::open(&format!("s3://{bucket}/agent"), &env)
            .await
            .unwrap();
        let keys = store.list("runs/").await.unwrap();
        let manifests: Vec<Value> = {
            let mut v = Vec::new();
            for k in keys.iter().filter(|k| k.ends_with("manifest.json")) {
                let bytes = store.get(k).await.unwrap().unwrap();
                v.push(serde_json::from_slice::<Value>(&bytes).unwrap());
            }
            v
        };
        let mut slots: Vec<u64> = manifests
            .iter()
            .map(|m| m["slot"].as_u64().unwrap())
            .collect();
        slots.sort();
        assert_eq!(slots, [0, 1], "{manifests:#?}");
        for m in &manifests {
            assert_eq!(m["complete"], true);
            assert_eq!(m["records"], 3);
            assert_eq!(m["origin"], "agent:serve-test");
            assert_eq!(m["host"]["host_id"], "serve-test");
            let t = m["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["path"].as_str().unwrap().starts_with("telemetry/"))
                .expect("telemetry file");
            let series = store
                .get(t["path"].as_str().unwrap())
                .await
                .unwrap()
                .expect("telemetry stored");
            assert!(!series.is_empty());
        }
        let claims = store.list("claims/agent-ci/").await.unwrap();
        assert_eq!(claims.len(), 2, "{claims:?}");
    });
}

#[test]
fn sigterm_stops_the_run_going_on_and_publishes_it_as_partial() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Slow answers: each call takes about 3 s.
    let base = sim(
        &rt,
        SimProfile {
            ttft_ms: 500.0,
            itl_ms: 100.0,
            output_tokens: 25,
            ..SimProfile::default()
        },
    );
    let dir = Scratch::new("agent-sigterm");
    let out = dir.0.join("out");
    let cfg = config(
        &dir,
        &out.display().to_string(),
        &base,
        chrono::Utc::now() - chrono::Duration::seconds(1),
        "1h",
        7200,
    );
    let port = free_port();
    let child = Command::new(AGENT)
        .args(["serve", "--stop-grace", "1s", "--config"])
        .arg(&cfg)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--spool"])
        .arg(dir.0.join("spool"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    // Wait for the first call on the wire.
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(page) = get(&rt, &metrics)
            && value(&scrape(&page), "llmpulse_agent_calls_in_flight") == Some(1.0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no call started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let asked = Instant::now();
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(20),
            "SIGTERM did not stop serve"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::io::read_to_string(child.0.stderr.take().unwrap()).unwrap();
    assert!(status.success(), "{stderr}");
    let manifest = support::walk(&out)
        .into_iter()
        .find(|p| p.ends_with("manifest.json"))
        .expect("the stopped run is published");
    let m: Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    assert_eq!(m["complete"], false, "{m:#}");
    assert_eq!(m["planned"], 3);
}

/// Runs `llmpulse-agent COMMAND --config agent.toml` on `config` (with a one-question suite
/// beside it), which must refuse with exit 2; returns what it said.
fn refused(command: &str, name: &str, config: &str) -> String {
    let dir = Scratch::new(name);
    dir.write("suite.toml", ONE_QUESTION);
    let cfg = dir.write("agent.toml", config);
    let out = Command::new(AGENT)
        .args([command, "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const SIM_TARGET: &str = "[[targets]]\nname = \"s\"\nprovider = \"sim\"\nmodel = \"m\"\n";

#[test]
fn serve_without_a_campaign_says_so() {
    let e = refused(
        "serve",
        "agent-nocampaign",
        &format!("suite = \"suite.toml\"\n{SIM_TARGET}"),
    );
    assert!(e.contains("serve needs a [campaign]"), "{e}");
}

#[test]
fn a_bad_agent_section_names_file_line_and_field() {
    let e = refused(
        "run",
        "agent-badconfig",
        &format!("suite = \"suite.toml\"\n[agent]\nsample_hz = 0\n{SIM_TARGET}"),
    );
    assert!(e.contains("agent.toml:3: agent.sample_hz"), "{e}");
}
