//! `--narrate TARGET` for `report` and `ab`: a target of the config writes the analysis, and
//! its numbers are checked against the figures (`llmpulse_report::narrate`).

use std::path::Path;

use anyhow::{Context, bail};
use llmpulse_core::config::Config;
use llmpulse_core::provider::Client;
use serde_json::Value;

/// Narrates `figures` with target `name` of `config` into `out`; returns the line to print.
pub fn narrate_with(
    config: Option<&Path>,
    name: &str,
    figures: &Value,
    source: &str,
    out: &Path,
) -> anyhow::Result<String> {
    let env = |k: &str| std::env::var(k).ok();
    let Some(path) = config else {
        bail!("--narrate needs --config, where the target '{name}' is defined");
    };
    let config = Config::load(path, &env)?;
    let Some(target) = config.targets.iter().find(|t| t.name == name).cloned() else {
        bail!("--narrate: no target named '{name}' in {}", path.display());
    };
    let client = Client::new(target).context("building the narrator's HTTP client")?;
    let runtime = tokio::runtime::Runtime::new()?;
    let (file, missing) = runtime
        .block_on(llmpulse_report::narrate::narrate(
            &client, figures, source, out,
        ))
        .map_err(anyhow::Error::msg)?;
    Ok(format!(
        "analysis written by {name}: {} ({missing} numbers not in the figures, marked)",
        file.display()
    ))
}
