//! `llmpulse-agent soak`: hours of scenario calls rotating between models, with a live summary,
//! model profiles and a morning report.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use llmpulse_agent::discover::{self, filter::Filter};
use llmpulse_core::config::Config;
use llmpulse_core::runner::Stop;

use super::{default_spool, stop_on_signal};

#[derive(clap::Args)]
pub struct SoakArgs {
    #[arg(long)]
    pub config: PathBuf,
    /// How long the soak runs (4h, 90m); overrides [soak] duration.
    #[arg(long)]
    pub duration: Option<humantime::Duration>,
    /// End at this local time (07:00); overrides [soak] until.
    #[arg(long)]
    pub until: Option<String>,
    /// End after this many calls (or at the duration, whichever is first); overrides [soak]
    /// calls.
    #[arg(long)]
    pub calls: Option<u64>,
    /// Overrides the config's output.
    #[arg(long)]
    pub output: Option<String>,
    #[arg(long)]
    pub spool: Option<PathBuf>,
    /// Also soak the models found on this host's LLM servers (those under --max-size-gb).
    #[arg(long)]
    pub discover: bool,
    #[arg(long, default_value_t = 15.0)]
    pub max_size_gb: f64,
    /// Start the night-mode clock at this time (RFC 3339; its offset is the time zone), to try
    /// night mode by day.
    #[arg(long)]
    pub clock_start: Option<String>,
    /// Serve /metrics (the soak's counters, the hardware gauges) and /health here.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

pub async fn soak(a: SoakArgs) -> anyhow::Result<ExitCode> {
    use llmpulse_agent::soak::{self, clock::Clock, run::SoakOptions, stats::ModelInfo};
    let env = |k: &str| std::env::var(k).ok();
    let mut config = Config::load(&a.config, &env)?;
    let text = std::fs::read_to_string(&a.config)
        .with_context(|| format!("cannot read {}", a.config.display()))?;
    let mut soak = soak::Soak::parse(&text, &a.config.display().to_string())?;
    if let Some(n) = a.calls {
        anyhow::ensure!(n >= 1, "--calls {n}: give at least 1");
        soak.calls = Some(n);
    }
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
