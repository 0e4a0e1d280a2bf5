//! A run: every (question × target × repetition) asked once, with bounded concurrency, each
//! target's rate limits, retries and failover, within the run's deadline; each call turned into
//! a [`Record`]. A failed call is a record, never an error of the run.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::error_kind::ErrorKind;
use futures_util::StreamExt;

use crate::plan::{PlannedCall, Shard, plan};
use crate::record::{CallContext, Record};
use crate::sink::RecordSink;
pub use crate::stop::Stop;
use crate::suite::{Prompt, Suite};
use llmpulse_score as score;

mod ask;
mod build;
mod lane;
use ask::{Asked, ask};
use lane::{Lane, weight};

/// Who and what a run is, besides its configuration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_id: String,
    pub campaign: Option<String>,
    pub slot: Option<u64>,
    /// Where it runs: `local:HOST`, `lambda:REGION`, `agent:ID`.
    pub origin: String,
    /// When the run must be over (a Lambda's end, `--deadline`). No call starts later than
    /// `deadline − deadline_margin`; calls still in flight at the deadline are cancelled.
    pub deadline: Option<Instant>,
    pub deadline_margin: Duration,
    /// Run only this shard of the planned calls (Cloud Run Job tasks, CI matrices, parallel
    /// Lambda invocations); the shards of one run share its `run_id`.
    pub shard: Option<Shard>,
    /// Set when someone may ask the run to stop early.
    pub stop: Option<Stop>,
    /// Requests on the wire now: raised as a request is sent, lowered when its answer ends. An
    /// agent's telemetry samples it to share a device's energy between overlapping calls.
    pub in_flight: Arc<AtomicU32>,
    /// Set when the calls cannot be made at all (a sweep point whose server did not start):
    /// each planned call is recorded, not sent, with this error.
    pub not_started: Option<(ErrorKind, String)>,
    /// Spending limits: each attempt reserves its worst case first (see [`crate::budget`]).
    pub budget: Option<Arc<crate::budget::Budget>>,
    /// A duty cycle and a temperature guard awaited before each attempt (see [`crate::pace`]).
    pub pace: Option<Arc<crate::pace::Pace>>,
}

impl RunOptions {
    /// Options for a run with no deadline, campaign or slot.
    pub fn new(run_id: String, origin: String) -> Self {
        RunOptions {
            run_id,
            campaign: None,
            slot: None,
            origin,
            deadline: None,
            deadline_margin: Duration::from_secs(10),
            shard: None,
            stop: None,
            in_flight: Arc::new(AtomicU32::new(0)),
            not_started: None,
            budget: None,
            pace: None,
        }
    }
}

/// What a run did: who it was, when, and how many calls it planned and recorded. The records
/// themselves went to the run's [`RecordSink`].
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub config_hash: String,
    pub shard: Option<Shard>,
    /// Calls planned for this run (or shard), fallbacks not counted.
    pub planned: usize,
    /// Records handed to the sink (a fallback's answer is a record of its own).
    pub records: usize,
    pub successes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot build the HTTP client for target '{target}': {source}")]
    HttpClient {
        target: String,
        source: crate::provider::BuildError,
    },
    #[error("a call task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot keep the run's records: {0}")]
    Sink(std::io::Error),
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

/// What every call of a run shares.
struct Shared {
    lanes: Vec<Lane>,
    suite: Suite,
    prompts: Vec<Prompt>,
    /// Each question's RAG sources as terms, reduced once for every answer to score.
    sources: Vec<score::Sources>,
    opts: RunOptions,
    config_hash: String,
    keep_answers: bool,
    global: Semaphore,
    slo: Option<crate::load::Slo>,
}

