//! A run described on the command line instead of (or on top of) a config file, as the seed's
//! benchmark script and the peer tools take it: `--url`/`--provider` and `--model` make the
//! targets, `--prompt`/`--prompts-file` (and `--quality-eval`) the questions, and
//! `--output FILE.csv|.jsonl` one flat file of the records beside the store. The targets and
//! questions are written as config and suite TOML and read by the same parsers as a file, so
//! every check (presets, keys, ranges) is the same; errors name the flag.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;

use llmpulse_core::config::Config;
use llmpulse_core::preset;
use llmpulse_core::record::{self, Record};
use llmpulse_core::sink::RecordSink;
use llmpulse_core::suite::Suite;

use crate::args::RunArgs;

/// The suites `--quality-eval` adds: the seed's reasoning, creativity, knowledge and
/// instruction-following questions, graded as in the suites.
pub const QUALITY_SUITES: [&str; 4] = ["reasoning", "creativity", "knowledge", "instruction"];

/// Whether the command line describes targets or questions of its own.
pub fn wanted(a: &RunArgs) -> bool {
    a.local
        || a.url.is_some()
        || a.provider.is_some()
        || !a.model.is_empty()
        || !a.prompt.is_empty()
        || a.prompts_file.is_some()
        || a.quality_eval
}

/// The run's config: the file's (when given) with the command line's targets added, or the
/// command line's alone. Without `--model` the file's targets (or the quickstart's) stay.
pub fn config(a: &RunArgs, file: Option<Config>) -> anyhow::Result<Config> {
    if a.local {
        if a.provider.is_some() {
            bail!("--local measures the servers on this host, --provider a hosted API: give one");
        }
        return merge(local_text(a, &file)?, file, "--local");
    }
    if a.model.is_empty() {
        if a.url.is_some() || a.provider.is_some() {
            bail!(
                "--model: give the model to ask at least once (e.g. --model llama3.1:8b); \
                 --url and --provider say where, not what"
            );
        }
        return Ok(file.unwrap_or_else(Config::quickstart));
    }
    let provider = a.provider.as_deref().unwrap_or("openai-compatible");
    let Some(p) = preset::find(provider) else {
        bail!("--provider {provider}: unknown; one of {}", preset::names());
    };
    if a.url.is_none() && p.base_url.is_none() {
        bail!("--provider {provider} has no fixed address: give the server's --url too");
    }
    check_url(a)?;
    let text = config_text(a, provider, &file)?;
    merge(text, file, "--provider/--model/--url")
}

fn check_url(a: &RunArgs) -> anyhow::Result<()> {
    if let Some(url) = &a.url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        bail!("--url {url}: expected the server's base URL, http://… or https://…");
    }
    Ok(())
}

/// The command line's targets (config TOML `text`) parsed as a config file is, then added to
/// the file's targets when there is a file; `flags` name what the person typed in errors.
fn merge(text: String, file: Option<Config>, flags: &str) -> anyhow::Result<Config> {
    let env = |k: &str| std::env::var(k).ok();
    let cli = Config::parse(
        &text,
        "the command line",
        std::path::PathBuf::from("."),
        &env,
    )
    .map_err(|e| {
        // The generated TOML's line numbers mean nothing to the person who typed flags.
        let e = e.to_string();
        let said = e
            .strip_prefix("the command line:")
            .and_then(|r| r.split_once(": "))
            .map_or(e.as_str(), |(_, rest)| rest);
        anyhow::anyhow!("{flags}: {said}")
    })?;
    Ok(match file {
        Some(mut f) => {
            for t in cli.targets {
                if f.targets.iter().any(|x| x.name == t.name) {
                    bail!(
                        "--model {}: the config already has a target named '{}'",
                        t.model,
                        t.name
                    );
                }
                f.targets.push(t);
            }
            f
        }
        None => cli,
    })
}

