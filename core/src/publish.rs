//! Putting a run into its store: data files first, the manifest last, then the manifest read
//! back. A run is staged whole in the spool first (see [`crate::journal`]) and removed from it
//! only once its stored manifest is confirmed; if the store keeps refusing, the run stays there
//! for `llmpulse upload`. Nothing is lost either way.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use chrono::{DateTime, Utc};

pub use crate::journal::OutputError;
use crate::journal::{self, Staged, StagedRun};
use crate::layout;
use crate::manifest::{FileEntry, Manifest, RunMeta};
use crate::record::{self, Record};
use crate::store::{Store, StoreError, StoreErrorKind, with_retries};

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

impl Publication {
    /// Where the run is: the manifest's full location, or the spool directory.
    pub fn describe(&self) -> String {
        match self {
            Publication::Stored {
                location,
                manifest_key,
            } => format!("{}/{manifest_key}", location.trim_end_matches('/')),
            Publication::Spooled { dir, .. } => dir.display().to_string(),
        }
    }
}

/// Attempts per object before a store counts as down.
const STORE_ATTEMPTS: u32 = 4;

/// Publishes a staged run to `store`; on success its staging directory is removed, otherwise it
/// stays, whole, and this returns [`Publication::Spooled`].
pub async fn publish(store: &dyn Store, run: StagedRun) -> Publication {
    match upload(store, &run.files, &run.manifest).await {
        Ok(manifest_key) => {
            let _ = std::fs::remove_dir_all(&run.dir);
            Publication::Stored {
                location: store.describe(),
                manifest_key,
            }
        }
        Err(error) => {
            tracing::error!(%error, spool = %run.dir.display(), "the store refused the run; it is kept in the spool");
            Publication::Spooled {
                dir: run.dir,
                error,
            }
        }
    }
}

/// Uploads files, then the manifest, then checks the stored manifest. Returns its key.
async fn upload(
    store: &dyn Store,
    files: &[(FileEntry, PathBuf)],
    manifest: &Manifest,
) -> Result<String, StoreError> {
    let wait = std::time::Duration::from_millis(500);
    for (entry, path) in files {
        with_retries(STORE_ATTEMPTS, wait, || store.put_file(&entry.path, path)).await?;
    }
    put_manifest(store, manifest).await
}

/// Puts the manifest and checks it reads back the same. Returns its key.
async fn put_manifest(store: &dyn Store, manifest: &Manifest) -> Result<String, StoreError> {
    let wait = std::time::Duration::from_millis(500);
    let key = layout::manifest_key(&manifest.run_id, manifest.shard);
    let bytes = Bytes::from(manifest.to_bytes());
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

/// A run waiting in the spool, ready to publish: finished, or recovered from its journal.
#[derive(Debug)]
pub struct SpooledRun {
    pub run: StagedRun,
    /// Whether it was recovered from the journal of a run that died just now.
    pub recovered: bool,
}

/// Every run in `spool` that can be published: finished runs, and runs that died, recovered
/// from their journals (`complete = false`). Runs still going are left alone.
pub fn read_spool(spool: &Path) -> Result<Vec<SpooledRun>, OutputError> {
    let mut out = Vec::new();
    for staged in journal::list(spool)? {
        match staged {
            Staged::Finished(run) => out.push(SpooledRun {
                run: *run,
                recovered: false,
            }),
            Staged::Interrupted(dir) => out.push(SpooledRun {
                run: journal::recover(&dir)?,
                recovered: true,
            }),
            Staged::Running(dir) => {
                tracing::info!(dir = %dir.display(), "a run is still writing here; left alone");
            }
        }
    }
    Ok(out)
}

/// A run encoded in memory: for small, made-up runs (synthetic histories). Real runs go
/// through a [`journal::Journal`].
#[derive(Debug, Clone)]
pub struct EncodedRun {
    pub files: Vec<(FileEntry, Vec<u8>)>,
    pub manifest: Manifest,
}

/// Serialises records into a run's files and manifest, without writing anything.
pub fn encode(
    meta: &RunMeta,
    records: &[Record],
    finished_at: DateTime<Utc>,
) -> Result<EncodedRun, OutputError> {
    let started = DateTime::parse_from_rfc3339(&meta.started_at)
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(finished_at);
    let jsonl_key = layout::records_key(started, &meta.run_id, meta.shard, "jsonl");
    let csv_key = layout::records_key(started, &meta.run_id, meta.shard, "csv");
    let mut jsonl = Vec::new();
    record::write_jsonl(&mut jsonl, records).map_err(|cause| OutputError::Io {
        path: PathBuf::from(&jsonl_key),
        cause,
    })?;
    let mut csv = Vec::new();
    record::write_csv(&mut csv, records)?;
    let files = vec![
        (
            FileEntry::of_bytes(&jsonl_key, records.len(), &jsonl),
            jsonl,
        ),
        (FileEntry::of_bytes(&csv_key, records.len(), &csv), csv),
    ];
    let manifest = Manifest::new(
        meta,
        finished_at.to_rfc3339(),
        (records.len(), records.iter().filter(|r| r.success).count()),
        files.iter().map(|(e, _)| e.clone()).collect(),
        true,
    );
    Ok(EncodedRun { files, manifest })
}

/// Puts an encoded run into `store`: data files first, the manifest last, then the manifest
/// read back. Returns the manifest's key.
pub async fn put_encoded(store: &dyn Store, run: &EncodedRun) -> Result<String, StoreError> {
    let wait = std::time::Duration::from_millis(500);
    for (entry, bytes) in &run.files {
        let bytes = Bytes::from(bytes.clone());
        with_retries(STORE_ATTEMPTS, wait, || {
            store.put(&entry.path, bytes.clone())
        })
        .await?;
    }
    put_manifest(store, &run.manifest).await
}

/// Writes an encoded run below `dir`: data files first, manifest last. Each file is written to a
/// temporary name and renamed, so a reader never sees half a file.
pub fn write_local(dir: &Path, run: &EncodedRun) -> Result<PathBuf, OutputError> {
    for (entry, bytes) in &run.files {
        write_atomic(&dir.join(&entry.path), bytes)?;
    }
    let path = dir.join(layout::manifest_key(
        &run.manifest.run_id,
        run.manifest.shard,
    ));
    write_atomic(&path, &run.manifest.to_bytes())?;
    Ok(path)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let io = |cause| OutputError::Io {
        path: path.to_path_buf(),
        cause,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
