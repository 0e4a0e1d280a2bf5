//! `llmpulse score` against the reference implementations, over 700 generated pairs (empty
//! strings, punctuation, numbers, Unicode, odd whitespace, long texts): sentence and corpus BLEU
//! and chrF equal sacreBLEU's to 1e-6, WER and CER jiwer's and ROUGE-1/2/L rouge-score's (with
//! and without its Porter stemmer) to 1e-9; JSON Schema verdicts equal Python jsonschema's. `.ci/run` installs them (`LLMPULSE_ORACLE_PYTHON`); without them the test
//! says it was skipped (in CI it fails).

mod support;

use std::process::Command;

use serde_json::{Map, Value, json};
use support::{BIN, Scratch};

const WORDS: &[&str] = &[
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "revenue",
    "rose",
    "by",
    "12%",
    "to",
    "$4.2M",
    "in",
    "Q3",
    "3.5",
    "1,000",
    "2026-11-27",
    "-",
    "--",
    ",",
    ".",
    "!",
    "?",
    "(",
    ")",
    "\"quoted\"",
    "it's",
    "e.g.",
    "U.S.",
    "café",
    "naïve",
    "日本語",
    "Привет",
    "🙂",
    "&amp;",
    "&lt;tag&gt;",
    "a-b",
    "x/y",
    "[1]",
    "{k}",
    "~",
    "`",
    "@home",
    "#1",
    "50-60",
    "1.",
    ".5",
    "tab\there",
    // Inflections, for ROUGE with the Porter stemmer.
    "running",
    "revenues",
    "generalization",
    "hopefulness",
    "relational",
    "agreed",
    "ponies",
    "happily",
    "controlling",
    "Caresses",
    "electrical",
    "adjustments",
    "analogies",
    "sized",
    "troubled",
    "dying",
    "skies",
    "conditional",
    "formalities",
    "digitizer",
    "sensibilities",
    "feeds",
];

/// A small deterministic generator (xorshift), so the pairs are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn sentence(rng: &mut Rng, words: usize) -> String {
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push_str([" ", " ", " ", "  ", "\t", "\n", " \u{a0}"][rng.below(7)]);
        }
        s.push_str(WORDS[rng.below(WORDS.len())]);
    }
    s
}

/// A hypothesis made from `reference` by random edits, or unrelated, or empty.
fn hypothesis(rng: &mut Rng, reference: &str) -> String {
    match rng.below(10) {
        0 => String::new(),
        1 => {
            let n = 1 + rng.below(12);
            sentence(rng, n)
        }
        2 => reference.to_string(),
        _ => {
            let mut words: Vec<&str> = reference.split(' ').collect();
            for _ in 0..1 + rng.below(4) {
                match rng.below(3) {
                    0 if !words.is_empty() => {
                        let i = rng.below(words.len());
                        words.remove(i);
                    }
                    1 => {
                        let i = rng.below(words.len() + 1);
                        words.insert(i, WORDS[rng.below(WORDS.len())]);
                    }
                    _ if !words.is_empty() => {
                        let i = rng.below(words.len());
                        words[i] = WORDS[rng.below(WORDS.len())];
                    }
                    _ => {}
                }
            }
            words.join(" ")
        }
    }
}

fn pairs() -> Vec<Value> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = vec![
        json!({"hypothesis": "", "reference": ""}),
        json!({"hypothesis": "word", "reference": ""}),
        json!({"hypothesis": "", "reference": "word"}),
        json!({"hypothesis": "  spaced   out  ", "reference": "spaced out"}),
    ];
    for i in 0..700 {
        let len = match i % 20 {
            0 => 0,
            1 => 150 + rng.below(100),
            _ => 1 + rng.below(25),
        };
        let reference = sentence(&mut rng, len);
        let hyp = hypothesis(&mut rng, &reference);
        if i % 7 == 0 {
            let second = hypothesis(&mut rng, &reference);
            out.push(json!({"hypothesis": hyp, "references": [reference, second]}));
        } else {
            out.push(json!({"hypothesis": hyp, "reference": reference}));
        }
    }
    out
}

const ORACLE: &str = r#"
import json, sys, sacrebleu, jiwer
from rouge_score import rouge_scorer
rouge = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
stemmed = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
pairs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
single = []
for p in pairs:
    refs = p.get("references") or [p["reference"]]
    h = p["hypothesis"]
    out = {
        "bleu": sacrebleu.sentence_bleu(h, refs).score,
        "chrf": sacrebleu.sentence_chrf(h, refs).score,
        "wer": float(jiwer.wer(refs[0], h)),
        "cer": float(jiwer.cer(refs[0], h)),
    }
    for k, v in rouge.score(refs[0], h).items():
        out[k] = v.fmeasure
    for k, v in stemmed.score(refs[0], h).items():
        out[k + "_stem"] = v.fmeasure
    print(json.dumps(out))
    if "reference" in p:
        single.append((h, p["reference"]))
hyps = [h for h, _ in single]
refs = [[r for _, r in single]]
print(json.dumps({"corpus": True,
                  "bleu": sacrebleu.corpus_bleu(hyps, refs).score,
                  "chrf": sacrebleu.corpus_chrf(hyps, refs).score}))
