//! A run's journal: the [`RecordSink`] that writes each record to disk the moment its call ends,
//! so a run that dies loses only its calls in flight.
//!
//! Every run is staged in its own directory of the spool, laid out as the store will be:
//!
//! ```text
//! {spool}/{run_id}[-shard-i-of-n]/
//!   destination                       the store the run is for
//!   run.json                          what the run is (RunMeta), written before the first call
//!   lock                              held (flock) while the run is alive
//!   records/date=…/{run_id}.jsonl     appended, flushed whenever no record waits, fsync'd in batches
//!   records/date=…/{run_id}.csv       appended
//!   runs/{run_id}/manifest.json       written by `finish`: the run is whole
//! ```
//!
//! A directory with a manifest is a finished run waiting to be published; one without a
//! manifest whose lock is free belongs to a run that died, and [`recover`] turns its journal
//! into a run with `complete = false`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::layout;
use crate::manifest::{FileEntry, Manifest, RunMeta};
use crate::record::Record;
use crate::sink::RecordSink;
use crate::store::StoreError;

/// The file in a staged run's directory naming the store it is for.
pub const DESTINATION: &str = "destination";
/// The file holding the run's [`RunMeta`].
pub const META: &str = "run.json";
const LOCK: &str = "lock";

/// Records between two `fsync`s of the journal, at most, and the most time between them (each
/// record is out of the process as soon as no other waits to be written, so only a crash of the
/// machine, not of the process, can lose the unsynced ones: at most two seconds of them).
const SYNC_EVERY: usize = 1024;
const SYNC_INTERVAL: Duration = Duration::from_secs(2);

/// The journal's write buffer: records that finished together go out in one write.
const JOURNAL_BUFFER: usize = 64 * 1024;

/// Why a run's files could not be written, read or published.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot encode records as CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
}

/// A run being written: the sink the runner feeds.
pub struct Journal {
    dir: PathBuf,
    meta: RunMeta,
    destination: String,
    jsonl_key: String,
    csv_key: String,
    jsonl: BufWriter<File>,
    csv: csv::Writer<BufWriter<File>>,
    line: Vec<u8>,
    row: crate::record::RowWriter,
    rows: usize,
    successes: usize,
    unsynced: usize,
    last_sync: Instant,
    _lock: File,
}

/// A run whose files are complete in its staging directory, with its manifest.
#[derive(Debug)]
pub struct StagedRun {
    pub dir: PathBuf,
    pub destination: String,
    /// Each data file: its entry (key, rows, sha256) and where it is on disk.
    pub files: Vec<(FileEntry, PathBuf)>,
    pub manifest: Manifest,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |cause| OutputError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// The staging directory of a run under `spool`.
pub fn staging_dir(spool: &Path, run_id: &str, shard: Option<crate::plan::Shard>) -> PathBuf {
    spool.join(layout::staging_name(run_id, shard))
}

fn keys(meta: &RunMeta) -> (String, String) {
    let started = DateTime::parse_from_rfc3339(&meta.started_at)
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|_| Utc::now());
    (
        layout::records_key(started, &meta.run_id, meta.shard, "jsonl"),
        layout::records_key(started, &meta.run_id, meta.shard, "csv"),
    )
}

fn create_file(path: &Path) -> Result<File, OutputError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    File::create(path).map_err(io(path))
}

