//! Model selection (the seed's dynamic model selector): the best measured target for a task or
//! an agent type, under memory, speed, latency and cost limits, with its alternatives, the
//! reasons, and a refusal when the records are too few to say.
//!
//! Each task is scored in [0, 1] from the records, conservatively: rates use the lower bound of
//! their Wilson interval, so 3 of 3 does not beat 95 of 100. An agent type is a weighting of
//! tasks. The final score is the weighted task score times the lower bound of the target's
//! overall success rate.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aggregate::{Aggregate, CellAgg, Rate, TargetAgg};
use llmpulse_core::stats::{self, Z95};

/// The task types of the seed, plus `rag_coverage` and `cost_efficiency` (correct answers per
/// dollar).
pub const TASKS: [&str; 10] = [
    "speed_critical",
    "memory_constrained",
    "structured_output",
    "tool_use",
    "creative_content",
    "complex_reasoning",
    "knowledge",
    "instruction_following",
    "rag_coverage",
    "cost_efficiency",
];

/// The agent types of the seed, as task weights.
pub fn agent_weights(agent: &str) -> Option<Vec<(&'static str, f64)>> {
    Some(match agent {
        "creative" => vec![("creative_content", 1.0)],
        "analytical" => vec![("complex_reasoning", 0.5), ("structured_output", 0.5)],
        "assistant" => vec![
            ("tool_use", 0.4),
            ("structured_output", 0.4),
            ("speed_critical", 0.2),
        ],
        "chat" => vec![("speed_critical", 0.5), ("creative_content", 0.5)],
        "coding" => vec![("structured_output", 0.5), ("complex_reasoning", 0.5)],
        "summarization" => vec![("speed_critical", 0.5), ("complex_reasoning", 0.5)],
        "translation" => vec![("speed_critical", 0.5), ("structured_output", 0.5)],
        _ => return None,
    })
}

pub const AGENTS: [&str; 7] = [
    "creative",
    "analytical",
    "assistant",
    "chat",
    "coding",
    "summarization",
    "translation",
];

/// What the caller asks for.
#[derive(Debug, Clone, Default)]
pub struct Criteria {
    /// Task weights (one task with weight 1 for `--task`).
    pub weights: Vec<(&'static str, f64)>,
    pub max_memory_mb: Option<f64>,
    pub min_speed_tps: Option<f64>,
    pub max_p95_latency_sec: Option<f64>,
    /// Mean cost per call, in USD (every call with a cost, billed failures included).
    pub max_cost_usd: Option<f64>,
    /// Mean cost per 1,000 calls, in USD.
    pub max_cost_per_1k_usd: Option<f64>,
    /// Leave out the targets any of whose calls a source said were throttled (agent records;
    /// targets nothing can tell about pass).
    pub no_throttling: bool,
    /// Fewest calls a target needs to be considered at all.
    pub min_calls: u64,
    /// Fewest relevant calls behind each task score.
    pub min_task_calls: u64,
}

/// Defaults for the evidence a choice needs.
pub const MIN_CALLS: u64 = 20;
pub const MIN_TASK_CALLS: u64 = 5;

/// Resolves `--task` or `--agent` into weights.
pub fn weights(
    task: Option<&str>,
    agent: Option<&str>,
) -> Result<Vec<(&'static str, f64)>, String> {
    match (task, agent) {
        (Some(t), None) => TASKS
            .iter()
            .find(|x| **x == t)
            .map(|x| vec![(*x, 1.0)])
            .ok_or_else(|| format!("unknown task '{t}': one of {}", TASKS.join(", "))),
        (None, Some(a)) => agent_weights(a)
            .ok_or_else(|| format!("unknown agent type '{a}': one of {}", AGENTS.join(", "))),
        _ => Err("give exactly one of --task or --agent".into()),
    }
}

/// The recommended way to run the chosen target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecommendedConfig {
    pub target: String,
    pub provider: String,
    pub model: String,
    /// The measured temperature that did best for these tasks (`null`: the provider default).
    pub temperature: Option<f64>,
    /// The server configuration the chosen target ran with (sweep records); `null` where the
    /// records do not say (hosted APIs, targets llmpulse did not start).
    pub quantization: Option<String>,
    pub flash_attention: Option<String>,
    pub kv_cache_type: Option<String>,
    pub ctx_size: Option<u32>,
    /// vLLM sweeps: `--max-num-seqs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_num_seqs: Option<u32>,
}

