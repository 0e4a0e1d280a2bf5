//! `llmpulse run`: load the config and suite, run, write, summarise.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use llmpulse_core::config::Config;
use llmpulse_core::job::{self, JobOutcome, JobRequest, SlotChoice};
use llmpulse_core::manifest::Manifest;
use llmpulse_core::publish::Publication;
use llmpulse_core::record::Record;
use llmpulse_core::runner::Stop;
use llmpulse_core::sink::{Each, Fanout, RecordSink};
use llmpulse_core::summary::TargetSummary;

use crate::args::RunArgs;
use crate::{signals, table};

/// The config a run uses: the file (or the built-in quickstart) with the command line's load
/// settings over it. `with_profile` is false for a rate sweep, whose passes set their own.
pub fn config(a: &RunArgs, with_profile: bool) -> anyhow::Result<Config> {
    let env = |k: &str| std::env::var(k).ok();
    let file = a
        .config
        .as_ref()
        .map(|p| Config::load(p, &env))
        .transpose()?;
    let mut config = if crate::quick::wanted(a) {
        crate::quick::config(a, file)?
    } else {
        file.unwrap_or_else(Config::quickstart)
    };
    if let Some(p) = a.profile.as_ref().filter(|_| with_profile) {
        let spec = llmpulse_core::load::ProfileSpec::parse(p)
            .map_err(|e| anyhow::anyhow!("--profile: {e}"))?;
        config.load.profile = spec.profile;
        if let Some(n) = spec.concurrency {
            config.concurrency = n;
        }
    }
    if let Some(s) = &a.slo {
        config.load.slo =
            Some(llmpulse_core::load::Slo::parse(s).map_err(|e| anyhow::anyhow!("--slo: {e}"))?);
    }
    if let Some(n) = a.warmup {
        config.load.warmup = n;
    }
    Ok(config)
}

