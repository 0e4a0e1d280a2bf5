//! Grading end to end: the bundled suites run against the simulator give every answered call
//! the scores its questions name, and `llmpulse rescore` grades stored answers again, without
//! calling any model, into new runs that name their source.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{BIN, Scratch, Sim, ok, records, run_records, target, walk};

fn suite(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../suites/{name}.toml"))
        .display()
        .to_string()
}

fn config(suite_path: &str, base_url: &str) -> String {
    format!("suite = \"{suite_path}\"\n{}", target("t", base_url, ""))
}

#[test]
fn every_bundled_suite_grades_each_answer_with_its_scorers() {
    let sim = Sim::start(&["--ttft-ms", "1", "--itl-ms", "0", "--output-tokens", "40"]);
    let expect: [(&str, &[&str]); 5] = [
        (
            "conversation",
            &["bleu", "clarity", "relevance", "rougeL", "task_completion"],
        ),
        (
            "creativity",
            &["distinct1", "distinct2", "instructions_followed"],
        ),
        ("knowledge", &["answer_correct"]),
        (
            "structured",
            &["field_accuracy", "json_valid", "schema_valid"],
        ),
        (
            "tool-implicit",
            &["tool_arguments", "tool_call_f1", "tool_call_valid"],
        ),
    ];
    for (name, scorers) in expect {
        let dir = Scratch::new(&format!("grading-{name}"));
        let rows = run_records(&dir, &config(&suite(name), &sim.base_url), &[]);
        assert!(rows.len() >= 20, "{name}: {} questions", rows.len());
        for r in &rows {
            assert_eq!(r["success"], true, "{r}");
            let scores = r["scores"]
                .as_object()
                .unwrap_or_else(|| panic!("{name}: {r}"));
            let mut names: Vec<&str> = scores.keys().map(String::as_str).collect();
            names.sort();
            assert_eq!(names, scorers, "{name}");
            // quality_score is the mean of the scores mapped to [0, 1].
            let mapped: Vec<f64> = scores
                .iter()
                .map(|(k, v)| {
                    let v = v.as_f64().unwrap();
                    match k.as_str() {
                        "bleu" | "chrf" => v / 100.0,
                        _ => v,
                    }
                })
                .collect();
            let mean = mapped.iter().sum::<f64>() / mapped.len() as f64;
            assert!(
                (r["quality_score"].as_f64().unwrap() - mean).abs() < 1e-5,
                "{r}"
            );
        }
        if name == "tool-implicit" {
            assert!(rows.iter().all(|r| r["tool_prompt"] == "implicit"));
        }
        if name == "structured" {
            // The simulator's answers (prose, or a generic JSON object) meet none of the schemas.
            assert!(rows.iter().all(|r| r["scores"]["schema_valid"] == 0.0));
        }
    }
}

fn rescore(from: &Path, to: &Path, suites: &[&str]) -> String {
    let mut cmd = Command::new(BIN);
    cmd.arg("rescore")
        .arg("--from")
        .arg(from)
        .arg("--to")
        .arg(to);
    for s in suites {
        cmd.args(["--suite", s]);
    }
    ok(&cmd.output().unwrap())
}

