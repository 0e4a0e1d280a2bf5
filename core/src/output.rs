//! Writing a run to a local directory in the storage layout of DESIGN.md:
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

use crate::record;
use crate::runner::RunOutput;

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
}

/// The key (path below the output root) of a run's records file with extension `ext`.
pub fn records_key(run: &RunOutput, ext: &str) -> String {
    format!(
        "records/date={}/{}.{ext}",
        run.started_at.format("%Y-%m-%d"),
        run.run_id
    )
}

/// The key of a run's manifest.
pub fn manifest_key(run_id: &str) -> String {
    format!("runs/{run_id}/manifest.json")
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
    };
    Ok(EncodedRun { files, manifest })
}

/// Writes a run below `dir`: data files first, manifest last. Returns the manifest's path.
pub fn write_local(dir: &Path, run: &EncodedRun) -> Result<PathBuf, OutputError> {
    for f in &run.files {
        write_atomic(&dir.join(&f.key), &f.bytes)?;
    }
    let path = dir.join(manifest_key(&run.manifest.run_id));
    let json = serde_json::to_vec_pretty(&run.manifest).map_err(|e| OutputError::Io {
        path: path.clone(),
        source: e.into(),
    })?;
    write_atomic(&path, &json)?;
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
