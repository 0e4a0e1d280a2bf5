//! `llmpulse score` against the reference implementations, over 700 generated pairs (empty
//! strings, punctuation, numbers, Unicode, odd whitespace, long texts): sentence and corpus BLEU
//! and chrF equal sacreBLEU's to 1e-6, WER and CER jiwer's and ROUGE-1/2/L rouge-score's (no
//! stemming) to 1e-9. `.ci/run` installs them (`LLMPULSE_ORACLE_PYTHON`); without them the test
//! says it was skipped (in CI it fails).

mod support;

use std::process::Command;

use serde_json::{Value, json};
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

    let run = |path: &std::path::Path, corpus: bool| -> Vec<Value> {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "score",
            "--metrics",
            "bleu,chrf,wer,cer,rouge1,rouge2,rougeL",
            "--input",
        ])
        .arg(path);
        if corpus {
            cmd.arg("--corpus");
        }
        let out = support::ok(&cmd.output().unwrap());
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let ours = run(&input, false);
    let ours_corpus = run(&single_input, true);
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
