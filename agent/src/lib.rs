//! The on-prem agent: runs the same job as the CLI and the cloud functions on the machine that
//! serves the models, and adds what only that machine can measure.
//!
//! - [`discover`]: which LLM servers run here and what models they have;
//! - [`telemetry`]: hardware samples during a run, and each call's memory, power and energy;
//! - [`host`]: the host fingerprint in each manifest;
//! - [`run`]: one run with telemetry; [`serve`]: the scheduled daemon; [`metrics`]: its
//!   `/metrics` and `/health`;
//! - [`sweep`]: server-configuration sweeps; [`soak`]: hours-long soak runs with rotation,
//!   night mode, a live summary, model profiles and a morning report.

pub mod discover;
pub mod host;
pub mod metrics;
pub mod run;
pub mod serve;
pub mod soak;
pub mod sweep;
pub mod telemetry;
