//! One target's figures ([`TargetFigures`]): its calls, timings with intervals, quality, hardware
//! and cost means, prompt-cache split, and (sweeps) its place on the Pareto front.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{MeanFigure, Quantiles, RateFigure, SEED};
use crate::aggregate::TargetAgg;

/// One target's figures. Timings are over successful calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetFigures {
    pub target: String,
    pub provider: String,
    pub model: String,
    pub calls: u64,
    pub success: RateFigure,
    /// Calls that met a 429 (retried or not).
    pub rate_limited: RateFigure,
    pub latency_sec: Option<Quantiles>,
    pub ttft_sec: Option<Quantiles>,
    /// Where the time to first token went: set-up, TTFB, headers → first token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_split: Option<super::split::TtftSplitFigures>,
    /// Measured from more than one origin: each apart.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<super::origin::OriginFigures>,
    /// When the server said: the share of calls it served partly from its prefix cache, and
    /// TTFT for warm and cold calls apart (`ttft_sec` pools both).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_cache: Option<PromptCacheFigures>,
    /// When the server timed its own first token (llama.cpp, Ollama): the client's TTFT set
    /// beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_timing: Option<ServerTimingFigures>,
    pub throughput_tps: Option<Quantiles>,
    pub output_speed_tps: Option<Quantiles>,
    pub coverage: Option<MeanFigure>,
    pub grounding: Option<MeanFigure>,
    pub json_valid: Option<RateFigure>,
    pub tool_call_valid: Option<RateFigure>,
    /// Graded answers (questions with an expected answer or verifiable instructions).
    pub answer_correct: Option<RateFigure>,
    pub instructions_followed: Option<MeanFigure>,
    pub quality_score: Option<MeanFigure>,
    /// Calls that met the run's SLO (runs with one), with the Wilson interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo_attainment: Option<RateFigure>,
    /// Open loops: the mean delay between a call's scheduled and actual send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_lag_sec: Option<MeanFigure>,
    pub prompt_tokens: Option<MeanFigure>,
    pub response_tokens: Option<MeanFigure>,
    pub answer_chars: Option<MeanFigure>,
    pub memory_mb: Option<MeanFigure>,
    /// Agent hardware figures: mean GPU use, mean device power, energy per call and per token.
    pub gpu_util_pct: Option<MeanFigure>,
    pub gpu_temp_c: Option<MeanFigure>,
    pub power_w: Option<MeanFigure>,
    pub energy_j: Option<MeanFigure>,
    pub energy_per_token_j: Option<MeanFigure>,
    pub cost_usd_per_call: Option<MeanFigure>,
    /// Cost per call, per 1,000 calls, per million output tokens and per correct answer;
    /// spend per day and campaign; absent when no call has a cost.
    pub cost: Option<super::cost::CostFigures>,
    /// Temperatures and throttling (agent records); absent without a reading.
    pub heat: Option<super::heat::HeatFigures>,
    pub errors: BTreeMap<String, u64>,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    /// Sweep points: how the server was started, its load time, and whether the configuration
    /// is on the Pareto front of output speed (higher), memory (lower) and coverage (higher)
    /// among the sweep's targets.
    pub server_config: Option<crate::aggregate::ServerConfig>,
    pub load_time_sec: Option<MeanFigure>,
    pub pareto: bool,
}

/// A target's calls split by whether the server's prefix cache served part of the prompt.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PromptCacheFigures {
    pub warm: RateFigure,
    pub ttft_warm_sec: Option<Quantiles>,
    pub ttft_cold_sec: Option<Quantiles>,
}

impl PromptCacheFigures {
    /// Both warm and cold calls among the target's: its pooled TTFT mixes two populations.
    pub fn mixed(&self) -> bool {
        self.warm.k > 0 && self.warm.k < self.warm.n
    }
}

/// A target's client TTFT beside its server's own: what passed outside the server's prompt
/// processing (network, HTTP, the server's queue, the client) and the calls where the server's
/// figure was larger than the client's (a clock or a proxy to look at).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServerTimingFigures {
    /// Per call, from the server's answer (llama.cpp's `timings`, Ollama's durations).
    pub server_ttft_sec: Option<Quantiles>,
    /// `ttft_sec − server_ttft_sec` per call, at 0 when negative.
    pub outside_server_sec: Option<Quantiles>,
    /// The median outside the server over the median client TTFT.
    pub outside_share: Option<f64>,
    pub server_ahead: RateFigure,
    /// From the server's own `/metrics` over the runs (vLLM, agent runs): the mean time a
    /// request waited in its queue and its mean TTFT, over `server_requests` requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_queue_sec_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_metrics_ttft_sec_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_requests: Option<f64>,
}

impl ServerTimingFigures {
    /// Median time outside the server above which the report says so: 50 ms and a quarter of
    /// the TTFT. Below, it is a local network and an HTTP parser.
    pub const NOTABLE_SEC: f64 = 0.05;
    pub const NOTABLE_SHARE: f64 = 0.25;

    /// Whether the client and the server disagree enough to say so.
    pub fn notable(&self) -> bool {
        let outside = self
            .outside_server_sec
            .as_ref()
            .map_or(0.0, |q| q.p50.value);
        self.server_ahead.k > 0
            || (outside > Self::NOTABLE_SEC
                && self.outside_share.is_some_and(|s| s > Self::NOTABLE_SHARE))
    }