"#;

#[test]
fn scores_equal_sacrebleu_and_jiwer() {
    let Some(python) = std::env::var_os("LLMPULSE_ORACLE_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "LLMPULSE_ORACLE_PYTHON is not set: .ci/run installs sacreBLEU, jiwer and rouge-score"
        );
        eprintln!("skipped: set LLMPULSE_ORACLE_PYTHON to a python with sacrebleu and jiwer");
        return;
    };
    let dir = Scratch::new("oracles");
    let all = pairs();
    let text: String = all.iter().map(|p| format!("{p}\n")).collect();
    let input = dir.write("pairs.jsonl", &text);
    // Corpus scores over the single-reference pairs (sacreBLEU's corpus API takes reference
    // streams of equal length).
    let singles: String = all
        .iter()
        .filter(|p| p.get("reference").is_some())
        .map(|p| format!("{p}\n"))
        .collect();
    let single_input = dir.write("single.jsonl", &singles);

    let run_with = |path: &std::path::Path, metrics: &str, flag: Option<&str>| -> Vec<Value> {
        let mut cmd = Command::new(BIN);
        cmd.args(["score", "--metrics", metrics, "--input"])
            .arg(path);
        cmd.args(flag);
        let out = support::ok(&cmd.output().unwrap());
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let all_metrics = "bleu,chrf,wer,cer,rouge1,rouge2,rougeL";
    let mut ours = run_with(&input, all_metrics, None);
    let ours_corpus = run_with(&single_input, all_metrics, Some("--corpus"));
    let ours_stemmed = run_with(&input, "rouge1,rouge2,rougeL", Some("--stem"));
    for (o, s) in ours.iter_mut().zip(&ours_stemmed) {
        for k in ["rouge1", "rouge2", "rougeL"] {
            o[format!("{k}_stem")] = s[k].clone();
        }
    }
    let script = dir.write("oracle.py", ORACLE);
    let theirs = Command::new(python)
        .arg(&script)
        .arg(&input)
        .output()
        .unwrap();
    let theirs = support::ok(&theirs);
    let theirs: Vec<Value> = theirs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ours.len(), all.len());
    assert_eq!(theirs.len(), all.len() + 1);

    let checks = [
        ("bleu", 1e-6),
        ("chrf", 1e-6),
        ("wer", 1e-9),
        ("cer", 1e-9),
        ("rouge1", 1e-9),
        ("rouge2", 1e-9),
        ("rougeL", 1e-9),
        ("rouge1_stem", 1e-9),
        ("rouge2_stem", 1e-9),
        ("rougeL_stem", 1e-9),
    ];
    let mut worst: Vec<(&str, f64)> = checks.iter().map(|(m, _)| (*m, 0.0)).collect();
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        for (metric, tolerance) in checks {
            let (x, y) = (a[metric].as_f64().unwrap(), b[metric].as_f64().unwrap());
            let d = (x - y).abs();
            assert!(
                d <= tolerance,
                "pair {i} {metric}: ours {x}, reference {y}\n{}",
                all[i]
            );
            let w = worst.iter_mut().find(|(m, _)| *m == metric).unwrap();
            w.1 = w.1.max(d);
        }
    }
    let (ours_c, theirs_c) = (ours_corpus.last().unwrap(), theirs.last().unwrap());
    assert_eq!(ours_c["corpus"], true);
    for metric in ["bleu", "chrf"] {
        let (x, y) = (
            ours_c[metric].as_f64().unwrap(),
            theirs_c[metric].as_f64().unwrap(),
        );
        assert!(
            (x - y).abs() <= 1e-6,
            "corpus {metric}: ours {x}, reference {y}"
        );
    }
    eprintln!("{} pairs; largest differences: {worst:?}", all.len());
}

