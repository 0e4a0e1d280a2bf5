//! Aggregation: records folded into groups (per target, target × industry, target × task,
//! target × temperature, target × time bucket) whose size does not grow with the number of
//! records. Distributions are HdrHistograms, which merge by addition, plus the exact values while
//! a group is small enough for exact percentiles and bootstrap intervals.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

pub use crate::dist::{Dist, EXACT_CAP, Mean, Rate};
pub use crate::row::Row;
pub use crate::side::{SIDE_CAP, Side, SideSample, parse_time};

pub mod heat;
pub mod origin;
pub mod spend;
mod target;
use target::min_opt;
pub use target::{ServerConfig, TargetAgg};

/// Quality figures of one (target, industry) or (target, task) cell.
#[derive(Debug, Clone, Default)]
pub struct CellAgg {
    pub calls: Rate,
    pub coverage: Mean,
    pub grounding: Mean,
    pub json_valid: Rate,
    pub tool_call_valid: Rate,
    pub output_speed: Mean,
    pub answer_correct: Rate,
    pub instructions_followed: Mean,
    pub quality: Mean,
}

impl CellAgg {
    fn add(&mut self, r: &Row<'_>) {
        self.calls.add(Some(r.success));
        self.coverage.add(r.coverage_score);
        self.grounding.add(r.grounding_score);
        self.json_valid.add(r.json_valid);
        self.tool_call_valid.add(r.tool_call_valid);
        if r.success {
            self.output_speed.add(r.output_speed_tps);
        }
        self.answer_correct.add(r.answer_correct);
        self.instructions_followed.add(r.instructions_followed);
        self.quality.add(r.quality_score);
    }
    fn merge(&mut self, o: &CellAgg) {
        self.calls.merge(&o.calls);
        self.coverage.merge(&o.coverage);
        self.grounding.merge(&o.grounding);
        self.json_valid.merge(&o.json_valid);
        self.tool_call_valid.merge(&o.tool_call_valid);
        self.output_speed.merge(&o.output_speed);
        self.answer_correct.merge(&o.answer_correct);
        self.instructions_followed.merge(&o.instructions_followed);
        self.quality.merge(&o.quality);
    }
}

/// One target in one time bucket.
#[derive(Debug, Clone)]
pub struct BucketAgg {
    pub calls: Rate,
    pub rate_limited: Rate,
    pub latency: Dist,
    pub ttft: Dist,
    /// Agent hardware figures of the bucket's successful calls.
    pub memory_mb: Mean,
    pub power_w: Mean,
    pub gpu_temp_c: Mean,
}

impl Default for BucketAgg {
    fn default() -> Self {
        BucketAgg {
            calls: Rate::default(),
            rate_limited: Rate::default(),
            latency: Dist::coarse_seconds(),
            ttft: Dist::coarse_seconds(),
            memory_mb: Mean::default(),
            power_w: Mean::default(),
            gpu_temp_c: Mean::default(),
        }
    }
}

impl BucketAgg {
    pub fn merge(&mut self, o: &BucketAgg) {
        self.calls.merge(&o.calls);
        self.rate_limited.merge(&o.rate_limited);
        self.latency.merge(&o.latency);
        self.ttft.merge(&o.ttft);
        self.memory_mb.merge(&o.memory_mb);
        self.power_w.merge(&o.power_w);
        self.gpu_temp_c.merge(&o.gpu_temp_c);
    }
}

/// Answers to questions of the `creative` task, by content hash: how varied a target's answers
/// to the same question are. Only the first [`VARIETY_CAP`] answers per question count, so the
/// sets stay small for any history.
pub const VARIETY_CAP: u64 = 1_000;

/// Whether a task asks for creative writing (`creative` in the capabilities suite,
/// `creative_content` in the creativity suite).
pub fn is_creative(task: &str) -> bool {
    matches!(task, "creative" | "creative_content")
}

/// Answers kept per (target, question) for comparing them with each other, and the characters
/// kept of each: enough for self-BLEU and JSON shapes, bounded whatever the history's size.
pub const ANSWERS_KEPT: usize = 8;
pub const ANSWER_CHARS: usize = 4000;

/// The first answers of one (target, question), in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Kept {
    pub task: String,
    pub texts: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Variety {
    /// (question id) → distinct answer hashes (first 16 hex digits).
    pub distinct: BTreeMap<String, BTreeSet<u64>>,
    pub answers: BTreeMap<String, u64>,
}

