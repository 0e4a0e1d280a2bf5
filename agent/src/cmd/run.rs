//! `llmpulse-agent run`: one run of a config with hardware telemetry, published.

use std::path::PathBuf;
use std::process::ExitCode;

use llmpulse_agent::run::{self, AgentIdentity};
use llmpulse_core::config::Config;
use llmpulse_core::job::{JobOutcome, JobRequest};
use llmpulse_core::runner::Stop;

use super::{default_spool, progress, progress_bar, stop_on_signal};

#[derive(clap::Args)]
pub struct RunArgs {
    #[arg(long)]
    pub config: PathBuf,
    /// Overrides the config's output.
    #[arg(long)]
    pub output: Option<String>,
    #[arg(long)]
    pub repetitions: Option<u32>,
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Where runs are staged (default: the config's [agent] spool, else the user's cache).
    #[arg(long)]
    pub spool: Option<PathBuf>,
}

pub async fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let config = Config::load(&a.config, &env)?;
    let id = AgentIdentity::of(&config);
    let spool = a.spool.clone().unwrap_or_else(|| default_spool(&config));
    let stop = Stop::new(std::time::Duration::from_secs(30));
    let request = JobRequest {
        output: a.output.clone(),
        repetitions: a.repetitions,
        concurrency: a.concurrency,
        stop: Some(stop.clone()),
        ..JobRequest::new(id.origin(), spool, chrono::Utc::now())
    };
    let mut telemetry = run::telemetry_for(&config, &id).await;
    for s in telemetry.absent() {
        eprintln!("telemetry: no {} ({})", s.source, s.why);
    }
    let job = request.prepare(config)?;
    tokio::spawn(stop_on_signal(stop.clone()));
    let bar = progress_bar(job.planned_calls());
    let outcome = run::run(job, &mut telemetry, &env, &mut progress(&bar)).await?;
    bar.finish_and_clear();
    let JobOutcome::Ran {
        manifest,
        summary,
        publication,
    } = outcome
    else {
        anyhow::bail!("nothing ran");
    };
    for t in &summary {
        println!(
            "{}: {}/{} ok, latency p50 {}",
            t.target,
            t.successes,
            t.n,
            t.latency_p50_sec
                .map_or("-".into(), |l| format!("{l:.3} s"))
        );
    }
    println!(
        "{} records ({} ok) → {}",
        manifest.records,
        manifest.successes,
        publication.describe()
    );
    Ok(match publication {
        llmpulse_core::publish::Publication::Stored { .. } => ExitCode::SUCCESS,
        llmpulse_core::publish::Publication::Spooled { .. } => ExitCode::from(1),
    })
}
