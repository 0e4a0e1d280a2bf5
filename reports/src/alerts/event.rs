//! An alert event as the store keeps it (`alerts/{alert}/{episode}/{event}.json`) and as a
//! notifier sends it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An event as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventBody {
    pub alert: String,
    pub episode: u64,
    pub event: String,
    pub at: DateTime<Utc>,
    /// The finding as that `watch` saw it (for `resolved`: the last one seen while open).
    pub finding: Option<serde_json::Value>,
    /// One line for a person.
    pub text: String,
}
