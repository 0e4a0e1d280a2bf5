//! `llmpulse`: the command-line binary. Parses arguments, sets up logging and the runtime, calls
//! the core, prints, and turns errors into exit codes in one place.

mod args;
mod logging;
mod run;
mod sim;
mod suite;
mod table;

use std::io::ErrorKind;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, SuiteCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Sim(a) => sim::sim(a),
        Command::Suite(SuiteCommand::Check(a)) => suite::check(a),
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
