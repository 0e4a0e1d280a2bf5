//! `llmpulse rescore` and `llmpulse judge`: stored answers graded again (by today's scorers, or
//! by a judge target), written as new runs that name their source.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use llmpulse_core::config::Config;
use llmpulse_core::provider::Client;
use llmpulse_core::store::{self, Store};
use llmpulse_core::suite::{Question, Suite};
use llmpulse_report::read::{self, ReadStats};
use llmpulse_report::{judge as judging, rescore as rescoring};

use crate::args::{JudgeArgs, RescoreArgs};

pub fn rescore(a: RescoreArgs) -> anyhow::Result<ExitCode> {
    let (source, campaign) = (a.from.clone(), a.campaign.clone());
    with_stores(&a, |from, to, questions| async move {
        let done =
            rescoring::rescore(from.as_ref(), to.as_ref(), campaign.as_deref(), &questions).await?;
        if done.is_empty() {
            println!("no runs to rescore at {source}");
        }
        for r in &done {
            println!(
                "{} -> {}: {} records, {} graded again ({} scores changed), {} without a kept answer, {} with a question the suites lack",
                r.from_run,
                r.run_id,
                r.records,
                r.regraded,
                r.changed,
                r.without_answer,
                r.unknown_question
            );
        }
        println!("rescored runs are at {}", to.describe());
        anyhow::Ok(())
    })
}

pub fn judge(a: JudgeArgs) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let config = Config::load(&a.config, &env)?;
    let Some(mut target) = config.targets.iter().find(|t| t.name == a.judge).cloned() else {
        let names: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
        bail!(
            "{}: no target named '{}' to judge with (targets: {})",
            a.config.display(),
            a.judge,
            names.join(", ")
        );
    };
    target.params.temperature = Some(0.0);
    let campaign = a.rescore.campaign.clone();
    with_stores(&a.rescore, |from, to, questions| async move {
        if !questions.values().any(|q| q.grading.rubric.is_some()) {
            bail!("no question of the suites has a `rubric`: there is nothing to judge against");
        }
        let client = Client::new(target)?;
        let done = judging::judge(
            from.as_ref(),
            to.as_ref(),
            &client,
            campaign.as_deref(),
            &questions,
        )
        .await?;
        for j in &done {
            println!(
                "{} -> {} and {}: {} records, {} graded by the judge in {} calls, {} calls without a grade",
                j.from_run,
                j.run_id,
                j.judge_run_id,
                j.records,
                j.graded,
                j.judge_calls,
                j.no_grade
            );
        }
        println!("judged runs are at {}", to.describe());
        anyhow::Ok(())
    })
}

/// Opens both stores and loads the questions, then runs `work` on a runtime.
fn with_stores<F, Fut>(a: &RescoreArgs, work: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Box<dyn Store>, Box<dyn Store>, HashMap<String, Question>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    if same_location(&a.from, &a.to) {
        bail!(
            "--to must differ from --from: the new runs beside the originals would make every \
             report count each call twice"
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
        work(from, to, questions).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Whether two locations are one: bucket URLs as written (a trailing `/` aside), directories
/// once resolved (`out`, `./out/` and its absolute path are the same place).
fn same_location(a: &str, b: &str) -> bool {
    let local = |s: &str| !s.contains("://");
    if local(a) && local(b) {
        let resolve = |s: &str| {
            let p = Path::new(s);
            std::fs::canonicalize(p).unwrap_or_else(|_| {
                std::env::current_dir()
                    .map(|d| d.join(p))
                    .unwrap_or_else(|_| p.to_path_buf())
            })
        };
        return resolve(a) == resolve(b);
    }
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The suite a manifest names: `builtin:NAME`, or the path inside `NAME (PATH)`.
fn suite_spec(manifest_suite: &str) -> String {
    manifest_suite
        .rsplit_once(" (")
        .and_then(|(_, p)| p.strip_suffix(')'))
        .unwrap_or(manifest_suite)
        .to_string()
}
