//! Re-grading stored answers without calling any provider: each run read back (its files checked
//! against its manifest) becomes a new run, `{run_id}-rescored`, whose records are the same
//! calls with every score computed again by today's scorers from the question as the suite now
//! gives it. Its manifest names the run it came from (`rescored_from`) and the scorer version.
//! The original run is never rewritten; the new one goes to another location, so that no report
//! counts a call twice.

use std::collections::HashMap;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use llmpulse_core::layout;
use llmpulse_core::manifest::{Manifest, RunMeta};
use llmpulse_core::publish::{self, OutputError};
use llmpulse_core::record::{self, Record};
use llmpulse_core::score::{self, grade};
use llmpulse_core::store::{Store, StoreError};
use llmpulse_core::suite::Question;

use crate::read::{self, ReadError};

/// What rescoring one run did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Rescored {
    pub from_run: String,
    pub run_id: String,
    pub records: usize,
    /// Records graded again.
    pub regraded: usize,
    /// Successful calls kept as they were because the run did not keep answers.
    pub without_answer: usize,
    /// Records whose question the suites no longer have, kept as they were.
    pub unknown_question: usize,
    /// Records whose quality score changed.
    pub changed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RescoreError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("{0}")]
    Data(String),
}

/// The run id a rescored copy of `run_id` gets.
pub fn rescored_id(run_id: &str) -> String {
    format!("{run_id}-rescored")
}

/// Grades `r` again against `q`: every score field is recomputed from the stored answer and
/// native tool calls. A failed call, or one without its answer, comes back unchanged.
pub fn regrade(r: &Record, q: &Question) -> Option<Record> {
    let answer = r.answer.as_deref().filter(|_| r.success)?;
    let native: Vec<(String, String)> = r
        .tool_calls
        .as_deref()
        .and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(t).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            let name = c.get("name")?.as_str()?.to_string();
            let args = match c.get("arguments") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            Some((name, args))
        })
        .collect();
    let g = grade::grade(
        &q.grading,
        &grade::Answer {
            text: answer,
            native_calls: &native,
        },
    );
    let round = |x: f64| (x * 1e6).round() / 1e6;
    let mut out = r.clone();
    let (coverage, grounding) =
        score::Sources::new(&q.context, &q.key_facts, &q.question).score(answer);
    out.coverage_score = coverage.map(round);
    out.grounding_score = grounding.map(round);
    out.json_valid = g.json_valid;
    out.tool_call_valid = g.tool_call_valid;
    out.tool_call_format = g.tool_calls.format.map(|f| f.as_str().to_string());
    out.tool_prompt = q.tool_prompt.clone();
    out.answer_correct = g.answer_correct;
    out.instructions_followed = g.instructions_followed.map(round);
    out.quality_score = g.quality().map(round);
    out.scores = (!g.scores.is_empty()).then(|| {
        g.scores
            .iter()
            .map(|(k, v)| (k.clone(), round(*v)))
            .collect()
    });
    Some(out)
}

/// Rescores one run's records (pure): the new records and what happened.
pub fn rescore_records(
    from_run: &str,
    records: &[Record],
    questions: &HashMap<String, Question>,
) -> (Vec<Record>, Rescored) {
    let run_id = rescored_id(from_run);
    let mut s = Rescored {
        from_run: from_run.to_string(),
        run_id: run_id.clone(),
        records: records.len(),
        ..Rescored::default()
    };
    let out = records
        .iter()
        .map(|r| {
            let mut n = match questions.get(&r.question_id) {
                None => {
                    s.unknown_question += 1;
                    r.clone()
                }
                Some(q) => match regrade(r, q) {
                    Some(n) => {
                        s.regraded += 1;
                        s.changed += usize::from(n.quality_score != r.quality_score);
                        n
                    }
                    None => {
                        s.without_answer += usize::from(r.success);
                        r.clone()
                    }
                },
            };
            n.run_id = run_id.clone();
            n
        })
        .collect();
    (out, s)
}

/// Rescores every run at `from` (or only those of `campaign`) into `to`.
pub async fn rescore(
    from: &dyn Store,
    to: &dyn Store,
    campaign: Option<&str>,
    questions: &HashMap<String, Question>,
) -> Result<Vec<Rescored>, RescoreError> {
    let mut seen = read::ReadStats::default();
    let manifests = read::manifests_in_order(from, &mut seen).await?;
    let mut done = Vec::new();
    for m in manifests
        .iter()
        .filter(|m| campaign.is_none_or(|c| m.campaign.as_deref() == Some(c)))
        .filter(|m| m.rescored_from.is_none())
    {
        let records = run_records(from, m).await?;
        let (new, stats) = rescore_records(&m.run_id, &records, questions);
        let meta = RunMeta::derived(m, &stats.run_id, m.targets.clone());
        let finished = m.finished_utc();
        let mut encoded = publish::encode(&meta, &new, finished)?;
        encoded.manifest.complete = m.complete;
        publish::put_encoded(to, &encoded).await?;
        done.push(stats);
    }
    for p in seen.problems {
        tracing::warn!(problem = %p, "skipped while rescoring");
    }
    Ok(done)
}

/// A run's records, each file checked against its manifest's SHA-256.
pub(crate) async fn run_records(
    store: &dyn Store,
    m: &Manifest,
) -> Result<Vec<Record>, RescoreError> {
    let mut out = Vec::new();
    for f in m.files.iter().filter(|f| layout::is_records_jsonl(&f.path)) {
        let bytes: Bytes = store.get(&f.path).await?.ok_or_else(|| {
            RescoreError::Data(format!("run {}: {} is missing", m.run_id, f.path))
        })?;
        if hex::encode(Sha256::digest(&bytes)) != f.sha256 {
            return Err(RescoreError::Data(format!(
                "run {}: {} differs from its manifest's SHA-256",
                m.run_id, f.path
            )));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| RescoreError::Data(format!("{}: not UTF-8: {e}", f.path)))?;
        out.extend(
            record::read_jsonl(text).map_err(|e| RescoreError::Data(format!("{}: {e}", f.path)))?,
        );
    }
    Ok(out)
}
