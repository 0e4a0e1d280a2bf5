//! The storage layout: every key and prefix under a store's root, in one place. Nothing else
//! formats a key.
//!
//! ```text
//! records/date=YYYY-MM-DD/{run_id}[-shard-i-of-n].jsonl   the records (and .csv beside it)
//! runs/{run_id}/manifest[-shard-i-of-n].json              written last: a run exists once it does
//! claims/{campaign}/[{origin}/]{slot}[-shard-i-of-n].json created with a create-only write
//!                                                         (the origin's folder: `per_origin`)
//! telemetry/date=YYYY-MM-DD/{run_id}[-shard-i-of-n].jsonl an agent's hardware samples
//! ```
//!
//! In a spool, each run is staged in a directory of its own, `{run_id}[-shard-i-of-n]/`, laid out
//! as above (see `journal`).
//!
//! Hive-style partitions (`date=…`), so Athena, BigQuery external tables and DuckDB read the
//! records as they are.

use chrono::{DateTime, Utc};

use crate::plan::Shard;

/// The prefix every run's manifest lives under.
pub const RUNS_PREFIX: &str = "runs/";

/// The key of a run's records file with extension `ext` (`jsonl` or `csv`).
pub fn records_key(
    started_at: DateTime<Utc>,
    run_id: &str,
    shard: Option<Shard>,
    ext: &str,
) -> String {
    format!(
        "records/date={}/{run_id}{}.{ext}",
        started_at.format("%Y-%m-%d"),
        shard_suffix(shard)
    )
}

/// The key of a run's hardware telemetry series (an agent's runs), one sample a line.
pub fn telemetry_key(started_at: DateTime<Utc>, run_id: &str, shard: Option<Shard>) -> String {
    format!(
        "telemetry/date={}/{run_id}{}.jsonl",
        started_at.format("%Y-%m-%d"),
        shard_suffix(shard)
    )
}

/// Whether a manifest's file entry is a telemetry series.
pub fn is_telemetry(path: &str) -> bool {
    path.starts_with("telemetry/") && path.ends_with(".jsonl")
}

/// The key of a run's manifest (one per shard for a sharded run).
pub fn manifest_key(run_id: &str, shard: Option<Shard>) -> String {
    format!("{RUNS_PREFIX}{run_id}/manifest{}.json", shard_suffix(shard))
}

/// Whether `key` (as listed under [`RUNS_PREFIX`]) is a manifest.
pub fn is_manifest_key(key: &str) -> bool {
    let file = key.rsplit('/').next().unwrap_or(key);
    key.starts_with(RUNS_PREFIX) && file.starts_with("manifest") && file.ends_with(".json")
}

/// Whether a manifest's file entry is the records file readers parse.
pub fn is_records_jsonl(path: &str) -> bool {
    path.starts_with("records/") && path.ends_with(".jsonl")
}

/// The model profile database a host's soaks keep (`llmpulse-agent soak`): one JSON object per
/// host, merged across its soaks.
pub fn profiles_key(host_id: &str) -> String {
    format!("profiles/host={host_id}/models.json")
}

/// The prefix of every claim of a campaign.
pub fn claims_prefix(campaign: &str) -> String {
    format!("claims/{campaign}/")
}

/// The key of slot `index`'s claim (one per shard for a sharded run); with `origin` (a campaign
/// claimed per origin), under a folder of that origin's: `claims/{campaign}/{origin}/{slot}.json`.
pub fn claim_key(campaign: &str, index: u64, shard: Option<Shard>, origin: Option<&str>) -> String {
    // An origin of dots alone has no safe character left: it still gets a folder of its own.
    let folder = origin.map_or(String::new(), |o| match safe_part(o) {
        part if part.is_empty() => "_/".to_string(),
        part => format!("{part}/"),
    });
    format!(
        "{}{folder}{index}{}.json",
        claims_prefix(campaign),
        shard_suffix(shard)
    )
}

