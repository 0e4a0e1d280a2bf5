//! `llmpulse`: the command-line binary. Parses arguments, sets up logging and the runtime, calls
//! the core, prints, and turns errors into exit codes in one place.

/// mimalloc: a run allocates and frees small buffers per chunk and per record on every worker
/// thread; glibc's allocator spent about an eighth of a zero-delay run's time there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod ab;
mod args;
mod campaign;
mod completions;
mod generate;
mod logging;
mod narrate;
mod plan;
mod quick;
mod ratesweep;
mod report;
mod rescore;
mod run;
mod score;
mod select;
mod signals;
mod sim;
mod suite;
mod synth;
mod synthetic;
mod table;
mod upload;
mod watch;

use std::io::ErrorKind;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use args::{CampaignCommand, Cli, Command, SuiteCommand};

/// The exit code of a run stopped by SIGTERM or Ctrl-C (published as partial).
pub const EXIT_STOPPED: u8 = 130;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        // A rate sweep (`--profile sweep`) is several runs; anything else one.
        Command::Run(a) => match a.profile.as_deref().and_then(ratesweep::steps) {
            Some(steps) => steps.and_then(|s| ratesweep::sweep(&a, run::config(&a, false)?, s)),
            None => run::config(&a, true).and_then(|c| run::run(a, c)),
        },
        Command::Sim(a) => sim::sim(a),
        Command::Suite(SuiteCommand::Check(a)) => suite::check(a),
        Command::Plan(a) => plan::plan(a),
        Command::Campaign(CampaignCommand::Status(a)) => campaign::status(a),
        Command::Upload(a) => upload::upload(a),
        Command::Report(a) => report::report(a),
        Command::Ab(a) => ab::ab(a),
        Command::Generate(a) => generate::generate(a),
        Command::Rescore(a) => rescore::rescore(a),
        Command::Judge(a) => rescore::judge(a),
        Command::Select(a) => select::select(a),
        Command::Synth(a) => synth::synth(a),
        Command::Score(a) => score::score(a),
        Command::Completions { shell } => Ok(completions::completions(shell, Cli::command())),
        Command::Man { dir } => completions::man(Cli::command(), &dir),
        // watch's exit codes: 0 nothing worse, 1 a regression, 2 an error.
        Command::Watch(a) => watch::watch(a).or_else(|e| {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(watch::EXIT_ERROR))
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`llmpulse run | head`) is not a failure.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