impl Journal {
    /// Opens a run's staging directory under `spool` and takes its lock. `destination` is the
    /// store the run is for.
    pub fn create(spool: &Path, meta: RunMeta, destination: &str) -> Result<Journal, OutputError> {
        let dir = staging_dir(spool, &meta.run_id, meta.shard);
        if dir.join(META).exists() {
            return Err(OutputError::Corrupt {
                path: dir,
                message: "a run with this id is already staged here; publish or recover it \
                          first with `llmpulse upload --spool` on this directory's parent"
                    .into(),
            });
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock_path = dir.join(LOCK);
        let lock = create_file(&lock_path)?;
        lock.try_lock().map_err(|e| OutputError::Corrupt {
            path: lock_path.clone(),
            message: format!("cannot lock the run's journal: {e}"),
        })?;
        let dest_path = dir.join(DESTINATION);
        std::fs::write(&dest_path, destination).map_err(io(&dest_path))?;
        let meta_path = dir.join(META);
        let meta_bytes = serde_json::to_vec_pretty(&meta).unwrap_or_default();
        std::fs::write(&meta_path, meta_bytes).map_err(io(&meta_path))?;
        let (jsonl_key, csv_key) = keys(&meta);
        let jsonl = BufWriter::with_capacity(JOURNAL_BUFFER, create_file(&dir.join(&jsonl_key))?);
        let csv = csv::Writer::from_writer(BufWriter::new(create_file(&dir.join(&csv_key))?));
        Ok(Journal {
            dir,
            meta,
            destination: destination.to_string(),
            jsonl_key,
            csv_key,
            jsonl,
            csv,
            line: Vec::with_capacity(4096),
            row: crate::record::RowWriter::default(),
            rows: 0,
            successes: 0,
            unsynced: 0,
            last_sync: Instant::now(),
            _lock: lock,
        })
    }

    /// Closes the files, syncs them and writes the manifest. `complete` is false for a run that
    /// was stopped before every planned call ended.
    pub fn finish(
        mut self,
        finished_at: DateTime<Utc>,
        complete: bool,
    ) -> Result<StagedRun, OutputError> {
        let jsonl_path = self.dir.join(&self.jsonl_key);
        let csv_path = self.dir.join(&self.csv_key);
        self.jsonl.flush().map_err(io(&jsonl_path))?;
        self.jsonl.get_ref().sync_all().map_err(io(&jsonl_path))?;
        self.csv.flush().map_err(io(&csv_path))?;
        if let Ok(w) = self.csv.into_inner() {
            let _ = w.get_ref().sync_all();
        }
        let files = vec![
            (
                FileEntry::of_file(&self.jsonl_key, self.rows, &jsonl_path)
                    .map_err(io(&jsonl_path))?,
                jsonl_path,
            ),
            (
                FileEntry::of_file(&self.csv_key, self.rows, &csv_path).map_err(io(&csv_path))?,
                csv_path,
            ),
        ];
        let mut files = files;
        files.extend(telemetry_file(&self.dir, &self.meta)?);
        let manifest = Manifest::new(
            &self.meta,
            finished_at.to_rfc3339(),
            (self.rows, self.successes),
            files.iter().map(|(e, _)| e.clone()).collect(),
            complete,
        );
        write_manifest(&self.dir, &manifest)?;
        Ok(StagedRun {
            dir: self.dir,
            destination: self.destination,
            files,
            manifest,
        })
    }
}

impl Journal {
    /// What the run's servers said about it on their own `/metrics`, for the manifest.
    pub fn set_server_metrics(&mut self, v: Option<serde_json::Value>) {
        self.meta.server_metrics = v;
    }

    pub fn set_budget(&mut self, v: Option<crate::budget::BudgetReport>) {
        self.meta.budget = v;
    }

    pub fn set_pace(&mut self, v: Option<crate::pace::PaceReport>) {
        self.meta.pace = v;
    }

    /// Where an agent writes the run's telemetry series, a sample a line; the run's files
    /// include it when it exists (also when the run is recovered after it died).
    pub fn telemetry_path(&self) -> PathBuf {
        self.dir.join(telemetry_key(&self.meta))
    }
}

fn telemetry_key(meta: &RunMeta) -> String {
    let started = DateTime::parse_from_rfc3339(&meta.started_at)
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|_| Utc::now());
    layout::telemetry_key(started, &meta.run_id, meta.shard)
}

