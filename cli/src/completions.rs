//! `llmpulse completions SHELL` and `llmpulse man DIR`: shell completions and man
//! pages, generated from the command line's own definition so they cannot drift from it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

/// Prints the completion script for `shell` (bash, zsh, fish, elvish, powershell).
pub fn completions(shell: clap_complete::Shell, mut cmd: clap::Command) -> ExitCode {
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// Writes a man page for the command and one for each subcommand into `dir`.
pub fn man(cmd: clap::Command, dir: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(cmd, dir)
        .with_context(|| format!("cannot write man pages to {}", dir.display()))?;
    eprintln!("man pages written to {}", dir.display());
    Ok(ExitCode::SUCCESS)
}
