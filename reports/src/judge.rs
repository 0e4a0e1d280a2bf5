//! `llmpulse judge`: a judge target grades stored answers against their questions' rubrics.
//!
//! Each run read back gives two new runs at the destination: `{run}-judged`, the same records
//! with the judge's grade added to `scores` (and `quality_score` recomputed), and `{run}-judge`,
//! one record per judge call (`role = "judge"`, the grade in its own `scores`), so the judge's
//! latency, tokens and cost are measured like any call's. The judge runs at temperature 0, and
//! one (question, rubric, answer) is judged once, however often it occurs.

use std::collections::HashMap;

use chrono::Utc;
use futures_util::{StreamExt, stream};

use llmpulse_core::config::Target;
use llmpulse_core::manifest::RunMeta;
use llmpulse_core::provider::{CallOutcome, Client};
use llmpulse_core::publish;
use llmpulse_core::record::{AttemptStats, CallContext, Record};
use llmpulse_core::score::{grade, judge};
use llmpulse_core::store::Store;
use llmpulse_core::suite::{Message, Prompt, Question};

use crate::read;
use crate::rescore::{RescoreError, run_records};

/// What judging one run did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Judged {
    pub from_run: String,
    pub run_id: String,
    pub judge_run_id: String,
    pub records: usize,
    /// Answers that got a grade.
    pub graded: usize,
    /// Judge calls made (fewer than graded answers when some were the same).
    pub judge_calls: usize,
    /// Judge calls that failed or whose reply held no grade.
    pub no_grade: usize,
}

/// The record of one judge call, and the grade it gave.
struct Judgement {
    record: Record,
    grade: Option<u8>,
}

/// Judges every run at `from` (or only `campaign`'s) with `client`, writing to `to`.
pub async fn judge(
    from: &dyn Store,
    to: &dyn Store,
    client: &Client,
    campaign: Option<&str>,
    questions: &HashMap<String, Question>,
) -> Result<Vec<Judged>, RescoreError> {
    let mut seen = read::ReadStats::default();
    let manifests = read::manifests_in_order(from, &mut seen).await?;
    let mut cache: HashMap<String, Option<u8>> = HashMap::new();
    let mut done = Vec::new();
    for m in manifests
        .iter()
        .filter(|m| campaign.is_none_or(|c| m.campaign.as_deref() == Some(c)))
    {
        let records = run_records(from, m).await?;
        let judge_run_id = format!("{}-judge", m.run_id);
        // The judgements this run needs and the cache does not have, once each.
        let mut wanted: Vec<(String, &Record, &Question)> = Vec::new();
        for r in &records {
            if let Some((key, q)) = needs_judging(r, questions, &client.target().name)
                && !cache.contains_key(&key)
                && !wanted.iter().any(|(k, _, _)| *k == key)
            {
                wanted.push((key, r, q));
            }
        }
        let run_id = judge_run_id.as_str();
        let judgements: Vec<(String, Judgement)> = stream::iter(wanted)
            .map(|(key, r, q)| async move {
                let j = call_judge(client, r, q, run_id).await;
                (key, j)
            })
            .buffered(client.target().limits.max_concurrency.unwrap_or(1).max(1) as usize)
            .collect()
            .await;
        let mut judge_records = Vec::with_capacity(judgements.len());
        let mut stats = Judged {
            from_run: m.run_id.clone(),
            run_id: format!("{}-judged", m.run_id),
            judge_run_id: judge_run_id.clone(),
            records: records.len(),
            judge_calls: judgements.len(),
            ..Judged::default()
        };
        for (key, j) in judgements {
            stats.no_grade += usize::from(j.grade.is_none());
            cache.insert(key, j.grade);
            judge_records.push(j.record);
        }
        let judged: Vec<Record> = records
            .iter()
            .map(|r| {
                let mut n = r.clone();
                n.run_id = stats.run_id.clone();
                let grade = needs_judging(r, questions, &client.target().name)
                    .and_then(|(key, _)| cache.get(&key).copied().flatten());
                if let Some(g) = grade {
                    stats.graded += 1;
                    let mut scores = n.scores.take().unwrap_or_default();
                    scores.insert("judge".into(), f64::from(g));
                    n.quality_score = grade::quality(&scores);
                    n.scores = Some(scores);
                }
                n
            })
            .collect();
        let finished = m.finished_utc();
        let meta = |run_id: &str, targets: Vec<String>| RunMeta::derived(m, run_id, targets);
        let mut copy = publish::encode(&meta(&stats.run_id, m.targets.clone()), &judged, finished)?;
        copy.manifest.complete = m.complete;
        publish::put_encoded(to, &copy).await?;
        if !judge_records.is_empty() {
            let calls = meta(&judge_run_id, vec![client.target().name.clone()]);
            publish::put_encoded(to, &publish::encode(&calls, &judge_records, Utc::now())?).await?;
        }
        done.push(stats);
    }
    Ok(done)
}

/// The cache key and question of a record the judge should grade: an answered call (not a
/// judge's own) whose question has a rubric.
fn needs_judging<'a>(
    r: &Record,
    questions: &'a HashMap<String, Question>,
    judge_name: &str,
) -> Option<(String, &'a Question)> {
    if r.role.is_some() || !r.success {
        return None;
    }
    let q = questions.get(&r.question_id)?;
    let rubric = q.grading.rubric.as_deref()?;
    let answer = r.answer.as_deref()?;
    Some((judge::cache_key(judge_name, &q.question, rubric, answer), q))
}

async fn call_judge(client: &Client, r: &Record, q: &Question, run_id: &str) -> Judgement {
    let rubric = q.grading.rubric.as_deref().unwrap_or_default();
    let answer = r.answer.as_deref().unwrap_or_default();
    let prompt = Prompt::messages(vec![
        Message {
            role: "system",
            content: judge::SYSTEM.to_string(),
        },
        Message {
            role: "user",
            content: judge::prompt(&q.question, rubric, answer),
        },
    ]);
    let (out, stats): (CallOutcome, AttemptStats) = client.call_with_retries(&prompt).await;
    let grade = out
        .success()
        .then(|| judge::parse_grade(&out.answer))
        .flatten();
    let question = Question::bare(&r.question_id, &r.industry, "judge", &q.question);
    let target: &Target = client.target();
    let mut record = Record::from_call(
        &CallContext {
            run_id,
            campaign: r.campaign.as_deref(),
            slot: r.slot,
            origin: &r.origin,
            config_hash: &r.config_hash,
            keep_answers: true,
            target,
            question: &question,
            prompt: &prompt,
            repetition: r.repetition,
            stats: &stats,
            failover_from: None,
            failover_to: None,
            scheduled_at: None,
            slo: None,
            sources: None,
        },
        &out,
    );
    record.role = Some("judge".into());
    if let Some(g) = grade {
        let scores: std::collections::BTreeMap<String, f64> =
            [("judge".to_string(), f64::from(g))].into();
        record.quality_score = grade::quality(&scores);
        record.scores = Some(scores);
    }
    Judgement { record, grade }
}
