//! llmpulse-report: runs read back from any store and turned into figures, charts and tables,
//! model recommendations ([`select`]) and campaign status ([`status`]). It never writes to a store.
//!
//! [`read`] streams each run's records (found through its manifest) into an
//! [`aggregate::Aggregate`], whose size depends on the number of groups, not records;
//! [`figures`] computes the statistics (`summary.json`); [`compare`] sets two targets or two
//! windows side by side; [`html`], [`charts`] and [`text`] render `index.html`, `summary.md` and
//! `comparison.txt`.

pub mod ab;
pub mod after_run;
pub mod aggregate;
pub mod alerts;
pub mod charts;
pub mod compare;
pub mod dashboard;
pub mod dist;
pub mod estimate;
pub mod figures;
pub mod html;
pub mod judge;
pub mod narrate;
pub mod rates;
pub mod read;
pub mod rescore;
pub mod row;
pub mod select;
pub mod side;
pub mod status;
pub mod sweep;
pub mod text;
pub mod watch;

use std::path::{Path, PathBuf};

pub use figures::Report;

/// The four files of a report, written into `dir` (created if needed). Returns their paths.
pub fn write(report: &Report, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, bytes) in files(report)? {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// The report's files, by name: `index.html`, `summary.md`, `comparison.txt`, `summary.json`.
pub fn files(report: &Report) -> std::io::Result<Vec<(&'static str, Vec<u8>)>> {
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    Ok(vec![
        ("index.html", html::page(report).into_bytes()),
        ("summary.md", text::markdown(report).into_bytes()),
        (
            "comparison.txt",
            text::comparison_table(report).into_bytes(),
        ),
        ("summary.json", json),
    ])
}
