//! What `watch` watches: each metric, how one run's value of it is made, which way is worse,
//! and the smallest change worth an alert.

use serde::{Deserialize, Serialize};

/// How a metric's run value is made, and how two groups of runs are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A percentile of the run's successful calls; groups compare their medians of runs.
    Quantile(f64),
    /// A share of calls; groups compare their means of runs (a binomial floor on the variance).
    Rate,
    /// A mean over the run's successful calls; groups compare their means of runs.
    Mean,
}

/// Every metric `watch` tests, in the order findings are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    LatencyP50,
    LatencyP95,
    TtftP50,
    OutputSpeedP50,
    SuccessRate,
    RateLimitedRate,
    Coverage,
    Grounding,
    QualityScore,
    AnswerCorrect,
    InstructionsFollowed,
    JsonValid,
    ToolCallValid,
    CostPerCall,
    EnergyPerToken,
    MemoryMb,
}

impl Metric {
    pub const ALL: [Metric; 16] = [
        Metric::LatencyP50,
        Metric::LatencyP95,
        Metric::TtftP50,
        Metric::OutputSpeedP50,
        Metric::SuccessRate,
        Metric::RateLimitedRate,
        Metric::Coverage,
        Metric::Grounding,
        Metric::QualityScore,
        Metric::AnswerCorrect,
        Metric::InstructionsFollowed,
        Metric::JsonValid,
        Metric::ToolCallValid,
        Metric::CostPerCall,
        Metric::EnergyPerToken,
        Metric::MemoryMb,
    ];

    /// The name in JSON, in `[watch.thresholds]` and on the terminal.
    pub fn name(self) -> &'static str {
        match self {
            Metric::LatencyP50 => "latency_p50",
            Metric::LatencyP95 => "latency_p95",
            Metric::TtftP50 => "ttft_p50",
            Metric::OutputSpeedP50 => "output_speed_p50",
            Metric::SuccessRate => "success_rate",
            Metric::RateLimitedRate => "rate_limited_rate",
            Metric::Coverage => "coverage",
            Metric::Grounding => "grounding",
            Metric::QualityScore => "quality_score",
            Metric::AnswerCorrect => "answer_correct",
            Metric::InstructionsFollowed => "instructions_followed",
            Metric::JsonValid => "json_valid",
            Metric::ToolCallValid => "tool_call_valid",
            Metric::CostPerCall => "cost_per_call",
            Metric::EnergyPerToken => "energy_per_token",
            Metric::MemoryMb => "memory_mb",
        }
    }

    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Its place in a run's value array.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn kind(self) -> Kind {
        match self {
            Metric::LatencyP50 | Metric::TtftP50 | Metric::OutputSpeedP50 => Kind::Quantile(0.5),
            Metric::LatencyP95 => Kind::Quantile(0.95),
            Metric::SuccessRate
            | Metric::RateLimitedRate
            | Metric::AnswerCorrect
            | Metric::JsonValid
            | Metric::ToolCallValid => Kind::Rate,
            _ => Kind::Mean,
        }
    }

    /// True when a higher value is worse (latency, cost); false when lower is worse (speed,
    /// success, grades).
    pub fn higher_is_worse(self) -> bool {
        matches!(
            self,
            Metric::LatencyP50
                | Metric::LatencyP95
                | Metric::TtftP50
                | Metric::RateLimitedRate
                | Metric::CostPerCall
                | Metric::EnergyPerToken
                | Metric::MemoryMb
        )
    }

    /// Whether the threshold is relative to the baseline (times, speeds, cost) or absolute
    /// (rates and grades, in their own units).
    pub fn relative(self) -> bool {
        matches!(
            self,
            Metric::LatencyP50
                | Metric::LatencyP95
                | Metric::TtftP50
                | Metric::OutputSpeedP50
                | Metric::CostPerCall
                | Metric::EnergyPerToken
                | Metric::MemoryMb
        )
    }

    /// The smallest change worth a finding: +15% for times, −15% for speed, 3 points for
    /// success and rate limits, 0.05 for grades, 15% for cost, energy and memory.
    pub fn default_threshold(self) -> f64 {
        match self {
            Metric::SuccessRate | Metric::RateLimitedRate => 0.03,
            m if m.relative() => 0.15,
            _ => 0.05,
        }
    }

    /// Times, speeds, cost, energy and memory are compared on a log scale (their noise is
    /// multiplicative); rates and grades as they are.
    pub fn log_scale(self) -> bool {
        self.relative()
    }

    /// Grades are also watched per task when a target's records carry them for several tasks.
    pub fn per_task(self) -> bool {
        matches!(
            self,
            Metric::QualityScore
                | Metric::AnswerCorrect
                | Metric::InstructionsFollowed
                | Metric::Coverage
                | Metric::Grounding
        )
    }

    /// Fewest values one run needs to give this metric a value.
    pub fn min_per_run(self) -> usize {
        match self.kind() {
            Kind::Quantile(q) if q > 0.9 => 10,
            Kind::Quantile(_) => 3,
            _ => 1,
        }
    }
}
