//! llmpulse-core: the run path, from a config file to records in a store.
//!
//! A run flows through these modules in order: [`config`] reads and validates the TOML into a
//! [`config::Config`] (targets resolved through [`preset`]); [`suite`] loads the questions;
//! [`plan`] lists the calls; [`runner`] fans them out to a [`provider`], which streams each answer
//! through [`measure`]; [`record`] turns each call into one row (scored by `llmpulse-score`) and
//! hands it to a [`sink`]; [`publish`] writes the rows and the run manifest to a [`store`] under
//! the keys of [`layout`]. [`job`] is one scheduled run anywhere (CLI, cloud functions, agent):
//! [`schedule`] picks the slot, a create-only claim decides who runs it. The core never prints.

pub mod budget;
pub mod cases;
pub mod config;
pub mod cost;
pub mod discover;
pub mod error_kind;
pub mod instrument;
pub mod job;
pub mod journal;
pub mod layout;
pub mod load;
pub mod manifest;
pub mod measure;
pub mod pace;
pub mod plan;
pub mod preset;
pub mod provider;
pub mod publish;
pub mod record;
pub mod retry;
pub mod runner;
pub mod schedule;
pub mod secret;
pub mod sink;
pub mod stats;
pub mod stop;
pub mod store;
pub mod suite;
pub mod summary;
pub mod tokens;

/// The scorers, for crates that build questions or grade stored answers.
pub use llmpulse_score as score;

/// The version written into every record and manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
