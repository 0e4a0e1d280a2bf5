//! Helpers the agent's end-to-end tests share: reading what a run wrote back.
#![allow(dead_code)]

use std::path::Path;

use llmpulse_report::aggregate::{Aggregate, Plan};
use llmpulse_report::read::{self, Filter, ReadStats};
use serde_json::Value;

/// The lines of a JSONL file.
pub fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every run stored under the local directory `out`, read back as `llmpulse report` and
/// `llmpulse select` read it (hourly buckets).
pub fn aggregate(out: &Path) -> (Aggregate, ReadStats) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = llmpulse_core::store::open(&out.display().to_string(), &|_| None)
            .await
            .unwrap();
        read::read(
            s.as_ref(),
            &Filter::default(),
            |_| Plan::buckets(3_600),
            &|_, _| {},
        )
        .await
        .unwrap()
    })
}
