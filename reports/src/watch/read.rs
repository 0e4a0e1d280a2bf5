//! Reading a store's runs into a [`History`]: manifests first, then each run's JSONL files
//! (checked against the manifest's SHA-256) folded into run points on worker threads, one run
//! at a time. A run's shards are one run: their files are folded together.

use std::sync::{Arc, Mutex, mpsc};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream};

use super::history::{History, Obs, RunFold, WatchRow};
use crate::read::{ReadError, ReadStats, fetch, group_runs, sha_problem};
use crate::side::parse_time;
use llmpulse_core::store::Store;

/// Which runs to read: those that started in `[since, until)`, of one campaign or all.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub campaign: Option<String>,
    /// Each target from each origin apart, when the runs come from several.
    pub by_origin: bool,
}

/// A run fetched: its place in the read order, its id and start, and its files' bytes.
type Job = (
    String,
    DateTime<Utc>,
    Vec<(String, Bytes, String)>,
    Option<String>,
);

/// How many objects are fetched at once.
const IN_FLIGHT: usize = 16;

/// Reads every run in `scope` at `store` into a history.
pub async fn read(
    store: &dyn Store,
    scope: &Scope,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(History, ReadStats), ReadError> {
    let mut stats = ReadStats::default();
    let manifests = crate::read::manifests(store, &mut stats).await?;
    let mut kept = Vec::new();
    for m in manifests {
        if scope.campaign.is_some() && m.campaign != scope.campaign {
            continue;
        }
        let Ok(started) = parse_time(&m.started_at) else {
            stats
                .problems
                .push(format!("run {}: bad started_at in its manifest", m.run_id));
            continue;
        };
        if scope.since.is_some_and(|s| started < s) || scope.until.is_some_and(|u| started >= u) {
            continue;
        }
        kept.push((m, started));
    }
    let mut budget = Vec::new();
    for (m, started) in &kept {
        if let Some(b) = &m.budget {
            budget.push(super::history::BudgetState {
                campaign: m.campaign.clone().unwrap_or_else(|| "-".into()),
                run_id: m.run_id.clone(),
                started: *started,
                stopped: b.stopped.clone(),
            });
        }
    }
    let kept: Vec<_> = kept.into_iter().map(|(m, _)| m).collect();
    let runs = group_runs(&kept, scope.by_origin);
    let total = runs.len();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let (tx, rx) = mpsc::sync_channel::<Job>(workers * 2);
    let (done_tx, done_rx) = mpsc::channel();
    let rx = Arc::new(Mutex::new(rx));
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let rx = Arc::clone(&rx);
            let done = done_tx.clone();
            std::thread::spawn(move || {
                loop {
                    let next = rx.lock().map(|r| r.recv());
                    let Ok(Ok((run_id, started, files, vantage))) = next else {
                        break;
                    };
                    let folded = fold_run(&run_id, started, &files, vantage.as_deref());
                    if done.send(folded).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(done_tx);
    let collector = std::thread::spawn(move || {
        let mut h = History::default();
        let mut problems = Vec::new();
        for (points, p) in done_rx {
            h.add_run(points);
            problems.extend(p);
        }
        h.sort();
        (h, problems)
    });

    let mut fetches = stream::iter(runs)
        .map(|r| fetch(store, r))
        .buffered(IN_FLIGHT);
    let mut failure = None;
    let mut done = 0;
    while let Some(next) = fetches.next().await {
        match next {
            Ok((run_id, started, files, missing, vantage)) => {
                done += 1;
                stats.files_read += files.len();
                stats.bytes_read += files.iter().map(|(_, b, _)| b.len() as u64).sum::<u64>();
                stats.problems.extend(missing);
                progress(done, total);
                if tx.send((run_id, started, files, vantage)).is_err() {
                    break;
                }
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
    let history = match collector.join() {
        Ok((mut h, problems)) => {
            stats.problems.extend(problems);
            for b in budget {
                h.note_budget(b);
            }
            h
        }
        Err(_) => {
            panicked = true;
            History::default()
        }
    };
    if panicked {
        stats.problems.push("a reader thread panicked".to_string());
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    Ok((history, stats))
}

type Folded = (
    Vec<(super::history::CellKey, super::history::RunPoint)>,
    Vec<String>,
);

/// Folds one run's files; a file whose SHA-256 is not its manifest's, and a line that is not a
/// record, are named and skipped.
fn fold_run(
    run_id: &str,
    started: DateTime<Utc>,
    files: &[(String, Bytes, String)],
    vantage: Option<&str>,
) -> Folded {
    let mut fold = RunFold::default();
    let mut problems = Vec::new();
    let mut bad_lines = 0usize;
    for (path, bytes, sha) in files {
        if let Some(p) = sha_problem(path, bytes, sha) {
            problems.push(p);
            continue;
        }
        // Fast path: the file as one stream of records (SIMD, one pass). A file with any line
        // that is not a record is read again line by line, so each bad line is named and the
        // rest kept.
        let lines = memchr::memchr_iter(b'\n', bytes).count()
            + usize::from(bytes.last().is_some_and(|b| *b != b'\n'));
        let rows: Result<Vec<WatchRow<'_>>, _> = sonic_rs::Deserializer::from_slice(bytes)
            .into_stream::<WatchRow<'_>>()
            .take(lines)
            .collect();
        if let Ok(rows) = rows {
            for row in &rows {
                fold.add(&Obs::from(row));
            }
            continue;
        }
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<WatchRow<'_>>(line) {
                Ok(row) => fold.add(&Obs::from(&row)),
                Err(e) => {
                    bad_lines += 1;
                    if bad_lines <= 3 {
                        problems.push(format!("{path}:{}: not a record: {e}", i + 1));
                    }
                }
            }
        }
    }
    if bad_lines > 3 {
        problems.push(format!("run {run_id}: {bad_lines} lines were not records"));
    }
    (fold.finish(run_id, started, vantage), problems)
}
