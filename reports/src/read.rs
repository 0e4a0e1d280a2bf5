//! Reading runs back from a store: manifests first (a run exists once its manifest does), then
//! each run's JSONL file, checked against the manifest's SHA-256 and parsed on worker threads
//! that each fold into their own [`Aggregate`]; the partial aggregates are merged at the end.
//! Memory holds the groups plus the files in flight, never the whole history.

use std::sync::{Arc, Mutex, mpsc};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::aggregate::{Aggregate, Plan, Row, parse_time};
use llmpulse_core::layout;
use llmpulse_core::manifest::Manifest;
use llmpulse_core::store::{Store, StoreError};

/// Which records a report covers.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub campaign: Option<String>,
    /// Empty: every target.
    pub targets: Vec<String>,
}

impl Filter {
    fn keeps_time(&self, at: DateTime<Utc>) -> bool {
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at < u)
    }
    fn keeps_target(&self, t: &str) -> bool {
        self.targets.is_empty() || self.targets.iter().any(|x| x == t)
    }
}

/// One run, as its manifest describes it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSeen {
    pub run_id: String,
    pub started_at: String,
    pub campaign: Option<String>,
    pub slot: Option<u64>,
    /// `(index, count)` for a shard's manifest.
    pub shard: Option<(u32, u32)>,
    pub records: usize,
    pub successes: usize,
    /// False for a run stopped early or recovered after it died.
    pub complete: bool,
    /// The calls it planned, when its manifest says.
    pub planned: Option<usize>,
}