/// `--local`: the LLM servers on this host (and `--url`), one target per model kept, as config
/// TOML; an error that says where it looked when nothing is there to measure.
fn local_text(a: &RunArgs, file: &Option<Config>) -> anyhow::Result<String> {
    use llmpulse_core::discover::{self, filter::Filter};
    if a.max_size_gb.is_nan() || a.max_size_gb <= 0.0 {
        bail!("--max-size-gb must be above 0, found {}", a.max_size_gb);
    }
    check_url(a)?;
    let urls: Vec<String> = a.url.iter().cloned().collect();
    let mut found = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(discover::discover(&urls, true));
    Filter {
        max_size_bytes: Some((a.max_size_gb * 1e9) as u64),
        include: a.model.clone(),
        exclude: Vec::new(),
    }
    .apply(&mut found);
    let kept = found
        .servers
        .iter()
        .flat_map(|s| &s.models)
        .filter(|m| m.excluded.is_none())
        .count();
    for s in &found.servers {
        for m in s.models.iter().filter(|m| m.excluded.is_none()) {
            eprintln!(
                "--local: {} at {} ({})",
                m.name,
                s.api_base,
                s.kind.preset()
            );
        }
    }
    if kept == 0 {
        let ports: Vec<String> = discover::LOCAL_PORTS
            .iter()
            .map(|(p, kind)| format!("{p} ({kind})"))
            .collect();
        let mut why = format!(
            "--local: no model to measure. Looked on 127.0.0.1 ports {}{}",
            ports.join(", "),
            a.url
                .as_ref()
                .map_or(String::new(), |u| format!(" and at {u}"))
        );
        for s in &found.servers {
            for m in &s.models {
                if let Some(e) = &m.excluded {
                    why.push_str(&format!("; {} at {} left out: {e}", m.name, s.url));
                }
            }
        }
        for s in &found.skipped {
            why.push_str(&format!(
                "; {} answered but is no LLM server: {}",
                s.url, s.why
            ));
        }
        bail!("{why}");
    }
    let mut t = String::from("suite = \"builtin:rag-retail-finance\"\n");
    if file.is_none() {
        // One call at a time: the models share this host's device.
        t.push_str("concurrency = 1\n");
    }
    t.push('\n');
    t.push_str(&discover::config::targets(&found, &target_options(a)));
    Ok(t)
}

/// Config TOML for the command line's targets, one per `--model`.
fn config_text(a: &RunArgs, provider: &str, file: &Option<Config>) -> anyhow::Result<String> {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut t = String::from("suite = \"builtin:rag-retail-finance\"\n");
    if file.is_none()
        && let Some(s) = a.timeout
    {
        t.push_str(&format!("timeout_sec = {s}\n"));
    }
    let mut names: Vec<String> = Vec::new();
    for model in &a.model {
        if model.trim().is_empty() {
            bail!("--model: an empty model name");
        }
        // A target name is a key part: `llama3.1:8b` → `llama3.1_8b`.
        let mut name = llmpulse_core::layout::safe_part(model);
        if name.is_empty() {
            name = "model".into();
        }
        let base = name.clone();
        let mut k = 2;
        while names.contains(&name) {
            name = format!("{base}-{k}");
            k += 1;
        }
        names.push(name.clone());
        t.push_str(&format!(
            "\n[[targets]]\nname = {}\nprovider = {}\nmodel = {}\n",
            q(&name),
            q(provider),
            q(model)
        ));
        if let Some(url) = &a.url {
            t.push_str(&format!("base_url = {}\n", q(url)));
        }
        t.push_str(&target_options(a));
    }
    Ok(t)
}

/// The settings every command-line target shares, as TOML lines.
fn target_options(a: &RunArgs) -> String {
    let mut t = String::new();
    if a.stream {
        t.push_str("stream = true\n");
    }
    if a.no_stream {
        t.push_str("stream = false\n");
    }
    if let Some(n) = a.max_tokens {
        t.push_str(&format!("max_tokens = {n}\n"));
    }
    if let Some(x) = a.temperature {
        t.push_str(&format!("temperature = {x}\n"));
    }
    if let Some(s) = a.timeout {
        t.push_str(&format!("timeout_sec = {s}\n"));
    }
    t
}

/// One line of `--prompts-file` as JSON: a prompt, and optionally what grades its answer.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptLine {
    prompt: String,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    schema: Option<serde_json::Value>,
    #[serde(default)]
    id: Option<String>,
}

/// A suite question as TOML writes it.
#[derive(Serialize)]
struct SuiteQuestion {
    id: String,
    industry: String,
    task: String,
    question: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<toml::Value>,
}

#[derive(Serialize)]
struct SuiteText {
    name: String,
    questions: Vec<SuiteQuestion>,
}

