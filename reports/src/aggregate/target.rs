//! What a report knows about one target ([`TargetAgg`]): every figure folded from its records,
//! and how a sweep point's server was started ([`ServerConfig`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Dist, Mean, Rate, Row};

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
    /// Where the time to first token went: calls that opened a connection (over HTTP), its
    /// set-up time, request → headers, and headers → first token.
    pub new_connection: Rate,
    pub setup: Dist,
    /// The set-up's phases, where they were timed apart: the name lookup, the TCP and the TLS
    /// handshakes.
    pub dns: Dist,
    pub tcp: Dist,
    pub tls: Dist,
    pub ttfb: Dist,
    pub after_headers: Dist,
    /// Successful calls that said whether the server's prefix cache served part of the
    /// prompt (`prompt_cached_tokens` > 0), and TTFT apart for warm and cold calls.
    pub prompt_cache_hit: Rate,
    pub ttft_warm: Dist,
    pub ttft_cold: Dist,
    /// Calls whose server said when its first token was ready (`server_ttft_sec`): that time,
    /// the client's TTFT beyond it, and the calls where the server's figure was the larger.
    pub server_ttft: Dist,
    pub outside_server: Dist,
    pub server_ahead: Rate,
    /// From the runs' manifests (agent runs on vLLM): the server's own queue time and TTFT,
    /// means weighted by the requests its `/metrics` counted.
    pub server_queue: Weighted,
    pub server_metrics_ttft: Weighted,
    pub throughput: Dist,
    pub output_speed: Dist,
    pub coverage: Mean,
    pub grounding: Mean,
    pub prompt_tokens: Mean,
    pub response_tokens: Mean,
    pub answer_chars: Mean,
    pub memory_mb: Mean,
    pub gpu_util_pct: Mean,
    pub gpu_temp_c: Mean,
    pub power_w: Mean,
    pub energy_j: Mean,
    pub energy_per_token_j: Mean,
    /// Mean cost of the calls that have one (failed and billed included).
    pub cost_usd: Mean,
    pub spend: super::spend::Spend,
    /// Temperatures, throttling, and output speed by heat and over time (agent records).
    pub heat: super::heat::Heat,
    /// The same target from each origin (cloud regions, agents), kept apart.
    pub by_origin: super::origin::ByOrigin,
    pub json_valid: Rate,
    pub tool_call_valid: Rate,
    /// Graded answers: the right final answer, the share of instructions followed, and the
    /// record's quality score (the mean of its grades).
    pub answer_correct: Rate,
    pub instructions_followed: Mean,
    pub quality: Mean,
    /// Calls that met the run's SLO (runs with one), and open loops' send lag.
    pub slo_met: Rate,
    pub schedule_lag: Mean,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    /// The server configuration a sweep point ran with (the first record that says).
    pub server_config: Option<ServerConfig>,
    /// Sweep points: server start → ready.
    pub load_time_sec: Mean,
}

/// A mean of means, each weighted by its count (a server's histogram means over runs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Weighted {
    pub sum: f64,
    pub n: f64,
}

impl Weighted {
    pub fn add(&mut self, mean: f64, count: f64) {
        if mean.is_finite() && count > 0.0 {
            self.sum += mean * count;
            self.n += count;
        }
    }
    pub fn merge(&mut self, o: &Weighted) {
        self.sum += o.sum;
        self.n += o.n;
    }
    pub fn value(&self) -> Option<f64> {
        (self.n > 0.0).then(|| self.sum / self.n)
    }
}

/// How a sweep point's server was started, and the request temperature of its target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServerConfig {
    pub server: Option<String>,
    pub quantization: Option<String>,
    pub flash_attn: Option<String>,
    pub kv_cache_type: Option<String>,
    pub ctx_size: Option<u32>,
    pub gpu_layers: Option<u32>,
    /// vLLM sweeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_num_seqs: Option<u32>,
    pub temperature: Option<f64>,
}

impl ServerConfig {
    pub(super) fn of(r: &Row<'_>) -> Option<ServerConfig> {
        if r.quantization.is_none()
            && r.flash_attn.is_none()
            && r.kv_cache_type.is_none()
            && r.max_num_seqs.is_none()
        {
            return None;
        }
        let s = |v: &Option<std::borrow::Cow<'_, str>>| v.as_ref().map(|x| x.to_string());
        Some(ServerConfig {
            server: s(&r.server),
            quantization: s(&r.quantization),
            flash_attn: s(&r.flash_attn),
            kv_cache_type: s(&r.kv_cache_type),
            ctx_size: r.ctx_size,
            gpu_layers: r.gpu_layers,
            max_num_seqs: r.max_num_seqs,
            temperature: r.temperature,
        })
    }