/// Runs `suite` against the config's targets, handing each record to `sink` as its call ends
/// (a fallback's record right after the record of the call it stood in for). The records are
/// built on threads of their own at a lower priority ([`build`]) and cross a channel to the one
/// task that feeds the sink, so neither scoring nor a slow sink delays a stream's reads.
pub async fn run(
    config: &Config,
    suite: &Suite,
    opts: &RunOptions,
    sink: &mut dyn RecordSink,
) -> Result<RunOutput, RunError> {
    let started_at = Utc::now();
    let shared = Arc::new(Shared {
        lanes: config
            .targets
            .iter()
            .map(Lane::new)
            .collect::<Result<_, _>>()?,
        prompts: suite.questions.iter().map(|q| suite.prompt(q)).collect(),
        sources: suite
            .questions
            .iter()
            .map(|q| score::Sources::new(&q.context, &q.key_facts, &q.question))
            .collect(),
        suite: suite.clone(),
        opts: opts.clone(),
        config_hash: config_hash(config, suite),
        keep_answers: config.keep_answers,
        // An open loop sends each call at its time, whatever else is in flight.
        global: Semaphore::new(if config.load.profile.is_open() {
            Semaphore::MAX_PERMITS
        } else {
            config.concurrency as usize
        }),
        slo: config.load.slo,
    });
    let askable: Vec<usize> = (0..config.targets.len())
        .filter(|i| !config.targets[*i].fallback_only)
        .collect();
    let calls: Vec<PlannedCall> = plan(&askable, suite.questions.len(), config.repetitions)
        .into_iter()
        .enumerate()
        .filter(|(j, _)| {
            opts.shard
                .is_none_or(|s| *j as u64 % u64::from(s.count) == u64::from(s.index))
        })
        .map(|(_, c)| c)
        .collect();
    let mut calls = calls;
    if let Some(seed) = config.load.order_seed {
        use rand::seq::SliceRandom;
        calls.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    }
    let planned = calls.len();
    warm_up(&shared, &askable, config.load.warmup, config.concurrency).await;
    let schedule = config.load.profile.schedule(calls.len(), config.load.seed);
    // Calls are spawned as room frees up, not all at once: a waiting call costs its task's
    // memory, and a run of 100,000 calls must not hold 100,000 of them.
    let live = Arc::new(Semaphore::new(max_live(config)));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Record>(RECORD_QUEUE);
    let out = Arc::new(Out {
        builders: build::Builders::start(builder_threads()),
        records: tx,
    });
    let dispatch = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            let (start, start_utc) = (tokio::time::Instant::now(), Utc::now());
            for (k, call) in calls.into_iter().enumerate() {
                // Open loop: wait for the call's time, then send it whatever is in flight.
                let scheduled = schedule.get(k).map(|at| {
                    (
                        start + *at,
                        start_utc + chrono::Duration::from_std(*at).unwrap_or_default(),
                    )
                });
                if let Some((at, _)) = scheduled {
                    tokio::time::sleep_until(at).await;
                }
                let scheduled = scheduled.map(|(_, utc)| utc);
                let Ok(room) = live.clone().acquire_owned().await else {
                    break;
                };
                // Free the memory of the tasks that ended.
                while let Some(done) = tasks.try_join_next() {
                    done?;
                }
                let (shared, out) = (shared.clone(), out.clone());
                tasks.spawn(async move {
                    let _room = room;
                    one_call(&shared, &out, call, scheduled).await;
                });
            }
            // The last sender goes with the last call: then the sink's loop ends.
            drop(out);
            while let Some(done) = tasks.join_next().await {
                done?;
            }
            Ok::<(), tokio::task::JoinError>(())
        })
    };
    let (mut records, mut successes) = (0, 0);
    while let Some(record) = rx.recv().await {
        records += 1;
        successes += usize::from(record.success);
        // Records that finished together are written together: flushed once none waits.
        let written = sink
            .record(&record)
            .and_then(|()| if rx.is_empty() { sink.flush() } else { Ok(()) });
        if let Err(e) = written {
            // Dropping the dispatcher's task set cancels every call.
            dispatch.abort();
            return Err(RunError::Sink(e));
        }
    }
    sink.flush().map_err(RunError::Sink)?;
    dispatch.await??;
    Ok(RunOutput {
        run_id: opts.run_id.clone(),
        started_at,
        finished_at: Utc::now(),
        config_hash: shared.config_hash.clone(),
        shard: opts.shard,
        planned,
        records,
        successes,
    })
}

/// One planned call: asked of its target (then of its fallback, if it failed and has one), each
/// outcome handed to the builders, which send its record. The receiver lives until every call
/// has ended (or the run failed).
async fn one_call(
    shared: &Arc<Shared>,
    out: &Out,
    call: PlannedCall,
    scheduled: Option<DateTime<Utc>>,
) {
    let opts = &shared.opts;
    let prompt = &shared.prompts[call.question];
    let lane = &shared.lanes[call.target];
    let asked = ask(lane, prompt, weight(lane, prompt), &shared.global, opts).await;
    let target = lane.client.target();
    let fallback = match (&asked.outcome.error, &target.fallback) {
        (Some(e), Some(name))
            if !matches!(
                e.kind,
                ErrorKind::SkippedDeadline
                    | ErrorKind::SkippedCancelled
                    | ErrorKind::Cancelled
                    | ErrorKind::SkippedBudget
            ) =>
        {
            shared
                .lanes
                .iter()
                .position(|l| &l.client.target().name == name)
        }
        _ => None,
    };
    let primary = Who {
        lane: call.target,
        scheduled,
        failover_from: None,
        failover_to: fallback.map(|i| shared.lanes[i].client.target().name.clone()),
    };
    hand_over(shared, out, call, asked, primary).await;
    if let Some(fb) = fallback {
        let lane = &shared.lanes[fb];
        let answered = ask(lane, prompt, weight(lane, prompt), &shared.global, opts).await;
        let stand_in = Who {
            lane: fb,
            // A fallback goes out when its primary failed, not at a time of its own.
            scheduled: None,
            failover_from: Some(target.name.clone()),
            failover_to: None,
        };
        hand_over(shared, out, call, answered, stand_in).await;
    }
}

