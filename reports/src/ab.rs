//! A/B verdicts: two targets asked the same calls in rounds, compared pair by pair (same round,
//! question and repetition). Per metric, pooled and per round:
//!
//! - quality (`quality_score`, else `coverage_score` for questions graded only on coverage):
//!   Wilcoxon signed-rank on A − B, higher better;
//! - success: McNemar's exact test on the discordant pairs, higher better;
//! - latency, TTFT: a paired bootstrap 95% interval of the median of A − B (pairs where both
//!   succeeded), lower better; output speed likewise, higher better.
//!
//! The verdict is "A better", "B better" or "no difference" (p ≥ 0.05, or an interval that spans
//! 0), with the effect size; `stable` says whether each round on its own gave the same verdict.

use std::collections::BTreeMap;

use serde::Serialize;

use llmpulse_core::record::Record;
use llmpulse_core::stats;

/// Bootstrap resamples per interval.
const RESAMPLES: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub metric: &'static str,
    pub pairs: usize,
    /// A's and B's figure: mean quality, success rate, median latency/TTFT/speed, mean cost
    /// per call (USD).
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// A − B: mean difference (quality, cost), rate difference (success), median difference
    /// (times, speed).
    pub effect: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci95: Option<[f64; 2]>,
    pub verdict: String,
    /// Each round's own verdict, in round order.
    pub rounds: Vec<String>,
    /// Whether every round gave the pooled verdict.
    pub stable: bool,
}

/// A call of a round: (round, question id, repetition).
type CallKey<'a> = (usize, &'a str, u32);
/// A's and B's records of one call, as found.
type Sides<'a> = (Option<&'a Record>, Option<&'a Record>);

/// One pair: A's and B's record of the same call.
type Pair<'a> = (&'a Record, &'a Record);

/// Pairs A's and B's records by (round, question, repetition); `round_of` maps a run id to
/// its round.
pub fn pairs<'a>(
    records: &'a [Record],
    a: &str,
    b: &str,
    round_of: &BTreeMap<String, usize>,
) -> BTreeMap<usize, Vec<Pair<'a>>> {
    let mut side: BTreeMap<CallKey<'_>, Sides<'_>> = BTreeMap::new();
    for r in records {
        let Some(&round) = round_of.get(&r.run_id) else {
            continue;
        };
        let e = side
            .entry((round, r.question_id.as_str(), r.repetition))
            .or_default();
        if r.target == a {
            e.0 = Some(r);
        } else if r.target == b {
            e.1 = Some(r);
        }
    }
    let mut out: BTreeMap<usize, Vec<Pair<'a>>> = BTreeMap::new();
    for ((round, _, _), (x, y)) in side {
        if let (Some(x), Some(y)) = (x, y) {
            out.entry(round).or_default().push((x, y));
        }
    }
    out
}

fn mean(v: &[f64]) -> Option<f64> {
    stats::mean(v)
}

fn median(v: &[f64]) -> Option<f64> {
    stats::percentile(v, 50.0)
}

fn word(better_a: bool) -> String {
    if better_a { "A better" } else { "B better" }.to_string()
}

