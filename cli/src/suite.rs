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
