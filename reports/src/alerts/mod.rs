//! Alerts that arrive once: `watch`'s regressions as episodes kept in the store beside the runs.
//! Every step is a create-only write, the same primitive as slot claims, so however often and
//! wherever `watch --notify` runs (two runners racing included), each episode is opened once,
//! resolved once, and each of its messages is sent by one runner:
//!
//! - `alerts/{alert}/{episode}/opened.json` — created by the first `watch` that sees the
//!   regression while no episode of that alert is open;
//! - `…/resolved.json` — created by the first `watch` that tests the metric and finds no
//!   regression while an episode is open;
//! - `…/ongoing-YYYYMMDD.json` — once a day while it lasts (GitHub issues get a comment);
//! - `…/{event}.{notifier}.{k}.try` — a claim to deliver, created before each attempt; the
//!   runner whose create won delivers, then writes `…sent` or `…{k}.failed`. An event without
//!   `sent` is pending: the next `watch` tries again (a receiver that was down loses nothing).
//!
//! `alerts/state.json` is a summary rewritten from these after each `watch` (the dashboard's
//! Alerts section reads it); the event objects are the truth.

pub mod event;
pub mod notify;

pub use event::EventBody;

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::watch::{Direction, Finding, Outcome};
use llmpulse_core::config::NotifySettings;
use llmpulse_core::layout;
use llmpulse_core::store::{Created, Store, StoreError};
use notify::{Deliverer, Message};

/// A delivery claim older than this without an outcome is taken to have died with its runner.
const CLAIM_LEASE: i64 = 10 * 60;

/// What the store holds of one episode.
#[derive(Debug, Default, Clone)]
struct Episode {
    events: Vec<String>,
    /// (event, notifier) → (highest try, its failure seen, sent).
    deliveries: BTreeMap<(String, String), (u32, bool, bool)>,
}

impl Episode {
    fn has(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }
    fn open(&self) -> bool {
        self.has("opened") && !self.has("resolved")
    }
}

/// Every alert's episodes, read from the keys under `alerts/`.
fn parse_keys(keys: &[String]) -> BTreeMap<String, BTreeMap<u64, Episode>> {
    let mut out: BTreeMap<String, BTreeMap<u64, Episode>> = BTreeMap::new();
    for k in keys {
        let Some(rest) = k.strip_prefix(layout::ALERTS_PREFIX) else {
            continue;
        };
        let mut parts = rest.splitn(3, '/');
        let (Some(alert), Some(ep), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(ep) = ep.parse::<u64>() else { continue };
        let episode = out
            .entry(alert.to_string())
            .or_default()
            .entry(ep)
            .or_default();
        if let Some(event) = file.strip_suffix(".json") {
            episode.events.push(event.to_string());
            continue;
        }
        // EVENT.NOTIFIER.K.try | EVENT.NOTIFIER.K.failed | EVENT.NOTIFIER.sent
        let pieces: Vec<&str> = file.split('.').collect();
        let (event, notifier) = match pieces.as_slice() {
            [event, rest @ ..] if rest.len() >= 2 => (*event, rest),
            _ => continue,
        };
        let last = notifier[notifier.len() - 1];
        let entry = |name: &str| (event.to_string(), name.to_string());
        match last {
            "sent" => {
                let name = notifier[..notifier.len() - 1].join(".");
                episode.deliveries.entry(entry(&name)).or_default().2 = true;
            }
            "try" | "failed" if notifier.len() >= 3 => {
                let Ok(n) = notifier[notifier.len() - 2].parse::<u32>() else {
                    continue;
                };
                let name = notifier[..notifier.len() - 2].join(".");
                let d = episode.deliveries.entry(entry(&name)).or_default();
                if last == "try" {
                    if n > d.0 {
                        d.0 = n;
                        d.1 = false;
                    }
                } else if n >= d.0 {
                    d.0 = n;
                    d.1 = true;
                }
            }
            _ => {}
        }
    }
    out
}

/// What `sync` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub opened: Vec<String>,
    pub resolved: Vec<String>,
    /// Messages delivered, as `alert#episode event → notifier`.
    pub sent: Vec<String>,
    /// Messages that could not be delivered this time (they stay pending), with the reason.
    pub failed: Vec<String>,
    pub open: usize,
}

