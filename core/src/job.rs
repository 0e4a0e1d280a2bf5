//! One scheduled job, the same wherever it runs (CLI, Lambda, Cloud Run, GitHub Actions): pick
//! the slot, claim it with a create-only write, run, and publish the run to its store. Any
//! number of triggers may fire for the same slot; exactly one claim wins and the others end
//! cleanly with [`JobOutcome::AlreadyClaimed`].

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::output::{self, Manifest, OutputError, Publication};
use crate::record::Record;
use crate::runner::{self, RunError, RunOptions};
use crate::schedule::{Campaign, Claim, Slot};
use crate::store::{Created, Store, StoreError};
use crate::suite::Suite;

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

/// What a job was asked to do.
#[derive(Debug, Clone)]
pub struct JobOptions {
    pub slot: SlotChoice,
    /// Re-run a slot whose claim is older than the campaign's `claim_timeout` and has no
    /// manifest (its run died).
    pub reclaim: bool,
    pub run: RunOptions,
    /// Where a run waits when the store refuses it (remote stores only).
    pub spool: Option<PathBuf>,
    /// The time the job acts at (the due slot depends on it).
    pub now: DateTime<Utc>,
}

/// How a job ended.
#[derive(Debug)]
pub enum JobOutcome {
    /// The run happened and was published (or spooled).
    Ran {
        manifest: Box<Manifest>,
        records: Vec<Record>,
        publication: Publication,
    },
    /// Another job holds the slot's claim.
    AlreadyClaimed { slot: Slot, claim: Option<Claim> },
    /// No slot to run: before the start, after the end, or all caught up.
    NothingDue { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("--slot needs a [campaign] in the config")]
    NoCampaign,
    #[error("campaign '{campaign}' has no slot {slot} (it has {count})")]
    NoSuchSlot {
        campaign: String,
        slot: u64,
        count: u64,
    },
    #[error("claim: {0}")]
    Claim(#[from] StoreError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Runs one job.
pub async fn run_job(
    config: &Config,
    suite: &Suite,
    store: &dyn Store,
    mut opts: JobOptions,
    on_record: Arc<dyn Fn(&Record) + Send + Sync>,
) -> Result<JobOutcome, JobError> {
    if opts.slot != SlotChoice::None {
        let campaign = config.campaign.as_ref().ok_or(JobError::NoCampaign)?;
        match claim(campaign, store, &opts).await? {
            Claimed::Won(slot) => {
                opts.run.campaign = Some(campaign.name.clone());
                opts.run.slot = Some(slot.index);
                if opts.run.shard.is_some() {
                    // The shards of a slot are one run: they agree on its id.
                    opts.run.run_id = slot_run_id(campaign, slot);
                }
            }
            Claimed::Taken(slot, claim) => return Ok(JobOutcome::AlreadyClaimed { slot, claim }),
            Claimed::Nothing(reason) => return Ok(JobOutcome::NothingDue { reason }),
        }
    }
    let out = runner::run(config, suite, &opts.run, on_record).await?;
    let targets: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    let suite_ref = if config.suite.starts_with("builtin:") {
        config.suite.clone()
    } else {
        format!("{} ({})", suite.name, config.suite)
    };
    let encoded = output::encode(&out, &suite_ref, &targets, &opts.run.origin)?;
    let publication = output::publish(store, &encoded, opts.spool.as_deref()).await?;
    Ok(JobOutcome::Ran {
        manifest: Box::new(encoded.manifest),
        records: out.records,
        publication,
    })
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
    opts: &JobOptions,
) -> Result<Claimed, JobError> {
    let candidates: Vec<Slot> = match opts.slot {
        SlotChoice::Index(k) => vec![campaign.slot(k).ok_or(JobError::NoSuchSlot {
            campaign: campaign.name.clone(),
            slot: k,
            count: campaign.slot_count(),
        })?],
        _ => {
            let Some(due) = campaign.due(opts.now) else {
                let reason = if opts.now < campaign.start {
                    format!("campaign '{}' starts at {}", campaign.name, campaign.start)
                } else {
                    format!("campaign '{}' ended at {}", campaign.name, campaign.end)
                };
                return Ok(Claimed::Nothing(reason));
            };
            if campaign.catch_up {
                let prefix = format!("claims/{}/", campaign.name);
                let claimed: std::collections::HashSet<String> =
                    store.list(&prefix).await?.into_iter().collect();
                let open: Vec<Slot> = campaign
                    .slots()
                    .take_while(|s| s.index <= due.index)
                    .filter(|s| !claimed.contains(&campaign.claim_key(s.index, opts.run.shard)))
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
            run_id: opts.run.run_id.clone(),
            shard: opts.run.shard,
            claimed_at: Utc::now(),
            origin: opts.run.origin.clone(),
            llmpulse_version: crate::VERSION.to_string(),
        };
        let bytes = Bytes::from(serde_json::to_vec_pretty(&record).unwrap_or_default());
        let key = campaign.claim_key(slot.index, opts.run.shard);
        match store.create(&key, bytes.clone()).await? {
            Created::Won => return Ok(Claimed::Won(slot)),
            Created::Exists => {
                let existing: Option<Claim> = store
                    .get(&key)
                    .await?
                    .and_then(|b| serde_json::from_slice(&b).ok());
                if opts.reclaim
                    && let Some(old) = &existing
                    && dead(campaign, store, old, opts.now).await?
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
        .get(&output::manifest_key(&claim.run_id, claim.shard))
        .await?
        .is_none())
}