/// What reading found besides records: the runs, and anything that could not be used.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReadStats {
    pub manifests: usize,
    pub runs: Vec<RunSeen>,
    pub files_read: usize,
    pub bytes_read: u64,
    /// Problems, each naming the object: unreadable manifests, missing or altered files.
    pub problems: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no runs at {0}: no runs/*/manifest*.json there")]
    Empty(String),
}

/// How many objects are fetched at once.
const IN_FLIGHT: usize = 16;

/// Reads every run at `store` that `filter` keeps and folds its records. `choose_plan` sees the
/// kept runs' time span (first start, last start) and returns the fold's plan (bucket width).
/// `progress` hears (files read, files to read) as reading goes.
pub async fn read(
    store: &dyn Store,
    filter: &Filter,
    choose_plan: impl FnOnce(Option<(DateTime<Utc>, DateTime<Utc>)>) -> Plan,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(Aggregate, ReadStats), ReadError> {
    let mut stats = ReadStats::default();
    let mut runs = manifests(store, &mut stats).await?;
    // A run is kept when its campaign matches and its time could overlap the window (its records
    // are filtered one by one below); a day of slack covers long runs.
    runs.retain(|m| {
        filter.campaign.is_none() || m.campaign.as_deref() == filter.campaign.as_deref()
    });
    let started = |m: &Manifest| parse_time(&m.started_at).ok();
    runs.retain(|m| match started(m) {
        Some(at) => {
            filter.until.is_none_or(|u| at < u)
                && filter
                    .since
                    .is_none_or(|s| at + chrono::Duration::days(1) >= s)
        }
        None => {
            stats
                .problems
                .push(format!("run {}: bad started_at in its manifest", m.run_id));
            false
        }
    });
    runs.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    let span = runs
        .first()
        .and_then(started)
        .zip(runs.last().and_then(started));
    let plan = choose_plan(span);
    for m in &runs {
        stats.runs.push(RunSeen {
            run_id: m.run_id.clone(),
            started_at: m.started_at.clone(),
            campaign: m.campaign.clone(),
            slot: m.slot,
            shard: m.shard.map(|s| (s.index, s.count)),
            records: m.records,
            successes: m.successes,
            complete: m.complete,
            planned: m.planned,
        });
    }

    // Worker threads, each folding whole files into its own aggregate.
    let (tx, handles) = spawn_workers(&plan, filter);
    let files: Vec<(String, String)> = runs
        .iter()
        .flat_map(|m| {
            m.files
                .iter()
                .filter(|f| layout::is_records_jsonl(&f.path))
                .map(|f| (f.path.clone(), f.sha256.clone()))
        })
        .collect();
    let total_files = files.len();
    let mut fetches = stream::iter(files)
        .map(|(path, sha)| async move {
            let bytes = store.get(&path).await;
            (path, sha, bytes)
        })
        .buffered(IN_FLIGHT);
    let mut failure = None;
    while let Some((path, sha, bytes)) = fetches.next().await {
        match bytes {
            Ok(Some(b)) => {
                stats.files_read += 1;
                stats.bytes_read += b.len() as u64;
                progress(stats.files_read, total_files);
                // A worker gone means a panic, reported when it is joined below.
                if tx.send((path, b, sha)).is_err() {
                    break;
                }
            }
            Ok(None) => stats
                .problems
                .push(format!("{path}: named in a manifest but missing")),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let mut total = Aggregate::new(plan);
    for h in handles {
        match h.join() {
            Ok((agg, problems)) => {
                total.merge(agg);
                stats.problems.extend(problems);
            }
            Err(_) => stats.problems.push("a reader thread panicked".to_string()),
        }
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    Ok((total, stats))
}

/// Every manifest at `store`, parsed (a problem is noted for one that is not a manifest).
async fn manifests(store: &dyn Store, stats: &mut ReadStats) -> Result<Vec<Manifest>, ReadError> {
    let keys: Vec<String> = store
        .list(layout::RUNS_PREFIX)
        .await?
        .into_iter()
        .filter(|k| layout::is_manifest_key(k))
        .collect();
    if keys.is_empty() {
        return Err(ReadError::Empty(store.describe()));
    }
    stats.manifests = keys.len();
    // Manifests are parsed as they arrive; only the parsed form is kept.
    let mut manifests = stream::iter(keys)
        .map(|k| async move {
            let b = store.get(&k).await?;
            Ok::<_, StoreError>((k, b))
        })
        .buffered(IN_FLIGHT);
    let mut runs: Vec<Manifest> = Vec::new();
    while let Some((key, bytes)) = manifests.try_next().await? {
        let Some(bytes) = bytes else { continue };
        match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(m) => runs.push(m),
            Err(e) => stats.problems.push(format!("{key}: not a manifest: {e}")),
        }
    }
    Ok(runs)
}

/// A file to fold: its path, its bytes and the SHA-256 its manifest gives.
type Job = (String, Bytes, String);
/// A worker's result: its aggregate and the problems it found.
type Folded = (Aggregate, Vec<String>);

/// Worker threads, one per core (at most 8), each folding whole files into its own aggregate;
/// a file whose SHA-256 differs from its manifest's is skipped and named.
fn spawn_workers(
    plan: &Plan,
    filter: &Filter,
) -> (mpsc::SyncSender<Job>, Vec<std::thread::JoinHandle<Folded>>) {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let (tx, rx) = mpsc::sync_channel::<Job>(workers * 2);
    let rx = Arc::new(Mutex::new(rx));
    let filter = Arc::new(filter.clone());
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let rx = Arc::clone(&rx);
            let filter = Arc::clone(&filter);
            let plan = plan.clone();
            std::thread::spawn(move || {
                let mut agg = Aggregate::new(plan);
                let mut problems = Vec::new();
                loop {
                    let next = rx.lock().map(|r| r.recv());
                    let Ok(Ok((path, bytes, sha))) = next else {
                        break;
                    };
                    let actual = hex::encode(Sha256::digest(&bytes));
                    if actual != sha {
                        problems.push(format!(
                            "{path}: SHA-256 {actual} differs from the manifest's {sha}; \
                             file skipped"
                        ));
                        continue;
                    }
                    fold_file(&mut agg, &path, &bytes, &filter);
                }
                (agg, problems)
            })
        })
        .collect();

    (tx, handles)
}

/// Folds the lines of one JSONL file. A line that is not a record is counted and named, never
/// fatal: one bad line must not hide a history.
pub fn fold_file(agg: &mut Aggregate, path: &str, bytes: &[u8], filter: &Filter) {
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let row: Row<'_> = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                agg.bad_line(path, i + 1, &e.to_string());
                continue;
            }
        };
        let at = match parse_time(&row.timestamp) {
            Ok(t) => t,
            Err(e) => {
                agg.bad_line(path, i + 1, &format!("timestamp: {e}"));
                continue;
            }
        };
        if !filter.keeps_time(at) || !filter.keeps_target(&row.target) {
            continue;
        }
        if let Some(c) = &filter.campaign
            && row.campaign.as_deref() != Some(c.as_str())
        {
            continue;
        }
        agg.add(&row, at);
    }
}
