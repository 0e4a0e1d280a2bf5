//! A run: every (question × target × repetition) called once, with bounded concurrency, each
//! call turned into a [`Record`]. A failed call is a record, never an error of the run.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::provider::Client;
use crate::provider::http::build_client;
use crate::record::{CallContext, Record};
use crate::suite::{Message, Suite};

/// Who and what a run is, besides its configuration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_id: String,
    pub campaign: Option<String>,
    pub slot: Option<u64>,
    /// Where it runs: `local:HOST`, `lambda:REGION`, `agent:ID`.
    pub origin: String,
}

/// The result of a run: its records in planned order, and when it happened.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub config_hash: String,
    pub records: Vec<Record>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("a call task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One planned call: indexes into the run's targets and questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedCall {
    pub target: usize,
    pub question: usize,
    pub repetition: u32,
}

/// Every call of a run, repetition-major and targets interleaved, so that each target is asked
/// evenly over the run's duration rather than one after another.
pub fn plan(targets: usize, questions: usize, repetitions: u32) -> Vec<PlannedCall> {
    let mut calls = Vec::with_capacity(targets * questions * repetitions as usize);
    for repetition in 0..repetitions {
        for question in 0..questions {
            for target in 0..targets {
                calls.push(PlannedCall {
                    target,
                    question,
                    repetition,
                });
            }
        }
    }
    calls
}

/// A new run id: the UTC start time and 24 random bits, sortable and unique per run.
pub fn new_run_id(now: DateTime<Utc>) -> String {
    let suffix: u32 = rand::rng().random_range(0..0x100_0000);
    format!("{}-{suffix:06x}", now.format("%Y%m%dT%H%M%SZ"))
}

/// The hash of everything that defines what a run measures: the config and the suite texts.
pub fn config_hash(config: &Config, suite: &Suite) -> String {
    let mut h = Sha256::new();
    h.update(config.sha256.as_bytes());
    h.update(b"\n");
    h.update(suite.sha256.as_bytes());
    hex::encode(h.finalize())[..16].to_string()
}

/// Runs `suite` against the config's targets. `on_record` sees each record as it completes
/// (for progress); the returned records are in planned order.
pub async fn run(
    config: &Config,
    suite: &Suite,
    opts: &RunOptions,
    on_record: Arc<dyn Fn(&Record) + Send + Sync>,
) -> Result<RunOutput, RunError> {
    let started_at = Utc::now();
    let http = build_client()?;
    let clients: Arc<Vec<Client>> = Arc::new(
        config
            .targets
            .iter()
            .map(|t| Client::new(t.clone(), &http))
            .collect(),
    );
    let messages: Arc<Vec<Vec<Message>>> =
        Arc::new(suite.questions.iter().map(|q| suite.messages(q)).collect());
    let suite = Arc::new(suite.clone());
    let hash: Arc<str> = config_hash(config, &suite).into();
    let opts = Arc::new(opts.clone());
    let keep_answers = config.keep_answers;
    let permits = Arc::new(Semaphore::new(config.concurrency as usize));

    let calls = plan(
        config.targets.len(),
        suite.questions.len(),
        config.repetitions,
    );
    let total = calls.len();
    let mut tasks = JoinSet::new();
    for (index, call) in calls.into_iter().enumerate() {
        let (clients, messages, suite, hash, opts, permits, on_record) = (
            clients.clone(),
            messages.clone(),
            suite.clone(),
            hash.clone(),
            opts.clone(),
            permits.clone(),
            on_record.clone(),
        );
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let client = &clients[call.target];
            let question = &suite.questions[call.question];
            let msgs = &messages[call.question];
            let outcome = client.call(msgs).await;
            let cx = CallContext {
                run_id: &opts.run_id,
                campaign: opts.campaign.as_deref(),
                slot: opts.slot,
                origin: &opts.origin,
                config_hash: &hash,
                keep_answers,
                target: client.target(),
                question,
                messages: msgs,
                repetition: call.repetition,
                attempts: 1,
            };
            let record = Record::from_call(&cx, &outcome);
            on_record(&record);
            (index, record)
        });
    }
    let mut slots: Vec<Option<Record>> = vec![None; total];
    while let Some(done) = tasks.join_next().await {
        let (index, record) = done?;
        slots[index] = Some(record);
    }
    Ok(RunOutput {
        run_id: opts.run_id.clone(),
        started_at,
        finished_at: Utc::now(),
        config_hash: hash.to_string(),
        records: slots.into_iter().flatten().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_every_combination_once_targets_interleaved() {
        let calls = plan(3, 2, 2);
        assert_eq!(calls.len(), 12);
        assert_eq!(
            calls[..3].iter().map(|c| c.target).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let mut seen: Vec<_> = calls
            .iter()
            .map(|c| (c.target, c.question, c.repetition))
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 12);
    }

    #[test]
    fn run_ids_sort_by_time() {
        let a = new_run_id("2026-01-02T03:04:05Z".parse().unwrap());
        let b = new_run_id("2026-01-02T03:04:06Z".parse().unwrap());
        assert!(a.starts_with("20260102T030405Z-"));
        assert!(a < b);
    }
}
