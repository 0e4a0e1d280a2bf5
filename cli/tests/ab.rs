//! `llmpulse ab`: two simulated targets with known differences (A answers sooner and keeps more
//! of the context, at three times B's price) asked the same calls in three shuffled rounds: the
//! verdicts name A on quality and on every time, B on cost, the rounds are ordinary runs, and
//! seed 001's files are written.

mod support;

use serde_json::Value;
use support::{BIN, Scratch, ok};

const CONFIG: &str = r#"
suite = "builtin:rag-retail-finance"
concurrency = 8
[[targets]]
name = "model-a"
provider = "sim"
model = "sim-a"
price = { input_per_mtok = 3.0, output_per_mtok = 9.0 }
[targets.sim]
ttft_ms = 20
itl_ms = 1
output_tokens = 40
recall = 0.9
seed = 1
[[targets]]
name = "model-b"
provider = "sim"
model = "sim-b"
price = { input_per_mtok = 1.0, output_per_mtok = 3.0 }
[targets.sim]
ttft_ms = 60
itl_ms = 2
output_tokens = 40
recall = 0.4
seed = 2
"#;

#[test]
fn known_differences_get_their_verdicts_and_the_seed_files_are_written() {
    let dir = Scratch::new("ab");
    let cfg = dir.write("ab.toml", CONFIG);
    let out = dir.0.join("out");
    let said = ok(&std::process::Command::new(BIN)
        .args(["ab", "--quiet", "--narrate", "model-a", "--config"])
        .arg(&cfg)
        .arg("--output")
        .arg(&out)
        .env("XDG_CACHE_HOME", dir.0.join("cache"))
        .output()
        .unwrap());
    assert!(said.contains("3 rounds, 60 paired calls"), "{said}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics_report.json")).unwrap()).unwrap();
    let verdict = |m: &str| {
        report["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["metric"] == m)
            .unwrap()
            .clone()
    };
    for m in ["quality", "latency_sec", "ttft_sec"] {
        let v = verdict(m);
        assert_eq!(v["verdict"], "A better", "{m}: {v}");
        assert_eq!(v["stable"], true, "{m}: {v}");
    }
    // No call failed on either side: no difference in success.
    assert_eq!(verdict("success")["verdict"], "no difference");
    // A's TTFT is 40 ms shorter, and the interval says so.
    let ttft = verdict("ttft_sec");
    let (lo, hi) = (
        ttft["ci95"][0].as_f64().unwrap(),
        ttft["ci95"][1].as_f64().unwrap(),
    );
    assert!(lo < -0.03 && hi < 0.0, "{ttft}");
    // Same tokens at three times the price: A's calls cost three times B's, pair by pair.
    let cost = verdict("cost_usd");
    assert_eq!(cost["verdict"], "B better", "{cost}");
    assert_eq!(cost["pairs"], 60, "{cost}");
    let ratio = cost["a"].as_f64().unwrap() / cost["b"].as_f64().unwrap();
    assert!((ratio - 3.0).abs() < 1e-9, "{cost}");

    for f in [
        "model-a_all_responses.csv",
        "model-b_all_responses.csv",
        "combined_model_responses.csv",
        "metrics.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // The narrator (the simulator echoes the figures it is given) invented no number.
    let analysis = std::fs::read_to_string(out.join("analysis_report.md")).unwrap();
    assert!(
        analysis.starts_with("> Written by a model: target model-a (sim sim-a)"),
        "{analysis}"
    );
    assert!(analysis.contains("numbers in it are there"), "{analysis}");
    let combined = std::fs::read_to_string(out.join("combined_model_responses.csv")).unwrap();
    assert_eq!(combined.lines().count(), 1 + 120);
    // Each round is an ordinary run, and the rounds asked in different orders.
    let runs = report["runs"].as_object().unwrap();
    assert_eq!(runs.len(), 3);
    let order = |run: &str| -> Vec<String> {
        let rows = support::records(&out);
        let mut mine: Vec<&Value> = rows.iter().filter(|r| r["run_id"] == run).collect();
        mine.sort_by(|a, b| a["timestamp"].as_str().cmp(&b["timestamp"].as_str()));
        mine.iter()
            .map(|r| format!("{}/{}", r["target"], r["question_id"]))
            .collect()
    };
    let ids: Vec<&String> = runs.keys().collect();
    assert_ne!(order(ids[0]), order(ids[1]));
}
