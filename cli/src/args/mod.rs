//! The command line, as clap types. No logic here; `run.rs` holds `llmpulse run`'s flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod run;
pub use run::RunArgs;

#[derive(Parser)]
#[command(
    name = "llmpulse",
    version = env!("LLMPULSE_LONG_VERSION"),
    about = "Measure LLMs on a schedule and keep every measurement."
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "LLMPULSE_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a suite against every target once and write the records.
    #[command(after_help = "Examples:
  llmpulse run                                          # the built-in quickstart, simulated
  llmpulse run --url http://localhost:11434/v1 --model llama3.1:8b --model qwen2.5:7b \\
      --prompt \"Explain AI\" --prompt \"Write a poem\" --runs 5 --timeout 600 \\
      --output results.csv --quality-eval
  llmpulse run --provider groq --model llama-3.3-70b-versatile --prompts-file prompts.txt")]
    Run(RunArgs),
    /// Serve the OpenAI-compatible simulator over HTTP.
    Sim(SimArgs),
    /// Work with question suites.
    #[command(subcommand)]
    Suite(SuiteCommand),
    /// Print a campaign's slots and expected output, and check triggers against its cadence.
    Plan(PlanArgs),
    /// Campaigns: what ran, what is missing.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// Upload runs that wait in a spool because their store refused them.
    Upload(UploadArgs),
    /// Read runs back and write index.html, summary.md, comparison.txt and summary.json.
    Report(ReportArgs),
    /// Recommend the measured model for a task or agent type, under limits.
    Select(SelectArgs),
    /// Did anything change? Each target's latest window of runs against the baseline before
    /// it, per metric; regressions exit 1 (and, with --notify, are announced once).
    ///
    /// Examples:
    ///   llmpulse watch --from s3://bucket/llmpulse
    ///   llmpulse watch --from results --window 1d --baseline 7d --json
    ///   llmpulse watch --from results --config llmpulse.toml --notify
    #[command(verbatim_doc_comment)]
    Watch(WatchArgs),
    /// SYNTHETIC DATA for tests and benchmarks: write a made-up record history.
    Synth(SynthArgs),
    /// Score texts offline: BLEU, chrF, WER, CER, ROUGE, Jaccard; one JSON line per pair.
    Score(ScoreArgs),
    /// A/B test: two targets asked the same calls in rounds, with a verdict per metric.
    Ab(AbArgs),
    /// A generator target writes test cases, validators keep the good ones, and the kept
    /// cases become a suite.
    Generate(GenerateArgs),
    /// Grade stored answers again with today's scorers and suites, without calling any model;
    /// each run becomes a new, linked run at another location.
    Rescore(RescoreArgs),
    /// Have a judge target grade stored answers against their questions' rubrics (1–5); the
    /// judge's calls are records of their own (`role = "judge"`).
    Judge(JudgeArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell), e.g.
    /// `llmpulse completions bash > ~/.local/share/bash-completion/completions/llmpulse`.
    Completions { shell: clap_complete::Shell },
    /// Write the man pages (this command and each subcommand) into a folder.
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Args)]
pub struct GenerateArgs {
    /// A config with the generator and validator targets and a [generate] table.
    #[arg(long)]
    pub config: PathBuf,
    /// Where the cases, the suite and the calls' run go (a directory).
    #[arg(long)]
    pub output: PathBuf,
}

