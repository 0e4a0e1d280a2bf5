//! SYNTHETIC record histories, for tests and benchmarks only: runs of made-up records in the
//! real storage layout, so reports and selection can be exercised at any scale without a model.
//! Every synthetic record says so: `origin = "synthetic"`, provider `synthetic`, run ids that
//! start with `synthetic-`, and reports print a banner when they read any.
//!
//! Two kinds of history ([`Scenario`]). `report`: the targets differ on purpose (target `i` is
//! slower than target `i − 1`, the first meets 429s) and target 1 slows down by 40% over the
//! last quarter, so that reports have a regression to flag. `stable` and `changes`: histories for
//! `watch`, as real schedules see them: every run of a target shares a network moment (its
//! calls are not independent), now and then one run meets a burst of failures, and afternoons
//! are 10% slower. `stable` has no change at all; `changes` has four over
//! [`Spec::change_runs`] runs, by default the last ones (target 1 slower by 40%, target 2's
//! success 99% → 85%, target 3's coverage 0.90 → 0.68, and target 4 faster by 30%, an
//! improvement); with [`Spec::change_from`] they can end before the history does (a recovery).

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use llmpulse_core::error_kind::ErrorKind;
use llmpulse_core::manifest::RunMeta;
use llmpulse_core::publish::{self, OutputError};
use llmpulse_core::record::Record;
use llmpulse_core::tokens::TokenSource;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Records in all (rounded up to whole runs).
    pub records: u64,
    pub targets: u32,
    /// Questions per target per run.
    pub questions: u32,
    pub start: DateTime<Utc>,
    /// Time between runs.
    pub every: Duration,
    pub campaign: Option<String>,
    pub seed: u64,
    pub scenario: Scenario,
    /// `changes`: the run index the changes begin at (default: `change_runs` before the end).
    pub change_from: Option<u64>,
    /// `changes`: how many runs they last (past the end: to the end).
    pub change_runs: u64,
}

/// Which history to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Targets that differ, one slowing down over the last quarter (the report benchmark's).
    Report,
    /// `watch`'s null: run-level noise and failure bursts, no change.
    Stable,
    /// `watch`'s test: as `stable`, with three regressions and one improvement at the end.
    Changes,
}

/// The questions' (industry, task) by index: mostly RAG, with every task the selector scores.
const QUESTIONS: [(&str, &str); 10] = [
    ("retail", "rag"),
    ("finance", "rag"),
    ("retail", "rag"),
    ("finance", "rag"),
    ("retail", "structured_output"),
    ("finance", "tool_use"),
    ("retail", "creative"),
    ("finance", "reasoning"),
    ("retail", "rag"),
    ("finance", "rag"),
];

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// One made-up run: what it is, its records, and when it ended.
pub struct SynthRun {
    pub meta: RunMeta,
    pub records: Vec<Record>,
    pub finished_at: DateTime<Utc>,
}

/// The runs of a history, one at a time (so any number fits in memory).
pub fn runs(spec: &Spec) -> impl Iterator<Item = SynthRun> + '_ {
    let per_run = u64::from(spec.targets.max(1)) * u64::from(spec.questions.max(1));
    let count = spec.records.div_ceil(per_run);
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    (0..count).map(move |k| run(spec, k, count, &mut rng))
}

/// One call's draw: what the scenario decided, before it becomes a record.
struct Draw {
    ttft: f64,
    tokens: u32,
    speed: f64,
    rate_limited: bool,
    failed: bool,
    /// The coverage this call scatters around (±0.05).
    coverage: f64,
    answer_correct: Option<bool>,
    /// How much slower than its base the target is (power and temperature follow it).
    slow: f64,
}

/// The report scenario's call (the draws in their original order, so its history is the same).
fn draw_report(rng: &mut ChaCha8Rng, t: u32, late: bool, hour: u32) -> Draw {
    let slow = 1.0 + 0.5 * f64::from(t) + if t == 1 && late { 0.4 } else { 0.0 };
    let diurnal = if (14..18).contains(&hour) { 1.1 } else { 1.0 };
    let ttft = lognormal(rng, 0.12 * slow * diurnal, 0.3);
    let tokens: u32 = rng.random_range(60..260);
    let speed = lognormal(rng, 180.0 / slow, 0.15);
    let rate_limited = t == 0 && rng.random_bool(0.03);
    let failed =
        rng.random_bool(0.01 + 0.01 * f64::from(t)) || (rate_limited && rng.random_bool(0.3));
    Draw {
        ttft,
        tokens,
        speed,
        rate_limited,
        failed,
        coverage: 0.95 - 0.08 * f64::from(t),
        answer_correct: None,
        slow,
    }
}

/// What one run of one target shares in the watch scenarios: its network moment and whether
/// it met a burst of failures.
struct RunMoment {
    latency: f64,
    speed: f64,
    coverage: f64,
    burst: f64,
}