/// What a fold needs to know before it starts.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Width of a time bucket, in seconds.
    pub bucket_sec: i64,
    /// Targets compared, or windows compared (then every target on each side).
    pub compare: Option<(Side, Side)>,
    /// For a window comparison, only this target's records (the comparison is per target).
    pub compare_target: Option<String>,
    /// Runs that started before this are not folded into the history `watch` tests (the
    /// page's Changes need only the window and its baseline); `None`: every run.
    pub history_from: Option<DateTime<Utc>>,
}

impl Plan {
    /// A plan with `bucket_sec` buckets, no comparison, every run in the history.
    pub fn buckets(bucket_sec: i64) -> Plan {
        Plan {
            bucket_sec,
            compare: None,
            compare_target: None,
            history_from: None,
        }
    }
}

/// Every group of a report, for any number of records.
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub plan: Plan,
    pub targets: BTreeMap<String, TargetAgg>,
    pub industries: BTreeMap<(String, String), CellAgg>,
    pub tasks: BTreeMap<(String, String), CellAgg>,
    /// (target, temperature as text) → figures, for the recommended configuration.
    pub temperatures: BTreeMap<(String, String), CellAgg>,
    /// (target, bucket start as a Unix time) → figures.
    pub buckets: BTreeMap<(String, i64), BucketAgg>,
    /// (target, run id) → the run's open-loop calls, for load against offered rate.
    pub rates: crate::rates::RunLoads,
    pub variety: BTreeMap<String, Variety>,
    /// (target, question id) → its first answers, for creative and structured questions.
    pub answers: BTreeMap<(String, String), Kept>,
    pub sides: Option<(SideSample, SideSample)>,
    pub records: u64,
    /// Origins seen (e.g. `synthetic` histories are labelled so).
    pub origins: BTreeSet<String>,
    /// Lines that are not records, as `file:line: reason` (the first 20).
    pub bad_lines: Vec<String>,
    pub bad_line_count: u64,
    /// Each run's point of every metric `watch` tests, for the page's changes and flags.
    pub history: crate::watch::history::History,
}

impl Aggregate {
    pub fn new(plan: Plan) -> Aggregate {
        let sides = plan
            .compare
            .as_ref()
            .map(|_| (SideSample::default(), SideSample::default()));
        let mut a = Aggregate {
            plan,
            targets: BTreeMap::new(),
            industries: BTreeMap::new(),
            tasks: BTreeMap::new(),
            temperatures: BTreeMap::new(),
            buckets: BTreeMap::new(),
            rates: BTreeMap::new(),
            variety: BTreeMap::new(),
            answers: BTreeMap::new(),
            sides,
            records: 0,
            origins: BTreeSet::new(),
            bad_lines: Vec::new(),
            bad_line_count: 0,
            history: Default::default(),
        };
        if let Some((x, y)) = &mut a.sides {
            x.rng = 0x9E37_79B9_7F4A_7C15;
            y.rng = 0xD1B5_4A32_D192_ED03;
        }
        a
    }

