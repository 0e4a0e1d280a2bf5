//! `llmpulse-agent soak`, compressed into two minutes: two simulated models, rotation every 5
//! calls, a night window that the injected clock enters halfway, a summary every 10 seconds,
//! and a `kill -9` in the middle. What a user checks the next morning: every call asked once,
//! scenarios in the proportions of their weights, models taking turns, slower calls at night, a
//! summary that always parsed, the profile database and the report.

#[path = "../../cli/tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use llmpulse_agent::soak::scenario::{Scenario, Weights};
use serde_json::Value;
use support::Scratch;

const AGENT: &str = env!("CARGO_BIN_EXE_llmpulse-agent");

/// Every JSON line under `dir`, in files whose name ends with `.jsonl`.
fn jsonl_under(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                for l in std::fs::read_to_string(&p).unwrap().lines() {
                    out.push(serde_json::from_str(l).unwrap());
                }
            }
        }
    }
    out
}

fn manifests(out: &Path) -> Vec<Value> {
    let mut found = Vec::new();
    let mut stack = vec![out.join("runs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap());
            }
        }
    }
    found
}

/// Whether a record's call was sent (not one the soak's end or a stop came before).
fn sent(r: &Value) -> bool {
    !r["error_kind"]
        .as_str()
        .is_some_and(|k| k.starts_with("skipped_"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn at(r: &Value) -> DateTime<Utc> {
    r["timestamp"].as_str().unwrap().parse().unwrap()
}

#[test]
fn a_compressed_soak_draws_by_weight_rotates_slows_at_night_and_survives_kill_9() {
    let dir = Scratch::new("agent-soak");
    let out = dir.0.join("out");
    let config = dir.write(
        "soak.toml",
        &format!(
            r#"suite = "builtin:rag-retail-finance"
output = "{}"
[agent]
id = "ci-box"
sample_hz = 5

[[targets]]
name = "fast"
provider = "sim"
model = "fast-3b"
max_tokens = 64
[targets.sim]
ttft_ms = 20
itl_ms = 2
output_tokens = 10
seed = 1

[[targets]]
name = "large"
provider = "sim"
model = "large-14b"
max_tokens = 64
[targets.sim]
ttft_ms = 40
itl_ms = 4
output_tokens = 12
seed = 2

[soak]
name = "ci-soak"
dir = "soak"
duration = "2m"
summary_interval = "10s"
rotate_every = [5, 5]
pause = "100ms"
burst = 3
context_length = 4096
seed = 1

[soak.night]
start = "22:00"
end = "06:00"
pause = "1s"
burst = 3
"#,
            out.display()
        ),
    );
    let soak_dir = dir.0.join("soak");
    let spool = dir.0.join("spool");
    let start = |log: &str, extra: &[&str]| {
        Command::new(AGENT)
            .current_dir(&dir.0)
            .args(["soak", "--config"])
            .arg(&config)
            .arg("--spool")
            .arg(&spool)
            // Night starts at 22:00: one minute into the soak.
            .args(["--clock-start", "2026-11-27T21:59:00+00:00"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.0.join(log)).unwrap())
            .spawn()
            .unwrap()
    };

    // A reader that parses the live summary as often as it can, as a dashboard would.
    let summary = soak_dir.join("test_summary.json");
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        let summary = summary.clone();
        std::thread::spawn(move || {
            let (mut rewrites, mut broken) = (BTreeSet::new(), Vec::new());
            while !done.load(Ordering::Relaxed) {
                if let Ok(text) = std::fs::read_to_string(&summary) {
                    match serde_json::from_str::<Value>(&text) {
                        Ok(v) => {
                            rewrites.insert(v["rewrites"].as_u64().unwrap());
                        }
                        Err(e) => broken.push(format!("{e}: {text}")),
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (rewrites, broken)
        })
    };

    // 40 seconds in, kill -9 while a segment is going.
    let began = Instant::now();
    let mut first = start("first.log", &[]);
    std::thread::sleep(Duration::from_secs(40));
    let state_path = soak_dir.join("state.json");
    let killed_run = loop {
        let state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
        // A segment whose run has begun its journal in the spool.
        if let Some(run) = state["in_flight"]["run_id"].as_str()
            && spool.join(run).join("records").is_dir()
        {
            first.kill().unwrap();
            break run.to_string();
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "no segment ever in flight"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    first.wait().unwrap();

    // The same command again: it resumes and ends when the soak first planned to. This time
    // it also serves /metrics, which a scraper reads while it runs.
    let second = start("second.log", &["--listen", "127.0.0.1:0"]);
    let metrics_url = loop {
        let log = std::fs::read_to_string(dir.0.join("second.log")).unwrap();
        if let Some(i) = log.find("serving /metrics on ") {
            let url = log[i + 20..].split_whitespace().next().unwrap();
            break format!("{url}/metrics");
        }
        assert!(began.elapsed() < Duration::from_secs(70), "{log}");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_secs(3));
    let page = tokio::runtime::Runtime::new().unwrap().block_on(async {
        support::http()
            .get(&metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let scrape = prometheus_parse::Scrape::parse(page.lines().map(|l| Ok(l.to_string()))).unwrap();
    let calls = scrape
        .samples
        .iter()
        .find(|s| s.metric == "llmpulse_soak_calls_total")
        .map(|s| match s.value {
            // OpenMetrics types the family without `_total`: the classic parser reads the sample
            // untyped.
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        });
    assert!(calls.is_some_and(|c| c > 100.0), "{page}");
    assert!(
        page.contains("# TYPE llmpulse_soak_calls counter"),
        "{page}"
    );
    assert!(
        page.contains("llmpulse_soak_model_calls_total{soak=\"ci-soak\",model=\"fast\"}"),
        "{page}"
    );
    let second = second.wait_with_output().unwrap();
    let log = std::fs::read_to_string(dir.0.join("second.log")).unwrap();
    assert!(second.status.success(), "{log}");
    assert!(log.contains("resuming the soak"), "{log}");
    let elapsed = began.elapsed();
    assert!(
        elapsed > Duration::from_secs(118) && elapsed < Duration::from_secs(190),
        "{elapsed:?}"
    );
    done.store(true, Ordering::Relaxed);
    let (rewrites, broken) = watcher.join().unwrap();
    assert!(broken.is_empty(), "a summary did not parse: {broken:?}");
    assert!(rewrites.len() >= 10, "{rewrites:?}");

    // Every call asked exactly once, killed segment included.
    let records = jsonl_under(&out.join("records"));
    let calls: Vec<&Value> = records
        .iter()
        .filter(|r| r["target"] != "failover-probe")
        .collect();
    let mut index: Vec<u64> = calls
        .iter()
        .map(|r| r["question_id"].as_str().unwrap()[1..8].parse().unwrap())
        .collect();
    index.sort();
    let n = index.len() as u64;
    assert!(n > 150, "{n} calls");
    assert!(index.iter().copied().eq(0..n), "lost or repeated calls");
    let killed: Vec<Value> = manifests(&out)
        .into_iter()
        .filter(|m| m["run_id"] == killed_run.as_str())
        .collect();
    assert_eq!(
        killed.len(),
        1,
        "the killed segment was recovered and stored"
    );
    assert_eq!(killed[0]["complete"], false);

    // Scenarios in the proportions of their weights: each draw's count within the 99% binomial
    // band. A burst is one draw of 3 calls (its indexes run in a row).
    let scenario = |r: &Value| -> Scenario {
        Scenario::parse(
            r["question_id"]
                .as_str()
                .unwrap()
                .split('-')
                .nth(1)
                .unwrap(),
        )
        .unwrap()
    };
    let mut by_index: BTreeMap<u64, Scenario> = BTreeMap::new();
    for r in &calls {
        by_index.insert(
            r["question_id"].as_str().unwrap()[1..8].parse().unwrap(),
            scenario(r),
        );
    }
    let mut draws: BTreeMap<Scenario, f64> = BTreeMap::new();
    let mut burst_run = 0;
    for (i, s) in &by_index {
        if *s == Scenario::ConcurrentLoad {
            burst_run += 1;
            let next = by_index.get(&(i + 1));
            if next != Some(&Scenario::ConcurrentLoad) {
                assert_eq!(burst_run % 3, 0, "bursts of 3 calls");
                *draws.entry(*s).or_default() += f64::from(burst_run / 3);
                burst_run = 0;
            }
        } else {
            *draws.entry(*s).or_default() += 1.0;
        }
    }
    let total: f64 = draws.values().sum();
    let w = Weights::default();
    for s in Scenario::ALL {
        let p = w.share(s);
        let got = draws.get(&s).copied().unwrap_or(0.0);
        let band = 2.576 * (total * p * (1.0 - p)).sqrt();
        assert!(
            (got - total * p).abs() <= band,
            "{s:?}: {got} of {total} draws, expected {:.1} ± {band:.1}",
            total * p
        );
    }

    // Models take turns, 5 calls each (a burst that starts near the end of a turn finishes it).
    let mut turns: Vec<(String, usize)> = Vec::new();
    for r in by_index.keys().map(|i| {
        calls
            .iter()
            .find(|r| {
                r["question_id"].as_str().unwrap()[1..8]
                    .parse::<u64>()
                    .unwrap()
                    == *i
            })
            .unwrap()
    }) {
        let model = r["target"].as_str().unwrap().to_string();
        match turns.last_mut() {
            Some((m, k)) if *m == model => *k += 1,
            _ => turns.push((model, 1)),
        }
    }
    assert!(turns.len() > 20, "{turns:?}");
    for (t, k) in &turns[..turns.len() - 1] {
        assert!(
            (5..=7).contains(k),
            "{t} took {k} calls in a turn: {turns:?}"
        );
    }

    // Night mode: one call a second instead of ten.
    let state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    assert_eq!(state["finished"], true);
    let started: DateTime<Utc> = state["started_at"].as_str().unwrap().parse().unwrap();
    let night_from = started + chrono::TimeDelta::seconds(62);
    let day_until = started + chrono::TimeDelta::seconds(58);
    let mut paced: Vec<&Value> = calls
        .iter()
        .copied()
        .filter(|r| !matches!(scenario(r), Scenario::ConcurrentLoad))
        .collect();
    paced.sort_by_key(|r| at(r));
    let (mut day, mut night) = (Vec::new(), Vec::new());
    for pair in paced.windows(2) {
        let gap = (at(pair[1]) - at(pair[0])).num_milliseconds() as f64 / 1e3;
        if gap > 5.0 {
            continue; // the restart
        }
        if at(pair[1]) < day_until {
            day.push(gap);
        } else if at(pair[0]) > night_from {
            night.push(gap);
        }
    }
    assert!(
        day.len() > 50 && night.len() > 20,
        "{} {}",
        day.len(),
        night.len()
    );
    let (d, nt) = (median(day), median(night));
    eprintln!(
        "{n} calls, {total} draws {draws:?}, {} turns, day gap {d:.3} s, night gap {nt:.3} s, \
         {} summary rewrites seen, the killed run kept {} records",
        turns.len(),
        rewrites.len(),
        killed[0]["records"]
    );
    assert!(
        nt > 3.0 * d && nt >= 0.9,
        "day gap {d:.3} s, night gap {nt:.3} s"
    );
    let summary: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert!(summary["night_calls"].as_u64().unwrap() > 20, "{summary}");
    // Calls the soak's end came before were never sent: recorded, but not counted as calls.
    let sent_calls = records.iter().filter(|r| sent(r)).count();
    assert_eq!(summary["calls"].as_u64().unwrap(), sent_calls as u64);
    for m in ["fast", "large"] {
        assert!(
            summary["models"][m]["calls"].as_u64().unwrap() > 50,
            "{summary}"
        );
    }

    // The profile database, locally and in the store, with the seed's fields.
    let profiles: Value =
        serde_json::from_slice(&std::fs::read(soak_dir.join("profiles.json")).unwrap()).unwrap();
    let stored: Value = serde_json::from_slice(
        &std::fs::read(out.join("profiles/host=ci-box/models.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(profiles, stored);
    let per_model = |m: &str| {
        calls
            .iter()
            .filter(|r| r["target"] == m)
            .filter(|r| sent(r))
            .count() as u64
    };
    for m in ["fast", "large"] {
        let p = &profiles[m];
        assert_eq!(p["tests_run"].as_u64().unwrap(), per_model(m), "{p}");
        for field in [
            "model_id",
            "provider",
            "successes",
            "avg_response_time",
            "tool_call_success_rate",
            "tool_calls_explicit",
            "tool_calls_implicit",
            "estimated_size_gb",
            "context_length",
            "scenarios_tested",
            "prompt_categories",
            "memory_mb",
            "output_tps",
            "energy_per_token_j",
        ] {
            assert!(p.get(field).is_some(), "{m} lacks {field}: {p}");
        }
        assert_eq!(p["scenarios_tested"].as_array().unwrap().len(), 7, "{p}");
        assert_eq!(p["prompt_categories"].as_object().unwrap().len(), 5, "{p}");
    }

    // The morning report.
    let report = std::fs::read_to_string(soak_dir.join("final_report.md")).unwrap();
    for part in [
        "## Model rankings",
        "## Capability matrix",
        "## Hardware over time",
        "## Errors",
        "## Recommendations by use case",
        "| fast |",
        "| large |",
    ] {
        assert!(report.contains(part), "{part} missing:\n{report}");
    }
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("soak 'ci-soak':"), "{stdout}");
}

/// Serves a simulator of `kind` with `models` (each taking 150 ms to load) on a free port.
fn serve(
    rt: &tokio::runtime::Runtime,
    kind: llmpulse_sim::ServerKind,
    models: &[&str],
) -> (Arc<llmpulse_sim::SimState>, String) {
    let profiles = models
        .iter()
        .map(|m| {
            let p = llmpulse_sim::SimProfile {
                ttft_ms: 10.0,
                itl_ms: 1.0,
                output_tokens: 8,
                load_ms: 150.0,
                ..llmpulse_sim::SimProfile::default()
            };
            (m.to_string(), p)
        })
        .collect();
    let state = Arc::new(
        llmpulse_sim::SimState::new(llmpulse_sim::SimProfile::default(), profiles, false)
            .with_kind(Some(kind)),
    );
    let addr = rt
        .block_on(llmpulse_sim::server::spawn(
            "127.0.0.1:0".parse().unwrap(),
            state.clone(),
        ))
        .unwrap();
    (state, format!("http://{addr}"))
}

#[test]
fn rotation_unloads_the_last_model_and_loads_the_next_through_the_servers_api() {
    use llmpulse_sim::ServerKind;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ollama, ollama_url) = serve(&rt, ServerKind::Ollama, &["qwen3:8b", "llama3.2:3b"]);
    let (lmstudio, lmstudio_url) = serve(&rt, ServerKind::LmStudio, &["gemma-3-4b"]);
    let dir = Scratch::new("agent-soak-rotation");
    let out = dir.0.join("out");
    let target = |name: &str, provider: &str, url: &str, model: &str| {
        format!(
            "[[targets]]\nname = \"{name}\"\nprovider = \"{provider}\"\nmodel = \"{model}\"\n\
             base_url = \"{url}/v1\"\nmax_tokens = 16\n"
        )
    };
    let config = dir.write(
        "soak.toml",
        &format!(
            "suite = \"builtin:rag-retail-finance\"\noutput = \"{}\"\n{}{}{}\
             [soak]\nname = \"rotation\"\ndir = \"soak\"\nduration = \"10s\"\n\
             rotate_every = [3, 3]\npause = \"0s\"\nsummary_interval = \"1s\"\n\
             weights = {{ prompt_variety = 1, simple_inference = 0, tool_calling = 0, \
             streaming = 0, concurrent_load = 0, large_context = 0, provider_failover = 0 }}\n",
            out.display(),
            target("qwen", "ollama", &ollama_url, "qwen3:8b"),
            target("llama", "ollama", &ollama_url, "llama3.2:3b"),
            target("gemma", "lmstudio", &lmstudio_url, "gemma-3-4b"),
        ),
    );
    // The same soak twice: the second starts from the profiles the first stored.
    for _ in 0..2 {
        let mut child = Command::new(AGENT)
            .current_dir(&dir.0)
            .args(["soak", "--config"])
            .arg(&config)
            .arg("--spool")
            .arg(dir.0.join("spool"))
            // By day whenever the test runs: night mode (22:00–06:00) pauses 30 s between calls.
            .args(["--clock-start", "2026-11-27T12:00:00+00:00"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // While it runs, never more than one model in memory across both servers.
        let mut most = 0;
        while child.try_wait().unwrap().is_none() {
            let loaded = ollama.loaded_models().len() + lmstudio.loaded_models().len();
            most = most.max(loaded);
            std::thread::sleep(Duration::from_millis(5));
        }
        let output = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{log}");
        assert_eq!(most, 1, "two models were loaded at once");
        assert!(
            log.contains("event=\"unload\"") && log.contains("event=\"load\""),
            "{log}"
        );
    }

    // The first calls after each load carry the load time the server reported (150 ms).
    let records = jsonl_under(&out.join("records"));
    for m in ["qwen", "llama", "gemma"] {
        let loads: Vec<f64> = records
            .iter()
            .filter(|r| r["target"] == m)
            .filter_map(|r| r["load_time_sec"].as_f64())
            .collect();
        assert!(!loads.is_empty(), "{m}: no record carries a load time");
        assert!(
            loads.iter().all(|l| (*l - 0.15).abs() < 0.01),
            "{m}: {loads:?}"
        );
    }
    let profiles: Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("soak/profiles.json")).unwrap()).unwrap();
    for m in ["qwen", "llama", "gemma"] {
        // Both soaks' calls: the profile database is merged across soaks of a host.
        let calls = records
            .iter()
            .filter(|r| r["target"] == m)
            .filter(|r| sent(r))
            .count() as u64;
        assert_eq!(profiles[m]["tests_run"].as_u64().unwrap(), calls, "{m}");
        let l = &profiles[m]["load_time_sec"];
        assert!(l["n"].as_u64().unwrap() >= 1, "{profiles}");
        assert!((l["sum"].as_f64().unwrap() / l["n"].as_f64().unwrap() - 0.15).abs() < 0.01);
    }
}

/// The example config soaks its simulated models with no keys and no network: `--calls 4` ends
/// the soak after its first four calls.
#[test]
fn the_example_soaks_simulated_models_with_no_keys() {
    let dir = Scratch::new("agent-soak-example");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/soak.toml");
    let out = Command::new(AGENT)
        .current_dir(&dir.0)
        .args([
            "soak",
            "--config",
            example,
            // Four calls, whatever this machine's speed (the hour-long cap is never reached).
            "--calls",
            "4",
            "--duration",
            "1h",
            "--output",
            "results",
            // By day whenever the test runs: night mode (22:00–06:00) pauses 30 s between calls.
            "--clock-start",
            "2026-11-27T12:00:00+00:00",
        ])
        .arg("--spool")
        .arg(dir.0.join("spool"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("soak 'overnight':"),
        "{stderr}"
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("soak/test_summary.json")).unwrap())
            .unwrap();
    assert!(summary["successes"].as_u64().unwrap() >= 2, "{summary}");
    assert!(dir.0.join("soak/final_report.md").is_file());
    assert!(dir.0.join("results/runs").is_dir());
    let asked: BTreeSet<String> = jsonl_under(&dir.0.join("results/records"))
        .iter()
        .filter(|r| r["target"] != "failover-probe")
        .map(|r| r["question_id"].as_str().unwrap().to_string())
        .collect();
    let indices: Vec<&str> = asked.iter().map(|q| &q[..8]).collect();
    assert_eq!(indices, ["c0000000", "c0000001", "c0000002", "c0000003"]);
}