/// One run of `config` (a rate sweep is `ratesweep::sweep`'s): the summary, the files, the
/// campaign's after-slot steps, the exit code.
pub fn run(a: RunArgs, config: Config) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let stop = Stop::new(*a.stop_grace);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.spawn(signals::stop_on_signal(stop.clone()));
    // What a campaign asks after each slot (watch and alert, the dashboard).
    let after = llmpulse_report::after_run::wanted(&config).then(|| config.clone());
    let outcome = run_once(&a, config, &stop, &runtime)?;
    let stopped = stop.requested();
    let (manifest, summary, publication) = match outcome {
        JobOutcome::Ran {
            manifest,
            summary,
            publication,
        } => (manifest, summary, publication),
        JobOutcome::AlreadyClaimed { slot, claim } => {
            let by = claim.map_or_else(
                || "another run".to_string(),
                |c| format!("run {} ({}, at {})", c.run_id, c.origin, c.claimed_at),
            );
            let line = format!("slot {} already claimed by {by}: nothing to do", slot.index);
            return say_only(&line, a.summary_markdown.as_deref());
        }
        JobOutcome::NothingDue { reason } => {
            return say_only(
                &format!("no slot due: {reason}"),
                a.summary_markdown.as_deref(),
            );
        }
    };
    let total = manifest.planned.unwrap_or(manifest.records);
    print_run(&a, &manifest, &summary, &publication, total)?;
    if stopped {
        eprintln!("stopped by a signal: the run is published as partial (complete = false)");
        return Ok(ExitCode::from(crate::EXIT_STOPPED));
    }
    if let (Some(config), Some(_), llmpulse_core::publish::Publication::Stored { location, .. }) =
        (&after, manifest.slot, &publication)
    {
        let done = runtime.block_on(llmpulse_report::after_run::after_slot(
            config,
            location,
            &env,
            chrono::Utc::now(),
        ));
        if let Some(n) = done.regressions {
            eprintln!(
                "watch after the slot: {n} regression{}",
                if n == 1 { "" } else { "s" }
            );
        }
        if let Some(n) = done.published {
            eprintln!("published the dashboard ({n} files) to {location}/dashboard/");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One job of `config` as the arguments ask, on `runtime`, with a progress bar.
pub(crate) fn run_once(
    a: &RunArgs,
    config: Config,
    stop: &Stop,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<JobOutcome> {
    let env = |k: &str| std::env::var(k).ok();
    let slot = match a.slot.as_deref() {
        None => SlotChoice::None,
        Some("auto") => SlotChoice::Auto,
        Some(n) => SlotChoice::Index(
            n.parse()
                .with_context(|| format!("--slot {n}: give a slot number or 'auto'"))?,
        ),
    };
    let flat = crate::quick::Flat::create(a.output.as_deref())?;
    let request = JobRequest {
        targets: a.targets.clone(),
        // A flat file is written beside the config's output, not instead of it.
        output: a.output.clone().filter(|_| flat.is_none()),
        suite: crate::quick::suite(a)?,
        repetitions: a.repetitions,
        concurrency: a.concurrency,
        run_id: a.run_id.clone(),
        shard: a.shard.clone(),
        slot,
        reclaim: a.reclaim,
        deadline: a.deadline.map(|d| std::time::Instant::now() + *d),
        deadline_margin: a.deadline_margin.map(|m| *m),
        stop: Some(stop.clone()),
        max_cost_usd: a.max_cost_usd,
        ..JobRequest::new(
            origin(),
            a.spool.clone().unwrap_or_else(default_spool),
            chrono::Utc::now(),
        )
    };
    let job = request.prepare(config)?;
    let total = job.planned_calls();
    tracing::info!(
        run_id = %job.run.run_id,
        config = %job.config.origin,
        suite = %job.suite.name,
        targets = job.config.targets.len(),
        calls = total,
        "run starting"
    );
    let progress = progress_bar(total as u64, a.quiet);
    let mut on_record = progress_sink(&progress, total);
    let outcome = match flat {
        Some((mut flat, path)) => {
            let outcome = runtime.block_on(job::run_job(
                job,
                &env,
                &mut Fanout(vec![&mut on_record, &mut flat]),
            ))?;
            flat.finish().with_context(|| format!("--output {path}"))?;
            if !a.quiet {
                eprintln!("records also in {path}");
            }
            outcome
        }
        None => runtime.block_on(job::run_job(job, &env, &mut on_record))?,
    };
    progress.finish_and_clear();
    Ok(outcome)
}

/// Prints what a run did: where it is, the summary table (and its Markdown, when asked).
fn print_run(
    a: &RunArgs,
    manifest: &Manifest,
    summary: &[TargetSummary],
    publication: &Publication,
    total: usize,
) -> anyhow::Result<()> {
    let stored = publication.describe();
    if let Publication::Spooled { dir, error } = &publication {
        tracing::error!(%error, spool = %dir.display(), "the store refused the run");
        eprintln!(
            "warning: {error}\n  the run is kept in {}; finish it with: llmpulse upload --spool {}",
            dir.display(),
            dir.parent().map_or(dir.as_path(), |p| p).display()
        );
    }
    tracing::info!(
        run_id = %manifest.run_id,
        records = manifest.records,
        successes = manifest.successes,
        complete = manifest.complete,
        manifest = %stored,
        "run written"
    );
    let partial = if manifest.complete {
        String::new()
    } else {
        format!(
            ", PARTIAL: {} of {} planned calls",
            manifest.records,
            manifest.planned.unwrap_or(total)
        )
    };
    if let Some(p) = &a.summary_markdown {
        let md = format!(
            "### llmpulse run {}\n\n{} records ({} ok{partial}), stored at `{stored}`\n\n{}",
            manifest.run_id,
            manifest.records,
            manifest.successes,
            table::render_markdown(summary)
        );
        std::fs::write(p, md).with_context(|| format!("writing {}", p.display()))?;
    }
    if a.quiet {
        println!("{stored}");
    } else {
        let took = chrono::DateTime::parse_from_rfc3339(&manifest.finished_at)
            .ok()
            .zip(chrono::DateTime::parse_from_rfc3339(&manifest.started_at).ok())
            .map(|(end, start)| {
                format!(
                    " in {:.1} s",
                    (end - start).num_milliseconds() as f64 / 1000.0
                )
            })
            .unwrap_or_default();
        println!(
            "run {}: {} records ({} ok){}{partial}{took}",
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
        println!("{}", table::render(summary));
        print!("{}", table::extra_lines(summary));
        if let Some(b) = &manifest.budget {
            println!("{}", budget_line(b));
        }
        // Where everything is: each data file, then the manifest that vouches for them.
        if let Publication::Stored { location, .. } = publication {
            for f in &manifest.files {
                println!("  {}/{}", location.trim_end_matches('/'), f.path);
            }
        }
        println!("  {stored}");
    }
    Ok(())
}

/// What a run with a budget spent, and what the budget stopped.
fn budget_line(b: &llmpulse_core::budget::BudgetReport) -> String {
    let mut line = format!("spent ${:.4}", b.spent_usd);
    if let Some(cap) = b.run_cap_usd {
        line.push_str(&format!(" of the run's ${cap}"));
    }
    if let (Some(spent), Some(total)) = (b.campaign_spent_usd, b.campaign_budget_usd) {
        line.push_str(&format!("; the campaign ${spent:.4} of ${total}"));
    }
    match &b.stopped {
        Some(why) => format!(
            "{line}; {} calls not made (skipped_budget): {why}",
            b.skipped_calls
        ),
        None => line,
    }
}

/// The sink that moves the progress bar (or, with no terminal, logs every 10%).
pub(crate) fn progress_sink(progress: &ProgressBar, total: usize) -> impl RecordSink + '_ {
    let mut done = 0usize;
    Each(move |r: &Record| {
        done += 1;
        if progress.is_hidden() {
            // No terminal: a log line every 10% instead of a bar.
            if done == total || done.is_multiple_of((total / 10).max(1)) {
                tracing::info!(done, total, "progress");
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
}

/// Prints a one-line outcome (and writes it as the Markdown summary, when asked).
fn say_only(line: &str, markdown: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    println!("{line}");
    if let Some(p) = markdown {
        std::fs::write(p, format!("{line}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `~/.cache/llmpulse/spool` (or under `$XDG_CACHE_HOME`): where runs wait when a store is down.
/// Where the cache directory cannot be created (a read-only home), the system's temporary
/// directory serves instead.
pub fn default_spool() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("llmpulse")
        .join("spool");
    if std::fs::create_dir_all(&cache).is_ok() {
        return cache;
    }
    let fallback = std::env::temp_dir().join("llmpulse-spool");
    tracing::warn!(
        spool = %cache.display(),
        instead = %fallback.display(),
        "cannot create the spool directory; using the temporary directory"
    );
    fallback
}

pub(crate) fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
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

/// Where this run runs, as its records and claims say: `LLMPULSE_ORIGIN` where set (a CI
/// runner's region, a vantage point's name), else `local:{hostname}`.
pub(crate) fn origin() -> String {
    std::env::var("LLMPULSE_ORIGIN")
        .ok()
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty())
        .unwrap_or_else(|| format!("local:{}", hostname()))
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}
