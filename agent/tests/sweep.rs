//! `llmpulse-agent sweep` on llama.cpp's real `llama-server`: one server per configuration, the
//! point on every record, a point whose server cannot start recorded as `server_start_failed`
//! (the sweep goes on), the report's configuration views, and `select` answering with a
//! configuration. `--plan` works on any machine.

mod common;
#[path = "../../cli/tests/support/mod.rs"]
mod support;

use std::process::Command;

use llmpulse_report::select::{self, Criteria};
use support::{ONE_QUESTION, Scratch, service_url};

const AGENT: &str = env!("CARGO_BIN_EXE_llmpulse-agent");

/// `sweep --plan` over one of the examples, with the variables that locate servers and models
/// unset: a plan needs neither. Returns what it printed.
fn plan_anywhere(example: &str, unset: &[&str]) -> String {
    let mut cmd = Command::new(AGENT);
    cmd.args(["sweep", "--plan", "--config"]).arg(format!(
        "{}/../examples/{example}",
        env!("CARGO_MANIFEST_DIR")
    ));
    for var in unset {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_example_plans_anywhere() {
    let text = plan_anywhere("sweep.toml", &["LLAMA_SERVER", "LLMPULSE_MODELS"]);
    assert_eq!(text.matches("\n  run ").count(), 6, "{text}");
    assert_eq!(text.matches("\n  skip ").count(), 2, "{text}");
    assert!(
        text.contains("needs flash attention for a quantized V cache"),
        "{text}"
    );
}

#[test]
fn the_vllm_example_plans_anywhere() {
    let text = plan_anywhere("sweep-vllm.toml", &["VLLM_PYTHON", "LLMPULSE_MODELS"]);
    assert_eq!(text.matches("\n  run ").count(), 2, "{text}");
    assert!(
        text.contains("smollm2-vllm-bf16-kvauto-c2048-seqs1-eager"),
        "{text}"
    );
    assert!(
        text.contains("smollm2-vllm-bf16-kvauto-c2048-seqs4-eager"),
        "{text}"
    );
}

#[test]
fn a_bad_sweep_names_line_and_field() {
    let dir = Scratch::new("sweep-bad");
    dir.write("suite.toml", ONE_QUESTION);
    let cfg = dir.write(
        "sweep.toml",
        "suite = \"suite.toml\"\n[[targets]]\nname = \"m\"\nprovider = \"llamacpp\"\nmodel = \"m\"\n\
         [sweep]\nmodels = [{ file = \"a.gguf\" }]\nkv_cache_type = [\"q3\"]\n",
    );
    let out = Command::new(AGENT)
        .args(["sweep", "--plan", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("sweep.toml:8: sweep.kv_cache_type: 'q3' is not one of"),
        "{e}"
    );
}

#[test]
fn sweeps_real_llama_server_configurations() {
    let (Some(_), Ok(binary), Ok(models)) = (
        service_url("LLMPULSE_LLAMACPP_URL"),
        std::env::var("LLAMA_SERVER"),
        std::env::var("LLMPULSE_MODELS"),
    ) else {
        return;
    };
    let dir = Scratch::new("sweep-real");
    dir.write("suite.toml", ONE_QUESTION);
    // Not a model: the server refuses it, and that point is a record, not a crash.
    dir.write("broken.Q4_0.gguf", "this is not a GGUF file\n");
    let out = dir.0.join("out");
    let cfg = dir.write(
        "sweep.toml",
        &format!(
            "suite = \"suite.toml\"\nrepetitions = 3\nconcurrency = 1\noutput = \"{}\"\n\
             [[targets]]\nname = \"smol\"\nprovider = \"llamacpp\"\nmodel = \"smol\"\nmax_tokens = 24\n\
             [sweep]\nname = \"ci\"\nbinary = \"{binary}\"\n\
             models = [{{ file = \"{models}/SmolLM2-135M-Instruct.Q4_1.gguf\" }}, \
                       {{ file = \"{models}/SmolLM2-135M-Instruct.Q8_0.gguf\" }}, \
                       {{ file = \"broken.Q4_0.gguf\" }}]\n\
             flash_attn = [\"on\", \"off\"]\nctx_size = [1024]\nargs = [\"-t\", \"1\"]\nstart_timeout = \"60s\"\n",
            out.display()
        ),
    );
    let run = Command::new(AGENT)
        .args(["sweep", "--config"])
        .arg(&cfg)
        .arg("--spool")
        .arg(dir.0.join("spool"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("6 points run, 2 did not start"), "{stdout}");

    let mut records = Vec::new();
    for p in support::walk(&out) {
        let s = p.display().to_string();
        if s.contains("/records/") && s.ends_with(".jsonl") {
            records.extend(common::jsonl(&p));
        }
    }
    assert_eq!(
        records.len(),
        6 * 3,
        "3 calls per point, failed points included"
    );
    for r in &records {
        assert_eq!(r["server"], "llamacpp");
        assert_eq!(r["ctx_size"], 1024);
        assert!(r["flash_attn"] == "on" || r["flash_attn"] == "off");
        if r["target"].as_str().unwrap().starts_with("ci-q4_0") {
            assert_eq!(r["error_kind"], "server_start_failed", "{r:#}");
            assert_eq!(r["success"], false);
            assert!(
                r["error_message"].as_str().unwrap().contains("exited"),
                "{r:#}"
            );
        } else {
            assert_eq!(r["success"], true, "{r:#}");
            // What the server says it loaded, not only what the file name says.
            let q = r["quantization"].as_str().unwrap();
            assert!(q == "Q4_1" || q == "Q8_0", "{q}");
            assert!(r["load_time_sec"].as_f64().unwrap() > 0.0);
            assert!(r["server_version"].is_string());
            assert!(r["memory_mb"].as_f64().unwrap() > 90.0);
        }
    }

    let (agg, stats) = common::aggregate(&out);
    // The report: both flash-attention pairs measured, a Pareto front among the configurations.
    let report = llmpulse_report::figures::compute(
        &agg,
        &stats,
        &llmpulse_report::figures::Context {
            source: "sweep".into(),
            since: None,
            until: None,
            campaign: None,
            now: chrono::Utc::now(),
            campaigns: &[],
            watch: None,
        },
    );
    assert_eq!(
        report.flash_attention.len(),
        2,
        "{:#?}",
        report.flash_attention
    );
    assert!(
        report
            .flash_attention
            .iter()
            .all(|f| f.output_speed.is_some())
    );
    assert!(report.targets.iter().any(|t| t.pareto));
    let html = llmpulse_report::html::page(&report);
    assert!(html.contains("Server configurations") && html.contains("Flash attention"));

    // select answers with a configuration.
    let choice = select::select(
        &agg,
        &Criteria {
            weights: select::weights(Some("speed_critical"), None).unwrap(),
            max_memory_mb: Some(100_000.0),
            min_calls: 1,
            min_task_calls: 1,
            ..Criteria::default()
        },
    )
    .unwrap();
    let c = &choice.recommended_config;
    assert!(
        c.quantization
            .as_deref()
            .is_some_and(|q| q == "Q4_1" || q == "Q8_0"),
        "{c:?}"
    );
    assert!(
        c.flash_attention.is_some() && c.ctx_size == Some(1024),
        "{c:?}"
    );
    assert!(
        !c.target.starts_with("ci-q4_0"),
        "a point that never started is not chosen"
    );
}

/// The processes whose command line holds `marker` (Linux).
fn processes_with(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmd)
                .contains(marker)
                .then_some(pid)
        })
        .collect()
}

/// `kill -9` of the agent mid-sweep: the point's server goes too (it would hold its memory and
/// port for ever), and the finished calls wait in the spool for `llmpulse upload`.
#[test]
fn a_killed_sweep_leaves_no_server_behind() {
    let (Some(_), Ok(binary), Ok(models)) = (
        service_url("LLMPULSE_LLAMACPP_URL"),
        std::env::var("LLAMA_SERVER"),
        std::env::var("LLMPULSE_MODELS"),
    ) else {
        return;
    };
    let dir = Scratch::new("sweep-kill");
    dir.write("suite.toml", ONE_QUESTION);
    let marker = format!("killed-sweep-{}", std::process::id());
    let cfg = dir.write(
        "sweep.toml",
        &format!(
            "suite = \"suite.toml\"\nrepetitions = 500\nconcurrency = 1\noutput = \"{}\"\n\
             [[targets]]\nname = \"smol\"\nprovider = \"llamacpp\"\nmodel = \"smol\"\nmax_tokens = 16\n\
             [sweep]\nname = \"kill\"\nbinary = \"{binary}\"\n\
             models = [{{ file = \"{models}/SmolLM2-135M-Instruct.Q4_1.gguf\" }}]\n\
             args = [\"-t\", \"1\", \"--alias\", \"{marker}\"]\n",
            dir.0.join("out").display()
        ),
    );
    let mut agent = Command::new(AGENT)
        .args(["sweep", "--config"])
        .arg(&cfg)
        .arg("--spool")
        .arg(dir.0.join("spool"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // Wait for the server and a few finished calls.
    loop {
        let spool = dir.0.join("spool");
        let journal = (if spool.exists() {
            support::walk(&spool)
        } else {
            Vec::new()
        })
        .into_iter()
        .find(|p| {
            p.extension().is_some_and(|e| e == "jsonl")
                && p.display().to_string().contains("/records/")
        });
        let calls = journal.map_or(0, |p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .count()
        });
        if !processes_with(&marker).is_empty() && calls >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep did not get going"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    unsafe { libc::kill(agent.id() as i32, libc::SIGKILL) };
    agent.wait().unwrap();
    // llama-server exits within a second of SIGTERM on a quiet machine; the bound leaves room
    // for a loaded CI machine, and a failure says what the survivor was doing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left = processes_with(&marker);
        if left.is_empty() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let states: Vec<String> = left
                .iter()
                .map(|pid| {
                    let status =
                        std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                    let keep = |l: &&str| {
                        ["State:", "PPid:", "SigPnd:", "ShdPnd:"]
                            .iter()
                            .any(|k| l.starts_with(k))
                    };
                    format!(
                        "{pid}: {}",
                        status.lines().filter(keep).collect::<Vec<_>>().join(", ")
                    )
                })
                .collect();
            panic!("the point's server outlived the agent by 30 s: {states:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Two vLLM points that differ only in `--max-num-seqs` (1 and 4), four calls at once against
/// each, on the real vLLM from PyPI: each point's server reports its version, every record says
/// which point it ran on, and with one sequence at a time the four calls queue inside the server
/// (its own queue-time histogram in the telemetry), so their TTFT is longer than with four.
#[test]
fn sweeps_two_real_vllm_points() {
    let (Some(python), Some(model)) = (
        service_url("LLMPULSE_VLLM_PYTHON"),
        service_url("LLMPULSE_VLLM_MODEL"),
    ) else {
        return;
    };
    let dir = Scratch::new("sweep-vllm");
    dir.write("suite.toml", ONE_QUESTION);
    let out = dir.0.join("out");
    let cfg = dir.write(
        "sweep.toml",
        &format!(
            "suite = \"suite.toml\"\nrepetitions = 8\nconcurrency = 4\noutput = \"{}\"\n\
             [[targets]]\nname = \"smol\"\nprovider = \"vllm\"\nmodel = \"smol-vllm\"\n\
             max_tokens = 24\ntemperature = 0\n\
             [sweep]\nname = \"ci\"\nlauncher = \"vllm\"\nbinary = \"{python}\"\n\
             models = [{{ file = \"{model}\", quantization = \"BF16\" }}]\n\
             max_model_len = [1024]\nmax_num_seqs = [1, 4]\nenforce_eager = [true]\n\
             start_timeout = \"300s\"\n\
             env = {{ HF_HUB_OFFLINE = \"1\", VLLM_CPU_KVCACHE_SPACE = \"1\", VLLM_NO_USAGE_STATS = \"1\" }}\n",
            out.display()
        ),
    );
    let run = Command::new(AGENT)
        .args(["sweep", "--config"])
        .arg(&cfg)
        .arg("--spool")
        .arg(dir.0.join("spool"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.contains("2 points run, 0 did not start"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (mut records, mut telemetry) = (Vec::new(), Vec::new());
    for p in support::walk(&out) {
        let s = p.display().to_string();
        if s.contains("/records/") && s.ends_with(".jsonl") {
            records.extend(common::jsonl(&p));
        } else if s.contains("/telemetry/") && s.ends_with(".jsonl") {
            telemetry.push(common::jsonl(&p));
        }
    }
    assert_eq!(records.len(), 16);
    let mut ttft = std::collections::BTreeMap::<u64, Vec<f64>>::new();
    for r in &records {
        assert_eq!(r["success"], true, "{r:#}");
        assert_eq!(r["server"], "vllm");
        assert!(r["server_version"].is_string(), "{r:#}");
        assert_eq!(r["ctx_size"], 1024);
        assert_eq!(r["quantization"], "BF16");
        assert!(
            r["flash_attn"].is_null() && r["gpu_layers"].is_null(),
            "{r:#}"
        );
        let seqs = r["max_num_seqs"].as_u64().unwrap();
        assert!(
            r["target"]
                .as_str()
                .unwrap()
                .contains(&format!("-seqs{seqs}-eager")),
            "{r:#}"
        );
        ttft.entry(seqs)
            .or_default()
            .push(r["ttft_sec"].as_f64().unwrap());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[3] + v[4]) / 2.0
    };
    let (one, four) = (
        median(ttft.get_mut(&1).unwrap()),
        median(ttft.get_mut(&4).unwrap()),
    );
    assert!(
        one > four,
        "TTFT p50 with 1 sequence {one} s, with 4 {four} s"
    );
    // vLLM's own queue time, from its /metrics over each point's run: calls waited with one
    // sequence at a time.
    let queued: Vec<f64> = telemetry
        .iter()
        .filter_map(|series| {
            let run = series.last()?["server_run"]
                .as_object()?
                .values()
                .next()?
                .clone();
            run["window"]["named"]["queue_sec"]["mean"].as_f64()
        })
        .collect();
    assert_eq!(queued.len(), 2, "a queue time per point");
    // The manifests carry each target's server account, and the report reads it: with one
    // sequence at a time the server's own queue time is longer, and the report says so.
    let (agg, stats) = common::aggregate(&out);
    let report = llmpulse_report::figures::compute(
        &agg,
        &stats,
        &llmpulse_report::figures::Context {
            source: "sweep".into(),
            since: None,
            until: None,
            campaign: None,
            now: chrono::Utc::now(),
            campaigns: &[],
            watch: None,
        },
    );
    let queue = |seqs: &str| {
        let t = report
            .targets
            .iter()
            .find(|t| t.target.contains(seqs))
            .unwrap_or_else(|| panic!("no {seqs} target"));
        let s = t
            .server_timing
            .as_ref()
            .expect("server timing from the manifests");
        assert_eq!(s.server_requests, Some(8.0), "{s:?}");
        s.server_queue_sec_mean.unwrap()
    };
    let (q1, q4) = (queue("-seqs1-"), queue("-seqs4-"));
    assert!(q1 > q4, "queue with 1 sequence {q1} s, with 4 {q4} s");
    let lines = llmpulse_report::text::server_timing_lines(&report);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("**Server queue, `ci-") && l.contains("-seqs1-")),
        "{lines:#?}"
    );
}
