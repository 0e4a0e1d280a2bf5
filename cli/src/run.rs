//! `llmpulse run`: load the config and suite, run, write, summarise.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use llmpulse_core::config::Config;
use llmpulse_core::job::{self, JobOptions, JobOutcome, SlotChoice};
use llmpulse_core::output::Publication;
use llmpulse_core::record::Record;
use llmpulse_core::runner::{self, RunOptions, Shard};
use llmpulse_core::store::{self, Location};
use llmpulse_core::suite::Suite;
use llmpulse_core::summary;

use crate::args::RunArgs;
use crate::table;

pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let mut config = match &a.config {
        Some(path) => Config::load(path, &env)?,
        None => Config::quickstart(),
    };
    config.select_targets(&a.targets)?;
    if let Some(o) = a.output {
        config.output = o;
    }
    if let Some(r) = a.repetitions {
        anyhow::ensure!(r >= 1, "--repetitions must be at least 1");
        config.repetitions = r;
    }
    if let Some(c) = a.concurrency {
        anyhow::ensure!(c >= 1, "--concurrency must be at least 1");
        config.concurrency = c;
    }
    let location = Location::parse(&config.output)?;
    let suite = Suite::load(&config.suite, &config.base_dir)?;

    let started = chrono::Utc::now();
    let mut opts = RunOptions::new(runner::new_run_id(started), format!("local:{}", hostname()));
    opts.deadline = a.deadline.map(|d| std::time::Instant::now() + *d);
    if let Some(s) = &a.shard {
        opts.shard = Some(Shard::parse(s).map_err(|m| anyhow::anyhow!("--shard {m}"))?);
    }
    if let Some(id) = &a.run_id {
        anyhow::ensure!(
            !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "--run-id '{id}': use letters, digits, '-', '_' or '.'"
        );
        opts.run_id = id.clone();
    }
    if let Some(m) = a.deadline_margin {
        opts.deadline_margin = *m;
    }
    let planned = suite.questions.len() * config.targets.len() * config.repetitions as usize;
    // A shard gets every count-th call, starting at its index.
    let total = opts.shard.map_or(planned, |s| {
        (planned + (s.count - 1 - s.index) as usize) / s.count as usize
    });
    tracing::info!(
        run_id = %opts.run_id,
        config = %config.origin,
        suite = %suite.name,
        targets = config.targets.len(),
        calls = total,
        "run starting"
    );

    let progress = progress_bar(total as u64, a.quiet);
    let done = Arc::new(AtomicUsize::new(0));
    let on_record: Arc<dyn Fn(&Record) + Send + Sync> = {
        let progress = progress.clone();
        let done = done.clone();
        Arc::new(move |r: &Record| {
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if progress.is_hidden() {
                // No terminal: a log line every 10% instead of a bar.
                if n == total || n.is_multiple_of((total / 10).max(1)) {
                    tracing::info!(done = n, total, "progress");
                }
            } else {
                progress.inc(1);
                if !r.success {
                    progress.set_message(format!(
                        "last failure: {} {}",
                        r.target,
                        r.error_kind.map_or("", |k| k.as_str())
                    ));
                }
            }
        })
    };

    let slot = match a.slot.as_deref() {
        None => SlotChoice::None,
        Some("auto") => SlotChoice::Auto,
        Some(n) => SlotChoice::Index(
            n.parse()
                .with_context(|| format!("--slot {n}: give a slot number or 'auto'"))?,
        ),
    };
    let spool = match location {
        Location::Local(_) => None,
        _ => Some(a.spool.clone().unwrap_or_else(default_spool)),
    };
    let job = JobOptions {
        slot,
        reclaim: a.reclaim,
        run: opts,
        spool,
        now: chrono::Utc::now(),
    };

    let runtime = tokio::runtime::Runtime::new()?;
    let outcome = runtime.block_on(async {
        let store = store::open(&config.output, &env).await?;
        anyhow::Ok(job::run_job(&config, &suite, store.as_ref(), job, on_record).await?)
    })?;
    progress.finish_and_clear();

    let (manifest, records, publication) = match outcome {
        JobOutcome::Ran {
            manifest,
            records,
            publication,
        } => (manifest, records, publication),
        JobOutcome::AlreadyClaimed { slot, claim } => {
            let by = claim.map_or_else(
                || "another run".to_string(),
                |c| format!("run {} ({}, at {})", c.run_id, c.origin, c.claimed_at),
            );
            let line = format!("slot {} already claimed by {by}: nothing to do", slot.index);
            println!("{line}");
            if let Some(p) = &a.summary_markdown {
                std::fs::write(p, format!("{line}\n"))?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        JobOutcome::NothingDue { reason } => {
            println!("no slot due: {reason}");
            if let Some(p) = &a.summary_markdown {
                std::fs::write(p, format!("no slot due: {reason}\n"))?;
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let stored = match &publication {
        Publication::Stored {
            location,
            manifest_key,
        } => format!("{}/{manifest_key}", location.trim_end_matches('/')),
        Publication::Spooled { dir, error } => {
            tracing::error!(%error, spool = %dir.display(), "the store refused the run");
            eprintln!(
                "warning: {error}\n  the run is kept in {}; finish it with: llmpulse upload --spool {}",
                dir.display(),
                dir.parent().map_or(dir.as_path(), |p| p).display()
            );
            dir.display().to_string()
        }
    };
    tracing::info!(
        run_id = %manifest.run_id,
        records = manifest.records,
        successes = manifest.successes,
        manifest = %stored,
        "run written"
    );
    if let Some(p) = &a.summary_markdown {
        let md = format!(
            "### llmpulse run {}\n\n{} records ({} ok), stored at `{stored}`\n\n{}",
            manifest.run_id,
            manifest.records,
            manifest.successes,
            table::render_markdown(&summary::by_target(&records))
        );
        std::fs::write(p, md).with_context(|| format!("writing {}", p.display()))?;
    }
    if a.quiet {
        println!("{stored}");
    } else {
        println!(
            "run {}: {} records ({} ok){}",
            manifest.run_id,
            manifest.records,
            manifest.successes,
            manifest
                .slot
                .map(|s| format!(
                    ", slot {s} of {}",
                    manifest.campaign.as_deref().unwrap_or("")
                ))
                .unwrap_or_default()
        );
        println!("{}", table::render(&summary::by_target(&records)));
        println!("  {stored}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `~/.cache/llmpulse/spool` (or under `$XDG_CACHE_HOME`): where runs wait when a store is down.
pub fn default_spool() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("llmpulse")
        .join("spool")
}

fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {pos}/{len} calls  {elapsed_precise}  {msg}")
    {
        bar.set_style(style);
    }
    bar
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}
