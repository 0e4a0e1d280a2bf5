//! Scoring throughput: answers graded per second on one core, every deterministic scorer of
//! each answer's question (`llmpulse_score::grade::grade`), over 100,000 stored answers made
//! from the bundled suites' questions (a tenth with `--quick`). Answers are near-misses of the
//! right answer (golden replies with words dropped, golden objects with a field changed, tool
//! calls written as JSON text), so every scorer does real work.
//!
//!   cargo bench -p llmpulse --bench scoring
//!   cargo bench -p llmpulse --bench scoring -- --quick

use std::path::Path;
use std::time::Instant;

use llmpulse_core::score::grade::{self, Answer};
use llmpulse_core::suite::{Question, Suite};

const SUITES: [&str; 8] = [
    "conversation",
    "structured",
    "tool-explicit",
    "tool-implicit",
    "knowledge",
    "reasoning",
    "instruction",
    "creativity",
];

/// A deterministic near-miss answer to `q`, the `i`-th one.
fn answer(q: &Question, i: usize) -> String {
    let g = &q.grading;
    if let Some(reference) = g.references.first() {
        // Drop every (i % 5 + 3)-th word.
        let k = i % 5 + 3;
        return reference
            .split_whitespace()
            .enumerate()
            .filter(|(j, _)| j % k != 0)
            .map(|(_, w)| w)
            .collect::<Vec<_>>()
            .join(" ");
    }
    if let Some(golden) = &g.golden {
        let mut v = golden.clone();
        if let Some(m) = v.as_object_mut()
            && let Some(key) = m.keys().nth(i % m.len().max(1)).cloned()
        {
            m.insert(key, serde_json::json!("changed"));
        }
        return if i.is_multiple_of(2) {
            v.to_string()
        } else {
            format!("```json\n{v}\n```")
        };
    }
    if let Some(call) = g.expected_calls.first() {
        return format!(
            "I will call the tool.\n{{\"name\": \"{}\", \"arguments\": {}}}",
            call.name,
            serde_json::Value::Object(call.arguments.clone())
        );
    }
    let body = "Let me think this through step by step, checking each figure before I answer. \
                The first part gives the rate, the second the time, and together they give the total.";
    format!("{body}\nAnswer: {}", i % 300)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let total = if quick { 10_000 } else { 100_000 };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut questions = Vec::new();
    for s in SUITES {
        let suite = Suite::load(&format!("suites/{s}.toml"), &root).expect("a bundled suite");
        questions.extend(suite.questions.into_iter().map(|q| (s, q)));
    }
    let answers: Vec<(usize, String)> = (0..total)
        .map(|i| {
            let at = i % questions.len();
            (at, answer(&questions[at].1, i))
        })
        .collect();
    let mut per_suite: Vec<(&str, usize, f64)> = SUITES.iter().map(|s| (*s, 0, 0.0)).collect();
    let mut checksum = 0.0;
    let start = Instant::now();
    for (at, text) in &answers {
        let (suite, q) = &questions[*at];
        let t = Instant::now();
        let g = grade::grade(
            &q.grading,
            &Answer {
                text,
                native_calls: &[],
            },
        );
        let took = t.elapsed().as_secs_f64();
        checksum += g.quality().unwrap_or(0.0);
        let s = per_suite.iter_mut().find(|(n, _, _)| n == suite).unwrap();
        s.1 += 1;
        s.2 += took;
    }
    let wall = start.elapsed().as_secs_f64();
    println!("scoring: {total} answers on one thread, every scorer of each question");
    println!("{:<16} {:>8} {:>14}", "suite", "answers", "answers/s");
    for (name, n, secs) in &per_suite {
        println!("{name:<16} {n:>8} {:>14.0}", *n as f64 / secs.max(1e-9));
    }
    println!(
        "{:<16} {:>8} {:>14.0}   (mean quality {:.3})",
        "all",
        total,
        total as f64 / wall,
        checksum / total as f64
    );
    rag(total);
}

/// The RAG suite as a run scores it: each question's sources reduced once, then `total`
/// answers (the question's context with every (i % 5 + 3)-th word dropped, cut to 60 words)
/// scored for coverage and grounding.
fn rag(total: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let suite = Suite::load("builtin:rag-retail-finance", &root).expect("the bundled RAG suite");
    let sources: Vec<_> = suite
        .questions
        .iter()
        .map(|q| llmpulse_score::Sources::new(&q.context, &q.key_facts, &q.question))
        .collect();
    let answers: Vec<(usize, String)> = (0..total)
        .map(|i| {
            let at = i % suite.questions.len();
            let k = i % 5 + 3;
            let words = suite.questions[at].context.join(" ");
            let text = words
                .split_whitespace()
                .enumerate()
                .filter(|(j, _)| j % k != 0)
                .take(60)
                .map(|(_, w)| w)
                .collect::<Vec<_>>()
                .join(" ");
            (at, text)
        })
        .collect();
    let mut checksum = 0.0;
    let start = Instant::now();
    for (at, text) in &answers {
        let (coverage, grounding) = sources[*at].score(text);
        checksum += coverage.unwrap_or(0.0) + grounding.unwrap_or(0.0);
    }
    let wall = start.elapsed().as_secs_f64();
    println!(
        "{:<16} {:>8} {:>14.0}   (coverage and grounding, mean sum {:.3})",
        "rag",
        total,
        total as f64 / wall,
        checksum / total as f64
    );
}
