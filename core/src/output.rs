//! Writing a run in the storage layout of DESIGN.md, to a local directory or any [`Store`]
//! (with a local spool that keeps the run until the remote manifest is confirmed):
//!
//! ```text
//! {dir}/records/date=YYYY-MM-DD/{run_id}.jsonl
//! {dir}/records/date=YYYY-MM-DD/{run_id}.csv
//! {dir}/runs/{run_id}/manifest.json        written last: a run exists once its manifest does
//! ```
//!
//! Each file is written to a temporary name and renamed, so a reader never sees half a file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use bytes::Bytes;

use crate::record;
use crate::runner::{RunOutput, Shard};
use crate::store::{Store, StoreError, StoreErrorKind, with_retries};

/// The manifest of one run: what it wrote and how to check it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub campaign: Option<String>,
    pub slot: Option<u64>,
    pub origin: String,
    pub llmpulse_version: String,
    pub config_hash: String,
    pub suite: String,
    pub targets: Vec<String>,
    pub records: usize,
    pub successes: usize,
    pub files: Vec<FileEntry>,
    /// Set when this manifest covers one shard of the run.
    #[serde(default)]
    pub shard: Option<Shard>,
}

/// One data file of a run, its path relative to the output root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub rows: usize,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode records as CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
}

/// The key (path below the output root) of a run's records file with extension `ext`.
pub fn records_key(run: &RunOutput, ext: &str) -> String {
    format!(
        "records/date={}/{}{}.{ext}",
        run.started_at.format("%Y-%m-%d"),
        run.run_id,
        Shard::suffix(run.shard)
    )
}

/// The key of a run's manifest (one per shard for a sharded run).
pub fn manifest_key(run_id: &str, shard: Option<Shard>) -> String {
    format!("runs/{run_id}/manifest{}.json", Shard::suffix(shard))
}

/// One file of a run: its key below the output root and its bytes.
#[derive(Debug, Clone)]
pub struct RunFile {
    pub key: String,
    pub bytes: Vec<u8>,
}

/// A run ready to store: data files, and the manifest that vouches for them.
#[derive(Debug, Clone)]
pub struct EncodedRun {
    pub files: Vec<RunFile>,
    pub manifest: Manifest,
}

/// Serialises a run into its files and its manifest, without writing anything.
pub fn encode(
    run: &RunOutput,
    suite: &str,
    targets: &[String],
    origin: &str,
) -> Result<EncodedRun, OutputError> {
    let mut jsonl = Vec::new();
    record::write_jsonl(&mut jsonl, &run.records).map_err(|source| OutputError::Io {
        path: PathBuf::from(records_key(run, "jsonl")),
        source,
    })?;
    let mut csv = Vec::new();
    record::write_csv(&mut csv, &run.records)?;
    let files = vec![
        RunFile {
            key: records_key(run, "jsonl"),
            bytes: jsonl,
        },
        RunFile {
            key: records_key(run, "csv"),
            bytes: csv,
        },
    ];
    let first = run.records.first();
    let manifest = Manifest {
        run_id: run.run_id.clone(),
        started_at: run.started_at.to_rfc3339(),
        finished_at: run.finished_at.to_rfc3339(),
        campaign: first.and_then(|r| r.campaign.clone()),
        slot: first.and_then(|r| r.slot),
        origin: origin.to_string(),
        llmpulse_version: crate::VERSION.to_string(),
        config_hash: run.config_hash.clone(),
        suite: suite.to_string(),
        targets: targets.to_vec(),
        records: run.records.len(),
        successes: run.records.iter().filter(|r| r.success).count(),
        files: files
            .iter()
            .map(|f| FileEntry {
                path: f.key.clone(),
                rows: run.records.len(),
                bytes: f.bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(&f.bytes)),
            })
            .collect(),
        shard: run.shard,
    };
    Ok(EncodedRun { files, manifest })
}

