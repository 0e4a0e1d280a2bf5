//! What a campaign asks for after each of its slots (`[campaign] watch_after_run`,
//! `publish_report`): watch the store's history and send its alerts, publish the dashboard.
//! Every entry point that runs a slot calls [`after_slot`]: `llmpulse run`, the Lambda, the
//! Cloud Run service and job, and `llmpulse-agent serve`. Nothing here fails the slot's run:
//! a problem is logged and returned.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alerts::notify::REQUEST_TIMEOUT;
use crate::figures::{self, Context};
use crate::read::{self, Filter};
use crate::watch::WatchOptions;
use crate::watch::job::{self, Alerting};
use llmpulse_core::config::Config;
use llmpulse_core::store::{self, Store};

/// What happened after the slot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AfterSlot {
    /// Regressions `watch` found (set when it ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regressions: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts_sent: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts_pending: Option<usize>,
    /// Files published under `dashboard/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Whether `config` asks for anything after a slot.
pub fn wanted(config: &Config) -> bool {
    config
        .campaign
        .as_ref()
        .is_some_and(|c| c.watch_after_run || c.publish_report)
}

/// Runs what `config`'s campaign asks for against the store at `output`.
/// `env` looks up environment variables (a function's secrets mapped among them).
pub async fn after_slot(
    config: &Config,
    output: &str,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    now: DateTime<Utc>,
) -> AfterSlot {
    let mut out = AfterSlot::default();
    let Some(campaign) = &config.campaign else {
        return out;
    };
    if !(campaign.watch_after_run || campaign.publish_report) {
        return out;
    }
    let store = match store::open(output, env).await {
        Ok(s) => s,
        Err(e) => {
            out.problems.push(format!("after the slot: {e}"));
            return out;
        }
    };
    if campaign.watch_after_run {
        let mut opts = WatchOptions::new(now).with_settings(&config.watch);
        opts.by_origin = campaign.per_origin;
        let alerting = Alerting {
            notifiers: &config.notify,
            env,
            dashboard: None,
            timeout: config.watch.delivery_timeout.unwrap_or(REQUEST_TIMEOUT),
        };
        match job::watch_store(
            store.as_ref(),
            &opts,
            Some(campaign.name.clone()),
            Some(alerting),
            &|_, _| {},
        )
        .await
        {
            Ok(w) => {
                let regressions = w.outcome.regressions().count();
                for f in w.outcome.regressions() {
                    tracing::warn!(target_name = %f.target, metric = f.metric.name(), finding = %f.line(), "regression");
                }
                out.regressions = Some(regressions);
                if let Some(a) = &w.alerts {
                    out.alerts_sent = Some(a.sent.len());
                    out.alerts_pending = Some(a.failed.len());
                    for f in &a.failed {
                        tracing::warn!(alert = %f, "alert not delivered; it stays pending");
                    }
                }
            }
            Err(e) => out.problems.push(format!("watch: {e}")),
        }
    }
    if campaign.publish_report {
        match publish(store.as_ref(), config, now).await {
            Ok(n) => out.published = Some(n),
            Err(e) => out.problems.push(format!("publish: {e}")),
        }
    }
    for p in &out.problems {
        tracing::error!("{p}");
    }
    out
}

/// Reads the campaign's records, computes the report and publishes it under `dashboard/`.
async fn publish(store: &dyn Store, config: &Config, now: DateTime<Utc>) -> Result<usize, String> {
    let campaign = config.campaign.as_ref().map(|c| c.name.clone());
    let filter = Filter {
        campaign: campaign.clone(),
        ..Filter::default()
    };
    let (agg, stats) = read::read(
        store,
        &filter,
        |span| crate::aggregate::Plan {
            history_from: span.and_then(|(_, last)| history_from(&config.watch, last)),
            ..crate::aggregate::Plan::buckets(figures::bucket_for(span))
        },
        &|_, _| {},
    )
    .await
    .map_err(|e| e.to_string())?;
    let campaigns: Vec<_> = config.campaign.iter().cloned().collect();
    let cx = Context {
        source: store.describe(),
        since: None,
        until: None,
        campaign,
        campaigns: &campaigns,
        now,
        watch: Some(&config.watch),
    };
    let mut report = figures::compute(&agg, &stats, &cx);
    let state = crate::alerts::read_state(store)
        .await
        .map_err(|e| e.to_string())?;
    report.alerts = state.updated_at.is_some().then_some(state);
    crate::dashboard::publish(store, &report)
        .await
        .map(|keys| keys.len())
        .map_err(|e| e.to_string())
}

/// The earliest run the page's Changes can use when its window ends after `last`: the window
/// and the baseline before it (`None`, every run, for a window counted in runs).
pub fn history_from(
    watch: &llmpulse_core::config::WatchSettings,
    last: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let opts = WatchOptions::new(last).with_settings(watch);
    match opts.window {
        crate::watch::Window::Time(w) => Some(last - w - opts.baseline - chrono::Duration::days(1)),
        crate::watch::Window::Runs(_) => None,
    }
}
