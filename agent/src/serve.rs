//! `llmpulse-agent serve`: the daemon. An embedded scheduler runs the campaign's due slots with
//! the same create-only claims as the cloud functions (so agents on several machines and the
//! cloud can share one store), publishes runs the store refused once it takes them again, and
//! serves `/metrics` and `/health`. A restart loses nothing: claims live in the store, runs in
//! the spool. A stop (SIGTERM) ends the run going on as a partial run and returns.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use chrono::{DateTime, Utc};
use llmpulse_core::config::Config;
use llmpulse_core::job::{JobError, JobOutcome, JobRequest, SlotChoice};
use llmpulse_core::publish::{self, Publication};
use llmpulse_core::runner::Stop;
use llmpulse_core::schedule::Campaign;
use llmpulse_core::sink::Count;
use llmpulse_core::store;

use crate::metrics::{self, Shared};
use crate::run::{self, AgentIdentity};

/// How `serve` runs.
pub struct ServeOptions {
    /// Overrides `[agent] listen`.
    pub listen: Option<SocketAddr>,
    pub spool: PathBuf,
    pub stop: Stop,
    /// How long to wait before trying a store again.
    pub retry: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "serve needs a [campaign] in the config: it runs the campaign's slots as they come due"
    )]
    NoCampaign,
    #[error("cannot serve /metrics on {addr}: {cause}")]
    Listen {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Job(#[from] JobError),
}

/// Why the daemon returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The campaign's last slot is past.
    CampaignOver,
    /// Asked to stop.
    Stopped,
}

/// Publishes every run waiting in the spool; a store still down keeps them there.
pub(crate) async fn flush_spool(
    spool: &std::path::Path,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) {
    let runs = match publish::read_spool(spool) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("cannot read the spool: {e}");
            return;
        }
    };
    for spooled in runs {
        let run_id = spooled.run.manifest.run_id.clone();
        let store = match store::open(&spooled.run.destination, env).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(run_id, "store still unavailable: {e}");
                continue;
            }
        };
        match publish::publish(store.as_ref(), spooled.run).await {
            Publication::Stored { .. } => tracing::info!(run_id, "uploaded a spooled run"),
            Publication::Spooled { .. } => tracing::warn!(run_id, "store still refuses the run"),
        }
    }
}

/// When the loop should look again: the next slot's start, or `retry` after a failure.
fn next_wake(campaign: &Campaign, now: DateTime<Utc>, retry: Option<Duration>) -> Duration {
    let next_slot = match campaign.due(now) {
        Some(s) => campaign.slot(s.index + 1).map(|n| n.start),
        None if now < campaign.start => Some(campaign.start),
        None => None,
    };
    let until_slot = next_slot
        .map(|t| (t - now).to_std().unwrap_or_default())
        .unwrap_or(campaign.interval());
    match retry {
        Some(r) => until_slot.min(r),
        None => until_slot,
    }
    .max(Duration::from_millis(50))
}

/// Runs the daemon until the campaign is over or `opts.stop` is requested.
pub async fn serve(
    config: Config,
    opts: ServeOptions,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Ended, ServeError> {
    let campaign = config.campaign.clone().ok_or(ServeError::NoCampaign)?;
    let id = AgentIdentity::of(&config);
    let mut telemetry = run::telemetry_for(&config, &id).await;
    for a in telemetry.absent() {
        tracing::info!(source = a.source, why = %a.why, "telemetry source absent");
    }
    let shared = Shared::new(telemetry.handle(), opts.spool.clone(), id.host_id.clone());
    let listen = opts
        .listen
        .or(config.agent.as_ref().map(|a| a.listen))
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9464)));
    let bound = metrics::spawn(listen, shared.clone())
        .await
        .map_err(|cause| ServeError::Listen {
            addr: listen,
            cause,
        })?;
    tracing::info!(%bound, campaign = %campaign.name, host_id = %id.host_id, "agent serving");
    println!(
        "llmpulse-agent serving http://{bound}/metrics for campaign '{}'",
        campaign.name
    );

    let mut handled: BTreeSet<u64> = BTreeSet::new();
    loop {
        if opts.stop.requested() {
            return Ok(Ended::Stopped);
        }
        flush_spool(&opts.spool, env).await;
        let now = Utc::now();
        if now >= campaign.end {
            tracing::info!(campaign = %campaign.name, "the campaign is over");
            return Ok(Ended::CampaignOver);
        }
        let mut retry = None;
        if let Some(due) = campaign.due(now)
            && !handled.contains(&due.index)
        {
            let request = JobRequest {
                slot: SlotChoice::Auto,
                stop: Some(opts.stop.clone()),
                ..JobRequest::new(id.origin(), opts.spool.clone(), now)
            };
            let job = request.prepare(config.clone())?;
            // The servers as they are now: a model may have been swapped since the last run.
            let servers = run::servers_of(&config).await;
            let fingerprint = crate::host::fingerprint(&id.host_id, &telemetry, &servers);
            telemetry.set_fingerprint(fingerprint);
            *shared.in_flight.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(job.run.in_flight.clone());
            let outcome = run::run(job, &mut telemetry, env, &mut Count::default()).await;
            *shared.in_flight.lock().unwrap_or_else(|e| e.into_inner()) = None;
            // The status is updated under its lock; what the campaign asks after a slot runs
            // after the lock is released.
            let ran = {
                let mut st = shared.status.lock().unwrap_or_else(|e| e.into_inner());
                match outcome {
                    Ok(JobOutcome::Ran {
                        manifest,
                        summary,
                        publication,
                    }) => {
                        tracing::info!(
                            run_id = %manifest.run_id, slot = ?manifest.slot, records = manifest.records,
                            at = %publication.describe(), "run finished"
                        );
                        st.runs_total += 1;
                        st.last_run_id = Some(manifest.run_id.clone());
                        st.last_run_finished_unix =
                            Some(Utc::now().timestamp_millis() as f64 / 1e3);
                        st.last_run = summary;
                        st.last_error = None;
                        true
                    }
                    Ok(JobOutcome::AlreadyClaimed { slot, .. }) => {
                        tracing::info!(slot = slot.index, "slot already claimed");
                        handled.insert(due.index);
                        false
                    }
                    Ok(JobOutcome::NothingDue { reason }) => {
                        tracing::info!(%reason, "nothing due");
                        handled.insert(due.index);
                        false
                    }
                    Err(JobError::Store(e)) => {
                        // The claim needs the store: try again soon; the slot stays open.
                        tracing::warn!("store unavailable, the slot waits: {e}");
                        st.last_error = Some(e.to_string());
                        retry = Some(opts.retry);
                        false
                    }
                    Err(e) => {
                        tracing::error!("run failed: {e}");
                        st.runs_failed += 1;
                        st.last_error = Some(e.to_string());
                        handled.insert(due.index);
                        false
                    }
                }
            };
            if ran {
                // What the campaign asks after a slot: watch and alert, the dashboard.
                if llmpulse_report::after_run::wanted(&config) {
                    llmpulse_report::after_run::after_slot(
                        &config,
                        &config.output,
                        env,
                        Utc::now(),
                    )
                    .await;
                }
                // Another slot may be open (catch-up): look again at once.
                continue;
            }
        }
        let wait = next_wake(&campaign, Utc::now(), retry);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = opts.stop.wait_requested() => return Ok(Ended::Stopped),
        }
    }
}
