//! `llmpulse generate` with scripted simulated models (examples/generate.toml): a malformed
//! generator reply is counted as invalid, not a crash; a case the validator scores low goes back
//! to the generator with the reasons; the kept cases make a suite `llmpulse run` accepts, graded
//! by the scorers their kinds name; every generator and validator call is a record.

mod support;

use std::path::Path;

use support::{BIN, Scratch, Sim, ok, records, run_records, target};

#[test]
fn cases_are_generated_validated_regenerated_and_become_a_suite() {
    let dir = Scratch::new("generate");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/generate.toml");
    let out = dir.0.join("gen");
    let said = ok(&std::process::Command::new(BIN)
        .args(["generate", "--config"])
        .arg(&example)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap());
    assert!(
        said.contains("4 cases asked of writer: 6 generator calls, 1 invalid, 1 rejected, 4 kept"),
        "{said}"
    );
    let rejected = std::fs::read_to_string(out.join("rejected_tests.csv")).unwrap();
    assert!(rejected.contains("the prompt is too vague"), "{rejected}");
    assert!(
        rejected.contains("invalid,the arguments are not JSON"),
        "{rejected}"
    );
    let validated = std::fs::read_to_string(out.join("validated_tests.csv")).unwrap();
    assert_eq!(validated.lines().count(), 1 + 4);
    // The regenerated case-02 is the better one.
    assert!(
        validated.contains("My parcel is three days late"),
        "{validated}"
    );
    let initial = std::fs::read_to_string(out.join("initial_tests.csv")).unwrap();
    assert_eq!(initial.lines().count(), 1 + 6);

    // Every call is a record: 6 generator calls, 5 validations (the invalid reply is not
    // validated).
    let calls = records(&out);
    let role = |r: &str| calls.iter().filter(|c| c["role"] == r).count();
    assert_eq!((role("generator"), role("validator")), (6, 5));

    // The suite runs as it is, graded by the scorers each kind names.
    let sim = Sim::start(&["--ttft-ms", "1", "--itl-ms", "0", "--output-tokens", "20"]);
    let run = Scratch::new("generate-run");
    let cfg = format!(
        "suite = \"{}\"\n{}",
        out.join("generated_suite.toml").display(),
        target("t", &sim.base_url, "")
    );
    let rows = run_records(&run, &cfg, &[]);
    assert_eq!(rows.len(), 4);
    for r in &rows {
        let scores = r["scores"].as_object().unwrap();
        if r["task"] == "structured_output" {
            assert!(
                scores.contains_key("field_accuracy") && scores.contains_key("schema_valid"),
                "{r}"
            );
        } else {
            assert!(
                scores.contains_key("bleu") && scores.contains_key("task_completion"),
                "{r}"
            );
        }
    }
}

/// The generator is asked with the target's retry policy (seed 001's backoff with jitter): a
/// model that always answers 429 is retried, each attempt counted, and the case is invalid.
#[test]
fn a_rate_limited_generator_is_retried_and_its_cases_counted_invalid() {
    let dir = Scratch::new("generate-429");
    let cfg = dir.write(
        "gen.toml",
        r#"
[generate]
generator = "busy"
count = 1
max_rounds = 0
[[targets]]
name = "busy"
provider = "sim"
model = "sim-busy"
retry_max_wait_sec = 1
[targets.sim]
fault_429 = 1.0
retry_after_sec = 0.05
"#,
    );
    let out = dir.0.join("gen");
    let said = ok(&std::process::Command::new(BIN)
        .args(["generate", "--config"])
        .arg(&cfg)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap());
    assert!(
        said.contains("1 generator calls, 1 invalid, 0 rejected, 0 kept"),
        "{said}"
    );
    let calls = records(&out);
    assert_eq!(calls.len(), 1);
    assert!(calls[0]["attempts"].as_u64().unwrap() > 1, "{}", calls[0]);
    assert_eq!(calls[0]["rate_limited_count"], calls[0]["attempts"]);
    assert_eq!(calls[0]["error_kind"], "rate_limited");
}