#[derive(Args)]
pub struct AbArgs {
    /// A config with the two targets (and the suite).
    #[arg(long)]
    pub config: PathBuf,
    /// Where the rounds' runs and the A/B files go (a directory).
    #[arg(long)]
    pub output: PathBuf,
    /// Target A (default: the config's first target).
    #[arg(long)]
    pub a: Option<String>,
    /// Target B (default: the config's second target).
    #[arg(long)]
    pub b: Option<String>,
    /// Rounds: each asks every call of both targets once more, in a new shuffled order.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Seeds the rounds' orders and the bootstrap.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Have this target of the config write `analysis_report.md` from `metrics_report.json`.
    #[arg(long)]
    pub narrate: Option<String>,
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct RescoreArgs {
    /// Where the runs are: a directory, s3://bucket/prefix or gs://bucket/prefix.
    #[arg(long)]
    pub from: String,
    /// Where the rescored runs go (not the same location: a report would count each call twice).
    #[arg(long)]
    pub to: String,
    /// The suites whose questions grade the answers (repeatable); by default the suite each
    /// run's manifest names, read from the current directory.
    #[arg(long)]
    pub suite: Vec<String>,
    /// Only the runs of this campaign.
    #[arg(long)]
    pub campaign: Option<String>,
}

#[derive(Args)]
pub struct JudgeArgs {
    #[command(flatten)]
    pub rescore: RescoreArgs,
    /// The config that defines the judge target.
    #[arg(long)]
    pub config: PathBuf,
    /// The judge: a target of the config, asked at temperature 0.
    #[arg(long, default_value = "judge")]
    pub judge: String,
}

#[derive(Args)]
pub struct ScoreArgs {
    /// Metrics, comma-separated: bleu, chrf, wer, cer, rouge1, rouge2, rougeL, jaccard,
    /// relevance, clarity, task_completion, distinct1, distinct2, schema_valid, field_accuracy.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "bleu,chrf,wer,cer,jaccard"
    )]
    pub metrics: Vec<String>,
    /// JSON Lines of {"hypothesis": …, "reference": …} (or "references": […]; "schema" and
    /// "golden" objects for schema_valid and field_accuracy, "keywords" for task_completion);
    /// `-` reads stdin.
    #[arg(long)]
    pub input: PathBuf,
    /// Add a last line with corpus BLEU and chrF over every pair.
    #[arg(long)]
    pub corpus: bool,
    /// ROUGE with rouge-score's Porter stemmer (`use_stemmer=True`).
    #[arg(long)]
    pub stem: bool,
}

/// Which records: where, when, which campaign and targets.
#[derive(Args)]
pub struct SourceArgs {
    /// Where the runs are: a directory, s3://bucket/prefix or gs://bucket/prefix.
    #[arg(long)]
    pub from: String,
    /// Only records sent at or after this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub since: Option<String>,
    /// Only records sent before this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub until: Option<String>,
    /// Only this campaign's runs.
    #[arg(long)]
    pub campaign: Option<String>,
    /// Only these targets (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
}

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The directory to write the report into.
    #[arg(long, short, default_value = "report")]
    pub out: PathBuf,
    /// Compare two targets (`--compare groq-8b openrouter-8b`) or two windows
    /// (`--compare 2026-11-01..2026-11-08 2026-11-08..2026-11-15`, with --target for one
    /// target; all targets together otherwise).
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    pub compare: Vec<String>,
    /// With two windows: compare this target only.
    #[arg(long)]
    pub target: Option<String>,
    /// A config whose [campaign] defines the expected slots (otherwise: up to the highest slot
    /// seen).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Time bucket of the charts (e.g. 1h, 6h, 1d); chosen from the span when absent.
    #[arg(long)]
    pub bucket: Option<humantime::Duration>,
    /// Have this target of --config write `analysis_report.md` from the figures; every number
    /// in it is checked against them. Without it no model is called.
    #[arg(long, requires = "config")]
    pub narrate: Option<String>,
    /// Also write the report into the store, under dashboard/ (index.html, summary.json,
    /// summary.md, and status.json for a shields.io badge), so the bucket shows the present.
    #[arg(long)]
    pub publish: bool,
}

