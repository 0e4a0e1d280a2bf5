//! `watch` as one step an entry point takes: read a store's history, analyse it, and (with
//! notifiers) bring its alerts up to date. The CLI's `watch`, the cloud functions and the
//! agent's `serve` (with `watch_after_run`) all call [`watch_store`].

use std::time::Duration;

use super::read::{self, Scope};
use super::{Outcome, WatchOptions, Window, analyze};
use crate::alerts::{self, SyncReport, notify::Deliverer};
use crate::read::{ReadError, ReadStats};
use llmpulse_core::config::NotifySettings;
use llmpulse_core::store::Store;

/// How long all alert deliveries of one `watch` may take together.
pub const DELIVERY_BUDGET: Duration = Duration::from_secs(60);

/// What one `watch` did.
#[derive(Debug)]
pub struct Watched {
    /// Runs read.
    pub runs: u64,
    pub outcome: Outcome,
    pub read: ReadStats,
    /// Set when notifiers were given.
    pub alerts: Option<SyncReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("alert state: {0}")]
    Alerts(#[from] llmpulse_core::store::StoreError),
    #[error("{0}")]
    Notify(String),
}

/// The runs `opts` needs: a window and its baseline before `until` (all runs before `until`
/// for a window counted in runs).
pub fn scope_for(opts: &WatchOptions, campaign: Option<String>) -> Scope {
    let since = match opts.window {
        Window::Time(w) => Some(opts.until - w - opts.baseline),
        Window::Runs(_) => None,
    };
    Scope {
        since,
        until: Some(opts.until),
        campaign,
        by_origin: opts.by_origin,
    }
}

/// Where alerts go, and how.
pub struct Alerting<'a> {
    pub notifiers: &'a [NotifySettings],
    /// Reads the variables the notifiers name.
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// A link to the dashboard, for messages.
    pub dashboard: Option<String>,
    /// One request's time limit.
    pub timeout: Duration,
}

/// Reads, analyses and, with notifiers, syncs alerts.
pub async fn watch_store(
    store: &dyn Store,
    opts: &WatchOptions,
    campaign: Option<String>,
    alerting: Option<Alerting<'_>>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Watched, WatchError> {
    let scope = scope_for(opts, campaign);
    let (history, read) = read::read(store, &scope, progress).await?;
    let outcome = analyze(&history, opts);
    let alerts = match alerting {
        Some(a) if !a.notifiers.is_empty() => {
            let mut deliverer =
                Deliverer::new(DELIVERY_BUDGET, a.env).map_err(WatchError::Notify)?;
            deliverer.dashboard = a.dashboard;
            deliverer.timeout = a.timeout;
            Some(alerts::sync(store, &outcome, a.notifiers, &deliverer, opts.until).await?)
        }
        _ => None,
    };
    Ok(Watched {
        runs: history.runs,
        outcome,
        read,
        alerts,
    })
}
