//! What the soak shares between its loop, the record sink and the summary writer ([`Live`]),
//! and the files rewritten from it: the live summary and the profiles, locally and in the store.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use llmpulse_core::store::Store;

use super::stats::{Profiles, SoakStats, write_atomic};

/// What the summary writer and the record sink share.
#[derive(Debug, Default)]
pub(super) struct Live {
    pub(super) stats: SoakStats,
    pub(super) profiles: Profiles,
    pub(super) base_profiles: Profiles,
    pub(super) current_model: Option<String>,
    pub(super) night: bool,
    pub(super) rewrites: u64,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) async fn upload_profiles(store: &dyn Store, key: &str, live: &Mutex<Live>) {
    let bytes = {
        let l = lock(live);
        serde_json::to_vec_pretty(&l.profiles.merged(&l.base_profiles).to_json())
            .unwrap_or_default()
    };
    if let Err(e) = store.put(key, bytes.into()).await {
        tracing::warn!(
            event = "profiles",
            "profiles not stored (kept locally): {e}"
        );
    }
}

/// Rewrites the summary and the profiles (atomically) now.
pub(super) fn write_summary(
    live: &Mutex<Live>,
    name: &str,
    started_at: DateTime<Utc>,
    summary: &Path,
    profiles: &Path,
) -> std::io::Result<String> {
    let (s, p, line) = {
        let mut l = lock(live);
        l.rewrites += 1;
        let now = Utc::now();
        let v = l.stats.summary(
            name,
            started_at,
            now,
            l.night,
            l.current_model.as_deref(),
            l.rewrites,
        );
        let elapsed = (now - started_at).num_milliseconds() as f64 / 1e3;
        let line = l.stats.line(elapsed, l.current_model.as_deref(), l.night);
        let p = l.profiles.merged(&l.base_profiles).to_json();
        (v, p, line)
    };
    write_atomic(
        summary,
        &serde_json::to_vec_pretty(&s).map_err(std::io::Error::other)?,
    )?;
    write_atomic(
        profiles,
        &serde_json::to_vec_pretty(&p).map_err(std::io::Error::other)?,
    )?;
    Ok(line)
}

pub(super) fn spawn_summary_writer(
    live: Arc<Mutex<Live>>,
    name: String,
    started_at: DateTime<Utc>,
    summary: PathBuf,
    profiles: PathBuf,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match write_summary(&live, &name, started_at, &summary, &profiles) {
                // The one-line summary, on the terminal or in the logs.
                Ok(line) => tracing::info!(event = "summary", "{line}"),
                Err(e) => tracing::warn!(event = "summary", "cannot write the summary: {e}"),
            }
        }
    })
}