/// Brings the store's alerts up to date with `outcome` and delivers every pending message.
pub async fn sync(
    store: &dyn Store,
    outcome: &Outcome,
    notifiers: &[NotifySettings],
    deliverer: &Deliverer<'_>,
    now: DateTime<Utc>,
) -> Result<SyncReport, StoreError> {
    let mut report = SyncReport::default();
    let keys = store.list(layout::ALERTS_PREFIX).await?;
    let mut state = parse_keys(&keys);
    // What is wrong now: each regression, and each campaign whose newest run its budget
    // stopped. Each is an alert that opens once and resolves when it is tested and fine.
    let mut regressions: BTreeMap<String, Active<'_>> = outcome
        .findings
        .iter()
        .filter(|f| f.direction == Direction::Worse)
        .map(|f| {
            (
                alert_id(f),
                Active {
                    finding: Some(f),
                    line: f.line(),
                },
            )
        })
        .collect();
    let mut tested = outcome.tested.clone();
    let mut within_budget: BTreeMap<String, String> = BTreeMap::new();
    for b in &outcome.budget {
        let id = layout::safe_part(&b.key());
        tested.insert(id.clone());
        if b.stopped.is_none() {
            within_budget.insert(id, b.line());
        } else {
            regressions.insert(
                id,
                Active {
                    finding: None,
                    line: b.line(),
                },
            );
        }
    }

    for (alert, f) in &regressions {
        let episodes = state.entry(alert.clone()).or_default();
        let latest = episodes.iter().next_back().map(|(n, e)| (*n, e.open()));
        match latest {
            Some((n, true)) => {
                // Still open: a daily note while it lasts.
                let event = format!("ongoing-{}", now.format("%Y%m%d"));
                if !episodes[&n].has(&event) {
                    let body = event_body(
                        alert,
                        n,
                        &event,
                        now,
                        f.finding,
                        format!("still: {}", f.line),
                    );
                    if create_event(store, alert, n, &event, &body).await? {
                        episodes.entry(n).or_default().events.push(event);
                    }
                }
            }
            _ => {
                let n = latest.map_or(1, |(n, _)| n + 1);
                let body = event_body(alert, n, "opened", now, f.finding, f.line.clone());
                if create_event(store, alert, n, "opened", &body).await? {
                    report.opened.push(alert.clone());
                }
                episodes.entry(n).or_default().events.push("opened".into());
            }
        }
    }
    for (alert, episodes) in state.iter_mut() {
        let Some((&n, ep)) = episodes.iter().next_back() else {
            continue;
        };
        if !ep.open() || regressions.contains_key(alert) || !tested.contains(alert) {
            continue;
        }
        let text = match within_budget.get(alert) {
            Some(line) => format!("{alert}: recovered ({line})"),
            None => format!("{alert}: recovered (no regression in the window)"),
        };
        let body = event_body(alert, n, "resolved", now, None, text);
        if create_event(store, alert, n, "resolved", &body).await? {
            report.resolved.push(alert.clone());
        }
        episodes
            .entry(n)
            .or_default()
            .events
            .push("resolved".into());
    }

    // Every event of every episode goes to every notifier that takes it, once.
    for (alert, episodes) in &state {
        for (&n, ep) in episodes {
            for event in &ep.events {
                for notifier in notifiers {
                    if event.starts_with("ongoing-") && !notify::wants_ongoing(notifier) {
                        continue;
                    }
                    let d = ep
                        .deliveries
                        .get(&(event.clone(), notifier.name.clone()))
                        .copied()
                        .unwrap_or_default();
                    if d.2 {
                        continue;
                    }
                    let label = format!("{alert}#{n} {event} → {}", notifier.name);
                    match deliver(store, alert, n, event, notifier, d, deliverer, now).await? {
                        Delivery::Sent => report.sent.push(label),
                        Delivery::Failed(why) => report.failed.push(format!("{label}: {why}")),
                        Delivery::NotOurs => {}
                    }
                }
            }
        }
    }
    report.open = state
        .values()
        .filter(|e| e.values().next_back().is_some_and(Episode::open))
        .count();
    write_summary(store, &keys_after(store).await?, now).await?;
    Ok(report)
}