/// The verdict of one metric over `pairs` (no per-round fields).
fn judge(metric: &'static str, pairs: &[Pair<'_>], seed: u64) -> Verdict {
    let mut v = Verdict {
        metric,
        pairs: 0,
        a: None,
        b: None,
        effect: None,
        p_value: None,
        ci95: None,
        verdict: "no difference".into(),
        rounds: Vec::new(),
        stable: true,
    };
    match metric {
        "quality" => {
            let (xa, xb): (Vec<f64>, Vec<f64>) = pairs
                .iter()
                .filter_map(|(a, b)| {
                    let q = |r: &Record| r.quality_score.or(r.coverage_score);
                    q(a).zip(q(b))
                })
                .unzip();
            let diffs: Vec<f64> = xa.iter().zip(&xb).map(|(x, y)| x - y).collect();
            v.pairs = diffs.len();
            (v.a, v.b, v.effect) = (mean(&xa), mean(&xb), mean(&diffs));
            if let Some((_, z, p)) = stats::wilcoxon_signed_rank(&diffs) {
                v.p_value = Some(p);
                if p < 0.05 {
                    v.verdict = word(z > 0.0);
                }
            }
        }
        "success" => {
            v.pairs = pairs.len();
            let ok = |f: fn(&Pair<'_>) -> bool| pairs.iter().filter(|p| f(p)).count();
            let (only_a, only_b) = (
                ok(|p| p.0.success && !p.1.success),
                ok(|p| !p.0.success && p.1.success),
            );
            let n = pairs.len().max(1) as f64;
            v.a = Some(ok(|p| p.0.success) as f64 / n);
            v.b = Some(ok(|p| p.1.success) as f64 / n);
            v.effect = v.a.zip(v.b).map(|(x, y)| x - y);
            let p = stats::mcnemar_exact(only_a as u64, only_b as u64);
            v.p_value = Some(p);
            if p < 0.05 {
                v.verdict = word(only_a > only_b);
            }
        }
        "cost_usd" => {
            let (xa, xb): (Vec<f64>, Vec<f64>) = pairs
                .iter()
                .filter_map(|(a, b)| a.cost_usd.zip(b.cost_usd))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .unzip();
            let diffs: Vec<f64> = xa.iter().zip(&xb).map(|(x, y)| x - y).collect();
            v.pairs = diffs.len();
            (v.a, v.b, v.effect) = (mean(&xa), mean(&xb), mean(&diffs));
            if let Some((lo, hi)) = stats::bootstrap_mean_ci(&diffs, RESAMPLES, seed) {
                v.ci95 = Some([lo, hi]);
                if lo > 0.0 || hi < 0.0 {
                    // A − B above 0: A costs more.
                    v.verdict = word(hi < 0.0);
                }
            }
        }
        _ => {
            let get = |r: &Record| match metric {
                "latency_sec" => Some(r.latency_sec),
                "ttft_sec" => r.ttft_sec,
                _ => r.output_speed_tps,
            };
            let lower_better = metric != "output_speed_tps";
            let (xa, xb): (Vec<f64>, Vec<f64>) = pairs
                .iter()
                .filter(|(a, b)| a.success && b.success)
                .filter_map(|(a, b)| get(a).zip(get(b)))
                .unzip();
            let diffs: Vec<f64> = xa.iter().zip(&xb).map(|(x, y)| x - y).collect();
            v.pairs = diffs.len();
            (v.a, v.b, v.effect) = (median(&xa), median(&xb), median(&diffs));
            if let Some((lo, hi)) = stats::bootstrap_median_ci(&diffs, RESAMPLES, seed) {
                v.ci95 = Some([lo, hi]);
                if lo > 0.0 || hi < 0.0 {
                    // A − B above 0: A is slower (or faster, for speed).
                    let a_higher = lo > 0.0;
                    v.verdict = word(a_higher != lower_better);
                }
            }
        }
    }
    v
}

/// Every metric's verdict, pooled over the rounds and round by round.
pub fn verdicts(rounds: &BTreeMap<usize, Vec<Pair<'_>>>, seed: u64) -> Vec<Verdict> {
    let pooled: Vec<Pair<'_>> = rounds.values().flatten().copied().collect();
    [
        "quality",
        "success",
        "latency_sec",
        "ttft_sec",
        "output_speed_tps",
        "cost_usd",
    ]
    .into_iter()
    .filter(|metric| {
        *metric != "cost_usd"
            || pooled
                .iter()
                .any(|(a, b)| a.cost_usd.is_some() && b.cost_usd.is_some())
    })
    .map(|metric| {
        let mut v = judge(metric, &pooled, seed);
        v.rounds = rounds
            .values()
            .map(|p| judge(metric, p, seed).verdict)
            .collect();
        v.stable = v.rounds.iter().all(|r| *r == v.verdict);
        v
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"{"timestamp": "2026-11-27T10:00:00.000Z", "industry": "x",
        "question": "q", "llm_provider": "sim", "llm_model": "m", "latency_sec": 0,
        "throughput_tps": null, "success": true, "coverage_score": null, "prompt_tokens": null,
        "response_tokens": null, "run_id": "r", "campaign": null, "slot": null,
        "question_id": "q", "target": "t", "repetition": 0, "task": "t", "streamed": true,
        "ttfb_sec": null, "ttft_sec": null, "ttfat_sec": null, "output_speed_tps": null,
        "tpot_sec": null, "chunk_count": null, "chunk_gap_p50_sec": null,
        "chunk_gap_p99_sec": null, "chunk_gap_max_sec": null, "token_source": null,
        "reasoning_tokens": null, "attempts": 1, "rate_limited_count": 0,
        "queue_wait_sec": 0.0, "retry_wait_sec": 0.0, "ratelimit_remaining_requests": null,
        "ratelimit_remaining_tokens": null, "failover_from": null, "failover_to": null,
        "cost_usd": null, "server_load_sec": null, "server_prefill_sec": null,
        "server_decode_tps": null, "error_kind": null, "error_message": null,
        "http_status": 200, "finish_reason": "stop", "grounding_score": null,
        "json_valid": null, "tool_calls": null, "tool_call_valid": null, "answer_chars": 1,
        "answer": "a", "answer_sha256": "0", "provider_request_id": null, "temperature": null,
        "max_tokens": null, "origin": "test", "llmpulse_version": "0", "config_hash": "0"}"#;

    fn record(target: &str, run: &str, q: &str, latency: f64, quality: f64, ok: bool) -> Record {
        let mut r: Record = serde_json::from_str(TEMPLATE).unwrap();
        r.target = target.into();
        r.run_id = run.into();
        r.question_id = q.into();
        r.latency_sec = latency;
        r.ttft_sec = Some(latency / 2.0);
        r.success = ok;
        r.quality_score = Some(quality);
        r
    }

    #[test]
    fn a_slower_lower_quality_side_loses_on_both_and_the_verdict_is_stable() {
        let mut recs = Vec::new();
        let mut round_of = BTreeMap::new();
        for round in 0..3 {
            let run = format!("run{round}");
            round_of.insert(run.clone(), round);
            for q in 0..12 {
                let id = format!("q{q}");
                let jitter = f64::from(q) * 0.001;
                recs.push(record("a", &run, &id, 0.30 + jitter, 0.9, true));
                recs.push(record("b", &run, &id, 0.50 + jitter, 0.4 + jitter, true));
            }
        }
        let p = pairs(&recs, "a", "b", &round_of);
        assert_eq!(p.values().map(Vec::len).sum::<usize>(), 36);
        let v = verdicts(&p, 1);
        let get = |m: &str| v.iter().find(|x| x.metric == m).unwrap();
        assert_eq!(get("quality").verdict, "A better");
        assert!(get("quality").stable);
        assert_eq!(get("latency_sec").verdict, "A better");
        assert!((get("latency_sec").effect.unwrap() + 0.2).abs() < 1e-9);
        assert_eq!(get("success").verdict, "no difference");
        assert_eq!(get("success").p_value, Some(1.0));
        // No call has a cost: there is no cost verdict rather than a "no difference".
        assert!(v.iter().all(|x| x.metric != "cost_usd"));
    }

    #[test]
    fn the_cheaper_side_wins_on_cost_with_the_mean_paired_difference() {
        let mut recs = Vec::new();
        let mut round_of = BTreeMap::new();
        for round in 0..2 {
            let run = format!("run{round}");
            round_of.insert(run.clone(), round);
            for q in 0..10 {
                let id = format!("q{q}");
                let mut a = record("a", &run, &id, 0.3, 0.9, true);
                let mut b = record("b", &run, &id, 0.3, 0.9, q != 0);
                // A: $0.0010 + a little per question; B: $0.0004, billed even when it failed.
                a.cost_usd = Some(0.0010 + f64::from(q) * 0.0001);
                b.cost_usd = Some(0.0004);
                recs.push(a);
                recs.push(b);
            }
        }
        let v = verdicts(&pairs(&recs, "a", "b", &round_of), 3);
        let cost = v.iter().find(|x| x.metric == "cost_usd").unwrap();
        assert_eq!(cost.pairs, 20);
        // By hand: A's mean is 0.0010 + 0.00045 = 0.00145; B's 0.0004; A − B 0.00105.
        assert!((cost.a.unwrap() - 0.00145).abs() < 1e-12);
        assert!((cost.b.unwrap() - 0.0004).abs() < 1e-12);
        assert!((cost.effect.unwrap() - 0.00105).abs() < 1e-12);
        let [lo, hi] = cost.ci95.unwrap();
        assert!(lo > 0.0 && lo < 0.00105 && hi > 0.00105, "{lo} {hi}");
        assert_eq!(cost.verdict, "B better");
        assert!(cost.stable);
    }
}
