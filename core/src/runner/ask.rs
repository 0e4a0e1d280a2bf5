//! One call's attempts: the run's and the target's permits, rate limits and pacing, the budget,
//! retries with backoff (or the wait the provider asked for), the run's deadline and the stop.
//! Gives the last attempt's outcome, holding its permits until the record is handed over.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::Semaphore;

use super::lane::{Lane, hold_for, worst_case};
use super::{RunOptions, Stop};
use crate::error_kind::ErrorKind;
use crate::provider::CallOutcome;
use crate::record::AttemptStats;
use crate::suite::Prompt;

/// How a call went across its attempts.
pub(super) struct Asked<'a> {
    pub(super) outcome: CallOutcome,
    pub(super) stats: AttemptStats,
    /// The permits of the last attempt, held until its record is handed to the sink: a slow
    /// sink then slows the start of new calls instead of piling finished answers up in memory.
    pub(super) _permits: Option<Permits<'a>>,
}

/// The run-wide permit and the target's own, if it has a cap.
type Permits<'a> = (
    Option<tokio::sync::SemaphorePermit<'a>>,
    Option<tokio::sync::SemaphorePermit<'a>>,
);

/// Asks one question of one lane: limits, retries with backoff or the provider's requested wait,
/// and the run's deadline. Returns the last attempt's outcome.
pub(super) async fn ask<'a>(
    lane: &'a Lane,
    prompt: &Prompt,
    weight: u32,
    global: &'a Semaphore,
    opts: &RunOptions,
) -> Asked<'a> {
    let policy = &lane.client.target().retry;
    let mut rng = ChaCha8Rng::from_rng(&mut rand::rng());
    let mut stats = AttemptStats::default();
    // The outcome of the attempt before a retry: what the record keeps if a stop ends the retry.
    let mut last: Option<CallOutcome> = None;
    if let Some((kind, message)) = &opts.not_started {
        return Asked {
            outcome: CallOutcome::not_sent(*kind, message.clone()),
            stats,
            _permits: None,
        };
    }
    loop {
        let queued = Instant::now();
        let admitted = async {
            // The semaphores are never closed: acquiring only waits.
            let global = global.acquire().await.ok();
            let own = match &lane.permits {
                Some(p) => p.acquire().await.ok(),
                None => None,
            };
            lane.admit(weight).await;
            // Then the pacing: a call holds its permits while the machine cools or the duty
            // cycle rests, so nothing else starts in the meantime either.
            let paused = match &opts.pace {
                Some(p) => p.before_call().await,
                None => Duration::ZERO,
            };
            (global, own, paused)
        };
        // A stop ends the wait for a permit: a call that never started is recorded at once.
        let stopped = async {
            match &opts.stop {
                Some(stop) => stop.wait_requested().await,
                None => std::future::pending().await,
            }
        };
        let permits = tokio::select! {
            permits = admitted => Some(permits),
            () = stopped => None,
        };
        let paused = permits.as_ref().map_or(Duration::ZERO, |p| p.2);
        stats.paused += paused;
        stats.queue_wait += queued.elapsed().saturating_sub(paused);
        let permits = permits.map(|(g, o, _)| (g, o));
        let Some(permits) = permits else {
            let outcome = last.unwrap_or_else(|| {
                CallOutcome::not_sent(
                    ErrorKind::SkippedCancelled,
                    "not started: the run was asked to stop".into(),
                )
            });
            return Asked {
                outcome,
                stats,
                _permits: None,
            };
        };
        if stats.attempts == 0 && opts.stop.as_ref().is_some_and(Stop::requested) {
            return Asked {
                outcome: CallOutcome::not_sent(
                    ErrorKind::SkippedCancelled,
                    "not started: the run was asked to stop".into(),
                ),
                stats,
                _permits: None,
            };
        }
        if let Some(deadline) = opts.deadline
            && Instant::now() + opts.deadline_margin >= deadline
            && stats.attempts == 0
        {
            return Asked {
                outcome: CallOutcome::not_sent(
                    ErrorKind::SkippedDeadline,
                    "not started: too close to the run's deadline".into(),
                ),
                stats,
                _permits: None,
            };
        }
        let hold = match &opts.budget {
            Some(budget) => match budget
                .reserve(worst_case(lane, prompt), hold_for(lane))
                .await
            {
                Ok(hold) => Some((budget, hold)),
                Err(why) => {
                    return Asked {
                        outcome: last.unwrap_or_else(|| {
                            CallOutcome::not_sent(
                                ErrorKind::SkippedBudget,
                                format!("not started: {why}"),
                            )
                        }),
                        stats,
                        _permits: None,
                    };
                }
            },
            None => None,
        };
        stats.attempts += 1;
        let outcome = {
            let _on_wire = InFlight::enter(&opts.in_flight);
            let _busy = crate::pace::OnWire::enter(opts.pace.as_deref());
            lane.client
                .call(prompt, opts.deadline, opts.stop.as_ref())
                .await
        };
        let cost = crate::record::attempt_cost(lane.client.target(), prompt, &outcome)
            .map_or(0.0, |(usd, _)| usd);
        if let Some((budget, hold)) = hold {
            budget.settle(hold, cost).await;
        }
        let Some(error) = &outcome.error else {
            return Asked {
                outcome,
                stats,
                _permits: Some(permits),
            };
        };
        if error.kind == ErrorKind::RateLimited {
            stats.rate_limited += 1;
        }
        let wait = policy.next_wait(
            stats.attempts,
            error.kind,
            outcome.rate_limit.retry_after,
            &mut rng,
        );
        let fits = |w: Duration| {
            opts.deadline
                .is_none_or(|d| Instant::now() + w + opts.deadline_margin < d)
                && !opts.stop.as_ref().is_some_and(Stop::requested)
        };
        match wait {
            Some(w) if fits(w) => {
                // No permit is held while waiting to retry.
                drop(permits);
                tracing::debug!(
                    target = %lane.client.target().name,
                    attempt = stats.attempts,
                    error = %error.kind,
                    wait_ms = w.as_millis() as u64,
                    "retrying"
                );
                tokio::time::sleep(w).await;
                stats.retry_wait += w;
                stats.earlier_cost_usd += cost;
                last = Some(outcome);
            }
            _ => {
                return Asked {
                    outcome,
                    stats,
                    _permits: Some(permits),
                };
            }
        }
    }
}

/// One request on the wire, counted in [`RunOptions::in_flight`] until dropped (also when its
/// call is cancelled).
struct InFlight<'a>(&'a AtomicU32);

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicU32) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        InFlight(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
