//! `llmpulse-agent discover`: the LLM servers on this host and their models, as a table, JSON
//! or a ready config.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use llmpulse_agent::discover::{self, filter::Filter};

#[derive(clap::Args)]
pub struct DiscoverArgs {
    /// Also probe this server (a root or an API base URL); repeatable.
    #[arg(long = "url")]
    pub urls: Vec<String>,
    /// Probe only the --url servers, not the local presets' ports.
    #[arg(long)]
    pub no_local: bool,
    /// Leave out models whose file is larger than this many GB (1 GB = 10^9 bytes).
    #[arg(long, default_value_t = 15.0)]
    pub max_size_gb: f64,
    /// Keep only models matching this pattern (`*` matches anything); repeatable.
    #[arg(long = "include")]
    pub include: Vec<String>,
    /// Leave out models matching this pattern; repeatable.
    #[arg(long = "exclude")]
    pub exclude: Vec<String>,
    /// Print JSON (models left out carry `excluded` with the reason).
    #[arg(long)]
    pub json: bool,
    /// Write a ready config with one target per model kept.
    #[arg(long, value_name = "FILE")]
    pub write_config: Option<PathBuf>,
    /// The `output` of the written config.
    #[arg(long, default_value = "results")]
    pub output: String,
}

pub async fn discover(a: DiscoverArgs) -> anyhow::Result<ExitCode> {
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
