//! How a soak is started ([`SoakOptions`]), how it ended ([`SoakOutcome`]) and why it could not
//! go on ([`SoakRunError`]): what the loop (`run.rs`) and each segment (`segment.rs`) share.

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveTime;
use llmpulse_core::config::Target;
use llmpulse_core::job::JobError;
use llmpulse_core::runner::Stop;

use super::clock::Clock;
use super::state::SoakState;
use super::stats::ModelInfo;

/// How a soak is started.
pub struct SoakOptions {
    pub spool: PathBuf,
    pub stop: Stop,
    pub clock: Clock,
    /// Override the `[soak]` end (a resumed soak keeps the end it started with).
    pub duration: Option<Duration>,
    pub until: Option<NaiveTime>,
    /// Models found by discovery, beside the config's targets.
    pub discovered: Vec<(Target, ModelInfo)>,
    /// Serve `/metrics` and `/health` here (the soak's counters and the hardware gauges).
    pub listen: Option<std::net::SocketAddr>,
}

/// Why a soak could not go on.
#[derive(Debug, thiserror::Error)]
pub enum SoakRunError {
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("{0}")]
    State(String),
    #[error("soak directory {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("no model to soak: give targets in the config, or --discover")]
    NoModels,
}

/// How a soak ended.
#[derive(Debug)]
pub struct SoakOutcome {
    pub state: SoakState,
    pub summary: PathBuf,
    pub profiles: PathBuf,
    pub report: PathBuf,
    /// The soak ended because its time was up (not stopped).
    pub finished: bool,
}