/// The telemetry series in a staging directory, if an agent wrote one: its entry (rows = whole
/// lines) and path.
fn telemetry_file(dir: &Path, meta: &RunMeta) -> Result<Option<(FileEntry, PathBuf)>, OutputError> {
    let key = telemetry_key(meta);
    let path = dir.join(&key);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    let rows = bytes.iter().filter(|b| **b == b'\n').count();
    Ok(Some((FileEntry::of_bytes(&key, rows, &bytes), path)))
}

/// The room kept for the next record's JSON line; a longer one's is freed.
const LINE_KEPT: usize = 64 * 1024;

impl RecordSink for Journal {
    fn record(&mut self, record: &Record) -> std::io::Result<()> {
        self.line.clear();
        // Room for the answer at once: grown by doubling, a 4 MiB answer's line would take up to
        // 8 MiB, and 12 while it moved.
        let answer = record.answer.as_ref().map_or(0, String::len);
        self.line.reserve(answer + answer / 8 + 16 * 1024);
        serde_json::to_writer(&mut self.line, record)?;
        self.line.push(b'\n');
        // Out of the process with the next flush, as soon as no other record waits: a kill -9
        // loses only the records that had not reached the sink.
        self.jsonl.write_all(&self.line)?;
        self.row
            .write(&mut self.csv, record, self.rows == 0)
            .map_err(std::io::Error::other)?;
        // A line as long as an answer cut at max_answer_bytes is not kept for the next record.
        if self.line.capacity() > LINE_KEPT {
            self.line = Vec::new();
        }
        self.rows += 1;
        self.successes += usize::from(record.success);
        self.unsynced += 1;
        if self.unsynced >= SYNC_EVERY || self.last_sync.elapsed() >= SYNC_INTERVAL {
            self.jsonl.flush()?;
            self.jsonl.get_ref().sync_data()?;
            self.unsynced = 0;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.jsonl.flush()
    }
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), OutputError> {
    let path = dir.join(layout::manifest_key(&manifest.run_id, manifest.shard));
    let tmp = path.with_extension("partial");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(&tmp, manifest.to_bytes()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))
}

/// What a staging directory holds.
#[derive(Debug)]
pub enum Staged {
    /// A whole run (manifest written), waiting to be published.
    Finished(Box<StagedRun>),
    /// A run that died: its journal, without a manifest, and nobody holds its lock.
    Interrupted(PathBuf),
    /// A run still going (its lock is held): left alone.
    Running(PathBuf),
}

/// Every staged run under `spool`, sorted by directory name. Finished runs are checked against
/// their manifest's SHA-256.
pub fn list(spool: &Path) -> Result<Vec<Staged>, OutputError> {
    let entries = match std::fs::read_dir(spool) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(spool)(e)),
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|d| d.join(DESTINATION).is_file())
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for dir in dirs {
        match find_manifest(&dir)? {
            Some(manifest_path) => out.push(Staged::Finished(Box::new(load_finished(
                &dir,
                &manifest_path,
            )?))),
            None if lock_is_held(&dir) => out.push(Staged::Running(dir)),
            None => out.push(Staged::Interrupted(dir)),
        }
    }
    Ok(out)
}

fn lock_is_held(dir: &Path) -> bool {
    match File::open(dir.join(LOCK)) {
        Ok(f) => f.try_lock_shared().is_err(),
        Err(_) => false,
    }
}

/// The one manifest below `dir/runs/` (a staged run or shard has at most one).
fn find_manifest(dir: &Path) -> Result<Option<PathBuf>, OutputError> {
    let runs_dir = dir.join(layout::RUNS_PREFIX.trim_end_matches('/'));
    let Ok(runs) = std::fs::read_dir(&runs_dir) else {
        return Ok(None);
    };
    Ok(runs
        .filter_map(|e| e.ok())
        .flat_map(|e| {
            std::fs::read_dir(e.path())
                .into_iter()
                .flatten()
                .filter_map(|f| f.ok())
        })
        .map(|f| f.path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("manifest"))
        }))
}

