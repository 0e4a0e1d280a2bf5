//! One scheduled job, the same wherever it runs (CLI, Lambda, Cloud Run, GitHub Actions): pick
//! the slot, claim it with a create-only write, run, and publish the run to its store. Any
//! number of triggers may fire for the same slot; exactly one claim wins and the others end
//! cleanly with [`JobOutcome::AlreadyClaimed`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::config::{Config, ConfigError};
use crate::instrument::{Annotated, Instruments};
use crate::journal::Journal;
use crate::layout;
use crate::manifest::{Manifest, RunMeta};
use crate::plan::Shard;
use crate::publish::{self, OutputError, Publication};
use crate::runner::{self, RunError, RunOptions, Stop};
use crate::schedule::{Campaign, Claim, Slot};
use crate::sink::{Fanout, RecordSink};
use crate::store::{Created, Location, Store, StoreError};
use crate::suite::{Suite, SuiteError};
use crate::summary::{Summary, TargetSummary};

/// Which slot a job is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotChoice {
    /// Not a campaign run.
    None,
    /// The slot due now (or, with `catch_up`, the oldest unclaimed one).
    Auto,
    /// This slot.
    Index(u64),
}

/// What an entry point (the CLI, a cloud function, the agent) asks of one job, before it meets
/// the config. [`JobRequest::prepare`] applies it: the one place a job is assembled.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// Only these targets (all when empty).
    pub targets: Vec<String>,
    /// Overrides the config's `output`.
    pub output: Option<String>,
    pub repetitions: Option<u32>,
    pub concurrency: Option<u32>,
    /// A run id to use (shards of one run share it); a new one otherwise.
    pub run_id: Option<String>,
    /// `i/n`: run one shard of the calls.
    pub shard: Option<String>,
    pub slot: SlotChoice,
    /// Re-run a slot whose claim is older than the campaign's `claim_timeout` and has no
    /// manifest (its run died).
    pub reclaim: bool,
    /// When the run must be over (a Lambda's end, `--deadline`).
    pub deadline: Option<Instant>,
    pub deadline_margin: Option<Duration>,
    /// Where the run is staged while it runs, and kept when its store refuses it.
    pub spool: PathBuf,
    /// Where it runs: `local:HOST`, `lambda:REGION`, `agent:ID`.
    pub origin: String,
    /// The time the job acts at (the due slot depends on it).
    pub now: DateTime<Utc>,
    /// Asked to stop: no new call starts, calls in flight get a grace, then are cancelled.
    pub stop: Option<Stop>,
    /// Overrides the config's `max_cost_usd` (`--max-cost-usd`).
    pub max_cost_usd: Option<f64>,
    /// The questions to ask instead of the config's `suite` (prompts given on the command line).
    pub suite: Option<Suite>,
}

/// A job ready to run: the config with the request applied, its suite, and the run's options.
#[derive(Debug, Clone)]
pub struct Job {
    pub config: Config,
    pub suite: Suite,
    pub slot: SlotChoice,
    pub reclaim: bool,
    pub run: RunOptions,
    pub spool: PathBuf,
    pub now: DateTime<Utc>,
}

impl JobRequest {
    /// A request with nothing overridden.
    pub fn new(origin: String, spool: PathBuf, now: DateTime<Utc>) -> Self {
        JobRequest {
            targets: Vec::new(),
            output: None,
            repetitions: None,
            concurrency: None,
            run_id: None,
            shard: None,
            slot: SlotChoice::None,
            reclaim: false,
            deadline: None,
            deadline_margin: None,
            spool,
            origin,
            now,
            stop: None,
            max_cost_usd: None,
            suite: None,
        }
    }