#[derive(Args)]
pub struct WatchArgs {
    /// Where the runs are: a directory, s3://bucket/prefix or gs://bucket/prefix.
    #[arg(long)]
    pub from: String,
    /// A config whose [watch] table sets the defaults and whose [[notify]] tables say where
    /// alerts go.
    #[arg(long, short)]
    pub config: Option<std::path::PathBuf>,
    /// The window of runs that is "now": a duration (3d, 12h). Default 3d.
    #[arg(long, conflicts_with = "window_runs")]
    pub window: Option<humantime::Duration>,
    /// The window as each target's last N runs instead of a duration.
    #[arg(long)]
    pub window_runs: Option<usize>,
    /// Follow each target from each origin apart (`target @ origin`) when the runs come from
    /// several; the default with a config whose campaign says `per_origin = true`.
    #[arg(long)]
    pub by_origin: bool,
    /// How far before the window the baseline reaches. Default 14d.
    #[arg(long)]
    pub baseline: Option<humantime::Duration>,
    /// The window's end (RFC 3339 or YYYY-MM-DD); default now.
    #[arg(long)]
    pub until: Option<String>,
    /// Only these targets (repeat, or comma-separated).
    #[arg(long = "target", value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Only this campaign's runs.
    #[arg(long)]
    pub campaign: Option<String>,
    /// The Benjamini–Hochberg level over every test made. Default 0.01.
    #[arg(long)]
    pub q: Option<f64>,
    /// One JSON object per line: every finding, then every metric skipped and why.
    #[arg(long)]
    pub json: bool,
    /// Send alerts through the config's [[notify]] tables, once per regression.
    #[arg(long, requires = "config")]
    pub notify: bool,
    /// What makes the exit code 1: a regression (default), any regression or target without
    /// runs in the window, or never.
    #[arg(long, value_enum, default_value = "regression")]
    pub fail_on: FailOn,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Regression,
    Any,
    Never,
}

#[derive(Args)]
pub struct SelectArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Task type to choose for.
    #[arg(long, conflicts_with = "agent", required_unless_present = "agent",
          value_parser = clap::builder::PossibleValuesParser::new(llmpulse_report::select::TASKS))]
    pub task: Option<String>,
    /// Agent type to choose for (a weighting of tasks).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(llmpulse_report::select::AGENTS))]
    pub agent: Option<String>,
    /// Largest memory use in MB (targets without a memory measurement are left out).
    #[arg(long)]
    pub max_memory: Option<f64>,
    /// Smallest median output speed in tokens/s.
    #[arg(long)]
    pub min_speed: Option<f64>,
    /// Largest p95 latency in seconds.
    #[arg(long)]
    pub max_p95_latency: Option<f64>,
    /// Largest mean cost per call in USD, billed failures included (targets with no cost
    /// known are left out).
    #[arg(long, alias = "max-cost")]
    pub max_cost_per_call: Option<f64>,
    /// Largest cost per 1,000 calls in USD (targets with no cost known are left out).
    #[arg(long)]
    pub max_cost_per_1k: Option<f64>,
    /// Leave out the targets (sweep configurations) that throttled under load: any call the
    /// agent's sensors marked throttled.
    #[arg(long)]
    pub no_throttling: bool,
    /// Fewest calls a target needs to be considered.
    #[arg(long, default_value_t = llmpulse_report::select::MIN_CALLS)]
    pub min_calls: u64,
}