async fn keys_after(store: &dyn Store) -> Result<Vec<String>, StoreError> {
    store.list(layout::ALERTS_PREFIX).await
}

enum Delivery {
    Sent,
    Failed(String),
    /// Another runner holds the claim.
    NotOurs,
}

#[allow(clippy::too_many_arguments)]
async fn deliver(
    store: &dyn Store,
    alert: &str,
    n: u64,
    event: &str,
    notifier: &NotifySettings,
    (tries, failed, _): (u32, bool, bool),
    deliverer: &Deliverer<'_>,
    now: DateTime<Utc>,
) -> Result<Delivery, StoreError> {
    // A claim still in its lease, without an outcome, is another runner's delivery in flight.
    if tries > 0 && !failed {
        let key =
            layout::alert_delivery_key(alert, n, event, &notifier.name, &format!("{tries}.try"));
        let at = store
            .get(&key)
            .await?
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| {
                v["at"]
                    .as_str()
                    .and_then(|s| s.parse::<DateTime<Utc>>().ok())
            });
        if at.is_none_or(|at| now - at < Duration::seconds(CLAIM_LEASE)) {
            return Ok(Delivery::NotOurs);
        }
    }
    let k = tries + 1;
    let claim = layout::alert_delivery_key(alert, n, event, &notifier.name, &format!("{k}.try"));
    let body = serde_json::json!({ "at": now, "try": k }).to_string();
    if store.create(&claim, Bytes::from(body)).await? == Created::Exists {
        return Ok(Delivery::NotOurs);
    }
    let Some(bytes) = store.get(&layout::alert_event_key(alert, n, event)).await? else {
        return Ok(Delivery::Failed("the event's object is gone".into()));
    };
    let Ok(ev) = serde_json::from_slice::<EventBody>(&bytes) else {
        return Ok(Delivery::Failed(
            "the event's object is not an event".into(),
        ));
    };
    // GitHub: a later event goes to the issue its opening created.
    let issue = match event {
        "opened" => None,
        _ => {
            let key = layout::alert_delivery_key(alert, n, "opened", &notifier.name, "sent");
            store
                .get(&key)
                .await?
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v["issue"].as_u64())
        }
    };
    let message = Message { event: &ev, issue };
    match deliverer.send(notifier, &message).await {
        Ok(receipt) => {
            let key = layout::alert_delivery_key(alert, n, event, &notifier.name, "sent");
            let body = serde_json::json!({ "at": now, "try": k, "issue": receipt.issue });
            store.put(&key, Bytes::from(body.to_string())).await?;
            Ok(Delivery::Sent)
        }
        Err(why) => {
            let key =
                layout::alert_delivery_key(alert, n, event, &notifier.name, &format!("{k}.failed"));
            let body = serde_json::json!({ "at": now, "try": k, "error": why });
            store.put(&key, Bytes::from(body.to_string())).await?;
            Ok(Delivery::Failed(why))
        }
    }
}

/// The alert id of a finding: its key, made safe for a storage key.
pub fn alert_id(f: &Finding) -> String {
    layout::safe_part(&f.key())
}

fn event_body(
    alert: &str,
    episode: u64,
    event: &str,
    at: DateTime<Utc>,
    finding: Option<&Finding>,
    text: String,
) -> EventBody {
    EventBody {
        alert: alert.to_string(),
        episode,
        event: event.to_string(),
        at,
        finding: finding.and_then(|f| serde_json::to_value(f).ok()),
        text,
    }
}

/// An alert's condition as it stands now: a regression (with its finding) or a budget stop.
struct Active<'a> {
    finding: Option<&'a Finding>,
    line: String,
}