    /// Applies the request to `config` and loads its suite. Every error names what to change.
    pub fn prepare(self, mut config: Config) -> Result<Job, JobError> {
        let bad = |m: String| JobError::Request(m);
        config.select_targets(&self.targets)?;
        if let Some(o) = self.output {
            config.output = o;
        }
        if let Some(r) = self.repetitions {
            if r == 0 {
                return Err(bad("--repetitions must be at least 1".into()));
            }
            config.repetitions = r;
        }
        if let Some(usd) = self.max_cost_usd {
            if !(usd > 0.0 && usd.is_finite()) {
                return Err(bad(format!(
                    "--max-cost-usd expects USD above 0, found {usd}"
                )));
            }
            config.max_cost_usd = Some(usd);
        }
        if let Some(c) = self.concurrency {
            if c == 0 {
                return Err(bad("--concurrency must be at least 1".into()));
            }
            config.concurrency = c;
        }
        Location::parse(&config.output)?;
        let suite = match self.suite {
            Some(s) => s,
            None => Suite::load(&config.suite, &config.base_dir)?,
        };
        let mut run = RunOptions::new(runner::new_run_id(self.now), self.origin);
        run.deadline = self.deadline;
        if let Some(m) = self.deadline_margin {
            run.deadline_margin = m;
        }
        run.stop = self.stop;
        if let Some(s) = &self.shard {
            run.shard = Some(Shard::parse(s).map_err(|m| bad(format!("--shard {m}")))?);
        }
        if let Some(id) = self.run_id {
            if !layout::is_safe_name(&id) {
                return Err(bad(format!(
                    "--run-id '{id}': use letters, digits, '-', '_' or '.', not starting with '.'"
                )));
            }
            run.run_id = id;
        }
        Ok(Job {
            config,
            suite,
            slot: self.slot,
            reclaim: self.reclaim,
            run,
            spool: self.spool,
            now: self.now,
        })
    }
}

impl Job {
    /// The calls this job will make (its shard's share), fallbacks not counted.
    pub fn planned_calls(&self) -> usize {
        let askable = self
            .config
            .targets
            .iter()
            .filter(|t| !t.fallback_only)
            .count();
        let planned = self.suite.questions.len() * askable * self.config.repetitions as usize;
        // A shard gets every count-th call, starting at its index.
        self.run.shard.map_or(planned, |s| {
            (planned + (s.count - 1 - s.index) as usize) / s.count as usize
        })
    }
}