/// One candidate's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub target: String,
    pub model: String,
    pub score: f64,
    pub task_scores: BTreeMap<&'static str, f64>,
    pub calls: u64,
    pub success_rate_lower: f64,
}

/// A target left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Excluded {
    pub target: String,
    pub reason: String,
}

/// The answer, as the seed's callers read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selection {
    pub selected_model: String,
    pub recommended_config: RecommendedConfig,
    pub score: f64,
    pub alternatives: Vec<Candidate>,
    pub why: Vec<String>,
    pub excluded: Vec<Excluded>,
    pub records: u64,
}

/// No answer: the evidence is too thin or every target was excluded.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub reason: String,
    pub excluded: Vec<Excluded>,
    pub records: u64,
}

fn lower(r: Rate) -> Option<f64> {
    stats::wilson(r.ok, r.n, Z95).map(|(lo, _)| lo)
}

/// The raw (unnormalised) evidence of one task for one target: a value and the calls behind it.
fn raw_task(agg: &Aggregate, target: &str, task: &str) -> Option<(f64, u64)> {
    let t = agg.targets.get(target)?;
    // The (target, task) cell; an empty one when the target never met the task.
    let empty = CellAgg::default();
    let cell = |name: &str| {
        agg.tasks
            .get(&(target.to_string(), name.to_string()))
            .unwrap_or(&empty)
    };
    match task {
        "speed_critical" => {
            let speed = t.output_speed.hist_quantile(0.5)?;
            let p95 = t.latency.hist_quantile(0.95)?;
            Some((speed / p95.max(1e-6), t.output_speed.len()))
        }
        "memory_constrained" => {
            let m = t.memory_mb.value()?;
            Some((1.0 / m.max(1.0), t.memory_mb.n))
        }
        // Graded questions (schema, golden fields, expected calls) give a quality score: its
        // mean × the success lower bound. Without one, the lower bound of the valid rate.
        "structured_output" => {
            let c = cell("structured_output");
            if let Some(q) = c.quality.value() {
                return Some((q * lower(c.calls)?, c.quality.n));
            }
            Some((lower(c.json_valid)?, c.json_valid.n))
        }
        "tool_use" => {
            let c = cell("tool_use");
            if let Some(q) = c.quality.value() {
                return Some((q * lower(c.calls)?, c.quality.n));
            }
            Some((lower(c.tool_call_valid)?, c.tool_call_valid.n))
        }
        "knowledge" => {
            let c = cell("knowledge");
            Some((
                lower(c.answer_correct)? * lower(c.calls)?,
                c.answer_correct.n,
            ))
        }
        // Distinct answers per repeated question, blended half and half with the graded
        // creativity (distinct-n, constraints) where the suite grades it.
        "creative_content" => {
            let v = agg.variety.get(target)?;
            let (mut distinct, mut answers) = (0u64, 0u64);
            for (q, n) in &v.answers {
                distinct += v.distinct.get(q).map_or(0, |s| s.len() as u64);
                answers += n;
            }
            let variety = (answers > 0).then(|| distinct as f64 / answers as f64)?;
            match cell("creative_content").quality.value() {
                Some(q) => Some((0.5 * variety + 0.5 * q, answers)),
                None => Some((variety, answers)),
            }
        }
        "complex_reasoning" => {
            // Questions with an expected answer (suites/reasoning.toml) when there are any:
            // right answers × success, each a Wilson lower bound; else the coverage of the
            // worked answers of `reasoning` questions.
            let graded = cell("complex_reasoning");
            if graded.answer_correct.n > 0 {
                let right = lower(graded.answer_correct)?;
                return Some((right * lower(graded.calls)?, graded.answer_correct.n));
            }
            let c = cell("reasoning");
            let cov = c.coverage.value()?;
            Some((cov * lower(c.calls)?, c.calls.n))
        }
        "instruction_following" => {
            let c = cell("instruction_following");
            let share = c.instructions_followed.value()?;
            Some((share * lower(c.calls)?, c.instructions_followed.n))
        }
        "rag_coverage" => {
            let c = cell("rag");
            let cov = c.coverage.value()?;
            let grd = c.grounding.value().unwrap_or(cov);
            Some((0.7 * cov + 0.3 * grd, c.coverage.n))
        }
        // Correct answers per dollar: the correct share of the graded priced calls (Wilson
        // lower bound) over the mean cost of a call. A target whose calls cost nothing has no
        // figure (it would divide by zero): give it a price, or [agent] electricity_usd_per_kwh.
        "cost_efficiency" => {
            let s = &t.spend;
            let per_call = t.cost_usd.value().filter(|c| *c > 0.0)?;
            let right = stats::wilson(s.correct, s.graded, Z95)?.0;
            Some((right / per_call, s.graded))
        }
        _ => None,
    }
}