#[derive(Args)]
pub struct SynthArgs {
    /// Records to write (rounded up to whole runs).
    #[arg(long, default_value_t = 10_000)]
    pub records: u64,
    /// Targets per run.
    #[arg(long, default_value_t = 4)]
    pub targets: u32,
    /// Questions per target per run.
    #[arg(long, default_value_t = 20)]
    pub questions: u32,
    /// Time between runs.
    #[arg(long, default_value = "30m")]
    pub every: humantime::Duration,
    /// First run's start (RFC 3339); default: far enough back that the last run is now.
    #[arg(long)]
    pub start: Option<String>,
    /// Mark the runs as this campaign's slots.
    #[arg(long)]
    pub campaign: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Which history: `report` (targets that differ, one slowing down), `stable` (run-level
    /// noise and failure bursts, no change) or `changes` (`stable` with three regressions and
    /// one improvement in the last runs).
    #[arg(long, value_enum, default_value = "report")]
    pub scenario: crate::synthetic::Scenario,
    /// `changes`: how many runs the changes last.
    #[arg(long, default_value_t = 12)]
    pub change_runs: u64,
    /// `changes`: the run (0-based) they begin at; default: --change-runs before the end.
    #[arg(long)]
    pub change_from: Option<u64>,
    /// The directory to write into.
    #[arg(long, short)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct PlanArgs {
    /// The config with a [campaign].
    #[arg(long, short)]
    pub config: PathBuf,
    /// A trigger to check: `rate(5 minutes)`, `cron(0/5 * * * ? *)` or `*/51 * * * *`.
    /// May be given several times.
    #[arg(long)]
    pub trigger: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// Expected against present runs and records, missing and late slots, dead claims.
    Status(StatusArgs),
}

#[derive(Args)]
pub struct StatusArgs {
    /// The config with a [campaign].
    #[arg(long, short)]
    pub config: PathBuf,
    /// Where to read, overriding the config's `output`.
    #[arg(long)]
    pub from: Option<String>,
    /// Judge as of this time (RFC 3339) instead of now.
    #[arg(long)]
    pub now: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct UploadArgs {
    /// The spool directory (default ~/.cache/llmpulse/spool).
    #[arg(long)]
    pub spool: Option<PathBuf>,
    /// Upload here instead of where each run was going.
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Args)]
pub struct SimArgs {
    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 8089)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// A TOML file with `[default]` and `[models.NAME]` profiles; flags below change `[default]`.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Also answer the discovery endpoints of this server, for its models (the profile's
    /// `[models.NAME]`): ollama, lmstudio, vllm, llamacpp or exo.
    #[arg(long, value_parser = ["ollama", "lmstudio", "vllm", "llamacpp", "exo"])]
    pub kind: Option<String>,
    /// Serve https with this PEM certificate chain (with `--tls-key`); ALPN offers HTTP/2 and
    /// HTTP/1.1.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Wait this long after accepting a connection before the TLS handshake (a server whose
    /// set-up is slow by a known amount).
    #[arg(long, default_value_t = 0, requires = "tls_cert")]
    pub tls_handshake_delay_ms: u64,
    #[arg(long)]
    pub ttft_ms: Option<f64>,
    #[arg(long)]
    pub itl_ms: Option<f64>,
    #[arg(long)]
    pub jitter: Option<f64>,
    #[arg(long)]
    pub tokens_per_chunk: Option<u32>,
    #[arg(long)]
    pub output_tokens: Option<u32>,
    #[arg(long)]
    pub reasoning_tokens: Option<u32>,
    /// Never report usage.
    #[arg(long)]
    pub no_usage: bool,
    /// Start streams with content, not a role-only chunk.
    #[arg(long)]
    pub no_role_chunk: bool,
    #[arg(long)]
    pub recall: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub fault_429: Option<f64>,
    #[arg(long)]
    pub retry_after_sec: Option<f64>,
    #[arg(long)]
    pub fault_500: Option<f64>,
    #[arg(long)]
    pub fault_cut: Option<f64>,
    #[arg(long)]
    pub fault_malformed: Option<f64>,
    #[arg(long)]
    pub fault_error_event: Option<f64>,
    #[arg(long)]
    pub fault_slow_first_byte: Option<f64>,
    #[arg(long)]
    pub slow_first_byte_ms: Option<f64>,
    /// Rate of replies that never end (64 KiB chunks forever; an endless body when not streamed).
    #[arg(long)]
    pub fault_endless: Option<f64>,
    /// Rate of replies that send one line forever, never a newline.
    #[arg(long)]
    pub fault_line_without_end: Option<f64>,
    /// Rate of replies with a 1 MiB response header.
    #[arg(long)]
    pub fault_huge_headers: Option<f64>,
    /// Write tool calls in the answer text instead of natively: hermes, fenced_json, json,
    /// call_syntax.
    #[arg(long, value_parser = ["hermes", "fenced_json", "json", "call_syntax"])]
    pub tool_calls_in_text: Option<String>,
    /// Report this much memory (MB) for every model asked, on Ollama's `GET /api/ps`.
    #[arg(long)]
    pub memory_mb: Option<f64>,
    /// Report `usage.cost` at this price in USD per million tokens.
    #[arg(long)]
    pub cost_per_mtok: Option<f64>,
}

#[derive(Subcommand)]
pub enum SuiteCommand {
    /// Validate a suite and report key facts its context does not support.
    Check(SuiteCheckArgs),
}

#[derive(Args)]
pub struct SuiteCheckArgs {
    /// A suite file, or builtin:NAME.
    pub suite: String,
}
