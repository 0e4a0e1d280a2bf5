//! `llmpulse rescore`: stored answers graded again, written as new runs that name their source.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use llmpulse_core::store;
use llmpulse_core::suite::{Question, Suite};
use llmpulse_report::read::{self, ReadStats};
use llmpulse_report::rescore;

use crate::args::RescoreArgs;

pub fn rescore(a: RescoreArgs) -> anyhow::Result<ExitCode> {
    if a.from.trim_end_matches('/') == a.to.trim_end_matches('/') {
        bail!(
            "--to must differ from --from: the rescored runs beside the originals would make \
             every report count each call twice"
        );
    }
    let env = |k: &str| std::env::var(k).ok();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let from = store::open(&a.from, &env).await?;
        let to = store::open(&a.to, &env).await?;
        let specs = if a.suite.is_empty() {
            let mut seen = ReadStats::default();
            let manifests = read::manifests(from.as_ref(), &mut seen).await?;
            let mut specs: Vec<String> = manifests.iter().map(|m| suite_spec(&m.suite)).collect();
            specs.sort();
            specs.dedup();
            specs
        } else {
            a.suite.clone()
        };
        let mut questions: HashMap<String, Question> = HashMap::new();
        for spec in &specs {
            let suite = Suite::load(spec, Path::new(".")).with_context(|| {
                format!("suite {spec} (give the suites with --suite when runs name another path)")
            })?;
            for q in suite.questions {
                questions.insert(q.id.clone(), q);
            }
        }
        let done = rescore::rescore(from.as_ref(), to.as_ref(), a.campaign.as_deref(), &questions)
            .await?;
        if done.is_empty() {
            println!("no runs to rescore at {}", a.from);
        }
        for r in &done {
            println!(
                "{} -> {}: {} records, {} graded again ({} scores changed), {} without a kept answer, {} with a question the suites lack",
                r.from_run, r.run_id, r.records, r.regraded, r.changed, r.without_answer, r.unknown_question
            );
        }
        println!("rescored runs are at {}", to.describe());
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// The suite a manifest names: `builtin:NAME`, or the path inside `NAME (PATH)`.
fn suite_spec(manifest_suite: &str) -> String {
    manifest_suite
        .rsplit_once(" (")
        .and_then(|(_, p)| p.strip_suffix(')'))
        .unwrap_or(manifest_suite)
        .to_string()
}