fn moment(rng: &mut ChaCha8Rng) -> RunMoment {
    RunMoment {
        latency: (0.08 * normal(rng)).exp(),
        speed: (0.05 * normal(rng)).exp(),
        coverage: 0.01 * normal(rng),
        // One run in 30 loses 20–60% of its calls (an outage, a deploy, a rate-limit storm).
        burst: if rng.random_bool(1.0 / 30.0) {
            rng.random_range(0.2..0.6)
        } else {
            0.0
        },
    }
}

/// A watch scenario's call of target `t` in run moment `m`; `changed` in the last runs of a
/// `changes` history.
fn draw_watch(
    rng: &mut ChaCha8Rng,
    t: u32,
    m: &RunMoment,
    changed: bool,
    hour: u32,
    task: &str,
) -> Draw {
    let base = 1.0 + 0.25 * f64::from(t % 6);
    let step = match (changed, t) {
        (true, 1) => 1.4,
        (true, 4) => 0.7,
        _ => 1.0,
    };
    let diurnal = if (14..18).contains(&hour) { 1.1 } else { 1.0 };
    let slow = base * step;
    let ttft = lognormal(rng, 0.12 * slow * diurnal * m.latency, 0.3);
    let tokens: u32 = rng.random_range(60..260);
    let speed = lognormal(rng, 180.0 / (slow * m.speed.recip()), 0.15);
    let fail_rate = if changed && t == 2 { 0.15 } else { 0.01 };
    let rate_limited = rng.random_bool(0.005);
    let failed = rng.random_bool(fail_rate) || rng.random_bool(m.burst) || rate_limited;
    let coverage = if changed && t == 3 { 0.68 } else { 0.90 } - 0.01 * f64::from(t % 3);
    let answer_correct = (task == "reasoning").then(|| rng.random_bool(0.8));
    Draw {
        ttft,
        tokens,
        speed,
        rate_limited,
        failed,
        coverage: coverage + m.coverage,
        answer_correct,
        slow,
    }
}

fn run(spec: &Spec, k: u64, count: u64, rng: &mut ChaCha8Rng) -> SynthRun {
    let started = spec.start + spec.every * k as i32;
    let run_id = format!("synthetic-{}-{k:06}", started.format("%Y%m%dT%H%M%SZ"));
    let late = k * 4 >= count * 3;
    let from = spec
        .change_from
        .unwrap_or_else(|| count.saturating_sub(spec.change_runs));
    let changed = spec.scenario == Scenario::Changes
        && k >= from
        && k < from.saturating_add(spec.change_runs);
    let mut records = Vec::new();
    let mut at = started;
    for t in 0..spec.targets {
        let m = (spec.scenario != Scenario::Report).then(|| moment(rng));
        for q in 0..spec.questions {
            let (_, task) = QUESTIONS[q as usize % QUESTIONS.len()];
            let hour = at.format("%H").to_string().parse().unwrap_or(0);
            let d = match &m {
                None => draw_report(rng, t, late, hour),
                Some(m) => draw_watch(rng, t, m, changed, hour, task),
            };
            let r = record(spec, rng, &run_id, k, t, q, at, &d);
            at += Duration::milliseconds((r.latency_sec * 1000.0) as i64 / 4);
            records.push(r);
        }
    }
    SynthRun {
        meta: RunMeta {
            run_id,
            started_at: started.to_rfc3339(),
            campaign: records.first().and_then(|r| r.campaign.clone()),
            slot: records.first().and_then(|r| r.slot),
            origin: "synthetic".into(),
            host: None,
            rescored_from: None,
            server_metrics: None,
            budget: None,
            pace: None,
            config_hash: "synthetic".into(),
            suite: "synthetic".into(),
            targets: (0..spec.targets)
                .map(|t| format!("synthetic-{t}"))
                .collect(),
            shard: None,
            planned: Some(records.len()),
        },
        records,
        finished_at: at,
    }
}