fn read_destination(dir: &Path) -> Result<String, OutputError> {
    let path = dir.join(DESTINATION);
    Ok(std::fs::read_to_string(&path)
        .map_err(io(&path))?
        .trim()
        .to_string())
}

fn load_finished(dir: &Path, manifest_path: &Path) -> Result<StagedRun, OutputError> {
    let text = std::fs::read(manifest_path).map_err(io(manifest_path))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| OutputError::Corrupt {
        path: manifest_path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut files = Vec::new();
    for f in &manifest.files {
        let path = dir.join(&f.path);
        let (_, sum) = crate::manifest::sha256_file(&path).map_err(io(&path))?;
        if sum != f.sha256 {
            return Err(OutputError::Corrupt {
                path,
                message: format!("sha256 {sum} does not match the manifest's {}", f.sha256),
            });
        }
        files.push((f.clone(), path));
    }
    Ok(StagedRun {
        dir: dir.to_path_buf(),
        destination: read_destination(dir)?,
        files,
        manifest,
    })
}

/// Turns the journal of a run that died into a finished run with `complete = false`: every
/// whole record line is kept (a line cut by the kill is dropped), the CSV is rebuilt from them,
/// and a manifest says how many calls were planned and how many were recorded.
pub fn recover(dir: &Path) -> Result<StagedRun, OutputError> {
    let meta_path = dir.join(META);
    let meta: RunMeta = serde_json::from_slice(&std::fs::read(&meta_path).map_err(io(&meta_path))?)
        .map_err(|e| OutputError::Corrupt {
            path: meta_path.clone(),
            message: e.to_string(),
        })?;
    let (jsonl_key, csv_key) = keys(&meta);
    let jsonl_path = dir.join(&jsonl_key);
    let csv_path = dir.join(&csv_key);
    let clean_path = jsonl_path.with_extension("recovered");
    let mut clean = BufWriter::new(create_file(&clean_path)?);
    let mut csv = csv::Writer::from_writer(BufWriter::new(create_file(&csv_path)?));
    let (mut rows, mut successes, mut dropped) = (0usize, 0usize, 0usize);
    let mut last_time: Option<String> = None;
    if let Ok(file) = File::open(&jsonl_path) {
        for line in BufReader::new(file).split(b'\n') {
            let line = line.map_err(io(&jsonl_path))?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Record>(&line) {
                Ok(r) => {
                    clean.write_all(&line).map_err(io(&clean_path))?;
                    clean.write_all(b"\n").map_err(io(&clean_path))?;
                    crate::record::write_csv_row(&mut csv, &r, rows == 0)?;
                    rows += 1;
                    successes += usize::from(r.success);
                    last_time = Some(r.timestamp.clone());
                }
                Err(_) => dropped += 1,
            }
        }
    }
    clean.flush().map_err(io(&clean_path))?;
    csv.flush().map_err(io(&csv_path))?;
    drop(csv);
    std::fs::rename(&clean_path, &jsonl_path).map_err(io(&jsonl_path))?;
    if dropped > 0 {
        tracing::warn!(dir = %dir.display(), dropped, "journal lines that were not whole records were dropped");
    }
    let files = vec![
        (
            FileEntry::of_file(&jsonl_key, rows, &jsonl_path).map_err(io(&jsonl_path))?,
            jsonl_path,
        ),
        (
            FileEntry::of_file(&csv_key, rows, &csv_path).map_err(io(&csv_path))?,
            csv_path,
        ),
    ];
    let mut files = files;
    files.extend(telemetry_file(dir, &meta)?);
    let finished_at = last_time.unwrap_or_else(|| meta.started_at.clone());
    let manifest = Manifest::new(
        &meta,
        finished_at,
        (rows, successes),
        files.iter().map(|(e, _)| e.clone()).collect(),
        false,
    );
    write_manifest(dir, &manifest)?;
    Ok(StagedRun {
        dir: dir.to_path_buf(),
        destination: read_destination(dir)?,
        files,
        manifest,
    })
}
