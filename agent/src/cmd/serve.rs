//! `llmpulse-agent serve`: the config's campaign on its schedule, with /metrics and /health.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use llmpulse_agent::serve::{self, ServeOptions};
use llmpulse_core::config::Config;
use llmpulse_core::runner::Stop;

use super::{default_spool, stop_on_signal};

#[derive(clap::Args)]
pub struct ServeArgs {
    #[arg(long)]
    pub config: PathBuf,
    /// Where /metrics and /health answer (default: the config's [agent] listen, 127.0.0.1:9464).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    #[arg(long)]
    pub spool: Option<PathBuf>,
    /// How long calls in flight may finish after SIGTERM.
    #[arg(long, default_value = "30s")]
    pub stop_grace: humantime::Duration,
}

pub async fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
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
