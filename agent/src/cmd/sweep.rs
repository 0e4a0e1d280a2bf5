//! `llmpulse-agent sweep`: a server per configuration of a `[sweep]`, the suite against each.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use llmpulse_agent::sweep;
use llmpulse_core::config::Config;
use llmpulse_core::runner::Stop;

use super::{default_spool, progress, progress_bar, stop_on_signal};

#[derive(clap::Args)]
pub struct SweepArgs {
    #[arg(long)]
    pub config: PathBuf,
    /// Print the points (and the ones skipped, with why) and start nothing.
    #[arg(long)]
    pub plan: bool,
    /// Overrides the config's output.
    #[arg(long)]
    pub output: Option<String>,
    #[arg(long)]
    pub spool: Option<PathBuf>,
}

pub async fn sweep(a: SweepArgs) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let mut config = Config::load(&a.config, &env)?;
    let text = std::fs::read_to_string(&a.config)
        .with_context(|| format!("cannot read {}", a.config.display()))?;
    let sweep = sweep::Sweep::parse(
        &text,
        &a.config.display().to_string(),
        &config.base_dir,
        &env,
    )?;
    let (points, skipped) = sweep::plan(&sweep);
    let temps = sweep.temperatures.len().max(1);
    if a.plan {
        let per_point = config.targets.len() * temps;
        println!(
            "sweep '{}': {} points × {} target(s) × {} question(s) × {} repetition(s)",
            sweep.name,
            points.len(),
            per_point,
            llmpulse_core::suite::Suite::load(&config.suite, &config.base_dir)?
                .questions
                .len(),
            config.repetitions
        );
        for p in &points {
            println!("  run   {}", p.label(&sweep.name));
        }
        for s in &skipped {
            println!("  skip  {}: {}", s.point.label(&sweep.name), s.why);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(o) = a.output {
        config.output = o;
    }
    let spool = a.spool.clone().unwrap_or_else(|| default_spool(&config));
    let stop = Stop::new(std::time::Duration::from_secs(30));
    tokio::spawn(stop_on_signal(stop.clone()));
    let questions = llmpulse_core::suite::Suite::load(&config.suite, &config.base_dir)?
        .questions
        .len();
    let calls =
        points.len() * config.targets.len() * temps * questions * config.repetitions as usize;
    let bar = progress_bar(calls);
    let outcomes =
        sweep::run::run_sweep(&config, &sweep, spool, stop, &env, &mut progress(&bar)).await?;
    bar.finish_and_clear();
    let mut failed = 0;
    for o in &outcomes {
        match &o.start_failed {
            None => println!(
                "{}: {}/{} ok → {}",
                o.label, o.successes, o.records, o.stored_at
            ),
            Some(why) => {
                failed += 1;
                let first = why.lines().next().unwrap_or_default();
                println!(
                    "{}: server did not start ({first}) → {}",
                    o.label, o.stored_at
                );
            }
        }
    }
    for s in &skipped {
        println!("{}: skipped: {}", s.point.label(&sweep.name), s.why);
    }
    println!(
        "{} points run, {failed} did not start, {} skipped",
        outcomes.len(),
        skipped.len()
    );
    Ok(ExitCode::SUCCESS)
}