/// Chooses a target for `criteria` from the records in `agg`.
pub fn select(agg: &Aggregate, criteria: &Criteria) -> Result<Selection, Refusal> {
    let mut excluded = Vec::new();
    let mut raw: BTreeMap<&str, BTreeMap<&'static str, f64>> = BTreeMap::new();
    for (name, t) in &agg.targets {
        let verdict = match outside_limits(t, criteria) {
            Some(reason) => Err(reason),
            None => task_scores(agg, name, criteria),
        };
        match verdict {
            Ok(scores) => {
                raw.insert(name, scores);
            }
            Err(reason) => excluded.push(Excluded {
                target: name.clone(),
                reason,
            }),
        }
    }
    if raw.is_empty() {
        // Every target short of calls: say which flag lowers the bar, and to what.
        let most_calls = agg
            .targets
            .values()
            .map(|t| t.calls.n)
            .filter(|n| *n < criteria.min_calls)
            .max();
        let hint = match most_calls {
            Some(n) if n > 0 && agg.targets.values().all(|t| t.calls.n < criteria.min_calls) => {
                format!(
                    "; every target has fewer than --min-calls {} (the most is {n}): measure more \
                     (repetitions), or pass --min-calls {n} to choose on thinner evidence",
                    criteria.min_calls
                )
            }
            _ => String::new(),
        };
        return Err(Refusal {
            reason: format!(
                "too few records to choose: no target has enough evidence for {} ({} records \
                 read){hint}",
                criteria
                    .weights
                    .iter()
                    .map(|(t, _)| *t)
                    .collect::<Vec<_>>()
                    .join(" + "),
                agg.records
            ),
            excluded,
            records: agg.records,
        });
    }
    normalise(&mut raw);
    let mut candidates = rank(agg, criteria, raw);
    let best = candidates.remove(0);
    let t = &agg.targets[&best.target];
    let temperature = best_temperature(agg, &best.target);
    let mut why = vec![format!(
        "{} scores {:.3}: weighted task score × success-rate lower bound ({:.3}, from {} calls).",
        best.target, best.score, best.success_rate_lower, best.calls
    )];
    for (task, s) in &best.task_scores {
        why.push(format!("{task}: {s:.3}{}", explain(task)));
    }
    if let Some(next) = candidates.first() {
        why.push(format!(
            "Next best: {} at {:.3}{}.",
            next.target,
            next.score,
            if best.score - next.score < 0.02 {
                " (close: within 0.02)"
            } else {
                ""
            }
        ));
    }
    if let Some(c) = cost_line(t) {
        why.push(c);
    }
    if let Some(temp) = temperature {
        why.push(format!(
            "Temperature {temp} had the best success and quality among those measured."
        ));
    }
    Ok(Selection {
        selected_model: best.model.clone(),
        recommended_config: RecommendedConfig {
            target: best.target.clone(),
            provider: t.provider.clone(),
            model: t.model.clone(),
            temperature,
            quantization: t
                .server_config
                .as_ref()
                .and_then(|c| c.quantization.clone()),
            flash_attention: t.server_config.as_ref().and_then(|c| c.flash_attn.clone()),
            kv_cache_type: t
                .server_config
                .as_ref()
                .and_then(|c| c.kv_cache_type.clone()),
            ctx_size: t.server_config.as_ref().and_then(|c| c.ctx_size),
            max_num_seqs: t.server_config.as_ref().and_then(|c| c.max_num_seqs),
        },
        score: best.score,
        alternatives: candidates,
        why,
        excluded,
        records: agg.records,
    })
}