/// Creates an event; true when this runner created it.
async fn create_event(
    store: &dyn Store,
    alert: &str,
    n: u64,
    event: &str,
    body: &EventBody,
) -> Result<bool, StoreError> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let key = layout::alert_event_key(alert, n, event);
    Ok(store.create(&key, Bytes::from(bytes)).await? == Created::Won)
}

/// One alert in `alerts/state.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlertSummary {
    pub alert: String,
    /// The target the alert is about.
    #[serde(default)]
    pub target: String,
    pub episode: u64,
    pub open: bool,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// How long it lasted (to now while open), in seconds.
    pub duration_sec: i64,
    pub text: String,
    /// Notifiers still waiting to deliver one of its messages.
    pub pending: Vec<String>,
}

/// `alerts/state.json`: open alerts first (newest first), then resolved ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AlertState {
    pub updated_at: Option<DateTime<Utc>>,
    pub alerts: Vec<AlertSummary>,
}

/// Reads `alerts/state.json` (none yet: empty).
pub async fn read_state(store: &dyn Store) -> Result<AlertState, StoreError> {
    Ok(store
        .get(layout::ALERT_STATE_KEY)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

async fn write_summary(
    store: &dyn Store,
    keys: &[String],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let state = parse_keys(keys);
    let mut alerts = Vec::new();
    for (alert, episodes) in &state {
        for (&n, ep) in episodes {
            if !ep.has("opened") {
                continue;
            }
            let get = |event: &str| {
                let key = layout::alert_event_key(alert, n, event);
                async move {
                    store
                        .get(&key)
                        .await
                        .map(|b| b.and_then(|b| serde_json::from_slice::<EventBody>(&b).ok()))
                }
            };
            let Some(opened) = get("opened").await? else {
                continue;
            };
            let resolved = if ep.has("resolved") {
                get("resolved").await?
            } else {
                None
            };
            let resolved_at = resolved.map(|r| r.at);
            let pending = ep
                .deliveries
                .iter()
                .filter(|(_, d)| !d.2)
                .map(|((e, n), _)| format!("{e} → {n}"))
                .collect();
            let target = opened
                .finding
                .as_ref()
                .and_then(|f| f["target"].as_str())
                .unwrap_or_default()
                .to_string();
            alerts.push(AlertSummary {
                alert: alert.clone(),
                target,
                episode: n,
                open: resolved_at.is_none(),
                opened_at: opened.at,
                resolved_at,
                duration_sec: (resolved_at.unwrap_or(now) - opened.at).num_seconds(),
                text: opened.text,
                pending,
            });
        }
    }
    alerts.sort_by(|a, b| {
        (!a.open, std::cmp::Reverse(a.opened_at)).cmp(&(!b.open, std::cmp::Reverse(b.opened_at)))
    });
    let state = AlertState {
        updated_at: Some(now),
        alerts,
    };
    let bytes = serde_json::to_vec_pretty(&state).unwrap_or_default();
    store.put(layout::ALERT_STATE_KEY, Bytes::from(bytes)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_give_each_episode_its_events_and_deliveries() {
        let keys: Vec<String> = [
            "alerts/t.latency_p50/000001/opened.json",
            "alerts/t.latency_p50/000001/opened.hook.1.try",
            "alerts/t.latency_p50/000001/opened.hook.1.failed",
            "alerts/t.latency_p50/000001/opened.hook.2.try",
            "alerts/t.latency_p50/000001/opened.gh.1.try",
            "alerts/t.latency_p50/000001/opened.gh.sent",
            "alerts/t.latency_p50/000001/resolved.json",
            "alerts/state.json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = parse_keys(&keys);
        let ep = &s["t.latency_p50"][&1];
        assert!(ep.has("opened") && ep.has("resolved") && !ep.open());
        assert_eq!(
            ep.deliveries[&("opened".into(), "hook".into())],
            (2, false, false)
        );
        assert_eq!(
            ep.deliveries[&("opened".into(), "gh".into())],
            (1, false, true)
        );
    }
}
