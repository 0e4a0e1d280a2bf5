//! Reading runs back from a store: manifests first (a run exists once its manifest does), then
//! each run's JSONL file, checked against the manifest's SHA-256 and parsed on worker threads,
//! one [`Aggregate`] per file. One merging thread adds the files' aggregates in the files' order,
//! whatever order the workers finish in, so the same records always give the same figures to the
//! last bit (floating-point sums depend on their order). Memory holds the groups plus the files in
//! flight, never the whole history.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, mpsc};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::aggregate::{Aggregate, Plan, Row, parse_time};
use crate::watch::history::{Obs, RunFold};
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
    /// Why its budget refused calls, when it did (the manifest's `budget.stopped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_stopped: Option<String>,
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
    runs.sort_by(|a, b| (&a.started_at, &a.run_id).cmp(&(&b.started_at, &b.run_id)));
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
            budget_stopped: m.budget.as_ref().and_then(|b| b.stopped.clone()),
            complete: m.complete,
            planned: m.planned,
        });
    }

    // Worker threads fold whole runs (a run's shards together); one thread merges them in order.
    let (tx, handles, merger) = spawn_workers(&plan, filter);
    // The report's own history pools origins; its By origin table sets them apart.
    let by_run = group_runs(&runs, false);
    let total_files: usize = by_run.iter().map(|r| r.files.len()).sum();
    let mut fetches = stream::iter(by_run)
        .map(|r| fetch(store, r))
        .buffered(IN_FLIGHT);
    let mut failure = None;
    let mut index = 0;
    while let Some(next) = fetches.next().await {
        match next {
            Ok((run_id, started, files, missing, vantage)) => {
                stats.files_read += files.len();
                stats.bytes_read += files.iter().map(|(_, b, _)| b.len() as u64).sum::<u64>();
                stats.problems.extend(missing);
                progress(stats.files_read, total_files);
                // A worker gone means a panic, reported when it is joined below.
                if tx.send((index, run_id, started, files, vantage)).is_err() {
                    break;
                }
                index += 1;
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let mut panicked = false;
    for h in handles {
        panicked |= h.join().is_err();
    }
    let mut total = match merger.join() {
        Ok((total, problems)) => {
            stats.problems.extend(problems);
            total
        }
        Err(_) => {
            panicked = true;
            Aggregate::new(plan)
        }
    };
    if panicked {
        stats.problems.push("a reader thread panicked".to_string());
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    total.history.sort();
    fold_server_metrics(&mut total, &runs);
    Ok((total, stats))
}

/// The servers' own queue time and TTFT from each run's manifest (`server_metrics`, written by
/// the agent from vLLM's `/metrics`), into the targets the records made.
fn fold_server_metrics(total: &mut Aggregate, runs: &[Manifest]) {
    for m in runs {
        let Some(by_target) = m.server_metrics.as_ref().and_then(|v| v.as_object()) else {
            continue;
        };
        for (target, v) in by_target {
            let Some(t) = total.targets.get_mut(target) else {
                continue;
            };
            let dist = |name: &str| {
                let d = v.get("named")?.get(name)?;
                Some((d.get("mean")?.as_f64()?, d.get("count")?.as_f64()?))
            };
            if let Some((mean, n)) = dist("queue_sec") {
                t.server_queue.add(mean, n);
            }
            if let Some((mean, n)) = dist("ttft_sec") {
                t.server_metrics_ttft.add(mean, n);
            }
        }
    }
}

/// Every manifest at `store`, parsed (a problem is noted for one that is not a manifest).
/// Every manifest at `store` in run order (started_at, then run id); those that do not parse
/// are named in `stats.problems`.
pub async fn manifests_in_order(
    store: &dyn Store,
    stats: &mut ReadStats,
) -> Result<Vec<Manifest>, ReadError> {
    let mut runs = manifests(store, stats).await?;
    runs.sort_by(|a, b| (&a.started_at, &a.run_id).cmp(&(&b.started_at, &b.run_id)));
    Ok(runs)
}

/// Every manifest at `store`, parsed; one that does not parse is named in `stats.problems`.
pub async fn manifests(
    store: &dyn Store,
    stats: &mut ReadStats,
) -> Result<Vec<Manifest>, ReadError> {
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

/// One run to read: its id, its start, and its records files (path, SHA-256).
pub(crate) struct RunFiles {
    pub(crate) run_id: String,
    pub(crate) started: DateTime<Utc>,
    pub(crate) files: Vec<(String, String)>,
    /// Where the run ran, when history follows each target from each origin apart and the runs
    /// read come from more than one ([`RunFold::finish`]).
    pub(crate) vantage: Option<String>,
}

/// The runs of `manifests`, in their order; a run's shards (a manifest each) are one run, which
/// starts when its first shard did. `by_origin`: each run says its origin when they come from
/// several.
pub(crate) fn group_runs(manifests: &[Manifest], by_origin: bool) -> Vec<RunFiles> {
    let several = by_origin
        && manifests
            .iter()
            .any(|m| manifests.first().is_some_and(|f| f.origin != m.origin));
    let mut by_run: Vec<RunFiles> = Vec::new();
    let mut place: BTreeMap<&str, usize> = BTreeMap::new();
    for m in manifests {
        let started = parse_time(&m.started_at).unwrap_or_default();
        let i = *place.entry(m.run_id.as_str()).or_insert_with(|| {
            by_run.push(RunFiles {
                run_id: m.run_id.clone(),
                started,
                files: Vec::new(),
                vantage: several.then(|| m.origin.clone()),
            });
            by_run.len() - 1
        });
        let r = &mut by_run[i];
        r.started = r.started.min(started);
        r.files.extend(
            m.files
                .iter()
                .filter(|f| layout::is_records_jsonl(&f.path))
                .map(|f| (f.path.clone(), f.sha256.clone())),
        );
    }
    by_run
}

/// A run's files as fetched: its id, its start, each file's (path, bytes, SHA-256 its manifest
/// gives), a problem for each file the manifest names that is not there, and its vantage.
pub(crate) type Fetched = (
    String,
    DateTime<Utc>,
    Vec<(String, Bytes, String)>,
    Vec<String>,
    Option<String>,
);

/// Fetches a run's files, one after the other.
pub(crate) async fn fetch(store: &dyn Store, r: RunFiles) -> Result<Fetched, StoreError> {
    let mut got = Vec::with_capacity(r.files.len());
    let mut missing = Vec::new();
    for (path, sha) in r.files {
        match store.get(&path).await? {
            Some(b) => got.push((path, b, sha)),
            None => missing.push(format!("{path}: named in a manifest but missing")),
        }
    }
    Ok((r.run_id, r.started, got, missing, r.vantage))
}

/// `None` when `bytes` hash to the SHA-256 the manifest gives; else the problem, naming the file.
pub(crate) fn sha_problem(path: &str, bytes: &[u8], sha: &str) -> Option<String> {
    let actual = hex::encode(Sha256::digest(bytes));
    (actual != sha).then(|| {
        format!("{path}: SHA-256 {actual} differs from the manifest's {sha}; file skipped")
    })
}

/// A run to fold: its place in the read order, its id and start, and each file's path, bytes
/// and the SHA-256 its manifest gives.
type Job = (
    usize,
    String,
    DateTime<Utc>,
    Vec<(String, Bytes, String)>,
    Option<String>,
);
/// One run folded: its place, its aggregate (none when every file was skipped) and what was
/// wrong.
type Folded = (usize, Option<Aggregate>, Vec<String>);
/// Everything read: the merged aggregate and the problems, in file order.
type Merged = (Aggregate, Vec<String>);

/// Worker threads, one per core (at most 8), each folding one run at a time into an aggregate of
/// its own (with the run's point of every watched metric), and the thread that merges those in
/// read order. A file whose SHA-256 differs from its manifest's is skipped and named.
fn spawn_workers(
    plan: &Plan,
    filter: &Filter,
) -> (
    mpsc::SyncSender<Job>,
    Vec<std::thread::JoinHandle<()>>,
    std::thread::JoinHandle<Merged>,
) {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let (tx, rx) = mpsc::sync_channel::<Job>(workers * 2);
    let (done_tx, done_rx) = mpsc::channel::<Folded>();
    let rx = Arc::new(Mutex::new(rx));
    let filter = Arc::new(filter.clone());
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let rx = Arc::clone(&rx);
            let done = done_tx.clone();
            let filter = Arc::clone(&filter);
            let plan = plan.clone();
            std::thread::spawn(move || {
                loop {
                    let next = rx.lock().map(|r| r.recv());
                    let Ok(Ok((index, run_id, started, files, vantage))) = next else {
                        break;
                    };
                    let mut agg = Aggregate::new(plan.clone());
                    let mut run = RunFold::default();
                    let mut problems = Vec::new();
                    let mut folded_any = false;
                    for (path, bytes, sha) in &files {
                        if let Some(p) = sha_problem(path, bytes, sha) {
                            problems.push(p);
                            continue;
                        }
                        fold_file_into(&mut agg, Some(&mut run), path, bytes, &filter);
                        folded_any = true;
                    }
                    if plan.history_from.is_none_or(|from| started >= from) {
                        agg.history
                            .add_run(run.finish(&run_id, started, vantage.as_deref()));
                    }
                    let folded = (index, folded_any.then_some(agg), problems);
                    if done.send(folded).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(done_tx);
    let plan = plan.clone();
    let merger = std::thread::spawn(move || merge_in_order(plan, done_rx));
    (tx, handles, merger)
}

/// Adds the files' aggregates in file order. Files finish out of order; those ahead of the next
/// one wait (a few: workers take files in order, at most two per worker are queued).
fn merge_in_order(plan: Plan, done: mpsc::Receiver<Folded>) -> Merged {
    let mut total = Aggregate::new(plan);
    let mut problems = Vec::new();
    let mut waiting: BTreeMap<usize, (Option<Aggregate>, Vec<String>)> = BTreeMap::new();
    let mut next = 0;
    for (index, agg, problem) in done {
        waiting.insert(index, (agg, problem));
        while let Some((agg, problem)) = waiting.remove(&next) {
            if let Some(agg) = agg {
                total.merge(agg);
            }
            problems.extend(problem);
            next += 1;
        }
    }
    // A worker that panicked leaves a gap; merge what came after it, still in order.
    for (agg, problem) in waiting.into_values() {
        if let Some(agg) = agg {
            total.merge(agg);
        }
        problems.extend(problem);
    }
    (total, problems)
}

/// Folds the lines of one JSONL file. A line that is not a record is counted and named, never
/// fatal: one bad line must not hide a history.
pub fn fold_file(agg: &mut Aggregate, path: &str, bytes: &[u8], filter: &Filter) {
    fold_file_into(agg, None, path, bytes, filter);
}

/// [`fold_file`], also folding each kept record into its run's watched metrics.
fn fold_file_into(
    agg: &mut Aggregate,
    mut run: Option<&mut RunFold>,
    path: &str,
    bytes: &[u8],
    filter: &Filter,
) {
    // Fast path: the file as one stream of records, one per line (SIMD: the fields a report
    // does not read are skipped far faster). A file with any line that is not a record, or a
    // blank line, is read again line by line, so each bad line is named and the rest kept.
    let lines = memchr::memchr_iter(b'\n', bytes).count()
        + usize::from(bytes.last().is_some_and(|b| *b != b'\n'));
    let rows: Result<Vec<Row<'_>>, _> = sonic_rs::Deserializer::from_slice(bytes)
        .into_stream::<Row<'_>>()
        .take(lines)
        .collect();
    if let Ok(rows) = rows {
        for (i, row) in rows.iter().enumerate() {
            fold_row(agg, run.as_deref_mut(), path, i + 1, row, filter);
        }
        return;
    }
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Row<'_>>(line) {
            Ok(row) => fold_row(agg, run.as_deref_mut(), path, i + 1, &row, filter),
            Err(e) => agg.bad_line(path, i + 1, &e.to_string()),
        }
    }
}

/// Folds one record (line `line` of `path`) that `filter` keeps.
fn fold_row(
    agg: &mut Aggregate,
    run: Option<&mut RunFold>,
    path: &str,
    line: usize,
    row: &Row<'_>,
    filter: &Filter,
) {
    let at = match parse_time(&row.timestamp) {
        Ok(t) => t,
        Err(e) => {
            agg.bad_line(path, line, &format!("timestamp: {e}"));
            return;
        }
    };
    if !filter.keeps_time(at) || !filter.keeps_target(&row.target) {
        return;
    }
    if let Some(c) = &filter.campaign
        && row.campaign.as_deref() != Some(c.as_str())
    {
        return;
    }
    agg.add(row, at);
    if let Some(run) = run {
        run.add(&Obs::from(row));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One JSONL line whose coverage score is `coverage` (every other field fixed).
    fn line(coverage: f64) -> String {
        serde_json::json!({
            "timestamp": "2026-11-20T00:00:00Z", "industry": "x", "llm_provider": "p",
            "llm_model": "m", "latency_sec": 1.0, "throughput_tps": null, "success": true,
            "coverage_score": coverage, "prompt_tokens": 1, "response_tokens": 1,
            "question_id": "q", "target": "t", "task": "rag", "ttft_sec": 0.5,
            "output_speed_tps": 10.0, "grounding_score": null
        })
        .to_string()
    }

    fn merged(order: &[usize], files: &[String]) -> f64 {
        let plan = Plan::buckets(3600);
        let (tx, rx) = mpsc::channel();
        for &i in order {
            let mut agg = Aggregate::new(plan.clone());
            fold_file(&mut agg, "f", files[i].as_bytes(), &Filter::default());
            tx.send((i, Some(agg), Vec::new())).unwrap();
        }
        drop(tx);
        let (total, _) = merge_in_order(plan, rx);
        total.targets["t"].coverage.sum
    }

    #[test]
    fn files_finishing_in_any_order_give_the_same_sums_to_the_last_bit() {
        // Floating-point addition is not associative: 1e16 + 1 + 1 - 1e16 depends on the order.
        let files: Vec<String> = [1e16, 1.0, 1.0, -1e16, 0.1, 0.2, 0.3]
            .iter()
            .map(|v| line(*v))
            .collect();
        let in_order = merged(&[0, 1, 2, 3, 4, 5, 6], &files);
        for order in [[6, 5, 4, 3, 2, 1, 0], [3, 1, 0, 6, 2, 5, 4]] {
            assert_eq!(merged(&order, &files).to_bits(), in_order.to_bits());
        }
    }
}
