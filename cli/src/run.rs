//! `llmpulse run`: load the config and suite, run, write, summarise.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use llmpulse_core::config::Config;
use llmpulse_core::record::Record;
use llmpulse_core::runner::{self, RunOptions};
use llmpulse_core::suite::Suite;
use llmpulse_core::{output, summary};

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
    anyhow::ensure!(
        !config.output.contains("://"),
        "output '{}': only local directories are supported so far (S3 and GCS are coming)",
        config.output
    );
    let suite = Suite::load(&config.suite, &config.base_dir)?;

    let started = chrono::Utc::now();
    let mut opts = RunOptions::new(runner::new_run_id(started), format!("local:{}", hostname()));
    opts.deadline = a.deadline.map(|d| std::time::Instant::now() + *d);
    if let Some(m) = a.deadline_margin {
        opts.deadline_margin = *m;
    }
    let total = suite.questions.len() * config.targets.len() * config.repetitions as usize;
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

    let runtime = tokio::runtime::Runtime::new()?;
    let out = runtime.block_on(runner::run(&config, &suite, &opts, on_record))?;
    progress.finish_and_clear();

    let targets: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    let suite_ref = if config.suite.starts_with("builtin:") {
        config.suite.clone()
    } else {
        format!("{} ({})", suite.name, config.suite)
    };
    let encoded = output::encode(&out, &suite_ref, &targets, &opts.origin)?;
    let manifest = &encoded.manifest;
    let dir = Path::new(&config.output);
    let manifest_path = output::write_local(dir, &encoded)
        .with_context(|| format!("writing the run to {}", dir.display()))?;

    tracing::info!(
        run_id = %out.run_id,
        records = manifest.records,
        successes = manifest.successes,
        manifest = %manifest_path.display(),
        "run written"
    );
    if a.quiet {
        println!("{}", manifest_path.display());
    } else {
        let secs = (out.finished_at - out.started_at).num_milliseconds() as f64 / 1000.0;
        println!(
            "run {}: {} records ({} ok) in {secs:.1} s",
            out.run_id, manifest.records, manifest.successes
        );
        println!("{}", table::render(&summary::by_target(&out.records)));
        for f in &encoded.files {
            println!("  {}", dir.join(&f.key).display());
        }
        println!("  {}", manifest_path.display());
    }
    Ok(ExitCode::SUCCESS)
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
