//! The published dashboard: the report written into the store under `dashboard/` after a run
//! (`report --publish`, `publish_report = true`), so a bucket website or a signed URL always
//! shows the present, with `dashboard/status.json` in the shields.io endpoint schema for a badge.
//! The only report output that goes to a store, and only under `dashboard/`.

use bytes::Bytes;
use serde::Serialize;

use crate::Report;
use crate::watch::Direction;
use llmpulse_core::layout;
use llmpulse_core::store::{Store, StoreError};

/// shields.io's endpoint badge (`https://img.shields.io/endpoint?url=…/dashboard/status.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Badge {
    pub schema_version: u8,
    pub label: String,
    pub message: String,
    pub color: String,
}

/// The badge for a report: how many targets regressed, by the store's open alerts when it
/// keeps alert state, otherwise by the regressions `watch` finds in the report's records.
pub fn badge(r: &Report) -> Badge {
    let targets: std::collections::BTreeSet<&str> = match &r.alerts {
        Some(state) => state
            .alerts
            .iter()
            .filter(|a| a.open)
            .map(|a| a.target.as_str())
            .collect(),
        None => r
            .watch
            .findings
            .iter()
            .filter(|f| f.direction == Direction::Worse)
            .map(|f| f.target.as_str())
            .collect(),
    };
    let (message, color) = match targets.len() {
        0 => ("all targets healthy".to_string(), "brightgreen"),
        1 => ("1 target regressed".to_string(), "red"),
        n => (format!("{n} targets regressed"), "red"),
    };
    Badge {
        schema_version: 1,
        label: "llmpulse".into(),
        message,
        color: color.into(),
    }
}

/// Writes the report's files and the badge under `dashboard/`; returns the keys written.
/// `status.json` goes last, so a badge never says more than the page beside it.
pub async fn publish(store: &dyn Store, r: &Report) -> Result<Vec<String>, StoreError> {
    let invalid = |e: std::io::Error| {
        StoreError::new(
            llmpulse_core::store::StoreErrorKind::Other,
            &store.describe(),
            format!("cannot render the report: {e}"),
        )
    };
    let mut keys = Vec::new();
    for (name, bytes) in crate::files(r).map_err(invalid)? {
        let key = layout::dashboard_key(name);
        store.put(&key, Bytes::from(bytes)).await?;
        keys.push(key);
    }
    let key = layout::dashboard_key("status.json");
    let badge = serde_json::to_vec(&badge(r)).unwrap_or_default();
    store.put(&key, Bytes::from(badge)).await?;
    keys.push(key);
    Ok(keys)
}
