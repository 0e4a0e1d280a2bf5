//! `llmpulse-agent`: discover local LLM servers, run with hardware telemetry, serve a campaign.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use llmpulse_agent::discover::{self, filter::Filter};
use llmpulse_agent::run::{self, AgentIdentity};
use llmpulse_agent::serve::{self, ServeOptions};
use llmpulse_agent::sweep;
use llmpulse_core::config::Config;
use llmpulse_core::job::{JobOutcome, JobRequest};
use llmpulse_core::record::Record;
use llmpulse_core::runner::Stop;
use llmpulse_core::sink::Each;

#[derive(Parser)]
#[command(
    name = "llmpulse-agent",
    version,
    about = "The llmpulse agent: local servers, hardware telemetry, scheduled runs"
)]
struct Args {
    /// Log as JSON lines (for journald, launchd and log shippers).
    #[arg(long, global = true)]
    json_logs: bool,
    /// Keep the model servers busy at most this share of wall time (70% or 0.7), pausing
    /// between calls; over every config's `[agent] duty`.
    #[arg(long, global = true, value_parser = run::parse_duty)]
    duty: Option<f64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find the LLM servers on this host (the local presets' ports and any --url) and their models.
    Discover(DiscoverArgs),
    /// Run a config once, with hardware telemetry, and publish it.
    Run(RunArgs),
    /// Run the config's campaign on its schedule, serving /metrics and /health.
    Serve(ServeArgs),
    /// Start a server per configuration of a [sweep] (quantization, flash attention, KV cache,
    /// context, GPU layers) and run the suite against each, at each temperature.
    Sweep(SweepArgs),
    /// Run for hours: calls drawn by weight from seven scenarios, rotating between models,
    /// slower at night, with a live summary, model profiles and a morning report ([soak]).
    Soak(SoakArgs),
}

#[derive(clap::Args)]
struct SoakArgs {
    #[arg(long)]
    config: PathBuf,
    /// How long the soak runs (4h, 90m); overrides [soak] duration.
    #[arg(long)]
    duration: Option<humantime::Duration>,
    /// End at this local time (07:00); overrides [soak] until.
    #[arg(long)]
    until: Option<String>,
    /// Overrides the config's output.
    #[arg(long)]
    output: Option<String>,
    #[arg(long)]
    spool: Option<PathBuf>,
    /// Also soak the models found on this host's LLM servers (those under --max-size-gb).
    #[arg(long)]
    discover: bool,
    #[arg(long, default_value_t = 15.0)]
    max_size_gb: f64,
    /// Start the night-mode clock at this time (RFC 3339; its offset is the time zone), to try
    /// night mode by day.
    #[arg(long)]
    clock_start: Option<String>,
    /// Serve /metrics (the soak's counters, the hardware gauges) and /health here.
    #[arg(long)]
    listen: Option<SocketAddr>,
}

#[derive(clap::Args)]
struct SweepArgs {
    #[arg(long)]
    config: PathBuf,
    /// Print the points (and the ones skipped, with why) and start nothing.
    #[arg(long)]
    plan: bool,
    /// Overrides the config's output.
    #[arg(long)]
    output: Option<String>,
    #[arg(long)]
    spool: Option<PathBuf>,
}

#[derive(clap::Args)]
struct DiscoverArgs {
    /// Also probe this server (a root or an API base URL); repeatable.
    #[arg(long = "url")]
    urls: Vec<String>,
    /// Probe only the --url servers, not the local presets' ports.
    #[arg(long)]
    no_local: bool,
    /// Leave out models whose file is larger than this many GB (1 GB = 10^9 bytes).
    #[arg(long, default_value_t = 15.0)]
    max_size_gb: f64,
    /// Keep only models matching this pattern (`*` matches anything); repeatable.
    #[arg(long = "include")]
    include: Vec<String>,
    /// Leave out models matching this pattern; repeatable.
    #[arg(long = "exclude")]
    exclude: Vec<String>,
    /// Print JSON (models left out carry `excluded` with the reason).
    #[arg(long)]
    json: bool,
    /// Write a ready config with one target per model kept.
    #[arg(long, value_name = "FILE")]
    write_config: Option<PathBuf>,
    /// The `output` of the written config.
    #[arg(long, default_value = "results")]
    output: String,
}

#[derive(clap::Args)]
struct RunArgs {
    #[arg(long)]
    config: PathBuf,
    /// Overrides the config's output.
    #[arg(long)]
    output: Option<String>,
    #[arg(long)]
    repetitions: Option<u32>,
    #[arg(long)]
    concurrency: Option<u32>,
    /// Where runs are staged (default: the config's [agent] spool, else the user's cache).
    #[arg(long)]
    spool: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ServeArgs {
    #[arg(long)]
    config: PathBuf,
    /// Where /metrics and /health answer (default: the config's [agent] listen, 127.0.0.1:9464).
    #[arg(long)]
    listen: Option<SocketAddr>,
    #[arg(long)]
    spool: Option<PathBuf>,
    /// How long calls in flight may finish after SIGTERM.
    #[arg(long, default_value = "30s")]
    stop_grace: humantime::Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logs(args.json_logs);
    if let Some(d) = args.duty {
        let _ = run::DUTY.set(d);
    }
    match dispatch(args.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,llmpulse_agent=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn dispatch(c: Command) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    match c {
        Command::Discover(a) => runtime.block_on(discover_cmd(a)),
        Command::Run(a) => runtime.block_on(run_cmd(a)),
        Command::Serve(a) => runtime.block_on(serve_cmd(a)),
        Command::Sweep(a) => runtime.block_on(sweep_cmd(a)),
        Command::Soak(a) => runtime.block_on(soak_cmd(a)),
    }
}

fn default_spool(config: &Config) -> PathBuf {
    if let Some(s) = config.agent.as_ref().and_then(|a| a.spool.clone()) {
        return s;
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("llmpulse").join("agent-spool")
}

async fn discover_cmd(a: DiscoverArgs) -> anyhow::Result<ExitCode> {
    if a.max_size_gb.is_nan() || a.max_size_gb <= 0.0 {
        anyhow::bail!("--max-size-gb must be above 0, found {}", a.max_size_gb);
    }
    let mut found = discover::discover(&a.urls, !a.no_local).await;
    Filter {
        max_size_bytes: Some((a.max_size_gb * 1e9) as u64),
        include: a.include,
        exclude: a.exclude,
    }
    .apply(&mut found);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        print_table(&found);
    }
    if let Some(path) = &a.write_config {
        let id = llmpulse_agent::host::host_name();
        let text = discover::config::write(&found, &id, &a.output);
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        let kept: usize = found
            .servers
            .iter()
            .map(|s| s.models.iter().filter(|m| m.excluded.is_none()).count())
            .sum();
        eprintln!("wrote {} with {kept} targets", path.display());
    }
    Ok(if found.servers.is_empty() {
        eprintln!("no LLM server found");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_table(d: &discover::Discovery) {
    let mut t = comfy_table::Table::new();
    t.set_header([
        "server",
        "url",
        "version",
        "model",
        "size",
        "quant",
        "context",
        "loaded",
        "capabilities",
        "note",
    ]);
    for s in &d.servers {
        for m in &s.models {
            t.add_row([
                s.kind.preset().trim_end_matches("-native").to_string(),
                s.url.clone(),
                s.version.clone().unwrap_or_default(),
                m.name.clone(),
                m.size_bytes
                    .map_or(String::new(), |b| format!("{:.2} GB", b as f64 / 1e9)),
                m.quantization.clone().unwrap_or_default(),
                m.context_length.map_or(String::new(), |c| c.to_string()),
                m.loaded
                    .map_or(String::new(), |l| if l { "yes" } else { "no" }.into()),
                m.capabilities.join(","),
                m.excluded
                    .clone()
                    .map_or(String::new(), |e| format!("left out: {e}")),
            ]);
        }
    }
    println!("{t}");
    for s in &d.skipped {
        eprintln!("skipped {}: {}", s.url, s.why);
    }
}

async fn run_cmd(a: RunArgs) -> anyhow::Result<ExitCode> {
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

async fn serve_cmd(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let config = Config::load(&a.config, &env)?;
    let stop = Stop::new(*a.stop_grace);
    tokio::spawn(stop_on_signal(stop.clone()));
    let opts = ServeOptions {
        listen: a.listen,
        spool: a.spool.clone().unwrap_or_else(|| default_spool(&config)),
        stop,
        retry: std::time::Duration::from_secs(30),
    };
    let ended = serve::serve(config, opts, &env).await?;
    eprintln!("llmpulse-agent: {ended:?}");
    Ok(ExitCode::SUCCESS)
}

async fn sweep_cmd(a: SweepArgs) -> anyhow::Result<ExitCode> {
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

async fn soak_cmd(a: SoakArgs) -> anyhow::Result<ExitCode> {
    use llmpulse_agent::soak::{self, clock::Clock, run::SoakOptions, stats::ModelInfo};
    let env = |k: &str| std::env::var(k).ok();
    let mut config = Config::load(&a.config, &env)?;
    let text = std::fs::read_to_string(&a.config)
        .with_context(|| format!("cannot read {}", a.config.display()))?;
    let soak = soak::Soak::parse(&text, &a.config.display().to_string())?;
    if let Some(o) = a.output {
        config.output = o;
    }
    let until = match &a.until {
        None => None,
        Some(u) => Some(
            chrono::NaiveTime::parse_from_str(u, "%H:%M")
                .with_context(|| format!("--until {u}: write a local time as HH:MM"))?,
        ),
    };
    let clock = match &a.clock_start {
        Some(s) => {
            Clock::starting_at(chrono::DateTime::parse_from_rfc3339(s).with_context(|| {
                format!("--clock-start {s}: write RFC 3339, e.g. 2026-11-27T21:59:00+01:00")
            })?)
        }
        None => Clock::real(soak.timezone),
    };
    let mut discovered = Vec::new();
    if a.discover {
        let mut found = discover::discover(&[], true).await;
        Filter {
            max_size_bytes: Some((a.max_size_gb * 1e9) as u64),
            include: Vec::new(),
            exclude: Vec::new(),
        }
        .apply(&mut found);
        let text = discover::config::write(&found, "soak", &config.output);
        let found_config =
            Config::parse(&text, "discovered models", config.base_dir.clone(), &env)?;
        for t in found_config.targets {
            let info = found
                .servers
                .iter()
                .flat_map(|s| s.models.iter().map(move |m| (s, m)))
                .find(|(s, m)| discover::config::target_name(s.kind, &m.name) == t.name);
            discovered.push((
                t.clone(),
                ModelInfo {
                    model_id: t.model.clone(),
                    provider: t.provider.clone(),
                    size_gb: info.and_then(|(_, m)| m.size_bytes).map(|b| b as f64 / 1e9),
                    context_length: info
                        .and_then(|(_, m)| m.context_length)
                        .map(|c| c.min(u64::from(u32::MAX)) as u32),
                },
            ));
        }
        eprintln!("discovered {} model(s) to soak", discovered.len());
    }
    let spool = a.spool.clone().unwrap_or_else(|| default_spool(&config));
    let stop = Stop::new(std::time::Duration::from_secs(30));
    tokio::spawn(stop_on_signal(stop.clone()));
    let opts = SoakOptions {
        spool,
        stop,
        clock,
        duration: a.duration.map(Into::into),
        until,
        discovered,
        listen: a.listen,
    };
    let mut quiet = llmpulse_core::sink::Count::default();
    let out = soak::run::run_soak(&config, &soak, opts, &env, &mut quiet).await?;
    let s = &out.state.stats;
    println!(
        "soak '{}': {} calls, {} ok, {} segments, {} rotations{}",
        soak.name,
        s.all.calls,
        s.all.successes,
        s.segments,
        s.rotations,
        if out.finished {
            ""
        } else {
            " (stopped: run the same command to resume)"
        }
    );
    println!("summary   {}", out.summary.display());
    println!("profiles  {}", out.profiles.display());
    println!("report    {}", out.report.display());
    Ok(ExitCode::SUCCESS)
}

/// A bar of calls on a terminal; elsewhere (a service, a pipe) a log line every 10%.
fn progress_bar(total: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} calls  {elapsed_precise}  {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// The sink that moves the bar (or logs), naming the target of the call that just ended.
fn progress(bar: &indicatif::ProgressBar) -> Each<impl FnMut(&Record) + Send + '_> {
    let total = bar.length().unwrap_or(0) as usize;
    let mut done = 0usize;
    Each(move |r: &Record| {
        done += 1;
        if bar.is_hidden() {
            if done == total || done.is_multiple_of((total / 10).max(1)) {
                tracing::info!(done, total, target = %r.target, "progress");
            }
        } else {
            bar.inc(1);
            bar.set_message(r.target.clone());
        }
    })
}

/// SIGTERM or Ctrl-C asks the run to stop; a second one exits at once (the spool keeps the
/// journal, which the next start publishes).
async fn stop_on_signal(stop: Stop) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        for n in 0.. {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if n == 0 {
                tracing::warn!("stop requested by a signal");
                stop.request();
            } else {
                std::process::exit(130);
            }
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.request();
        }
    }
}
