//! Aggregation: records folded into groups (per target, target × industry, target × task,
//! target × temperature, target × time bucket) whose size does not grow with the number of
//! records. Distributions are HdrHistograms, which merge by addition, plus the exact values while
//! a group is small enough for exact percentiles and bootstrap intervals.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde::Deserialize;

/// A distribution keeps its exact values up to this many; beyond it, only the histogram.
pub const EXACT_CAP: usize = 2_000;

/// One numeric distribution: a histogram always, exact values while there are few.
#[derive(Debug, Clone)]
pub struct Dist {
    hist: Histogram<u32>,
    /// Units per histogram step: values are stored as `round(v × scale)`.
    scale: f64,
    exact: Option<Vec<f64>>,
}

impl Dist {
    /// A distribution of values in seconds (stored to the microsecond, 3 significant digits).
    pub fn seconds() -> Dist {
        Dist::new(1e6, 3, true)
    }

    /// A distribution of speeds in tokens per second (stored to 0.001 tok/s).
    pub fn speed() -> Dist {
        Dist::new(1e3, 3, true)
    }

    /// A cheap seconds distribution for time buckets: whole milliseconds, 2 significant digits,
    /// no exact values (a few KiB, where a microsecond one takes about 9).
    pub fn coarse_seconds() -> Dist {
        Dist::new(1e3, 2, false)
    }

    fn new(scale: f64, sigfig: u8, exact: bool) -> Dist {
        Dist {
            hist: Histogram::new(sigfig).expect("2 or 3 significant digits are valid"),
            scale,
            exact: exact.then(Vec::new),
        }
    }

    /// Adds one value; negative, infinite and NaN values are not measurements and are dropped.
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() || v < 0.0 {
            return;
        }
        let v_scaled = (v * self.scale).round() as u64;
        // `record` grows an auto-resizing histogram; saturate only if it cannot.
        if self.hist.record(v_scaled).is_err() {
            self.hist.saturating_record(v_scaled);
        }
        if let Some(exact) = &mut self.exact {
            if exact.len() < EXACT_CAP {
                exact.push(v);
            } else {
                self.exact = None;
            }
        }
    }

    /// Adds every value of `other` (same kind of distribution).
    pub fn merge(&mut self, other: &Dist) {
        // Both histograms auto-resize, so adding cannot fail for lack of range.
        let _ = self.hist.add(&other.hist);
        self.exact = match (self.exact.take(), &other.exact) {
            (Some(mut a), Some(b)) if a.len() + b.len() <= EXACT_CAP => {
                a.extend_from_slice(b);
                Some(a)
            }
            _ => None,
        };
    }

    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The exact values, sorted, when every value is still kept.
    pub fn exact_sorted(&self) -> Option<Vec<f64>> {
        let mut v = self.exact.clone()?;
        v.sort_by(f64::total_cmp);
        Some(v)
    }

    /// The value at quantile `q` in [0, 1] read off the histogram (highest value equivalent to
    /// the bucket, within the histogram's precision).
    pub fn hist_quantile(&self, q: f64) -> Option<f64> {
        if self.hist.is_empty() {
            return None;
        }
        let v = self.hist.value_at_quantile(q.clamp(0.0, 1.0));
        Some(self.hist.median_equivalent(v) as f64 / self.scale)
    }

    /// The histogram's mean.
    pub fn mean(&self) -> Option<f64> {
        (!self.hist.is_empty()).then(|| self.hist.mean() / self.scale)
    }
}

/// A running mean.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mean {
    pub sum: f64,
    pub n: u64,
}

impl Mean {
    pub fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.sum += v;
            self.n += 1;
        }
    }
    pub fn merge(&mut self, o: &Mean) {
        self.sum += o.sum;
        self.n += o.n;
    }
    pub fn value(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// Successes out of trials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    pub ok: u64,
    pub n: u64,
}

impl Rate {
    pub fn add(&mut self, v: Option<bool>) {
        if let Some(v) = v {
            self.n += 1;
            self.ok += u64::from(v);
        }
    }
    pub fn merge(&mut self, o: &Rate) {
        self.ok += o.ok;
        self.n += o.n;
    }
}

/// The fields of a record a report reads; the rest of each line is skipped unparsed.
#[derive(Debug, Deserialize)]
pub struct Row<'a> {
    #[serde(borrow)]
    pub timestamp: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub industry: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub llm_provider: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub llm_model: std::borrow::Cow<'a, str>,
    pub latency_sec: f64,
    pub throughput_tps: Option<f64>,
    pub success: bool,
    pub coverage_score: Option<f64>,
    pub prompt_tokens: Option<u32>,
    pub response_tokens: Option<u32>,
    #[serde(borrow, default)]
    pub campaign: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    pub question_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub target: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub task: std::borrow::Cow<'a, str>,
    pub ttft_sec: Option<f64>,
    pub output_speed_tps: Option<f64>,
    #[serde(default)]
    pub rate_limited_count: u32,
    #[serde(borrow, default)]
    pub error_kind: Option<std::borrow::Cow<'a, str>>,
    pub grounding_score: Option<f64>,
    #[serde(default)]
    pub json_valid: Option<bool>,
    #[serde(default)]
    pub tool_call_valid: Option<bool>,
    #[serde(default)]
    pub answer_chars: u32,
    #[serde(borrow, default)]
    pub answer_sha256: std::borrow::Cow<'a, str>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub cost_usd: Option<f64>,
    #[serde(default)]
    pub memory_mb: Option<f64>,
    #[serde(borrow, default)]
    pub origin: std::borrow::Cow<'a, str>,
}

