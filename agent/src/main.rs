//! `llmpulse-agent`: discover local LLM servers, run with hardware telemetry, serve a campaign.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use llmpulse_agent::run;

mod cmd;

#[derive(Parser)]
#[command(
    name = "llmpulse-agent",
    version = env!("LLMPULSE_LONG_VERSION"),
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
    Discover(cmd::discover::DiscoverArgs),
    /// Run a config once, with hardware telemetry, and publish it.
    Run(cmd::run::RunArgs),
    /// Run the config's campaign on its schedule, serving /metrics and /health.
    Serve(cmd::serve::ServeArgs),
    /// Start a server per configuration of a [sweep] (quantization, flash attention, KV cache,
    /// context, GPU layers) and run the suite against each, at each temperature.
    Sweep(cmd::sweep::SweepArgs),
    /// Run for hours: calls drawn by weight from seven scenarios, rotating between models,
    /// slower at night, with a live summary, model profiles and a morning report ([soak]).
    Soak(cmd::soak::SoakArgs),
    /// Ask a running agent's /health: exit 0 when it answers ok (a container's HEALTHCHECK).
    Health(cmd::health::HealthArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell), e.g.
    /// `llmpulse-agent completions bash > ~/.local/share/bash-completion/completions/llmpulse-agent`.
    Completions { shell: clap_complete::Shell },
    /// Write the man pages (this command and each subcommand) into a folder.
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
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
    let runtime = || tokio::runtime::Runtime::new();
    match c {
        Command::Discover(a) => runtime()?.block_on(cmd::discover::discover(a)),
        Command::Run(a) => runtime()?.block_on(cmd::run::run(a)),
        Command::Serve(a) => runtime()?.block_on(cmd::serve::serve(a)),
        Command::Sweep(a) => runtime()?.block_on(cmd::sweep::sweep(a)),
        Command::Soak(a) => runtime()?.block_on(cmd::soak::soak(a)),
        Command::Health(a) => Ok(cmd::health::health(a)),
        Command::Completions { shell } => Ok(cmd::completions::completions(shell, Args::command())),
        Command::Man { dir } => cmd::completions::man(Args::command(), &dir),
    }
}
