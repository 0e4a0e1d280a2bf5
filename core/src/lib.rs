//! llmpulse-core: everything that is not an entry point.
//!
//! A run flows through these modules in order: [`config`] reads and validates the TOML into a
//! [`config::Config`]; [`suite`] loads the questions; [`runner`] fans every
//! (question × target × repetition) out to a [`provider`], which streams the answer through
//! [`measure`]; [`score`] grades the answer against the suite's context and key facts;
//! [`record`] turns each call into one row; [`output`] writes the rows and the run manifest;
//! [`summary`] condenses them into the per-target table. [`sim`] is the built-in OpenAI-compatible
//! simulator, served over HTTP or called in-process.

pub mod config;
pub mod error_kind;
pub mod job;
pub mod measure;
pub mod output;
pub mod provider;
pub mod record;
pub mod report;
pub mod retry;
pub mod runner;
pub mod schedule;
pub mod score;
pub mod secret;
pub mod select;
pub mod sim;
pub mod stats;
pub mod status;
pub mod store;
pub mod suite;
pub mod summary;
pub mod synth;
pub mod tokens;

/// The version written into every record and manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