#[test]
fn rescore_grades_stored_answers_again_into_a_linked_run() {
    let sim = Sim::start(&["--ttft-ms", "1", "--itl-ms", "0", "--output-tokens", "40"]);
    let dir = Scratch::new("rescore");
    let original = suite("conversation");
    let rows = run_records(&dir, &config(&original, &sim.base_url), &[]);
    let out = dir.0.join("out");
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = walk(&out)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    let calls_before = sim.log().len();

    // The same suite: the same scores, in a new run that names its source.
    let same = dir.0.join("same");
    let said = rescore(&out, &same, &[&original]);
    assert!(
        said.contains("21 graded again (0 scores changed)"),
        "{said}"
    );
    let again = records(&same);
    assert_eq!(again.len(), rows.len());
    let run_id = rows[0]["run_id"].as_str().unwrap();
    for (a, b) in rows.iter().zip(&again) {
        assert_eq!(b["run_id"], format!("{run_id}-rescored"));
        assert_eq!(a["scores"], b["scores"]);
        assert_eq!(a["latency_sec"], b["latency_sec"]);
        assert_eq!(a["answer"], b["answer"]);
    }
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(same.join(format!("runs/{run_id}-rescored/manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["rescored_from"], run_id);
    assert!(manifest["scorers_version"].is_string());

    // A suite whose golden replies are the answers themselves: BLEU 100 for every record.
    let text = std::fs::read_to_string(&original).unwrap();
    let mut edited = String::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("id = ") {
            current = id.trim_matches('"').to_string();
        }
        if line.starts_with("reference = ") {
            let answer = rows
                .iter()
                .find(|r| r["question_id"] == current.as_str())
                .and_then(|r| r["answer"].as_str())
                .unwrap();
            edited.push_str(&format!("reference = {}\n", Value::from(answer)));
        } else {
            edited.push_str(line);
            edited.push('\n');
        }
    }
    let edited_path = dir.write("conversation-edited.toml", &edited);
    let regraded = dir.0.join("regraded");
    let said = rescore(&out, &regraded, &[edited_path.to_str().unwrap()]);
    assert!(
        said.contains("21 graded again (21 scores changed)"),
        "{said}"
    );
    for r in records(&regraded) {
        assert!(
            (r["scores"]["bleu"].as_f64().unwrap() - 100.0).abs() < 1e-6,
            "{r}"
        );
        assert_eq!(r["scores"]["relevance"], 1.0);
    }

    // No model was called, and the original run is byte for byte what it was.
    assert_eq!(sim.log().len(), calls_before);
    for (p, b) in before {
        assert_eq!(std::fs::read(&p).unwrap(), b, "{}", p.display());
    }
    // Rescoring into the source itself is refused: reports would count each call twice.
    let refused = Command::new(BIN)
        .arg("rescore")
        .arg("--from")
        .arg(&out)
        .arg("--to")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--to must differ from --from"));
    // However it is written.
    let refused = Command::new(BIN)
        .current_dir(&dir.0)
        .args(["rescore", "--from", "out", "--to", "./out/"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--to must differ from --from"));
}

const JUDGED_SUITE: &str = r#"
name = "judged"
[[questions]]
id = "good"
industry = "support"
question = "Say that the refund was sent."
rubric = "A reply that confirms the refund. Grade: 4"
[[questions]]
id = "poor"
industry = "support"
question = "Say that the parcel is late."
rubric = "A reply that apologises for the delay. Grade: 2"
[[questions]]
id = "plain"
industry = "support"
question = "Say hello."
"#;

/// The simulator echoes its prompt, so a rubric that ends in a grade line makes a judge whose
/// grade is known: the whole path (the judge's HTTP calls, its records, the cache, the grades
/// joined to the judged records) is checked exactly.
#[test]
fn a_judge_grades_stored_answers_once_each_and_its_calls_are_records() {
    let sim = Sim::start(&[
        "--ttft-ms",
        "1",
        "--itl-ms",
        "0",
        "--output-tokens",
        "20",
        "--recall",
        "1",
    ]);
    let dir = Scratch::new("judge");
    let suite_path = dir.write("judged.toml", JUDGED_SUITE);
    let run = |name: &str| {
        format!(
            "suite = \"{}\"\nrepetitions = 2\n{}",
            suite_path.display(),
            target(name, &sim.base_url, "")
        )
    };
    let config = dir.write("judge.toml", &run("judge"));
    let rows = run_records(&dir, &run("t"), &[]);
    assert_eq!(rows.len(), 6, "{rows:?}");
    let calls_before = sim.log().len();

    let out = dir.0.join("out");
    let to = dir.0.join("judged");
    let said = ok(&Command::new(BIN)
        .args(["judge", "--config"])
        .arg(&config)
        .arg("--from")
        .arg(&out)
        .arg("--to")
        .arg(&to)
        .args(["--suite", suite_path.to_str().unwrap()])
        .output()
        .unwrap());
    // Two rubric questions, two repetitions each with the same answer: two judge calls.
    assert!(
        said.contains("4 graded by the judge in 2 calls, 0 calls without a grade"),
        "{said}"
    );
    assert_eq!(sim.log().len(), calls_before + 2);
    let all = records(&to);
    let (judge_calls, judged): (Vec<&Value>, Vec<&Value>) =
        all.iter().partition(|r| r["role"] == "judge");
    assert_eq!(judge_calls.len(), 2);
    for j in &judge_calls {
        assert_eq!(j["target"], "judge");
        assert_eq!(j["temperature"], 0.0, "the judge is asked at temperature 0");
        assert!(j["latency_sec"].as_f64().unwrap() > 0.0);
    }
    for r in judged.iter().filter(|r| r["target"] == "t") {
        match r["question_id"].as_str().unwrap() {
            "good" => assert_eq!(r["scores"]["judge"], 4.0, "{r}"),
            "poor" => assert_eq!(r["scores"]["judge"], 2.0, "{r}"),
            _ => assert!(r["scores"].is_null(), "no rubric, no judge: {r}"),
        }
        if r["question_id"] == "good" {
            // quality is the judge's grade mapped to [0, 1]: (4 − 1) / 4.
            assert_eq!(r["quality_score"], 0.75);
        }
    }
}

/// A creative question asked three times gets its answers compared with each other: the report's
/// self-BLEU is the mean over questions of the answers' self-BLEU, recomputed here from the
/// stored answers; a quality figure comes with its interval.
#[test]
fn the_report_compares_one_questions_answers_across_repetitions() {
    // recall < 1: each answer keeps a random part of the prompt, so repetitions differ.
    let sim = Sim::start(&[
        "--ttft-ms",
        "1",
        "--itl-ms",
        "0",
        "--output-tokens",
        "30",
        "--recall",
        "0.5",
    ]);
    let dir = Scratch::new("across-answers");
    let cfg = format!(
        "suite = \"{}\"\nrepetitions = 3\n{}",
        suite("creativity"),
        target("t", &sim.base_url, "")
    );
    let rows = run_records(&dir, &cfg, &[]);
    assert_eq!(rows.len(), 66);
    let mut by_question: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for r in &rows {
        by_question
            .entry(r["question_id"].as_str().unwrap())
            .or_default()
            .push(r["answer"].as_str().unwrap());
    }
    let expected: f64 = by_question
        .values()
        .map(|a| llmpulse_score::creativity::self_bleu(a).unwrap())
        .sum::<f64>()
        / by_question.len() as f64;
    assert!(
        expected > 0.0 && expected < 1.0,
        "answers vary, but not wholly: {expected}"
    );

    let s = support::report_summary(&dir.0);
    let cell = s["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["target"] == "t" && c["key"] == "creative_content")
        .unwrap();
    let got = cell["self_bleu"].as_f64().unwrap();
    assert!(
        (got - expected).abs() < 1e-9,
        "report {got}, recomputed {expected}"
    );
    let q = &cell["quality_score"];
    let (lo, mean, hi) = (
        q["ci95"][0].as_f64().unwrap(),
        q["mean"].as_f64().unwrap(),
        q["ci95"][1].as_f64().unwrap(),
    );
    assert!(lo < mean && mean < hi, "{q}");
    let md = std::fs::read_to_string(dir.0.join("r/summary.md")).unwrap();
    assert!(md.contains(&format!("self-BLEU {got:.3}")), "{md}");
}