/// How a job ended.
#[derive(Debug)]
pub enum JobOutcome {
    /// The run happened and was published (or spooled).
    Ran {
        manifest: Box<Manifest>,
        /// The per-target table.
        summary: Vec<TargetSummary>,
        publication: Publication,
    },
    /// Another job holds the slot's claim.
    AlreadyClaimed { slot: Slot, claim: Option<Claim> },
    /// No slot to run: before the start, after the end, or all caught up.
    NothingDue { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Request(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Suite(#[from] SuiteError),
    #[error("--slot needs a [campaign] in the config")]
    NoCampaign,
    #[error("campaign '{campaign}' has no slot {slot} (it has {count})")]
    NoSuchSlot {
        campaign: String,
        slot: u64,
        count: u64,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Runs one job: opens its store, claims its slot if it has one, runs it through a journal in
/// the spool, and publishes it. `progress` sees every record as it finishes.
pub async fn run_job(
    job: Job,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    progress: &mut dyn RecordSink,
) -> Result<JobOutcome, JobError> {
    run_job_with(job, env, progress, None).await
}

/// [`run_job`] with an agent's [`Instruments`]: the host goes into the manifest, the telemetry
/// series beside the records, and each record gets its hardware figures before any sink sees
/// it.
pub async fn run_job_with(
    job: Job,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    progress: &mut dyn RecordSink,
    mut instruments: Option<&mut dyn Instruments>,
) -> Result<JobOutcome, JobError> {
    let shared: std::sync::Arc<dyn Store> =
        std::sync::Arc::from(crate::store::open(&job.config.output, env).await?);
    let store = shared.as_ref();
    let planned = job.planned_calls();
    let Job {
        config,
        suite,
        slot,
        reclaim,
        mut run,
        spool,
        now,
    } = job;
    if slot != SlotChoice::None {
        let campaign = config.campaign.as_ref().ok_or(JobError::NoCampaign)?;
        match claim(campaign, store, slot, reclaim, &run, now).await? {
            Claimed::Won(slot) => {
                run.campaign = Some(campaign.name.clone());
                run.slot = Some(slot.index);
                if run.shard.is_some() {
                    // The shards of a slot are one run: they agree on its id.
                    run.run_id = slot_run_id(campaign, slot);
                }
            }
            Claimed::Taken(slot, claim) => return Ok(JobOutcome::AlreadyClaimed { slot, claim }),
            Claimed::Nothing(reason) => return Ok(JobOutcome::NothingDue { reason }),
        }
    }
    run.budget = budget(&config, &run, &shared);
    let suite_ref = if config.suite.starts_with("builtin:") {
        config.suite.clone()
    } else {
        format!("{} ({})", suite.name, config.suite)
    };
    let meta = RunMeta {
        run_id: run.run_id.clone(),
        started_at: Utc::now().to_rfc3339(),
        campaign: run.campaign.clone(),
        slot: run.slot,
        origin: run.origin.clone(),
        config_hash: runner::config_hash(&config, &suite),
        suite: suite_ref,
        targets: config.targets.iter().map(|t| t.name.clone()).collect(),
        shard: run.shard,
        planned: Some(planned),
        host: instruments.as_mut().and_then(|i| i.host()),
        rescored_from: None,
        server_metrics: None,
        budget: None,
        pace: None,
    };
    // Where `llmpulse upload` publishes the run if this process dies: a local directory as an
    // absolute path, so that it does not depend on where upload is run from.
    let destination = match Location::parse(&config.output)? {
        Location::Local(dir) => std::path::absolute(&dir)
            .unwrap_or(dir)
            .display()
            .to_string(),
        _ => config.output.clone(),
    };
    let mut journal = Journal::create(&spool, meta, &destination)?;
    let mut summary = Summary::default();
    if let Some(i) = instruments.as_mut() {
        let series = journal.telemetry_path();
        i.start(&series, run.in_flight.clone())
            .map_err(|cause| OutputError::Io {
                path: series,
                cause,
            })?;
    }
    let out = {
        let sinks = Fanout(vec![&mut journal, &mut summary, progress]);
        match instruments.as_mut() {
            Some(i) => {
                let mut annotated = Annotated {
                    instruments: &mut **i,
                    inner: sinks,
                };
                runner::run(&config, &suite, &run, &mut annotated).await
            }
            None => {
                let mut sinks = sinks;
                runner::run(&config, &suite, &run, &mut sinks).await
            }
        }
    };
    if let Some(i) = instruments.as_mut() {
        i.stop();
        journal.set_server_metrics(i.server_metrics());
    }
    journal.set_budget(run.budget.as_ref().map(|b| b.report()));
    journal.set_pace(run.pace.as_ref().map(|p| p.report()));
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            // What finished is in the journal: keep it as a partial run, then say why.
            let staged = journal.finish(Utc::now(), false)?;
            let _ = publish::publish(store, staged).await;
            return Err(e.into());
        }
    };
    let complete = out.records >= out.planned && !run.stop.as_ref().is_some_and(Stop::requested);
    let staged = journal.finish(out.finished_at, complete)?;
    let manifest = Box::new(staged.manifest.clone());
    let publication = publish::publish(store, staged).await;
    Ok(JobOutcome::Ran {
        manifest,
        summary: summary.table(),
        publication,
    })
}

/// The run's spending limits: its own cap, and the campaign's shared account when it runs a
/// slot of a campaign with a budget. A target without a price cannot be held back (its
/// worst case is unknown): said once, at the start.
fn budget(
    config: &Config,
    run: &RunOptions,
    store: &std::sync::Arc<dyn Store>,
) -> Option<std::sync::Arc<crate::budget::Budget>> {
    use crate::budget::{Account, Budget, CampaignLimits};
    let account = match (&run.campaign, &config.campaign) {
        (Some(name), Some(c)) if c.budget_usd.is_some() || c.daily_budget_usd.is_some() => {
            let writer = match run.shard {
                Some(s) => format!("{}-shard{}", run.run_id, s.index),
                None => run.run_id.clone(),
            };
            let limits = CampaignLimits {
                total_usd: c.budget_usd,
                daily_usd: c.daily_budget_usd,
            };
            Some(Account::new(store.clone(), name, limits, &writer))
        }
        _ => None,
    };
    let budget = Budget::new(config.max_cost_usd, account)?;
    for t in config.targets.iter().filter(|t| t.price.is_none()) {
        tracing::warn!(
            target = %t.name,
            "no price for this target: the budget counts what its provider reports, and cannot hold its calls back"
        );
    }
    Some(budget)
}

/// The run id all shards of a slot share: the campaign, the slot and its start.
pub fn slot_run_id(campaign: &Campaign, slot: Slot) -> String {
    format!(
        "{}-{}-slot{}",
        slot.start.format("%Y%m%dT%H%M%SZ"),
        campaign.name,
        slot.index
    )
}

enum Claimed {
    Won(Slot),
    Taken(Slot, Option<Claim>),
    Nothing(String),
}

async fn claim(
    campaign: &Campaign,
    store: &dyn Store,
    choice: SlotChoice,
    reclaim: bool,
    run: &RunOptions,
    now: DateTime<Utc>,
) -> Result<Claimed, JobError> {
    let candidates: Vec<Slot> = match choice {
        SlotChoice::Index(k) => vec![campaign.slot(k).ok_or(JobError::NoSuchSlot {
            campaign: campaign.name.clone(),
            slot: k,
            count: campaign.slot_count(),
        })?],
        _ => {
            let Some(due) = campaign.due(now) else {
                let reason = if now < campaign.start {
                    format!("campaign '{}' starts at {}", campaign.name, campaign.start)
                } else {
                    format!("campaign '{}' ended at {}", campaign.name, campaign.end)
                };
                return Ok(Claimed::Nothing(reason));
            };
            if campaign.catch_up {
                let prefix = layout::claims_prefix(&campaign.name);
                let claimed: std::collections::HashSet<String> =
                    store.list(&prefix).await?.into_iter().collect();
                let open: Vec<Slot> = campaign
                    .slots()
                    .take_while(|s| s.index <= due.index)
                    .filter(|s| !claimed.contains(&claim_key(campaign, s.index, run)))
                    .collect();
                if open.is_empty() { vec![due] } else { open }
            } else {
                vec![due]
            }
        }
    };
    let mut last_taken = None;
    for slot in candidates {
        let record = Claim {
            campaign: campaign.name.clone(),
            slot: slot.index,
            slot_start: slot.start,
            run_id: run.run_id.clone(),
            shard: run.shard,
            claimed_at: Utc::now(),
            origin: run.origin.clone(),
            llmpulse_version: crate::VERSION.to_string(),
        };
        let bytes = Bytes::from(serde_json::to_vec_pretty(&record).unwrap_or_default());
        let key = claim_key(campaign, slot.index, run);
        match store.create(&key, bytes.clone()).await? {
            Created::Won => return Ok(Claimed::Won(slot)),
            Created::Exists => {
                let existing: Option<Claim> = store
                    .get(&key)
                    .await?
                    .and_then(|b| serde_json::from_slice(&b).ok());
                if reclaim
                    && let Some(old) = &existing
                    && dead(campaign, store, old, now).await?
                {
                    tracing::warn!(slot = slot.index, old_run = %old.run_id, "re-running a slot whose run died");
                    store.put(&key, bytes).await?;
                    return Ok(Claimed::Won(slot));
                }
                last_taken = Some((slot, existing));
            }
        }
    }
    let (slot, claim) = last_taken.expect("at least one candidate slot");
    Ok(Claimed::Taken(slot, claim))
}

/// The key of this run's claim of slot `index`: per origin where the campaign says so.
fn claim_key(campaign: &Campaign, index: u64, run: &RunOptions) -> String {
    let origin = campaign.per_origin.then_some(run.origin.as_str());
    layout::claim_key(&campaign.name, index, run.shard, origin)
}

/// Whether a claim's run died: old enough, and no manifest.
pub async fn dead(
    campaign: &Campaign,
    store: &dyn Store,
    claim: &Claim,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let age = (now - claim.claimed_at).to_std().unwrap_or_default();
    if age < campaign.claim_timeout {
        return Ok(false);
    }
    Ok(store
        .get(&layout::manifest_key(&claim.run_id, claim.shard))
        .await?
        .is_none())
}
