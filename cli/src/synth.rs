//! `llmpulse synth`: SYNTHETIC record histories for tests and benchmarks. The records are made
//! up and labelled so (`origin = "synthetic"`); never write them where real runs are kept.

use std::process::ExitCode;

use crate::synthetic::{self as synth, Spec};
use anyhow::Context;
use chrono::Utc;
use llmpulse_report::aggregate::parse_time;

use crate::args::SynthArgs;

pub fn synth(a: SynthArgs) -> anyhow::Result<ExitCode> {
    let every = chrono::Duration::from_std(*a.every).context("--every is too long")?;
    let per_run = u64::from(a.targets.max(1)) * u64::from(a.questions.max(1));
    let runs = a.records.div_ceil(per_run) as i32;
    let start = match &a.start {
        Some(s) => parse_time(s).map_err(|e| anyhow::anyhow!("--start: {e}"))?,
        None => Utc::now() - every * runs.saturating_sub(1),
    };
    let spec = Spec {
        records: a.records,
        targets: a.targets,
        questions: a.questions,
        start,
        every,
        campaign: a.campaign.clone(),
        seed: a.seed,
        scenario: a.scenario,
        change_runs: a.change_runs,
        change_from: a.change_from,
    };
    let (runs, records) = synth::write(&spec, &a.out)?;
    eprintln!(
        "wrote {records} SYNTHETIC records in {runs} runs to {} (origin = \"synthetic\")",
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