    /// Folds one record in. `at` is its parsed timestamp.
    pub fn add(&mut self, r: &Row<'_>, at: DateTime<Utc>) {
        self.records += 1;
        crate::rates::fold(&mut self.rates, r, at);
        if !self.origins.contains(r.origin.as_ref()) {
            self.origins.insert(r.origin.to_string());
        }
        let target = r.target.as_ref();
        let t = match self.targets.get_mut(target) {
            Some(t) => t,
            None => self
                .targets
                .entry(target.to_string())
                .or_insert_with(|| TargetAgg::new(&r.llm_provider, &r.llm_model)),
        };
        if r.error_kind.as_deref() == Some("skipped_budget") {
            // Never sent: it says nothing of the target, only of the budget.
            t.spend.skipped_budget += 1;
            return;
        }
        t.spend.add(r);
        t.cost_usd.add(r.cost_usd);
        t.calls.add(Some(r.success));
        t.rate_limited.add(Some(r.rate_limited_count > 0));
        t.first = min_opt(t.first, Some(at));
        t.heat.add(r, at);
        t.by_origin.add(r);
        if t.server_config.is_none() {
            t.server_config = ServerConfig::of(r);
        }
        t.load_time_sec.add(r.load_time_sec);
        t.last = t.last.max(Some(at));
        t.json_valid.add(r.json_valid);
        t.tool_call_valid.add(r.tool_call_valid);
        t.slo_met.add(r.slo_met);
        t.schedule_lag.add(r.schedule_lag_sec);
        if r.success {
            t.latency.add(r.latency_sec);
            if let Some(v) = r.ttft_sec {
                t.ttft.add(v);
            }
            t.new_connection
                .add(r.connection_reused.map(|reused| !reused));
            if let Some(v) = r.connect_sec {
                t.setup.add(v);
            }
            for (dist, v) in [
                (&mut t.dns, r.dns_sec),
                (&mut t.tcp, r.tcp_connect_sec),
                (&mut t.tls, r.tls_handshake_sec),
            ] {
                if let Some(v) = v {
                    dist.add(v);
                }
            }
            if let Some(b) = r.ttfb_sec {
                t.ttfb.add(b);
                if let Some(f) = r.ttft_sec {
                    t.after_headers.add((f - b).max(0.0));
                }
            }
            if let Some(cached) = r.prompt_cached_tokens {
                t.prompt_cache_hit.add(Some(cached > 0));
                match (r.ttft_sec, cached > 0) {
                    (Some(v), true) => t.ttft_warm.add(v),
                    (Some(v), false) => t.ttft_cold.add(v),
                    (None, _) => {}
                }
            }
            if let (Some(client), Some(server)) = (r.ttft_sec, r.server_ttft_sec) {
                t.server_ttft.add(server);
                // A millisecond of slack: the two clocks round differently.
                t.server_ahead.add(Some(server > client + 1e-3));
                t.outside_server.add((client - server).max(0.0));
            }
            if let Some(v) = r.throughput_tps {
                t.throughput.add(v);
            }
            if let Some(v) = r.output_speed_tps {
                t.output_speed.add(v);
            }
            t.coverage.add(r.coverage_score);
            t.grounding.add(r.grounding_score);
            t.answer_correct.add(r.answer_correct);
            t.instructions_followed.add(r.instructions_followed);
            t.quality.add(r.quality_score);
            t.prompt_tokens.add(r.prompt_tokens.map(f64::from));
            t.response_tokens.add(r.response_tokens.map(f64::from));
            t.answer_chars.add(Some(f64::from(r.answer_chars)));
            t.memory_mb.add(r.memory_mb);
            t.gpu_util_pct.add(r.gpu_util_pct);
            t.gpu_temp_c.add(r.gpu_temp_c);
            t.power_w.add(r.power_w);
            t.energy_j.add(r.energy_j);
            t.energy_per_token_j.add(r.energy_per_token_j);
        } else {
            let kind = r.error_kind.as_deref().unwrap_or("unknown");
            match t.errors.get_mut(kind) {
                Some(n) => *n += 1,
                None => {
                    t.errors.insert(kind.to_string(), 1);
                }
            }
        }
        cell(&mut self.industries, target, &r.industry).add(r);
        cell(&mut self.tasks, target, &r.task).add(r);
        let temp = r
            .temperature
            .map_or_else(|| "default".to_string(), |v| format!("{v}"));
        cell(&mut self.temperatures, target, &temp).add(r);

        let start = at.timestamp().div_euclid(self.plan.bucket_sec) * self.plan.bucket_sec;
        let b = match self.buckets.get_mut(&(target.to_string(), start)) {
            Some(b) => b,
            None => self.buckets.entry((target.to_string(), start)).or_default(),
        };
        b.calls.add(Some(r.success));
        b.rate_limited.add(Some(r.rate_limited_count > 0));
        if r.success {
            b.latency.add(r.latency_sec);
            if let Some(v) = r.ttft_sec {
                b.ttft.add(v);
            }
            b.memory_mb.add(r.memory_mb);
            b.power_w.add(r.power_w);
            b.gpu_temp_c.add(r.gpu_temp_c);
        }

        if r.success
            && matches!(r.task.as_ref(), "creative_content" | "structured_output")
            && let Some(text) = r.answer.as_deref()
        {
            let kept = self
                .answers
                .entry((target.to_string(), r.question_id.to_string()))
                .or_insert_with(|| Kept {
                    task: r.task.to_string(),
                    texts: Vec::new(),
                });
            if kept.texts.len() < ANSWERS_KEPT {
                kept.texts.push(text.chars().take(ANSWER_CHARS).collect());
            }
        }

        if is_creative(&r.task) && r.success {
            let v = self.variety.entry(target.to_string()).or_default();
            let answers = v.answers.entry(r.question_id.to_string()).or_default();
            if *answers < VARIETY_CAP {
                *answers += 1;
                let hash = u64::from_str_radix(r.answer_sha256.get(..16).unwrap_or("0"), 16)
                    .unwrap_or_default();
                v.distinct
                    .entry(r.question_id.to_string())
                    .or_default()
                    .insert(hash);
            }
        }

        if let (Some((sa, sb)), Some((a, b))) = (&mut self.sides, &self.plan.compare) {
            let scoped = self
                .plan
                .compare_target
                .as_deref()
                .is_none_or(|t| t == target);
            if scoped && a.takes(target, at) {
                sa.add(r);
            }
            if scoped && b.takes(target, at) {
                sb.add(r);
            }
        }
    }