/// Everything known about one target.
#[derive(Debug, Clone)]
pub struct TargetAgg {
    pub provider: String,
    pub model: String,
    pub calls: Rate,
    /// Calls that met at least one rate-limit answer (429), retried or not.
    pub rate_limited: Rate,
    pub errors: BTreeMap<String, u64>,
    pub latency: Dist,
    pub ttft: Dist,
    pub throughput: Dist,
    pub output_speed: Dist,
    pub coverage: Mean,
    pub grounding: Mean,
    pub prompt_tokens: Mean,
    pub response_tokens: Mean,
    pub answer_chars: Mean,
    pub memory_mb: Mean,
    pub cost_usd: Mean,
    pub json_valid: Rate,
    pub tool_call_valid: Rate,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

impl TargetAgg {
    fn new(provider: &str, model: &str) -> TargetAgg {
        TargetAgg {
            provider: provider.to_string(),
            model: model.to_string(),
            calls: Rate::default(),
            rate_limited: Rate::default(),
            errors: BTreeMap::new(),
            latency: Dist::seconds(),
            ttft: Dist::seconds(),
            throughput: Dist::speed(),
            output_speed: Dist::speed(),
            coverage: Mean::default(),
            grounding: Mean::default(),
            prompt_tokens: Mean::default(),
            response_tokens: Mean::default(),
            answer_chars: Mean::default(),
            memory_mb: Mean::default(),
            cost_usd: Mean::default(),
            json_valid: Rate::default(),
            tool_call_valid: Rate::default(),
            first: None,
            last: None,
        }
    }

    fn merge(&mut self, o: &TargetAgg) {
        self.calls.merge(&o.calls);
        self.rate_limited.merge(&o.rate_limited);
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.latency.merge(&o.latency);
        self.ttft.merge(&o.ttft);
        self.throughput.merge(&o.throughput);
        self.output_speed.merge(&o.output_speed);
        self.coverage.merge(&o.coverage);
        self.grounding.merge(&o.grounding);
        self.prompt_tokens.merge(&o.prompt_tokens);
        self.response_tokens.merge(&o.response_tokens);
        self.answer_chars.merge(&o.answer_chars);
        self.memory_mb.merge(&o.memory_mb);
        self.cost_usd.merge(&o.cost_usd);
        self.json_valid.merge(&o.json_valid);
        self.tool_call_valid.merge(&o.tool_call_valid);
        self.first = min_opt(self.first, o.first);
        self.last = self.last.max(o.last);
    }
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Quality figures of one (target, industry) or (target, task) cell.
#[derive(Debug, Clone, Default)]
pub struct CellAgg {
    pub calls: Rate,
    pub coverage: Mean,
    pub grounding: Mean,
    pub json_valid: Rate,
    pub tool_call_valid: Rate,
    pub output_speed: Mean,
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
    }
    fn merge(&mut self, o: &CellAgg) {
        self.calls.merge(&o.calls);
        self.coverage.merge(&o.coverage);
        self.grounding.merge(&o.grounding);
        self.json_valid.merge(&o.json_valid);
        self.tool_call_valid.merge(&o.tool_call_valid);
        self.output_speed.merge(&o.output_speed);
    }
}

/// One target in one time bucket.
#[derive(Debug, Clone)]
pub struct BucketAgg {
    pub calls: Rate,
    pub rate_limited: Rate,
    pub latency: Dist,
    pub ttft: Dist,
}

impl Default for BucketAgg {
    fn default() -> Self {
        BucketAgg {
            calls: Rate::default(),
            rate_limited: Rate::default(),
            latency: Dist::coarse_seconds(),
            ttft: Dist::coarse_seconds(),
        }
    }
}

impl BucketAgg {
    pub fn merge(&mut self, o: &BucketAgg) {
        self.calls.merge(&o.calls);
        self.rate_limited.merge(&o.rate_limited);
        self.latency.merge(&o.latency);
        self.ttft.merge(&o.ttft);
    }
}

/// Answers to questions of the `creative` task, by content hash: how varied a target's answers
/// to the same question are. Only the first [`VARIETY_CAP`] answers per question count, so the
/// sets stay small for any history.
pub const VARIETY_CAP: u64 = 1_000;

#[derive(Debug, Clone, Default)]
pub struct Variety {
    /// (question id) → distinct answer hashes (first 16 hex digits).
    pub distinct: BTreeMap<String, HashSet<u64>>,
    pub answers: BTreeMap<String, u64>,
}

/// Two sides of a comparison: raw values for exactly two groups, capped by reservoir sampling.
#[derive(Debug, Clone, Default)]
pub struct SideSample {
    pub calls: Rate,
    pub latency: Vec<f64>,
    pub ttft: Vec<f64>,
    pub output_speed: Vec<f64>,
    seen: u64,
    rng: u64,
}

/// Values kept per side of a comparison; beyond it, a uniform reservoir.
pub const SIDE_CAP: usize = 100_000;

impl SideSample {
    fn add(&mut self, r: &Row<'_>) {
        self.calls.add(Some(r.success));
        if !r.success {
            return;
        }
        self.seen += 1;
        let slot = if self.latency.len() < SIDE_CAP {
            None
        } else {
            // xorshift: a cheap, deterministic reservoir draw.
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let j = self.rng % self.seen;
            if (j as usize) < SIDE_CAP {
                Some(j as usize)
            } else {
                return;
            }
        };
        let put = |v: &mut Vec<f64>, x: Option<f64>| {
            let x = x.unwrap_or(f64::NAN);
            match slot {
                None => v.push(x),
                Some(i) => v[i] = x,
            }
        };
        put(&mut self.latency, Some(r.latency_sec));
        put(&mut self.ttft, r.ttft_sec);
        put(&mut self.output_speed, r.output_speed_tps);
    }