/// Why a target is left out by the limits (`--min-calls`, `--max-memory`, …), if it is.
fn outside_limits(t: &TargetAgg, criteria: &Criteria) -> Option<String> {
    if t.calls.n < criteria.min_calls {
        return Some(format!(
            "only {} calls; at least {} are needed",
            t.calls.n, criteria.min_calls
        ));
    }
    if let Some(max) = criteria.max_memory_mb {
        match t.memory_mb.value() {
            None => {
                return Some("no memory measurement, and a memory limit was given".into());
            }
            Some(m) if m > max => {
                return Some(format!("uses {m:.0} MB, above the {max:.0} MB limit"));
            }
            _ => {}
        }
    }
    if let Some(min) = criteria.min_speed_tps {
        match t.output_speed.hist_quantile(0.5) {
            Some(s) if s >= min => {}
            s => {
                return Some(format!(
                    "median output speed {} tok/s, below {min}",
                    s.map_or("unknown".into(), |s| format!("{s:.1}"))
                ));
            }
        }
    }
    if let Some(max) = criteria.max_p95_latency_sec {
        match t.latency.hist_quantile(0.95) {
            Some(l) if l <= max => {}
            l => {
                return Some(format!(
                    "p95 latency {} s, above {max}",
                    l.map_or("unknown".into(), |l| format!("{l:.2}"))
                ));
            }
        }
    }
    if criteria.no_throttling && t.heat.throttled.ok > 0 {
        return Some(format!(
            "throttled in {} of {} calls (--no-throttling)",
            t.heat.throttled.ok, t.heat.throttled.n
        ));
    }
    if criteria.max_cost_usd.is_some() || criteria.max_cost_per_1k_usd.is_some() {
        let Some(c) = t.cost_usd.value() else {
            return Some(
                "no cost known, and a cost limit was given (give the target a price, or the \
                 agent an electricity price)"
                    .into(),
            );
        };
        if let Some(max) = criteria.max_cost_usd
            && c > max
        {
            return Some(format!("costs ${c:.6} a call, above the ${max} limit"));
        }
        if let Some(max) = criteria.max_cost_per_1k_usd
            && c * 1000.0 > max
        {
            return Some(format!(
                "costs ${:.4} per 1,000 calls, above the ${max} limit",
                c * 1000.0
            ));
        }
    }
    None
}

/// What the chosen target's calls cost, for `why`: per call, per 1,000 calls and per correct
/// answer; `None` when none of its calls has a cost.
fn cost_line(t: &TargetAgg) -> Option<String> {
    let c = t.cost_usd.value()?;
    let s = &t.spend;
    let per_correct = (s.correct > 0 && s.priced_calls > 0).then(|| {
        // What the graded calls cost, over their correct answers.
        let graded_cost = s.usd * s.graded as f64 / s.priced_calls as f64;
        format!(
            "; ${:.6} per correct answer ({} of {} graded calls correct)",
            graded_cost / s.correct as f64,
            s.correct,
            s.graded
        )
    });
    Some(format!(
        "Cost: ${c:.6} a call, ${:.4} per 1,000 calls, from {} priced calls{}.",
        c * 1000.0,
        s.priced_calls,
        per_correct.unwrap_or_default()
    ))
}

