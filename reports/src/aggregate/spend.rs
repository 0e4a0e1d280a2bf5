//! What a target's calls cost ([`Spend`]): the money, the calls and output tokens it bought,
//! the correct answers among them, per day and per campaign, and the calls a budget refused.

use std::collections::BTreeMap;

use super::Row;

/// A graded answer counts as correct at this quality score or above, when the question has no
/// expected answer of its own (`answer_correct`).
pub const QUALITY_CORRECT: f64 = 0.7;

/// Whether a successful call's answer was correct, as its question grades it: the expected
/// answer where there is one, else the quality score against [`QUALITY_CORRECT`], else every
/// key fact covered; `None` when nothing grades it.
pub fn correct(r: &Row<'_>) -> Option<bool> {
    if !r.success {
        return None;
    }
    r.answer_correct
        .or(r.quality_score.map(|q| q >= QUALITY_CORRECT))
        .or(r.coverage_score.map(|c| c >= 1.0 - 1e-9))
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spend {
    /// The sum of the records' `cost_usd`, every call that has one (failed and billed too).
    pub usd: f64,
    /// Calls with a cost.
    pub priced_calls: u64,
    /// Their output tokens.
    pub output_tokens: f64,
    /// Among the priced calls: those a grade applies to, and those it says are correct.
    pub graded: u64,
    pub correct: u64,
    /// Calls a budget did not let start (`skipped_budget`): not measured, not counted as calls.
    pub skipped_budget: u64,
    /// Spent per UTC day (`2026-12-03`) and per campaign (`-` outside one).
    pub by_day: BTreeMap<String, f64>,
    pub by_campaign: BTreeMap<String, f64>,
}

impl Spend {
    pub fn add(&mut self, r: &Row<'_>) {
        let Some(usd) = r.cost_usd.filter(|c| c.is_finite() && *c >= 0.0) else {
            return;
        };
        self.usd += usd;
        self.priced_calls += 1;
        self.output_tokens += f64::from(r.response_tokens.unwrap_or(0));
        // A failed call bought no answer: it is graded, and not correct.
        match correct(r) {
            Some(ok) => {
                self.graded += 1;
                self.correct += u64::from(ok);
            }
            None if !r.success => self.graded += 1,
            None => {}
        }
        bump(&mut self.by_day, r.timestamp.get(..10).unwrap_or(""), usd);
        bump(
            &mut self.by_campaign,
            r.campaign.as_deref().unwrap_or("-"),
            usd,
        );
    }

    pub fn merge(&mut self, o: &Spend) {
        self.usd += o.usd;
        self.priced_calls += o.priced_calls;
        self.output_tokens += o.output_tokens;
        self.graded += o.graded;
        self.correct += o.correct;
        self.skipped_budget += o.skipped_budget;
        for (k, v) in &o.by_day {
            bump(&mut self.by_day, k, *v);
        }
        for (k, v) in &o.by_campaign {
            bump(&mut self.by_campaign, k, *v);
        }
    }
}

/// Adds `usd` to `key`'s sum; a key is allocated only the first time it is seen (a report folds
/// millions of records into a few days).
fn bump(sums: &mut BTreeMap<String, f64>, key: &str, usd: f64) {
    match sums.get_mut(key) {
        Some(v) => *v += usd,
        None => {
            sums.insert(key.to_string(), usd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(json: &str) -> Row<'_> {
        serde_json::from_str(json).unwrap()
    }

    const BASE: &str = r#""industry": "x", "llm_provider": "p", "llm_model": "m",
        "latency_sec": 1.0, "question_id": "q", "target": "t", "task": "rag""#;

    #[test]
    fn a_billed_failure_costs_and_counts_as_not_correct_and_days_add_up() {
        let lines = [
            // Right by its expected answer, though its coverage is low.
            format!(
                r#"{{"timestamp": "2026-12-01T10:00:00Z", {BASE}, "success": true,
                "answer_correct": true, "coverage_score": 0.2, "cost_usd": 0.002,
                "response_tokens": 100, "campaign": "c"}}"#
            ),
            // No expected answer: the quality score decides (0.69 < 0.7).
            format!(
                r#"{{"timestamp": "2026-12-01T11:00:00Z", {BASE}, "success": true,
                "quality_score": 0.69, "cost_usd": 0.001, "response_tokens": 50}}"#
            ),
            // Graded on key facts alone: all covered.
            format!(
                r#"{{"timestamp": "2026-12-02T09:00:00Z", {BASE}, "success": true,
                "coverage_score": 1.0, "cost_usd": 0.003, "response_tokens": 150}}"#
            ),
            // Failed and billed: graded, not correct.
            format!(
                r#"{{"timestamp": "2026-12-02T09:30:00Z", {BASE}, "success": false,
                "cost_usd": 0.004, "response_tokens": 10}}"#
            ),
            // Unpriced: counts nowhere here.
            format!(
                r#"{{"timestamp": "2026-12-02T10:00:00Z", {BASE}, "success": true,
                "coverage_score": 1.0}}"#
            ),
        ];
        let mut s = Spend::default();
        for l in &lines {
            s.add(&row(l));
        }
        assert!((s.usd - 0.010).abs() < 1e-12);
        assert_eq!((s.priced_calls, s.graded, s.correct), (4, 4, 2));
        assert_eq!(s.output_tokens, 310.0);
        assert!((s.by_day["2026-12-01"] - 0.003).abs() < 1e-12);
        assert!((s.by_day["2026-12-02"] - 0.007).abs() < 1e-12);
        assert!((s.by_campaign["c"] - 0.002).abs() < 1e-12);
        assert!((s.by_campaign["-"] - 0.008).abs() < 1e-12);
        let mut twice = s.clone();
        twice.merge(&s);
        assert_eq!(twice.correct, 4);
        assert!((twice.by_day["2026-12-02"] - 0.014).abs() < 1e-12);
    }
}
