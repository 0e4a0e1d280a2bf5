//! A run's manifest: who ran, what was planned and recorded, and every data file with its
//! SHA-256. A reader trusts a run only through its manifest, which is written last.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::plan::Shard;

/// What a run is, known before its first call: everything a manifest says but its counts and
/// files. A journal keeps it beside the records so that a killed run can still be published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub run_id: String,
    /// RFC 3339.
    pub started_at: String,
    pub campaign: Option<String>,
    pub slot: Option<u64>,
    pub origin: String,
    pub config_hash: String,
    pub suite: String,
    pub targets: Vec<String>,
    #[serde(default)]
    pub shard: Option<Shard>,
    /// Calls planned (fallbacks not counted).
    #[serde(default)]
    pub planned: Option<usize>,
    /// What an agent's host is (OS, CPU, memory, GPUs, the servers and their models) and which
    /// telemetry sources it had, with the reason for each it lacked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<serde_json::Value>,
    /// For a rescored file set: the run whose stored answers it graded again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescored_from: Option<String>,
    /// Agent runs: what each local target's server said about the run on its own `/metrics`
    /// (target → `{port, url, named, reset, error}`), known once the run has stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<serde_json::Value>,
    /// What the run's budget did (its cap, its spend, calls skipped and why), when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<crate::budget::BudgetReport>,
    /// What the agent's pacing did (cooldowns and their time, duty-cycle waits), when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pace: Option<crate::pace::PaceReport>,
}

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
    /// False for a run that was stopped (a signal) or recovered from its journal after it died:
    /// `planned` calls were meant, `records` were recorded. Manifests written before this field
    /// existed were complete.
    #[serde(default = "complete_by_default")]
    pub complete: bool,
    #[serde(default)]
    pub planned: Option<usize>,
    /// The agent's host fingerprint (see [`RunMeta::host`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<serde_json::Value>,
    /// The scorer set's version (`llmpulse_score::grade::SCORERS_VERSION`): scores compare
    /// across runs only when it is the same. Absent in manifests written before it existed.
    #[serde(default)]
    pub scorers_version: Option<String>,
    /// For a rescored file set: the run whose stored answers it graded again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescored_from: Option<String>,
    /// See [`RunMeta::server_metrics`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<serde_json::Value>,
    /// See [`RunMeta::budget`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<crate::budget::BudgetReport>,
    /// See [`RunMeta::pace`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pace: Option<crate::pace::PaceReport>,
}

fn complete_by_default() -> bool {
    true
}

impl RunMeta {
    /// The meta of a run made from `source`'s records (rescored or judged): the same campaign,
    /// slot, origin, suite and times, under `run_id`, naming its source.
    pub fn derived(source: &Manifest, run_id: &str, targets: Vec<String>) -> RunMeta {
        RunMeta {
            run_id: run_id.to_string(),
            started_at: source.started_at.clone(),
            campaign: source.campaign.clone(),
            slot: source.slot,
            origin: source.origin.clone(),
            config_hash: source.config_hash.clone(),
            suite: source.suite.clone(),
            targets,
            shard: source.shard,
            planned: source.planned,
            host: source.host.clone(),
            rescored_from: Some(source.run_id.clone()),
            server_metrics: None,
            budget: None,
            pace: None,
        }
    }
}

impl Manifest {
    /// When the run finished; now when the manifest's time does not parse.
    pub fn finished_utc(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(&self.finished_at)
            .map(|d| d.with_timezone(&chrono::Utc))
            .unwrap_or_else(|_| chrono::Utc::now())
    }

    /// A manifest for `meta` with these counts and files.
    pub fn new(
        meta: &RunMeta,
        finished_at: String,
        (records, successes): (usize, usize),
        files: Vec<FileEntry>,
        complete: bool,
    ) -> Manifest {
        Manifest {
            run_id: meta.run_id.clone(),
            started_at: meta.started_at.clone(),
            finished_at,
            campaign: meta.campaign.clone(),
            slot: meta.slot,
            origin: meta.origin.clone(),
            llmpulse_version: crate::VERSION.to_string(),
            config_hash: meta.config_hash.clone(),
            suite: meta.suite.clone(),
            targets: meta.targets.clone(),
            records,
            successes,
            files,
            shard: meta.shard,
            complete,
            planned: meta.planned,
            host: meta.host.clone(),
            scorers_version: Some(llmpulse_score::grade::SCORERS_VERSION.to_string()),
            rescored_from: meta.rescored_from.clone(),
            server_metrics: meta.server_metrics.clone(),
            budget: meta.budget.clone(),
            pace: meta.pace,
        }
    }

    /// The manifest as stored: pretty JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// One data file of a run, its path relative to the output root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub rows: usize,
    pub bytes: u64,
    pub sha256: String,
}

impl FileEntry {
    /// The entry for `bytes` at `key`.
    pub fn of_bytes(key: &str, rows: usize, bytes: &[u8]) -> FileEntry {
        FileEntry {
            path: key.to_string(),
            rows,
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The entry for the file at `path`, read in pieces (a file of any size).
    pub fn of_file(key: &str, rows: usize, path: &Path) -> std::io::Result<FileEntry> {
        let (bytes, sha256) = sha256_file(path)?;
        Ok(FileEntry {
            path: key.to_string(),
            rows,
            bytes,
            sha256,
        })
    }
}

/// The size and SHA-256 of a file, read in pieces.
pub fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}
