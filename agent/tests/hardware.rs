//! `llmpulse-agent run` against llama.cpp's real `llama-server`: every record carries the serving
//! process's memory (at least its model file), the energy fields or `energy_source = "none"` with
//! the reason in the manifest, the host; the telemetry series is stored beside the records; and
//! `select --max-memory` decides on those figures. On a host with an NVIDIA GPU, NVML is read.

mod common;
#[path = "../../cli/tests/support/mod.rs"]
mod support;

use std::process::Command;

use llmpulse_report::select::{self, Criteria};
use serde_json::Value;
use support::{ONE_QUESTION, Scratch, service_url};

const AGENT: &str = env!("CARGO_BIN_EXE_llmpulse-agent");

#[test]
fn records_against_the_real_llama_server_carry_memory_and_energy() {
    let Some(url) = service_url("LLMPULSE_LLAMACPP_URL") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let props: Value = rt.block_on(async {
        support::http()
            .get(url.replace("/v1", "/props"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let model_file = props["model_path"].as_str().unwrap().to_string();
    let file_mb = std::fs::metadata(&model_file).unwrap().len() as f64 / 1_048_576.0;

    let dir = Scratch::new("agent-hardware");
    dir.write("suite.toml", ONE_QUESTION);
    let out = dir.0.join("out");
    let config = dir.write(
        "agent.toml",
        &format!(
            "suite = \"suite.toml\"\nrepetitions = 4\nconcurrency = 1\noutput = \"{}\"\n\
             [agent]\nid = \"ci-box\"\nsample_hz = 20\n\
             electricity_usd_per_kwh = 0.30\nhardware_usd_per_hour = 3.6\n\
             [[targets]]\nname = \"smollm2\"\nprovider = \"llamacpp\"\nmodel = \"smollm2\"\n\
             base_url = \"{url}\"\nmax_tokens = 48\n",
            out.display()
        ),
    );
    let run = Command::new(AGENT)
        .args(["run", "--config"])
        .arg(&config)
        .arg("--spool")
        .arg(dir.0.join("spool"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    // Not a terminal: progress as log lines, without colour codes.
    assert!(stderr.contains("progress done=4 total=4"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    assert!(
        run.status.success(),
        "{stderr}\n{}",
        String::from_utf8_lossy(&run.stdout)
    );

    let manifest_path = support::walk(&out)
        .into_iter()
        .find(|p| p.ends_with("manifest.json"))
        .expect("a manifest");
    let manifest: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let records_path = out.join(
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| {
                f["path"].as_str().unwrap().ends_with(".jsonl")
                    && f["path"].as_str().unwrap().starts_with("records/")
            })
            .unwrap()["path"]
            .as_str()
            .unwrap(),
    );
    let records = common::jsonl(&records_path);
    assert_eq!(records.len(), 4);
    let energy_source = records[0]["energy_source"].as_str().unwrap().to_string();
    for r in &records {
        assert_eq!(r["success"], true, "{r:#}");
        assert_eq!(r["host_id"], "ci-box");
        assert_eq!(r["origin"], "agent:ci-box");
        let mem = r["memory_mb"]
            .as_f64()
            .unwrap_or_else(|| panic!("no memory: {r:#}"));
        assert!(
            mem >= file_mb,
            "{mem} MB measured, the model file alone is {file_mb:.1} MB"
        );
        let source = r["memory_source"].as_str().unwrap();
        assert!(source.starts_with("server_rss"), "{source}");
        assert_eq!(
            r["energy_source"],
            energy_source.as_str(),
            "one source per host"
        );
        // No provider bills a local call: it costs its energy at $0.30/kWh and its time on a
        // $3.60/h machine (alone on it at concurrency 1: its whole latency).
        assert_eq!(r["cost_source"], "energy", "{r:#}");
        let energy_usd = r["energy_j"].as_f64().unwrap_or(0.0) / 3.6e6 * 0.30;
        let hardware_usd = r["latency_sec"].as_f64().unwrap() * 3.6 / 3600.0;
        let cost = r["cost_usd"].as_f64().unwrap();
        // The record's latency is rounded to the microsecond and its cost taken from the
        // unrounded one: allow a microsecond of the machine (seen: a 77 ms call off by 9e-11).
        let rounding = 1e-6 * 3.6 / 3600.0;
        assert!(
            (cost - energy_usd - hardware_usd).abs() < rounding + 1e-6 * cost,
            "cost {cost}, energy {energy_usd} + hardware {hardware_usd}"
        );
        if energy_source == "none" {
            assert!(r["energy_j"].is_null() && r["energy_per_token_j"].is_null());
        } else {
            assert!(r["energy_j"].as_f64().unwrap() > 0.0, "{r:#}");
            assert!(r["energy_per_token_j"].as_f64().unwrap() > 0.0, "{r:#}");
        }
    }
    // The host fingerprint: the server as it describes itself, and why each missing source is
    // missing.
    let host = &manifest["host"];
    assert_eq!(host["host_id"], "ci-box");
    assert!(host["ram_mb"].as_f64().unwrap() > 0.0);
    let server = &host["servers"][0];
    assert_eq!(server["kind"], "llamacpp");
    assert_eq!(server["details"]["model_path"], model_file.as_str());
    let pid = server["pid"].as_u64().expect("the server's pid");
    // The kernel's own peak resident memory of the server (Linux): the measure may not exceed
    // it (threads, children counted twice would), nor fall below the model file.
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        let hwm_mb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .expect("VmHWM")
            / 1024.0;
        for r in &records {
            let mem = r["memory_mb"].as_f64().unwrap();
            assert!(
                mem <= hwm_mb * 1.05,
                "{mem} MB measured, the kernel's peak is {hwm_mb:.1} MB"
            );
        }
    }
    let absent = host["telemetry_absent"].as_array().unwrap();
    if energy_source == "none" {
        assert!(
            absent.iter().any(|a| a["source"] == "nvml")
                && absent.iter().any(|a| a["source"] == "rapl"),
            "{absent:#?}"
        );
        assert!(
            absent
                .iter()
                .all(|a| !a["why"].as_str().unwrap().is_empty())
        );
    }
    // The series: samples of the server's memory, stored beside the records and listed in the
    // manifest.
    let series = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().starts_with("telemetry/"))
        .expect("a telemetry file in the manifest");
    assert!(series["rows"].as_u64().unwrap() >= 2, "{series:#}");
    let samples = common::jsonl(&out.join(series["path"].as_str().unwrap()));
    let rss: Vec<f64> = samples
        .iter()
        .filter_map(|s| s["servers"].as_object()?.values().next()?["rss_mb"].as_f64())
        .collect();
    assert!(
        !rss.is_empty() && rss.iter().all(|m| *m >= file_mb),
        "{rss:?}"
    );
    assert!(
        samples.iter().any(|s| s["in_flight"] == 1),
        "a sample during a call"
    );
    // The server's own /metrics: its gauges over time, and on the last sample what its counters
    // say about the run. Other tests may share this server, so its counts are at least the run's.
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert!(
        samples
            .iter()
            .any(|s| s["server_gauges"][port]["llamacpp:requests_processing"].is_number()),
        "no gauges of the server in {samples:#?}"
    );
    let last = samples.last().unwrap();
    let run = &last["server_run"][port];
    assert_eq!(run["url"], url.replace("/v1", "/metrics"), "{last:#}");
    let tokens: f64 = records
        .iter()
        .map(|r| r["response_tokens"].as_f64().unwrap())
        .sum();
    let named = &run["window"]["named"];
    assert!(
        named["generation_tokens"].as_f64().unwrap() >= tokens,
        "{named:#} against {tokens} tokens in the records"
    );
    assert!(named["decode_tps"].as_f64().unwrap() > 0.0, "{named:#}");

    // select --max-memory decides on the measured memory.
    let measured = records
        .iter()
        .map(|r| r["memory_mb"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let (agg, _) = common::aggregate(&out);
    let choose = |max: f64| {
        select::select(
            &agg,
            &Criteria {
                weights: select::weights(Some("memory_constrained"), None).unwrap(),
                max_memory_mb: Some(max),
                min_calls: 1,
                min_task_calls: 1,
                ..Criteria::default()
            },
        )
    };
    let ok = choose(measured * 2.0).expect("selected under a generous limit");
    assert_eq!(ok.selected_model, "smollm2");
    let refused = choose(file_mb / 2.0).unwrap_err();
    assert!(
        refused
            .excluded
            .iter()
            .any(|e| e.reason.contains("above the")),
        "{refused:?}"
    );
}

/// NVML on a GPU host: memory, power and the energy counter read, the counter rising. Skipped
/// (and says so) where there is no NVIDIA driver.
#[test]
fn nvml_reads_the_gpu_where_there_is_one() {
    let mut sources = llmpulse_agent::telemetry::sources::Sources::open(
        &[],
        std::time::Duration::from_millis(100),
    );
    if !sources.has_gpu() {
        let why = sources
            .absent
            .iter()
            .find(|a| a.source == "nvml")
            .map(|a| a.why.clone())
            .unwrap_or_default();
        eprintln!("skipped: no GPU ({why})");
        return;
    }
    let mut a = llmpulse_agent::telemetry::Sample::default();
    sources.read(&mut a);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut b = llmpulse_agent::telemetry::Sample::default();
    sources.read(&mut b);
    eprintln!("GPU sample: {b:?}");
    assert!(b.gpu_mem_mb.unwrap() > 0.0);
    assert!(b.gpu_power_w.unwrap() > 0.0);
    assert!(b.gpu_temp_c.is_some());
    assert!(
        b.gpu_energy_j.unwrap() > a.gpu_energy_j.unwrap(),
        "the energy counter rises"
    );
    assert!(!sources.gpus().is_empty());
}

/// `llmpulse-agent run` against the real vLLM: every call timed by the kernel, the memory of
/// the server's whole process tree (the engine core runs in a child process), and on the
/// series' last sample vLLM's own histograms over exactly the run: as many requests and first
/// tokens as the run made calls, queue time included.
#[test]
fn a_run_against_the_real_vllm_holds_its_own_metrics() {
    let Some(url) = service_url("LLMPULSE_VLLM_URL") else {
        return;
    };
    let dir = Scratch::new("agent-vllm");
    dir.write("suite.toml", ONE_QUESTION);
    let out = dir.0.join("out");
    let config = dir.write(
        "agent.toml",
        &format!(
            "suite = \"suite.toml\"\nrepetitions = 4\nconcurrency = 2\noutput = \"{}\"\n\
             [agent]\nid = \"ci-box\"\nsample_hz = 10\n\
             [[targets]]\nname = \"smollm2-vllm\"\nprovider = \"vllm\"\nmodel = \"smollm2-vllm\"\n\
             base_url = \"{url}\"\nmax_tokens = 24\n",
            out.display()
        ),
    );
    let run = Command::new(AGENT)
        .args(["run", "--config"])
        .arg(&config)
        .arg("--spool")
        .arg(dir.0.join("spool"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let files = support::walk(&out);
    let read = |prefix: &str| {
        let path = files
            .iter()
            .find(|p| {
                p.strip_prefix(&out).is_ok_and(|r| {
                    r.starts_with(prefix) && r.extension().is_some_and(|e| e == "jsonl")
                })
            })
            .unwrap_or_else(|| panic!("no {prefix} file in {files:?}"));
        common::jsonl(path)
    };
    let records = read("records");
    assert_eq!(records.len(), 4);
    for r in &records {
        assert_eq!(r["success"], true, "{r:#}");
        assert_eq!(r["clock_source"], "kernel", "{r:#}");
        let mem = r["memory_mb"].as_f64().unwrap_or(0.0);
        // The tree holds the weights, the engine and torch: well over a gigabyte on CPU.
        assert!(mem > 1_000.0, "{mem} MB over vLLM's process tree: {r:#}");
    }
    let samples = read("telemetry");
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert!(
        samples.iter().any(|s| {
            s["server_gauges"][port]
                .as_object()
                .is_some_and(|g| g.keys().any(|k| k.starts_with("vllm:num_requests_waiting")))
        }),
        "no vLLM gauges over time"
    );
    let run = &samples.last().unwrap()["server_run"][port];
    let named = &run["window"]["named"];
    assert_eq!(named["requests"], 4.0, "{run:#}");
    assert_eq!(named["ttft_sec"]["count"], 4.0, "{named:#}");
    assert_eq!(named["queue_sec"]["count"], 4.0, "{named:#}");
    // The server's first token comes before the client's: the client's TTFT adds the network,
    // HTTP and the client itself.
    let client_ttft_mean = records
        .iter()
        .map(|r| r["ttft_sec"].as_f64().unwrap())
        .sum::<f64>()
        / 4.0;
    let server_ttft_mean = named["ttft_sec"]["mean"].as_f64().unwrap();
    assert!(
        server_ttft_mean <= client_ttft_mean,
        "server {server_ttft_mean} s, client {client_ttft_mean} s"
    );
    let generated: f64 = records
        .iter()
        .map(|r| r["response_tokens"].as_f64().unwrap())
        .sum();
    assert_eq!(
        named["generation_tokens"].as_f64(),
        Some(generated),
        "{named:#}"
    );
}
