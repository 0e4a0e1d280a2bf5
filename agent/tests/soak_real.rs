//! `llmpulse-agent soak` on the two real servers in CI (llama.cpp's `llama-server` and vLLM)
//! as two models: what the compressed simulated soak (`soak.rs`) checks, against real answers.

mod common;
#[path = "../../cli/tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use support::Scratch;

const AGENT: &str = env!("CARGO_BIN_EXE_llmpulse-agent");

/// A soak of the two real servers in CI, llama.cpp's `llama-server` and vLLM, as two models:
/// twelve calls (about 70 s here), turns every three calls, night mode entered by the clock flag
/// 10 s in. Every scenario is drawn and answered by real servers, both models take turns, and
/// the profile database and the morning report are filled from their answers. The soak is sized
/// in calls, not time, so a slower machine makes the same calls: seed 38's twelve draw all seven
/// scenarios, six calls per model and a large context for each. A 90 s soak of seed 89 had drawn
/// six scenarios on a slower CI machine (a concurrent-load burst of two takes the next call's
/// index, where the seventh would have been drawn).
#[test]
fn a_soak_of_the_two_real_servers() {
    let (Some(llama), Some(vllm)) = (
        support::service_url("LLMPULSE_LLAMACPP_URL"),
        support::service_url("LLMPULSE_VLLM_URL"),
    ) else {
        return;
    };
    let dir = Scratch::new("agent-soak-real");
    let out = dir.0.join("out");
    let config = dir.write(
        "soak.toml",
        &format!(
            r#"suite = "builtin:rag-retail-finance"
output = "{}"
timeout_sec = 60
[agent]
id = "ci-box"
sample_hz = 5

[[targets]]
name = "llama"
provider = "llamacpp"
base_url = "{llama}"
model = "smollm2"
max_tokens = 24

[[targets]]
name = "vllm"
provider = "vllm"
base_url = "{vllm}"
model = "smollm2-vllm"
max_tokens = 24

[soak]
name = "real"
dir = "soak"
calls = 12
summary_interval = "15s"
rotate_every = [3, 3]
pause = "100ms"
burst = 2
seed = 38

[soak.weights]
prompt_variety = 1.0
simple_inference = 1.0
tool_calling = 1.0
streaming = 1.0
concurrent_load = 1.0
large_context = 1.0
provider_failover = 1.0

[soak.night]
start = "22:00"
end = "06:00"
pause = "500ms"
burst = 2
"#,
            out.display()
        ),
    );
    let run = Command::new(AGENT)
        .current_dir(&dir.0)
        .args(["soak", "--config"])
        .arg(&config)
        .arg("--spool")
        .arg(dir.0.join("spool"))
        // Night begins 10 s in.
        .args(["--clock-start", "2026-11-27T21:59:50+00:00"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // Calls the soak made (not its failover probe, not calls skipped by its plan).
    let records: Vec<Value> = support::walk(&out.join("records"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .flat_map(|p| common::jsonl(&p))
        .filter(|r| {
            r["target"] != "failover-probe"
                && !r["error_kind"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("skipped_"))
        })
        .collect();
    let scenario_of = |r: &Value| {
        r["question_id"]
            .as_str()
            .unwrap()
            .split('-')
            .nth(1)
            .unwrap()
            .to_string()
    };
    // Every scenario drawn, and each answered by a real server at least once.
    let answered: BTreeSet<String> = records
        .iter()
        .filter(|r| r["success"] == true)
        .map(scenario_of)
        .collect();
    let drawn: BTreeSet<String> = records.iter().map(scenario_of).collect();
    assert_eq!(drawn.len(), 7, "{drawn:?}");
    assert!(
        answered.len() >= 6,
        "answered {answered:?} of {drawn:?}: {:#?}",
        records
            .iter()
            .filter(|r| r["success"] == false)
            .map(|r| (&r["target"], &r["error_kind"], &r["error_message"]))
            .collect::<Vec<_>>()
    );
    for m in ["llama", "vllm"] {
        let ok = records
            .iter()
            .filter(|r| r["target"] == m && r["success"] == true)
            .count();
        assert!(ok >= 5, "{m}: {ok} answers");
    }
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("soak/test_summary.json")).unwrap())
            .unwrap();
    assert!(summary["rotations"].as_u64().unwrap() >= 2, "{summary}");
    assert!(summary["night_calls"].as_u64().unwrap() > 0, "{summary}");
    let profiles: Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("soak/profiles.json")).unwrap()).unwrap();
    for m in ["llama", "vllm"] {
        let p = &profiles[m];
        assert!(p["successes"].as_u64().unwrap() >= 5, "{p}");
        assert!(p["avg_response_time"].as_f64().unwrap() > 0.0, "{p}");
        // The context length each server reports, not the soak's fallback.
        assert_eq!(p["context_length"], 2048, "{p}");
        // Means are kept as sums and counts.
        let mem = p["memory_mb"]["sum"].as_f64().unwrap() / p["memory_mb"]["n"].as_f64().unwrap();
        assert!(mem > 50.0, "{p}");
        // The large context fit the window: the server answered it.
        assert!(
            p["scenario_results"]["large_context"]["success"].as_u64() > Some(0),
            "{p}"
        );
    }
    let report = std::fs::read_to_string(dir.0.join("soak/final_report.md")).unwrap();
    assert!(
        report.contains("| llama |") && report.contains("| vllm |"),
        "{report}"
    );
}