    /// Whether the server's own queue held calls long enough to say so (same bounds, against
    /// the server's mean TTFT).
    pub fn queued(&self) -> bool {
        match (
            self.server_queue_sec_mean,
            self.server_metrics_ttft_sec_mean,
        ) {
            (Some(q), Some(t)) => q > Self::NOTABLE_SEC && t > 0.0 && q / t > Self::NOTABLE_SHARE,
            _ => false,
        }
    }
}

/// Marks the sweep targets on the Pareto front of output speed, memory and coverage.
pub(super) fn mark_pareto(mut targets: Vec<TargetFigures>) -> Vec<TargetFigures> {
    let sweep: Vec<usize> = (0..targets.len())
        .filter(|&i| targets[i].server_config.is_some() && targets[i].output_speed_tps.is_some())
        .collect();
    let points: Vec<_> = sweep
        .iter()
        .map(|&i| {
            let t = &targets[i];
            (
                t.output_speed_tps.as_ref().map(|q| q.p50.value),
                t.memory_mb.map(|m| m.mean),
                t.coverage.map(|m| m.mean),
            )
        })
        .collect();
    for (&i, front) in sweep.iter().zip(crate::sweep::pareto_front(&points)) {
        targets[i].pareto = front;
    }
    targets
}

/// One target's figures (`i` varies the bootstrap seed per target).
pub(super) fn target_figures(i: usize, name: &str, t: &TargetAgg) -> TargetFigures {
    let seed = SEED.wrapping_add(i as u64);
    TargetFigures {
        target: name.to_string(),
        provider: t.provider.clone(),
        model: t.model.clone(),
        calls: t.calls.n,
        success: RateFigure::of_or_empty(t.calls),
        rate_limited: RateFigure::of_or_empty(t.rate_limited),
        latency_sec: Quantiles::of(&t.latency, seed),
        ttft_sec: Quantiles::of(&t.ttft, seed),
        prompt_cache: RateFigure::of(t.prompt_cache_hit).map(|warm| PromptCacheFigures {
            warm,
            ttft_warm_sec: Quantiles::of(&t.ttft_warm, seed),
            ttft_cold_sec: Quantiles::of(&t.ttft_cold, seed),
        }),
        server_timing: server_timing(t, seed),
        ttft_split: super::split::TtftSplitFigures::of(t, seed),
        origins: super::origin::OriginFigures::of(t, seed),
        throughput_tps: Quantiles::of(&t.throughput, seed),
        output_speed_tps: Quantiles::of(&t.output_speed, seed),
        coverage: MeanFigure::of(t.coverage),
        grounding: MeanFigure::of(t.grounding),
        json_valid: RateFigure::of(t.json_valid),
        tool_call_valid: RateFigure::of(t.tool_call_valid),
        answer_correct: RateFigure::of(t.answer_correct),
        instructions_followed: MeanFigure::of(t.instructions_followed),
        quality_score: MeanFigure::of(t.quality),
        slo_attainment: RateFigure::of(t.slo_met),
        schedule_lag_sec: MeanFigure::of(t.schedule_lag),
        prompt_tokens: MeanFigure::of(t.prompt_tokens),
        response_tokens: MeanFigure::of(t.response_tokens),
        answer_chars: MeanFigure::of(t.answer_chars),
        memory_mb: MeanFigure::of(t.memory_mb),
        gpu_util_pct: MeanFigure::of(t.gpu_util_pct),
        gpu_temp_c: MeanFigure::of(t.gpu_temp_c),
        power_w: MeanFigure::of(t.power_w),
        energy_j: MeanFigure::of(t.energy_j),
        energy_per_token_j: MeanFigure::of(t.energy_per_token_j),
        cost_usd_per_call: MeanFigure::of(t.cost_usd),
        cost: super::cost::CostFigures::of(t),
        heat: super::heat::HeatFigures::of(&t.heat),
        errors: t.errors.clone(),
        first: t.first,
        last: t.last,
        server_config: t.server_config.clone(),
        load_time_sec: MeanFigure::of(t.load_time_sec),
        pareto: false,
    }
}

fn server_timing(t: &TargetAgg, seed: u64) -> Option<ServerTimingFigures> {
    let server_ttft_sec = Quantiles::of(&t.server_ttft, seed);
    if server_ttft_sec.is_none() && t.server_queue.n == 0.0 && t.server_metrics_ttft.n == 0.0 {
        return None;
    }
    let outside_server_sec = Quantiles::of(&t.outside_server, seed);
    let client = Quantiles::of(&t.ttft, seed).map(|q| q.p50.value);
    let outside_share = match (&outside_server_sec, client) {
        (Some(o), Some(c)) if c > 0.0 => Some(o.p50.value / c),
        _ => None,
    };
    Some(ServerTimingFigures {
        server_ttft_sec,
        outside_server_sec,
        outside_share,
        server_ahead: RateFigure::of_or_empty(t.server_ahead),
        server_queue_sec_mean: t.server_queue.value(),
        server_metrics_ttft_sec_mean: t.server_metrics_ttft.value(),
        server_requests: (t.server_metrics_ttft.n > 0.0).then_some(t.server_metrics_ttft.n),
    })
}