    /// Whether two configurations differ in flash attention alone.
    pub fn flash_pair(&self, o: &ServerConfig) -> bool {
        self.flash_attn != o.flash_attn
            && ServerConfig {
                flash_attn: None,
                ..self.clone()
            } == ServerConfig {
                flash_attn: None,
                ..o.clone()
            }
    }
}

impl TargetAgg {
    pub(super) fn new(provider: &str, model: &str) -> TargetAgg {
        TargetAgg {
            provider: provider.to_string(),
            model: model.to_string(),
            calls: Rate::default(),
            rate_limited: Rate::default(),
            errors: BTreeMap::new(),
            latency: Dist::seconds(),
            ttft: Dist::seconds(),
            new_connection: Rate::default(),
            setup: Dist::seconds(),
            dns: Dist::seconds(),
            tcp: Dist::seconds(),
            tls: Dist::seconds(),
            ttfb: Dist::seconds(),
            after_headers: Dist::seconds(),
            prompt_cache_hit: Rate::default(),
            ttft_warm: Dist::seconds(),
            ttft_cold: Dist::seconds(),
            server_ttft: Dist::seconds(),
            outside_server: Dist::seconds(),
            server_ahead: Rate::default(),
            server_queue: Weighted::default(),
            server_metrics_ttft: Weighted::default(),
            throughput: Dist::speed(),
            output_speed: Dist::speed(),
            coverage: Mean::default(),
            grounding: Mean::default(),
            prompt_tokens: Mean::default(),
            response_tokens: Mean::default(),
            answer_chars: Mean::default(),
            memory_mb: Mean::default(),
            gpu_util_pct: Mean::default(),
            gpu_temp_c: Mean::default(),
            power_w: Mean::default(),
            energy_j: Mean::default(),
            energy_per_token_j: Mean::default(),
            cost_usd: Mean::default(),
            spend: Default::default(),
            heat: Default::default(),
            by_origin: Default::default(),
            json_valid: Rate::default(),
            tool_call_valid: Rate::default(),
            answer_correct: Rate::default(),
            instructions_followed: Mean::default(),
            quality: Mean::default(),
            slo_met: Rate::default(),
            schedule_lag: Mean::default(),
            first: None,
            last: None,
            server_config: None,
            load_time_sec: Mean::default(),
        }
    }

    pub(super) fn merge(&mut self, o: &TargetAgg) {
        self.calls.merge(&o.calls);
        self.rate_limited.merge(&o.rate_limited);
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.latency.merge(&o.latency);
        self.ttft.merge(&o.ttft);
        self.new_connection.merge(&o.new_connection);
        self.setup.merge(&o.setup);
        self.dns.merge(&o.dns);
        self.tcp.merge(&o.tcp);
        self.tls.merge(&o.tls);
        self.ttfb.merge(&o.ttfb);
        self.after_headers.merge(&o.after_headers);
        self.prompt_cache_hit.merge(&o.prompt_cache_hit);
        self.ttft_warm.merge(&o.ttft_warm);
        self.ttft_cold.merge(&o.ttft_cold);
        self.server_ttft.merge(&o.server_ttft);
        self.outside_server.merge(&o.outside_server);
        self.server_ahead.merge(&o.server_ahead);
        self.server_queue.merge(&o.server_queue);
        self.server_metrics_ttft.merge(&o.server_metrics_ttft);
        self.throughput.merge(&o.throughput);
        self.output_speed.merge(&o.output_speed);
        self.coverage.merge(&o.coverage);
        self.grounding.merge(&o.grounding);
        self.prompt_tokens.merge(&o.prompt_tokens);
        self.response_tokens.merge(&o.response_tokens);
        self.answer_chars.merge(&o.answer_chars);
        self.memory_mb.merge(&o.memory_mb);
        self.gpu_util_pct.merge(&o.gpu_util_pct);
        self.gpu_temp_c.merge(&o.gpu_temp_c);
        self.power_w.merge(&o.power_w);
        self.energy_j.merge(&o.energy_j);
        self.energy_per_token_j.merge(&o.energy_per_token_j);
        self.cost_usd.merge(&o.cost_usd);
        self.spend.merge(&o.spend);
        self.heat.merge(&o.heat);
        self.by_origin.merge(&o.by_origin);
        self.json_valid.merge(&o.json_valid);
        self.tool_call_valid.merge(&o.tool_call_valid);
        self.answer_correct.merge(&o.answer_correct);
        self.instructions_followed.merge(&o.instructions_followed);
        self.slo_met.merge(&o.slo_met);
        self.schedule_lag.merge(&o.schedule_lag);
        self.quality.merge(&o.quality);
        self.first = min_opt(self.first, o.first);
        self.last = self.last.max(o.last);
        if self.server_config.is_none() {
            self.server_config = o.server_config.clone();
        }
        self.load_time_sec.merge(&o.load_time_sec);
    }
}

pub(super) fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