    /// Notes a line that is not a record.
    pub fn bad_line(&mut self, file: &str, line: usize, reason: &str) {
        self.bad_line_count += 1;
        if self.bad_lines.len() < 20 {
            self.bad_lines.push(format!("{file}:{line}: {reason}"));
        }
    }

    /// Adds every group of `o` (folded over other records, with the same plan).
    pub fn merge(&mut self, o: Aggregate) {
        self.records += o.records;
        self.history.merge(o.history);
        self.origins.extend(o.origins);
        for (k, v) in o.targets {
            match self.targets.get_mut(&k) {
                Some(t) => t.merge(&v),
                None => {
                    self.targets.insert(k, v);
                }
            }
        }
        for (mine, theirs) in [
            (&mut self.industries, o.industries),
            (&mut self.tasks, o.tasks),
            (&mut self.temperatures, o.temperatures),
        ] {
            for (k, v) in theirs {
                mine.entry(k).or_default().merge(&v);
            }
        }
        for (k, v) in o.buckets {
            self.buckets.entry(k).or_default().merge(&v);
        }
        for (k, v) in o.rates {
            self.rates.entry(k).or_default().merge(&v);
        }
        for (k, v) in o.answers {
            let mine = self.answers.entry(k).or_insert_with(|| Kept {
                task: v.task.clone(),
                texts: Vec::new(),
            });
            let room = ANSWERS_KEPT.saturating_sub(mine.texts.len());
            mine.texts.extend(v.texts.into_iter().take(room));
        }
        for (k, v) in o.variety {
            let mine = self.variety.entry(k).or_default();
            for (q, set) in v.distinct {
                let n = v.answers.get(&q).copied().unwrap_or(0);
                let have = mine.answers.entry(q.clone()).or_default();
                // Keep the cap across workers: take what fits (distinct hashes beyond it are
                // dropped together with their answers).
                let room = VARIETY_CAP.saturating_sub(*have);
                let take = n.min(room);
                if take > 0 {
                    *have += take;
                    let slot = mine.distinct.entry(q).or_default();
                    slot.extend(set.into_iter().take(take as usize));
                }
            }
        }
        if let (Some((a, b)), Some((oa, ob))) = (&mut self.sides, &o.sides) {
            a.merge(oa);
            b.merge(ob);
        }
        self.bad_line_count += o.bad_line_count;
        for l in o.bad_lines {
            if self.bad_lines.len() < 20 {
                self.bad_lines.push(l);
            }
        }
    }
}

fn cell<'m>(
    map: &'m mut BTreeMap<(String, String), CellAgg>,
    target: &str,
    key: &str,
) -> &'m mut CellAgg {
    map.entry((target.to_string(), key.to_string()))
        .or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dist_keeps_exact_values_until_the_cap_then_only_the_histogram() {
        let mut d = Dist::seconds();
        for i in 0..EXACT_CAP {
            d.add(i as f64 / 1000.0);
        }
        assert_eq!(d.exact_sorted().map(|v| v.len()), Some(EXACT_CAP));
        d.add(5.0);
        assert!(d.exact_sorted().is_none());
        assert_eq!(d.len(), EXACT_CAP as u64 + 1);
        // The histogram's median is within its 3-digit precision of the true median (1.0 s).
        let p50 = d.hist_quantile(0.5).unwrap();
        assert!((p50 - 1.0).abs() < 0.002, "{p50}");
    }

    #[test]
    fn merged_dists_equal_one_dist_of_all_values() {
        let (mut a, mut b, mut all) = (Dist::seconds(), Dist::seconds(), Dist::seconds());
        for i in 0..100 {
            let v = 0.1 + i as f64 * 0.013;
            if i % 3 == 0 { &mut a } else { &mut b }.add(v);
            all.add(v);
        }
        a.merge(&b);
        assert_eq!(a.exact_sorted(), all.exact_sorted());
        assert_eq!(a.hist_quantile(0.9), all.hist_quantile(0.9));
    }

    #[test]
    fn sides_parse_as_targets_or_windows() {
        assert_eq!(
            Side::parse("groq-8b").unwrap(),
            Side::Target("groq-8b".into())
        );
        let w = Side::parse("2026-11-01..2026-11-03T12:00:00Z").unwrap();
        assert_eq!(w.label(), "2026-11-01T00:00Z..2026-11-03T12:00Z");
        assert!(Side::parse("yesterday..today").is_err());
    }
}
