//! `llmpulse suite check`.

use std::path::Path;
use std::process::ExitCode;

use llmpulse_core::suite::Suite;

use crate::args::SuiteCheckArgs;

pub fn check(a: SuiteCheckArgs) -> anyhow::Result<ExitCode> {
    let suite = Suite::load(&a.suite, Path::new("."))?;
    let facts: usize = suite.questions.iter().map(|q| q.key_facts.len()).sum();
    println!(
        "{}: {} questions ({}), {facts} key facts",
        suite.name,
        suite.questions.len(),
        suite
            .industries()
            .iter()
            .map(|i| format!(
                "{} {i}",
                suite.questions.iter().filter(|q| &q.industry == i).count()
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Every question's scorers were checked on load (each has what it needs); say which run.
    let mut scorers: std::collections::BTreeMap<&str, usize> = Default::default();
    for q in &suite.questions {
        for s in &q.grading.scorers {
            *scorers.entry(s.name()).or_default() += 1;
        }
    }
    let ungraded = suite
        .questions
        .iter()
        .filter(|q| q.grading.scorers.is_empty() && q.key_facts.is_empty())
        .count();
    if !scorers.is_empty() {
        let list: Vec<String> = scorers.iter().map(|(s, n)| format!("{s} ×{n}")).collect();
        println!("scorers: {}", list.join(", "));
    }
    if ungraded > 0 {
        println!(
            "{ungraded} questions have no scorer and no key facts: they are timed, not graded"
        );
    }
    let warnings = suite.lint();
    for w in &warnings {
        println!("warning: {w}");
    }
    Ok(if warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