/// The prefix of watch's alert state: one folder per alert, one per episode of it.
pub const ALERTS_PREFIX: &str = "alerts/";

/// The summary of every alert, rewritten by each `watch --notify` (the dashboard reads it).
pub const ALERT_STATE_KEY: &str = "alerts/state.json";

/// The prefix of an alert's episodes.
pub fn alert_prefix(alert: &str) -> String {
    format!("{ALERTS_PREFIX}{alert}/")
}

/// An alert episode's event (`opened`, `resolved`, `ongoing-20261202`): created once.
pub fn alert_event_key(alert: &str, episode: u64, event: &str) -> String {
    format!("{}{episode:06}/{event}.json", alert_prefix(alert))
}

/// A notifier's delivery state of an event: `N.try` (a claim to deliver, created once),
/// `N.failed`, `sent`.
pub fn alert_delivery_key(
    alert: &str,
    episode: u64,
    event: &str,
    notifier: &str,
    what: &str,
) -> String {
    format!(
        "{}{episode:06}/{event}.{notifier}.{what}",
        alert_prefix(alert)
    )
}

/// A file of the published dashboard.
pub fn dashboard_key(file: &str) -> String {
    format!("dashboard/{file}")
}

/// `name` with every character a key may not hold replaced by `_`.
pub fn safe_part(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_start_matches('.').to_string()
}

/// The name of a run's staging directory in a spool.
pub fn staging_name(run_id: &str, shard: Option<Shard>) -> String {
    format!("{run_id}{}", shard_suffix(shard))
}

/// Whether `name` may be part of a key: a run id, a campaign, a target. Letters, digits, `-`,
/// `_` and `.`, not empty and not starting with `.` (so never `.` or `..`).
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The suffix that keeps a shard's files apart from its siblings': `-shard-1-of-3`.
pub fn shard_suffix(shard: Option<Shard>) -> String {
    shard.map_or_else(String::new, |s| {
        format!("-shard-{}-of-{}", s.index, s.count)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        let t: DateTime<Utc> = "2026-12-01T00:51:25Z".parse().unwrap();
        let shard = Some(Shard { index: 1, count: 3 });
        assert_eq!(
            records_key(t, "r1", None, "jsonl"),
            "records/date=2026-12-01/r1.jsonl"
        );
        assert_eq!(
            records_key(t, "r1", shard, "csv"),
            "records/date=2026-12-01/r1-shard-1-of-3.csv"
        );
        assert_eq!(manifest_key("r1", None), "runs/r1/manifest.json");
        assert_eq!(
            manifest_key("r1", shard),
            "runs/r1/manifest-shard-1-of-3.json"
        );
        assert_eq!(
            claim_key("seed-4day", 7, None, None),
            "claims/seed-4day/7.json"
        );
        assert_eq!(
            claim_key("seed-4day", 7, None, Some("lambda:eu-west-1")),
            "claims/seed-4day/lambda_eu-west-1/7.json"
        );
        assert_eq!(
            claim_key("seed-4day", 7, None, Some("..")),
            "claims/seed-4day/_/7.json"
        );
        assert_eq!(staging_name("r1", shard), "r1-shard-1-of-3");
        assert!(is_manifest_key(&manifest_key("r1", shard)));
        assert!(!is_manifest_key("runs/r1/notes.json"));
        assert!(is_records_jsonl(&records_key(t, "r1", None, "jsonl")));
        assert!(!is_records_jsonl(&records_key(t, "r1", None, "csv")));
    }

    #[test]
    fn names_that_could_escape_a_key_are_refused() {
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "ü"] {
            assert!(!is_safe_name(bad), "{bad:?} was accepted");
        }
        for good in ["r1", "seed-4day", "groq_llama3.70b", "a..b"] {
            assert!(is_safe_name(good), "{good:?} was refused");
        }
    }
}
