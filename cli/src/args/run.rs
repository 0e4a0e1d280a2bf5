//! `llmpulse run`'s flags: the config and its overrides, campaign slots and shards, load
//! profiles and SLOs, and a run described on the command line (`--url`, `--model`, `--local`…).

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Clone)]
pub struct RunArgs {
    /// The config file. Without it, the built-in quickstart runs (simulated targets, no keys).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Where to write records, overriding the config's `output` (a directory, s3:// or gs://);
    /// a name ending in .csv or .jsonl is one flat file of the records, written beside the
    /// config's output.
    #[arg(long, short)]
    pub output: Option<String>,
    /// Only these targets (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Override the config's `repetitions`: each question asked this many times per target.
    #[arg(long, visible_alias = "runs")]
    pub repetitions: Option<u32>,
    /// Override the config's `concurrency`.
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Stop starting calls this long after the start (e.g. `14m`); calls still in flight at the
    /// deadline are cancelled, unstarted ones recorded as `skipped_deadline`.
    #[arg(long)]
    pub deadline: Option<humantime::Duration>,
    /// How long before the deadline the last call may start (default 10s).
    #[arg(long)]
    pub deadline_margin: Option<humantime::Duration>,
    /// The most this run may spend, USD (overrides the config's `max_cost_usd`): each call
    /// reserves its worst case at its target's price first; a call that could pass the cap is
    /// recorded as `skipped_budget`, not made.
    #[arg(long, value_name = "USD")]
    pub max_cost_usd: Option<f64>,
    /// Run a campaign slot: `auto` (the slot due now) or a slot number. The slot is claimed
    /// with a create-only write first; if another run holds it, this exits cleanly.
    #[arg(long)]
    pub slot: Option<String>,
    /// With --slot N: take over a claim whose run died (older than the campaign's
    /// claim_timeout, no manifest).
    #[arg(long, requires = "slot")]
    pub reclaim: bool,
    /// Run only shard INDEX/COUNT of the calls (0-based), e.g. `0/3`: shards of one slot form
    /// one run, with a manifest each.
    #[arg(long)]
    pub shard: Option<String>,
    /// Use this run id (shards outside a campaign must share one, e.g. a CI run number).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Where a run waits if the store refuses it (default ~/.cache/llmpulse/spool).
    #[arg(long)]
    pub spool: Option<PathBuf>,
    /// Also write the summary as a Markdown table to this file (e.g. for a CI step summary).
    #[arg(long)]
    pub summary_markdown: Option<PathBuf>,
    /// No progress bar and no table: print only the manifest path.
    #[arg(long, short)]
    pub quiet: bool,
    /// On SIGTERM or Ctrl-C: no new call starts, calls in flight get this long to finish, then
    /// are cancelled; the run is published as partial. A second signal stops at once.
    #[arg(long, default_value = "5s")]
    pub stop_grace: humantime::Duration,
    /// How calls go out: synchronous, concurrent:N, throughput (every call at once), constant:RATE,
    /// poisson:RATE[,burstiness=B] (RATE in calls per second; open loops), or sweep[:STEPS]
    /// (a synchronous pass, a throughput pass, then STEPS constant rates between them).
    #[arg(long)]
    pub profile: Option<String>,
    /// A sweep's target: the share of calls that must meet the SLO at the highest rate it
    /// reports.
    #[arg(long, default_value_t = 0.95)]
    pub slo_target: f64,
    /// Service-level objectives each call is held to: ttft=500ms,tpot=50ms,e2e=10s (any).
    #[arg(long)]
    pub slo: Option<String>,
    /// Calls per target sent before the measured ones, not recorded.
    #[arg(long)]
    pub warmup: Option<u32>,

    /// An OpenAI-compatible server's base URL (Ollama, vLLM, llama.cpp, LM Studio…), e.g.
    /// http://localhost:11434/v1; measure it with --model.
    #[arg(long, help_heading = "Measure without a config file")]
    pub url: Option<String>,
    /// Measure the models of the LLM servers on this host (Ollama, LM Studio, vLLM, llama.cpp,
    /// Exo on their usual ports, and --url if given): every one under --max-size-gb, or those
    /// matching --model (`*` matches anything).
    #[arg(long, help_heading = "Measure without a config file")]
    pub local: bool,
    /// With --local: leave out models whose file is larger than this many GB (10^9 bytes).
    #[arg(
        long,
        value_name = "GB",
        default_value_t = 15.0,
        help_heading = "Measure without a config file"
    )]
    pub max_size_gb: f64,
    /// A provider preset for the --model targets (groq, openrouter, openai, anthropic, ollama…):
    /// its address and its key's variable (GROQ_API_KEY…).
    #[arg(long, help_heading = "Measure without a config file")]
    pub provider: Option<String>,
    /// A model to measure, one target each; repeat for several.
    #[arg(long, help_heading = "Measure without a config file")]
    pub model: Vec<String>,
    /// A prompt to ask (instead of the config's suite); repeat for several.
    #[arg(long, help_heading = "Measure without a config file")]
    pub prompt: Vec<String>,
    /// Prompts from a file: one a line, or JSON lines with "prompt" (and "reference" to score
    /// the answer against, "schema" it must follow, "id").
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Measure without a config file"
    )]
    pub prompts_file: Option<PathBuf>,
    /// Also ask the quality suites' questions (reasoning, creativity, knowledge, instruction
    /// following), graded as in the suites.
    #[arg(long, help_heading = "Measure without a config file")]
    pub quality_eval: bool,
    /// A call's time limit in seconds.
    #[arg(
        long,
        value_name = "SECS",
        help_heading = "Measure without a config file"
    )]
    pub timeout: Option<f64>,
    /// The most tokens an answer may have.
    #[arg(long, help_heading = "Measure without a config file")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[arg(long, help_heading = "Measure without a config file")]
    pub temperature: Option<f64>,
    /// Stream the answers (the default; times the first token).
    #[arg(
        long,
        conflicts_with = "no_stream",
        help_heading = "Measure without a config file"
    )]
    pub stream: bool,
    /// One JSON answer per call (no TTFT).
    #[arg(long, help_heading = "Measure without a config file")]
    pub no_stream: bool,
}