/// Where finished calls go: the builders, which send each record on to the sink's channel.
struct Out {
    builders: build::Builders,
    records: tokio::sync::mpsc::Sender<Record>,
}

/// Which lane a record is of, and how it stands to failover.
struct Who {
    lane: usize,
    scheduled: Option<DateTime<Utc>>,
    failover_from: Option<String>,
    failover_to: Option<String>,
}

/// Hands a finished call to a record builder and waits, still holding the call's permits,
/// until its record is sent: a slow sink slows new calls instead of piling answers up, and a
/// fallback's record follows its primary's.
async fn hand_over(shared: &Arc<Shared>, out: &Out, call: PlannedCall, asked: Asked<'_>, who: Who) {
    let Asked {
        mut outcome,
        stats,
        _permits,
    } = asked;
    let shared = shared.clone();
    let build = move || {
        let s = &*shared;
        let cx = CallContext {
            run_id: &s.opts.run_id,
            campaign: s.opts.campaign.as_deref(),
            slot: s.opts.slot,
            origin: &s.opts.origin,
            config_hash: &s.config_hash,
            keep_answers: s.keep_answers,
            target: s.lanes[who.lane].client.target(),
            question: &s.suite.questions[call.question],
            prompt: &s.prompts[call.question],
            repetition: call.repetition,
            stats: &stats,
            failover_from: who.failover_from.as_deref(),
            failover_to: who.failover_to.as_deref(),
            scheduled_at: who.scheduled,
            slo: s.slo.as_ref(),
            sources: Some(&s.sources[call.question]),
        };
        Record::from_call_taking(&cx, &mut outcome)
    };
    out.builders.build(out.records.clone(), build).await;
    drop(_permits);
}

/// Sends `n` calls to each target, the first question each time, before the measured calls, and
/// records none of them: connections are open and the server warm when measuring starts. A
/// target's warm-up calls go out together, up to the run's concurrency, so that `n` equal to the
/// concurrency opens every connection the measured calls will use.
async fn warm_up(shared: &Shared, targets: &[usize], n: u32, concurrency: u32) {
    if n == 0 || shared.prompts.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    let prompt = &shared.prompts[0];
    let at_once = n.min(concurrency.max(1)) as usize;
    let calls = targets.iter().flat_map(|&i| (0..n).map(move |_| i));
    futures_util::stream::iter(calls)
        .for_each_concurrent(at_once * targets.len().max(1), |i| async move {
            let lane = &shared.lanes[i];
            let _ = lane
                .client
                .call(prompt, shared.opts.deadline, shared.opts.stop.as_ref())
                .await;
        })
        .await;
    // hyper puts a connection back in its pool from the connection's own task, just after the
    // answer ends: give those returns a moment, or the first measured calls open new ones.
    tokio::time::sleep(Duration::from_millis(20)).await;
    tracing::info!(
        calls_per_target = n,
        seconds = started.elapsed().as_secs_f64(),
        "warm-up done (not recorded)"
    );
}

/// Records waiting for the sink at most; past it, finished calls wait to hand theirs over,
/// holding their permits. So at most `concurrency + RECORD_QUEUE` finished answers are in memory
/// however slow the sink, each at most `max_answer_bytes`.
const RECORD_QUEUE: usize = 64;

/// One record builder per core: scoring keeps up with the calls when the readers are idle, and
/// yields to them (a lower priority) when they are not.
fn builder_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Calls spawned and not yet ended at most: every call that can run (the run's concurrency)
/// and a queue behind it, so that limiters and retries still interleave targets.
fn max_live(config: &Config) -> usize {
    if config.load.profile.is_open() {
        // Every call in flight at once, if the server is that slow: a late call is a
        // measurement (its lag), not something to hold back.
        return 100_000;
    }
    (config.concurrency as usize * 8).max(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time() {
        let a = new_run_id("2026-01-02T03:04:05Z".parse().unwrap());
        let b = new_run_id("2026-01-02T03:04:06Z".parse().unwrap());
        assert!(a.starts_with("20260102T030405Z-"));
        assert!(a < b);
    }
}