/// Writes a run below `dir`: data files first, manifest last. Returns the manifest's path.
pub fn write_local(dir: &Path, run: &EncodedRun) -> Result<PathBuf, OutputError> {
    for f in &run.files {
        write_atomic(&dir.join(&f.key), &f.bytes)?;
    }
    let path = dir.join(manifest_key(&run.manifest.run_id, run.manifest.shard));
    write_atomic(&path, &manifest_bytes(&run.manifest))?;
    Ok(path)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let io = |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The manifest as stored: pretty JSON.
pub fn manifest_bytes(manifest: &Manifest) -> Vec<u8> {
    serde_json::to_vec_pretty(manifest).unwrap_or_default()
}

/// Where a run ended up.
#[derive(Debug)]
pub enum Publication {
    /// In the store, manifest confirmed.
    Stored {
        location: String,
        manifest_key: String,
    },
    /// The store kept failing: the run is whole in the local spool, for `llmpulse upload`.
    Spooled { dir: PathBuf, error: StoreError },
}

/// Attempts per object before a remote store counts as down.
const STORE_ATTEMPTS: u32 = 4;

/// Writes `run` to `store`: data files first, the manifest last, then reads the manifest back.
/// With a `spool` directory (for remote stores) the run is first written there, whole, and
/// removed only once the remote manifest is confirmed; if the store keeps failing the run stays
/// spooled and this returns [`Publication::Spooled`]. Nothing is lost either way.
pub async fn publish(
    store: &dyn Store,
    run: &EncodedRun,
    spool: Option<&Path>,
) -> Result<Publication, OutputError> {
    let spooled = match spool {
        Some(dir) => Some(spool_run(dir, run, &store.describe())?),
        None => None,
    };
    match upload(store, run).await {
        Ok(manifest_key) => {
            if let Some(dir) = &spooled {
                let _ = std::fs::remove_dir_all(dir);
            }
            Ok(Publication::Stored {
                location: store.describe(),
                manifest_key,
            })
        }
        Err(error) => match spooled {
            Some(dir) => {
                tracing::error!(%error, spool = %dir.display(), "the store refused the run; it is kept in the spool");
                Ok(Publication::Spooled { dir, error })
            }
            None => Err(OutputError::Store(error)),
        },
    }
}

/// Uploads files, then the manifest, then checks the stored manifest. Returns its key.
async fn upload(store: &dyn Store, run: &EncodedRun) -> Result<String, StoreError> {
    let wait = std::time::Duration::from_millis(500);
    for f in &run.files {
        let bytes = Bytes::from(f.bytes.clone());
        with_retries(STORE_ATTEMPTS, wait, || store.put(&f.key, bytes.clone())).await?;
    }
    let key = manifest_key(&run.manifest.run_id, run.manifest.shard);
    let bytes = Bytes::from(manifest_bytes(&run.manifest));
    with_retries(STORE_ATTEMPTS, wait, || store.put(&key, bytes.clone())).await?;
    let stored = with_retries(STORE_ATTEMPTS, wait, || store.get(&key)).await?;
    if stored.as_deref() != Some(&bytes[..]) {
        return Err(StoreError::new(
            StoreErrorKind::Other,
            &store.describe(),
            format!("{key} reads back different from what was written"),
        ));
    }
    Ok(key)
}

/// The file in a spooled run's directory naming where it was going.
const DESTINATION: &str = "destination";

/// Writes a whole run under `spool/{run_id}/`, with its destination.
fn spool_run(spool: &Path, run: &EncodedRun, destination: &str) -> Result<PathBuf, OutputError> {
    let dir = spool.join(format!(
        "{}{}",
        run.manifest.run_id,
        Shard::suffix(run.manifest.shard)
    ));
    write_local(&dir, run)?;
    let dest = dir.join(DESTINATION);
    std::fs::write(&dest, destination).map_err(|source| OutputError::Io { path: dest, source })?;
    Ok(dir)
}

/// A run waiting in the spool.
#[derive(Debug)]
pub struct SpooledRun {
    pub dir: PathBuf,
    pub destination: String,
    pub run: EncodedRun,
}

/// Reads every run in `spool`, checking each file against its manifest's sha256.
pub fn read_spool(spool: &Path) -> Result<Vec<SpooledRun>, OutputError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, source }
    };
    let mut runs = Vec::new();
    let entries = match std::fs::read_dir(spool) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(runs),
        Err(e) => return Err(io(spool)(e)),
    };
    for entry in entries {
        let dir = entry.map_err(io(spool))?.path();
        let dest_path = dir.join(DESTINATION);
        if !dest_path.is_file() {
            continue;
        }
        let destination = std::fs::read_to_string(&dest_path).map_err(io(&dest_path))?;
        // The one manifest below runs/ (a spooled run or shard has exactly one).
        let runs_dir = dir.join("runs");
        let manifest_path = std::fs::read_dir(&runs_dir)
            .map_err(io(&runs_dir))?
            .filter_map(|e| e.ok())
            .flat_map(|e| {
                std::fs::read_dir(e.path())
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.ok())
            })
            .map(|f| f.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("manifest"))
            })
            .ok_or_else(|| OutputError::Corrupt {
                path: runs_dir.clone(),
                message: "no manifest in this spooled run".into(),
            })?;
        let text = std::fs::read(&manifest_path).map_err(io(&manifest_path))?;
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| OutputError::Corrupt {
                path: manifest_path.clone(),
                message: e.to_string(),
            })?;
        let mut files = Vec::new();
        for f in &manifest.files {
            let path = dir.join(&f.path);
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let sum = hex::encode(Sha256::digest(&bytes));
            if sum != f.sha256 {
                return Err(OutputError::Corrupt {
                    path,
                    message: format!("sha256 {sum} does not match the manifest's {}", f.sha256),
                });
            }
            files.push(RunFile {
                key: f.path.clone(),
                bytes,
            });
        }
        runs.push(SpooledRun {
            dir,
            destination: destination.trim().to_string(),
            run: EncodedRun { files, manifest },
        });
    }
    runs.sort_by(|a, b| a.run.manifest.run_id.cmp(&b.run.manifest.run_id));
    Ok(runs)
}

/// Uploads one spooled run to `store` and, once its manifest is confirmed, removes it from the
/// spool.
pub async fn upload_spooled(store: &dyn Store, spooled: &SpooledRun) -> Result<String, StoreError> {
    let key = upload(store, &spooled.run).await?;
    let _ = std::fs::remove_dir_all(&spooled.dir);
    Ok(key)
}