/// The record of one drawn call of target `t`, question `q`, in run `k`.
#[allow(clippy::too_many_arguments)]
fn record(
    spec: &Spec,
    rng: &mut ChaCha8Rng,
    run_id: &str,
    k: u64,
    t: u32,
    q: u32,
    at: DateTime<Utc>,
    d: &Draw,
) -> Record {
    let (industry, task) = QUESTIONS[q as usize % QUESTIONS.len()];
    let Draw {
        ttft,
        tokens,
        speed,
        rate_limited,
        failed,
        slow,
        ..
    } = *d;
    let latency = ttft + f64::from(tokens - 1) / speed;
    let answer_hash = if task == "creative" {
        hex::encode(Sha256::digest(rng.random::<u64>().to_le_bytes()))
    } else {
        hex::encode(Sha256::digest(format!("{t}-{q}")))
    };
    let coverage = (d.coverage + 0.05 * normal(rng)).clamp(0.0, 1.0);
    // Drawn from nothing random, so the rest of the history stays as it was.
    let power = round6(120.0 + 60.0 * f64::from(t) + 10.0 * (slow - 1.0));
    Record {
        timestamp: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        industry: industry.into(),
        question: format!("Synthetic question {q}"),
        llm_provider: "synthetic".into(),
        llm_model: format!("synthetic-model-{t}"),
        latency_sec: round6(latency),
        throughput_tps: (!failed).then(|| round6(f64::from(tokens) / latency)),
        success: !failed,
        coverage_score: (!failed).then_some(round6(coverage)),
        prompt_tokens: Some(400 + q * 7),
        response_tokens: (!failed).then_some(tokens),
        run_id: run_id.to_string(),
        campaign: spec.campaign.clone(),
        slot: spec.campaign.as_ref().map(|_| k),
        question_id: format!("q{q:02}"),
        target: format!("synthetic-{t}"),
        repetition: 0,
        task: task.into(),
        role: None,
        streamed: true,
        connect_sec: None,
        connection_reused: None,
        dns_sec: None,
        tcp_connect_sec: None,
        tls_handshake_sec: None,
        tls_version: None,
        remote_addr: None,
        http_version: None,
        clock_source: None,
        ttfb_sec: Some(round6(ttft * 0.9)),
        ttft_sec: Some(round6(ttft)),
        ttfat_sec: Some(round6(ttft)),
        output_speed_tps: (!failed).then(|| round6(speed)),
        tpot_sec: (!failed).then(|| round6(1.0 / speed)),
        chunk_count: Some(tokens),
        chunk_gap_p50_sec: Some(round6(1.0 / speed)),
        chunk_gap_p99_sec: Some(round6(3.0 / speed)),
        chunk_gap_max_sec: Some(round6(5.0 / speed)),
        token_source: Some(TokenSource::Usage),
        reasoning_tokens: None,
        attempts: 1 + u32::from(rate_limited),
        rate_limited_count: u32::from(rate_limited),
        queue_wait_sec: 0.0,
        retry_wait_sec: 0.0,
        paused_sec: 0.0,
        scheduled_at: None,
        schedule_lag_sec: None,
        slo_met: None,
        ratelimit_remaining_requests: None,
        ratelimit_remaining_tokens: None,
        failover_from: None,
        failover_to: None,
        cost_usd: Some(f64::from(tokens) * 1e-7 * f64::from(t + 1)),
        cost_source: Some(llmpulse_core::cost::CostSource::PriceTable),
        server_load_sec: None,
        server_prefill_sec: None,
        server_decode_tps: None,
        server_ttft_sec: None,
        prompt_cached_tokens: None,
        error_kind: failed.then_some(if rate_limited {
            ErrorKind::RateLimited
        } else {
            ErrorKind::Http5xx
        }),
        error_message: failed.then(|| "synthetic failure".into()),
        http_status: Some(if failed { 503 } else { 200 }),
        finish_reason: Some("stop".into()),
        grounding_score: (!failed).then_some(round6(coverage * 0.95)),
        json_valid: (task == "structured_output").then_some(!failed && t != 2),
        tool_calls: None,
        tool_call_valid: (task == "tool_use").then_some(!failed),
        tool_call_format: (task == "tool_use" && !failed).then(|| "native".into()),
        tool_prompt: None,
        answer_correct: d.answer_correct.filter(|_| !failed),
        instructions_followed: None,
        scores: None,
        quality_score: None,
        answer_chars: tokens * 4,
        answer: None,
        answer_sha256: answer_hash,
        provider_request_id: None,
        temperature: Some(0.7),
        max_tokens: Some(300),
        origin: "synthetic".into(),
        llmpulse_version: llmpulse_core::VERSION.into(),
        config_hash: "synthetic".into(),
        memory_mb: Some(1_000.0 + 2_000.0 * f64::from(t)),
        memory_source: Some("server_rss+gpu".into()),
        gpu_util_pct: Some(55.0 + 10.0 * f64::from(t)),
        gpu_temp_c: Some(round6(58.0 + 6.0 * f64::from(t) + 4.0 * (slow - 1.0))),
        cpu_temp_c: Some(round6(52.0 + 3.0 * f64::from(t))),
        throttled: Some(false),
        throttle_reason: None,
        power_w: Some(power),
        energy_j: Some(power * latency),
        energy_source: Some("nvml_counter".into()),
        energy_per_token_j: (tokens > 0).then(|| power * latency / f64::from(tokens)),
        host_id: Some("synthetic-gpu-box".into()),
        server: None,
        server_version: None,
        quantization: None,
        flash_attn: None,
        kv_cache_type: None,
        ctx_size: None,
        gpu_layers: None,
        max_num_seqs: None,
        load_time_sec: None,
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Writes a whole history below `dir` in the storage layout. Returns (runs, records).
pub fn write(spec: &Spec, dir: &Path) -> Result<(u64, u64), OutputError> {
    let (mut runs_written, mut records) = (0, 0);
    for run in runs(spec) {
        records += run.records.len() as u64;
        let encoded = publish::encode(&run.meta, &run.records, run.finished_at)?;
        publish::write_local(dir, &encoded)?;
        runs_written += 1;
    }
    Ok((runs_written, records))
}
