//! What a target's answers cost ([`CostFigures`]): per call with its interval, per 1,000 calls,
//! per million output tokens, and per correct answer with an interval; spend per day and per
//! campaign; and the cost–quality Pareto front across targets.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Estimate, MeanFigure};
use crate::aggregate::TargetAgg;
use llmpulse_core::stats::{self, Z95};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostFigures {
    /// What the target's priced calls cost together, USD.
    pub spent_usd: f64,
    pub priced_calls: u64,
    /// Mean per call with its 95% interval.
    pub per_call_usd: MeanFigure,
    pub per_1k_calls_usd: f64,
    /// Spent over the output tokens bought, per million; absent when none were counted.
    pub per_1m_output_tokens_usd: Option<f64>,
    /// Priced calls a grade applies to (failed calls count as not correct) and the correct ones.
    pub graded_calls: u64,
    pub correct_answers: u64,
    /// Spent on the graded calls over their correct answers: the mean cost of a graded call
    /// over the correct share, its interval from the share's Wilson interval. Absent without a
    /// correct answer.
    pub per_correct_answer_usd: Option<Estimate>,
    /// Quality (correct answers) per dollar: `cost_efficiency`.
    pub correct_per_usd: Option<f64>,
    pub by_day: BTreeMap<String, f64>,
    pub by_campaign: BTreeMap<String, f64>,
    /// Calls a budget did not let start.
    pub skipped_budget: u64,
    /// Whether no other target is both cheaper per call and at least as often correct (or as
    /// cheap and more often correct), among the targets with both figures.
    pub cost_quality_pareto: bool,
}

impl CostFigures {
    pub fn of(t: &TargetAgg) -> Option<CostFigures> {
        let s = &t.spend;
        let per_call = MeanFigure::of(t.cost_usd)?;
        let graded_cost = if s.graded > 0 {
            s.usd * s.graded as f64 / s.priced_calls as f64
        } else {
            0.0
        };
        let per_correct = (s.correct > 0).then(|| {
            let mean = graded_cost / s.graded as f64;
            let p = s.correct as f64 / s.graded as f64;
            let (lo, hi) = stats::wilson(s.correct, s.graded, Z95).unwrap_or((p, p));
            Estimate {
                value: mean / p,
                lo: mean / hi,
                hi: if lo > 0.0 { mean / lo } else { f64::INFINITY },
            }
        });
        Some(CostFigures {
            spent_usd: s.usd,
            priced_calls: s.priced_calls,
            per_1k_calls_usd: per_call.mean * 1000.0,
            per_call_usd: per_call,
            per_1m_output_tokens_usd: (s.output_tokens > 0.0)
                .then(|| s.usd / s.output_tokens * 1e6),
            graded_calls: s.graded,
            correct_answers: s.correct,
            correct_per_usd: (s.usd > 0.0 && s.graded > 0).then(|| s.correct as f64 / graded_cost),
            per_correct_answer_usd: per_correct,
            by_day: s.by_day.clone(),
            by_campaign: s.by_campaign.clone(),
            skipped_budget: s.skipped_budget,
            cost_quality_pareto: false,
        })
    }
}

/// Every target's spend together, and the runs a budget stopped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendFigures {
    pub total_usd: f64,
    pub by_day: BTreeMap<String, f64>,
    pub by_campaign: BTreeMap<String, f64>,
    pub skipped_budget: u64,
    /// `run_id` (and shard) → why its budget refused calls.
    pub budget_stopped: Vec<BudgetStop>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetStop {
    pub run_id: String,
    pub campaign: Option<String>,
    pub slot: Option<u64>,
    pub why: String,
}

impl SpendFigures {
    pub fn of<'a>(
        targets: impl Iterator<Item = &'a TargetAgg>,
        runs: &[crate::read::RunSeen],
    ) -> Option<SpendFigures> {
        let mut s = crate::aggregate::spend::Spend::default();
        for t in targets {
            s.merge(&t.spend);
        }
        let budget_stopped: Vec<BudgetStop> = runs
            .iter()
            .filter_map(|r| {
                Some(BudgetStop {
                    run_id: r.run_id.clone(),
                    campaign: r.campaign.clone(),
                    slot: r.slot,
                    why: r.budget_stopped.clone()?,
                })
            })
            .collect();
        if s.priced_calls == 0 && s.skipped_budget == 0 && budget_stopped.is_empty() {
            return None;
        }
        Some(SpendFigures {
            total_usd: s.usd,
            by_day: s.by_day,
            by_campaign: s.by_campaign,
            skipped_budget: s.skipped_budget,
            budget_stopped,
        })
    }
}

/// Marks the targets on the cost–quality front: cost per call (lower) against correct share
/// (higher), among the targets that have both.
pub fn mark_cost_pareto(mut costs: Vec<&mut CostFigures>) {
    let points: Vec<Option<(f64, f64)>> = costs
        .iter()
        .map(|c| {
            (c.graded_calls > 0).then(|| {
                (
                    c.per_call_usd.mean,
                    c.correct_answers as f64 / c.graded_calls as f64,
                )
            })
        })
        .collect();
    for (i, c) in costs.iter_mut().enumerate() {
        let Some((cost, quality)) = points[i] else {
            continue;
        };
        c.cost_quality_pareto = !points.iter().enumerate().any(|(j, p)| {
            j != i
                && p.is_some_and(|(oc, oq)| {
                    oc <= cost && oq >= quality && (oc < cost || oq > quality)
                })
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(cost: f64, graded: u64, correct: u64) -> CostFigures {
        CostFigures {
            spent_usd: cost * graded as f64,
            priced_calls: graded,
            per_call_usd: MeanFigure {
                n: graded,
                mean: cost,
                ci95: None,
            },
            per_1k_calls_usd: cost * 1000.0,
            per_1m_output_tokens_usd: None,
            graded_calls: graded,
            correct_answers: correct,
            per_correct_answer_usd: None,
            correct_per_usd: None,
            by_day: BTreeMap::new(),
            by_campaign: BTreeMap::new(),
            skipped_budget: 0,
            cost_quality_pareto: false,
        }
    }

    #[test]
    fn the_front_keeps_what_nothing_beats_on_both() {
        let (mut cheap, mut dear_good, mut dear_bad, mut ungraded) = (
            figures(0.001, 10, 6),
            figures(0.010, 10, 9),
            figures(0.010, 10, 5),
            figures(0.0001, 0, 0),
        );
        mark_cost_pareto(vec![
            &mut cheap,
            &mut dear_good,
            &mut dear_bad,
            &mut ungraded,
        ]);
        let on = [&cheap, &dear_good, &dear_bad, &ungraded].map(|c| c.cost_quality_pareto);
        assert_eq!(on, [true, true, false, false]);
    }
}