/// Schemas covering the keywords structured-output questions use, in draft 2020-12 (no
/// `$schema`) and draft 7.
fn schemas() -> Vec<Value> {
    let d7 = "http://json-schema.org/draft-07/schema#";
    vec![
        json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["a"]}),
        json!({"type": "object", "properties": {"a": {"type": "number", "minimum": 0, "exclusiveMaximum": 10}}, "additionalProperties": false}),
        json!({"type": "object", "required": ["a", "b"], "minProperties": 2, "maxProperties": 3}),
        json!({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3, "uniqueItems": true}),
        json!({"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}], "items": false}),
        json!({"type": "array", "contains": {"type": "string", "minLength": 2}, "minContains": 1}),
        json!({"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"}),
        json!({"enum": ["red", "green", 1, null, [1, 2]]}),
        json!({"const": {"a": 1}}),
        json!({"type": ["integer", "null"], "multipleOf": 3}),
        json!({"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 5}]}),
        json!({"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 2}]}),
        json!({"allOf": [{"type": "object", "required": ["a"]}, {"not": {"required": ["c"]}}]}),
        json!({"$defs": {"pos": {"type": "integer", "exclusiveMinimum": 0}}, "type": "object", "properties": {"a": {"$ref": "#/$defs/pos"}, "b": {"type": "array", "items": {"$ref": "#/$defs/pos"}}}}),
        json!({"type": "object", "if": {"properties": {"a": {"const": 1}}, "required": ["a"]}, "then": {"required": ["b"]}, "else": {"required": ["c"]}}),
        json!({"type": "object", "dependentRequired": {"a": ["b"]}, "propertyNames": {"pattern": "^[a-c]$"}}),
        json!({"type": "object", "patternProperties": {"^x": {"type": "string"}}, "additionalProperties": {"type": "integer"}}),
        json!({"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "array", "items": {"type": "object", "required": ["c"]}}}}}}),
        json!({"$schema": d7, "type": "array", "items": [{"type": "string"}, {"type": "integer"}], "additionalItems": false}),
        json!({"$schema": d7, "type": "object", "properties": {"a": {"type": "integer", "exclusiveMinimum": 1}}, "dependencies": {"a": ["b"]}}),
        json!({"$schema": d7, "definitions": {"s": {"type": "string"}}, "type": "object", "properties": {"a": {"$ref": "#/definitions/s"}}, "required": ["a"]}),
        json!({"type": "object", "properties": {"when": {"type": "string", "format": "date"}, "mail": {"type": "string", "format": "email"}}}),
        json!({"type": "integer", "minimum": -3, "maximum": 3}),
        json!({"type": "boolean"}),
    ]
}

/// A random JSON value from a small alphabet, so that instances often sit near the schemas'
/// edges: the keys a–d and x1, small numbers, short strings, nesting.
fn instance(rng: &mut Rng, depth: usize) -> Value {
    let scalars = |rng: &mut Rng| match rng.below(12) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(false),
        3 => json!(rng.below(13) as i64 - 4),
        4 => json!((rng.below(40) as f64) / 4.0 - 2.0),
        5 => json!(3.0),
        6 => json!(""),
        7 => json!(["a", "ab", "abc", "ABC", "abcdef", "red", "a1"][rng.below(7)]),
        8 => json!(["2026-11-27", "not-a-date", "x@example.com", "nope"][rng.below(4)]),
        9 => json!(1),
        10 => json!(6),
        _ => json!("green"),
    };
    if depth == 0 {
        return scalars(rng);
    }
    match rng.below(4) {
        0 => {
            let n = rng.below(5);
            Value::Array((0..n).map(|_| instance(rng, depth - 1)).collect())
        }
        1 | 2 => {
            let mut m = Map::new();
            for _ in 0..rng.below(5) {
                let k = ["a", "b", "c", "d", "x1"][rng.below(5)];
                m.insert(k.to_string(), instance(rng, depth - 1));
            }
            Value::Object(m)
        }
        _ => scalars(rng),
    }
}

const SCHEMA_ORACLE: &str = r#"
import json, sys
from jsonschema.validators import validator_for
for line in open(sys.argv[1], encoding="utf-8"):
    p = json.loads(line)
    cls = validator_for(p["schema"])
    print(json.dumps({"schema_valid": cls(p["schema"]).is_valid(json.loads(p["hypothesis"]))}))
"#;

#[test]
fn schema_verdicts_equal_python_jsonschema() {
    let Some(python) = std::env::var_os("LLMPULSE_ORACLE_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "LLMPULSE_ORACLE_PYTHON is not set: .ci/run installs jsonschema"
        );
        eprintln!("skipped: set LLMPULSE_ORACLE_PYTHON to a python with jsonschema");
        return;
    };
    let mut rng = Rng(0x005e_ed5c_4e3a);
    let mut lines = String::new();
    let mut cases = 0;
    for schema in schemas() {
        for _ in 0..40 {
            let v = instance(&mut rng, 3);
            let case = json!({"hypothesis": v.to_string(), "schema": schema});
            lines.push_str(&format!("{case}\n"));
            cases += 1;
        }
    }
    let dir = Scratch::new("schema-oracle");
    let input = dir.write("cases.jsonl", &lines);
    let ours = support::ok(
        &Command::new(BIN)
            .args(["score", "--metrics", "schema_valid", "--input"])
            .arg(&input)
            .output()
            .unwrap(),
    );
    let script = dir.write("oracle.py", SCHEMA_ORACLE);
    let theirs = support::ok(
        &Command::new(python)
            .arg(&script)
            .arg(&input)
            .output()
            .unwrap(),
    );
    let (ours, theirs): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
    assert_eq!(ours.len(), cases);
    assert_eq!(theirs.len(), cases);
    let mut valid = 0;
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let a: Value = serde_json::from_str(a).unwrap();
        let b: Value = serde_json::from_str(b).unwrap();
        assert_eq!(
            a["schema_valid"],
            b["schema_valid"],
            "case {i}: ours {}, jsonschema {}\n{}",
            a["schema_valid"],
            b["schema_valid"],
            lines.lines().nth(i).unwrap()
        );
        valid += usize::from(a["schema_valid"] == true);
    }
    // The corpus must test both verdicts, not only one.
    assert!(
        valid > cases / 10 && valid < cases * 9 / 10,
        "{valid} of {cases} valid"
    );
    eprintln!("{cases} schema cases, {valid} valid, all verdicts equal");
}