    fn merge(&mut self, o: &SideSample) {
        self.calls.merge(&o.calls);
        for (a, b) in [
            (&mut self.latency, &o.latency),
            (&mut self.ttft, &o.ttft),
            (&mut self.output_speed, &o.output_speed),
        ] {
            let room = SIDE_CAP.saturating_sub(a.len());
            a.extend(b.iter().take(room));
        }
        self.seen += o.seen;
    }

    /// The kept values of one metric, without the calls that did not report it.
    pub fn values(v: &[f64]) -> Vec<f64> {
        v.iter().copied().filter(|x| !x.is_nan()).collect()
    }
}

/// Which records go to which side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Side {
    Target(String),
    Window {
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
}

impl Side {
    /// `NAME` (a target) or `START..END` (RFC 3339 times or dates, END exclusive).
    pub fn parse(s: &str) -> Result<Side, String> {
        let Some((a, b)) = s.split_once("..") else {
            return Ok(Side::Target(s.to_string()));
        };
        Ok(Side::Window {
            since: parse_time(a)?,
            until: parse_time(b)?,
        })
    }

    pub fn label(&self) -> String {
        match self {
            Side::Target(t) => t.clone(),
            Side::Window { since, until } => format!(
                "{}..{}",
                since.format("%Y-%m-%dT%H:%MZ"),
                until.format("%Y-%m-%dT%H:%MZ")
            ),
        }
    }

    fn takes(&self, target: &str, at: DateTime<Utc>) -> bool {
        match self {
            Side::Target(t) => t == target,
            Side::Window { since, until } => *since <= at && at < *until,
        }
    }
}

/// Parses an RFC 3339 time or a `YYYY-MM-DD` date (midnight UTC).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| format!("'{s}' is neither an RFC 3339 time nor a YYYY-MM-DD date"))
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
    pub variety: BTreeMap<String, Variety>,
    pub sides: Option<(SideSample, SideSample)>,
    pub records: u64,
    /// Origins seen (e.g. `synthetic` histories are labelled so).
    pub origins: BTreeSet<String>,
    /// Lines that are not records, as `file:line: reason` (the first 20).
    pub bad_lines: Vec<String>,
    pub bad_line_count: u64,
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
            variety: BTreeMap::new(),
            sides,
            records: 0,
            origins: BTreeSet::new(),
            bad_lines: Vec::new(),
            bad_line_count: 0,
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
        t.calls.add(Some(r.success));
        t.rate_limited.add(Some(r.rate_limited_count > 0));
        t.first = min_opt(t.first, Some(at));
        t.last = t.last.max(Some(at));
        t.json_valid.add(r.json_valid);
        t.tool_call_valid.add(r.tool_call_valid);
        if r.success {
            t.latency.add(r.latency_sec);
            if let Some(v) = r.ttft_sec {
                t.ttft.add(v);
            }
            if let Some(v) = r.throughput_tps {
                t.throughput.add(v);
            }
            if let Some(v) = r.output_speed_tps {
                t.output_speed.add(v);
            }
            t.coverage.add(r.coverage_score);
            t.grounding.add(r.grounding_score);
            t.prompt_tokens.add(r.prompt_tokens.map(f64::from));
            t.response_tokens.add(r.response_tokens.map(f64::from));
            t.answer_chars.add(Some(f64::from(r.answer_chars)));
            t.memory_mb.add(r.memory_mb);
            t.cost_usd.add(r.cost_usd);
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
        }

        if r.task == "creative" && r.success {
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