/// The target's raw score for every weighted task, or why it has too little evidence.
fn task_scores(
    agg: &Aggregate,
    name: &str,
    criteria: &Criteria,
) -> Result<BTreeMap<&'static str, f64>, String> {
    let mut scores = BTreeMap::new();
    let mut missing = None;
    for (task, _) in &criteria.weights {
        match raw_task(agg, name, task) {
            Some((v, n)) if n >= criteria.min_task_calls => {
                scores.insert(*task, v);
            }
            Some((_, n)) => {
                missing = Some(format!(
                    "{task}: only {n} relevant calls; at least {} are needed",
                    criteria.min_task_calls
                ));
                break;
            }
            None => {
                missing = Some(format!("{task}: no records measure it"));
                break;
            }
        }
    }
    match missing {
        Some(reason) => Err(reason),
        None => Ok(scores),
    }
}

/// Speed, memory and cost efficiency are relative: each is divided by the best candidate's.
fn normalise(raw: &mut BTreeMap<&str, BTreeMap<&'static str, f64>>) {
    for task in ["speed_critical", "memory_constrained", "cost_efficiency"] {
        let best = raw
            .values()
            .filter_map(|s| s.get(task))
            .fold(0.0f64, |a, b| a.max(*b));
        if best > 0.0 {
            for s in raw.values_mut() {
                if let Some(v) = s.get_mut(task) {
                    *v /= best;
                }
            }
        }
    }
}

/// Candidates by score (weighted task score × success-rate lower bound), best first.
fn rank(
    agg: &Aggregate,
    criteria: &Criteria,
    raw: BTreeMap<&str, BTreeMap<&'static str, f64>>,
) -> Vec<Candidate> {
    let total_weight: f64 = criteria.weights.iter().map(|(_, w)| w).sum();
    let mut candidates: Vec<Candidate> = raw
        .into_iter()
        .map(|(name, task_scores)| {
            let t = &agg.targets[name];
            let reliability = lower(t.calls).unwrap_or(0.0);
            let weighted: f64 = criteria
                .weights
                .iter()
                .map(|(task, w)| w * task_scores.get(task).copied().unwrap_or(0.0))
                .sum::<f64>()
                / total_weight.max(1e-9);
            Candidate {
                target: name.to_string(),
                model: t.model.clone(),
                score: round4(weighted * reliability),
                task_scores: task_scores
                    .into_iter()
                    .map(|(k, v)| (k, round4(v)))
                    .collect(),
                calls: t.calls.n,
                success_rate_lower: round4(reliability),
            }
        })
        .collect();
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.target.cmp(&b.target)));
    candidates
}

fn explain(task: &str) -> &'static str {
    match task {
        "speed_critical" => " (median output speed ÷ p95 latency, relative to the best)",
        "memory_constrained" => " (least memory = 1)",
        "structured_output" => {
            " (graded quality × success lower bound; else valid JSON rate, Wilson lower bound)"
        }
        "tool_use" => {
            " (graded quality × success lower bound; else valid tool-call rate, lower bound)"
        }
        "creative_content" => {
            " (distinct answers per repeated question, half and half with graded creativity)"
        }
        "knowledge" => " (right answers × success, Wilson lower bounds)",
        "complex_reasoning" => {
            " (right final answers × success, lower bounds; else coverage of reasoning questions)"
        }
        "instruction_following" => " (share of instructions followed × success lower bound)",
        "rag_coverage" => " (0.7 × coverage + 0.3 × grounding)",
        "cost_efficiency" => {
            " (correct-answer share, Wilson lower bound, per dollar a call, relative to the best)"
        }
        _ => "",
    }
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// The temperature whose calls did best: highest success lower bound times mean coverage (or
/// valid-output rate) — `None` when no temperature was recorded.
fn best_temperature(agg: &Aggregate, target: &str) -> Option<f64> {
    agg.temperatures
        .iter()
        .filter(|((t, _), _)| t == target)
        .filter_map(|((_, temp), c)| {
            let temp: f64 = temp.parse().ok()?;
            let quality = c
                .coverage
                .value()
                .or_else(|| lower(c.json_valid))
                .unwrap_or(1.0);
            Some((temp, lower(c.calls)? * quality, c.calls.n))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then(a.2.cmp(&b.2)))
        .map(|(t, _, _)| t)
}