/// The questions the command line asks, or `None` to ask the config's suite.
pub fn suite(a: &RunArgs) -> anyhow::Result<Option<Suite>> {
    let mut lines: Vec<PromptLine> = a
        .prompt
        .iter()
        .map(|p| PromptLine {
            prompt: p.clone(),
            reference: None,
            schema: None,
            id: None,
        })
        .collect();
    if let Some(path) = &a.prompts_file {
        lines.extend(prompts_file(path)?);
    }
    let mut suites = Vec::new();
    if !lines.is_empty() {
        suites.push(prompt_suite(lines)?);
    }
    if a.quality_eval {
        for name in QUALITY_SUITES {
            suites.push(Suite::load(&format!("builtin:{name}"), Path::new("."))?);
        }
    }
    Ok(match suites.len() {
        0 => None,
        1 => suites.pop(),
        _ => Some(Suite::merge("command-line", suites)?),
    })
}

/// `--prompts-file`: one prompt a line, or JSON lines with `prompt` (and `reference`,
/// `schema`, `id`); blank lines and lines starting with `#` are skipped.
fn prompts_file(path: &Path) -> anyhow::Result<Vec<PromptLine>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--prompts-file {}: cannot read it", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('{') {
            let p: PromptLine = serde_json::from_str(line).map_err(|e| {
                anyhow::anyhow!(
                    "{}:{}: not a prompt line ({e}); a JSON line has \"prompt\" and optionally \
                     \"reference\", \"schema\" and \"id\"",
                    path.display(),
                    i + 1
                )
            })?;
            out.push(p);
        } else {
            out.push(PromptLine {
                prompt: line.to_string(),
                reference: None,
                schema: None,
                id: None,
            });
        }
    }
    if out.is_empty() {
        bail!("--prompts-file {}: no prompts in it", path.display());
    }
    Ok(out)
}

/// The prompts as a suite: a plain prompt is task `general`, one with a reference
/// `conversation` (BLEU, ROUGE, WER against it), one with a schema `structured_output`.
fn prompt_suite(lines: Vec<PromptLine>) -> anyhow::Result<Suite> {
    let mut questions = Vec::with_capacity(lines.len());
    for (i, l) in lines.into_iter().enumerate() {
        let schema = match l.schema {
            Some(s) => Some(
                toml::Value::try_from(&s)
                    .map_err(|e| anyhow::anyhow!("prompt {}: its schema: {e}", i + 1))?,
            ),
            None => None,
        };
        let task = if schema.is_some() {
            "structured_output"
        } else if l.reference.is_some() {
            "conversation"
        } else {
            "general"
        };
        questions.push(SuiteQuestion {
            id: l.id.unwrap_or_else(|| format!("prompt-{:02}", i + 1)),
            industry: "general".into(),
            task: task.into(),
            question: l.prompt,
            reference: l.reference,
            schema,
        });
    }
    let text = toml::to_string(&SuiteText {
        name: "command-line".into(),
        questions,
    })?;
    Ok(Suite::parse(&text, "--prompt")?)
}

/// `--output FILE.csv` or `FILE.jsonl`: one flat file of the run's records (seed columns
/// first), written as each call ends.
pub enum Flat {
    Csv(Box<csv::Writer<std::io::BufWriter<std::fs::File>>>, bool),
    Jsonl(std::io::BufWriter<std::fs::File>),
}

impl Flat {
    /// The flat file `output` names, if it names one.
    pub fn create(output: Option<&str>) -> anyhow::Result<Option<(Flat, String)>> {
        let Some(o) = output else { return Ok(None) };
        let lower = o.to_ascii_lowercase();
        let csv = lower.ends_with(".csv");
        if !csv && !lower.ends_with(".jsonl") {
            return Ok(None);
        }
        let file = std::fs::File::create(o).with_context(|| format!("--output {o}"))?;
        let w = std::io::BufWriter::new(file);
        let flat = if csv {
            Flat::Csv(Box::new(csv::Writer::from_writer(w)), true)
        } else {
            Flat::Jsonl(w)
        };
        Ok(Some((flat, o.to_string())))
    }

    pub fn finish(self) -> std::io::Result<()> {
        match self {
            Flat::Csv(mut w, _) => w.flush(),
            Flat::Jsonl(mut w) => w.flush(),
        }
    }
}

impl RecordSink for Flat {
    fn record(&mut self, r: &Record) -> std::io::Result<()> {
        match self {
            Flat::Csv(w, first) => {
                record::write_csv_row(w, r, *first).map_err(std::io::Error::other)?;
                *first = false;
            }
            Flat::Jsonl(w) => {
                serde_json::to_writer(&mut *w, r)?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    }
}
