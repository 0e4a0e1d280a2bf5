//! Timing of one streamed (or not) answer: TTFT, TTFAT, latency, chunk gaps, and the per-token
//! figures derived from them.
//!
//! A [`Meter`] is fed the instants at which bytes arrived; it never reads the clock itself, so
//! tests drive it with synthetic instants and transports stamp times where bytes arrive, before
//! any parsing. A chunk is not a token: chunk gaps are reported as chunk gaps, and per-token
//! figures come from token counts and times (see [`Throughput`]).

use std::time::{Duration, Instant};

use crate::stats;

/// What a chunk carried, as far as timing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Nothing generated: a role-only delta, a usage-only chunk, a keep-alive.
    Nothing,
    /// Reasoning text (`reasoning`, `reasoning_content`, thinking blocks).
    Reasoning,
    /// Answer text.
    Answer,
    /// A piece of a tool call.
    ToolCall,
}

/// Collects the arrival instants of one call. Allocation: one `Vec` of chunk offsets, reserved
/// up front; nothing else per chunk.
#[derive(Debug, Clone)]
pub struct Meter {
    sent: Instant,
    first_byte: Option<Instant>,
    first_token: Option<Instant>,
    first_answer: Option<Instant>,
    chunk_offsets: Vec<Duration>,
}

/// The timings of one call, in seconds since the request was sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timings {
    /// Request sent → last byte of the answer (or the failure).
    pub latency_sec: f64,
    /// Request sent → response headers.
    pub ttfb_sec: Option<f64>,
    /// Request sent → first generated token of any kind (reasoning, answer, tool call).
    pub ttft_sec: Option<f64>,
    /// Request sent → first answer token (differs from TTFT for reasoning models).
    pub ttfat_sec: Option<f64>,
    /// Chunks that carried generated output.
    pub chunk_count: u32,
    pub chunk_gap_p50_sec: Option<f64>,
    pub chunk_gap_p99_sec: Option<f64>,
    pub chunk_gap_max_sec: Option<f64>,
}

impl Meter {
    /// Starts measuring a request sent at `sent`.
    pub fn new(sent: Instant) -> Self {
        Meter {
            sent,
            first_byte: None,
            first_token: None,
            first_answer: None,
            chunk_offsets: Vec::with_capacity(256),
        }
    }

    /// The instant the request was sent.
    pub fn sent(&self) -> Instant {
        self.sent
    }

    /// Measures from `sent` instead (before any arrival was fed): the request was handed over
    /// earlier than it went out.
    pub fn rebase(&mut self, sent: Instant) {
        debug_assert!(self.first_byte.is_none(), "rebased after an arrival");
        self.sent = sent;
    }

    /// The response headers arrived at `at`.
    pub fn headers(&mut self, at: Instant) {
        self.first_byte.get_or_insert(at);
    }

    /// A chunk that arrived at `at` carried `output`.
    pub fn chunk(&mut self, at: Instant, output: Output) {
        self.first_byte.get_or_insert(at);
        if output == Output::Nothing {
            return;
        }
        self.first_token.get_or_insert(at);
        if output == Output::Answer {
            self.first_answer.get_or_insert(at);
        }
        self.chunk_offsets
            .push(at.saturating_duration_since(self.sent));
    }

    /// The arrival offsets (since sent) of every chunk that carried output, in order.
    pub fn chunk_offsets(&self) -> &[Duration] {
        &self.chunk_offsets
    }

    /// Gives up the arrival offsets (after [`Meter::finish`]), for callers that keep them.
    pub fn into_chunk_offsets(self) -> Vec<Duration> {
        self.chunk_offsets
    }

    /// The call ended (complete or not) at `at`.
    pub fn finish(&self, at: Instant) -> Timings {
        let since = |t: Option<Instant>| t.map(|t| secs(t.saturating_duration_since(self.sent)));
        let mut gaps: Vec<f64> = self
            .chunk_offsets
            .windows(2)
            .map(|w| secs(w[1].saturating_sub(w[0])))
            .collect();
        gaps.sort_by(f64::total_cmp);
        let gap = |q: f64| (!gaps.is_empty()).then(|| stats::percentile_sorted(&gaps, q));
        Timings {
            latency_sec: secs(at.saturating_duration_since(self.sent)),
            ttfb_sec: since(self.first_byte),
            ttft_sec: since(self.first_token),
            ttfat_sec: since(self.first_answer),
            chunk_count: self.chunk_offsets.len() as u32,
            chunk_gap_p50_sec: gap(50.0),
            chunk_gap_p99_sec: gap(99.0),
            chunk_gap_max_sec: gaps.last().copied(),
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Per-token figures derived from timings and a token count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Throughput {
    /// `response_tokens / latency_sec`: the seed's end-to-end figure.
    pub throughput_tps: Option<f64>,
    /// `(response_tokens − 1) / (latency_sec − ttft_sec)`: generation speed after the first token.
    pub output_speed_tps: Option<f64>,
    /// `(latency_sec − ttft_sec) / (response_tokens − 1)`: time per output token.
    pub tpot_sec: Option<f64>,
}

impl Throughput {
    pub fn derive(timings: &Timings, response_tokens: u32) -> Self {
        let throughput_tps = (timings.latency_sec > 0.0 && response_tokens > 0)
            .then(|| f64::from(response_tokens) / timings.latency_sec);
        let decode = timings
            .ttft_sec
            .map(|ttft| timings.latency_sec - ttft)
            .filter(|d| *d > 0.0 && response_tokens >= 2);
        let steps = f64::from(response_tokens.saturating_sub(1));
        Throughput {
            throughput_tps,
            output_speed_tps: decode.map(|d| steps / d),
            tpot_sec: decode.map(|d| d / steps),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn role_only_first_chunk_is_not_the_first_token() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        m.headers(t0 + ms(50));
        m.chunk(t0 + ms(60), Output::Nothing); // {"delta":{"role":"assistant"}}
        m.chunk(t0 + ms(300), Output::Answer);
        m.chunk(t0 + ms(400), Output::Answer);
        let t = m.finish(t0 + ms(450));
        assert_eq!(t.ttfb_sec, Some(0.05));
        assert_eq!(t.ttft_sec, Some(0.3));
        assert_eq!(t.ttfat_sec, Some(0.3));
        assert_eq!(t.latency_sec, 0.45);
        assert_eq!(t.chunk_count, 2);
    }

    #[test]
    fn reasoning_separates_ttft_from_ttfat() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        m.chunk(t0 + ms(100), Output::Reasoning);
        m.chunk(t0 + ms(200), Output::Reasoning);
        m.chunk(t0 + ms(900), Output::Answer);
        let t = m.finish(t0 + ms(1000));
        assert_eq!(t.ttft_sec, Some(0.1));
        assert_eq!(t.ttfat_sec, Some(0.9));
    }

    #[test]
    fn chunk_gaps_are_between_output_chunks() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        for at in [100, 110, 120, 130, 330] {
            m.chunk(t0 + ms(at), Output::Answer);
        }
        let t = m.finish(t0 + ms(330));
        // gaps: 10, 10, 10, 200 ms
        assert!((t.chunk_gap_p50_sec.unwrap() - 0.010).abs() < 1e-9);
        assert!((t.chunk_gap_max_sec.unwrap() - 0.200).abs() < 1e-9);
        assert!(t.chunk_gap_p99_sec.unwrap() > 0.19);
    }

    #[test]
    fn throughput_definitions() {
        let t = Timings {
            latency_sec: 2.0,
            ttft_sec: Some(0.5),
            ..Default::default()
        };
        let th = Throughput::derive(&t, 31);
        assert_eq!(th.throughput_tps, Some(15.5));
        assert_eq!(th.output_speed_tps, Some(20.0)); // 30 tokens in 1.5 s
        assert_eq!(th.tpot_sec, Some(0.05));
    }

    #[test]
    fn throughput_undefined_without_tokens_or_ttft() {
        let t = Timings {
            latency_sec: 2.0,
            ..Default::default()
        };
        let th = Throughput::derive(&t, 1);
        assert_eq!(th.throughput_tps, Some(0.5));
        assert_eq!(th.output_speed_tps, None);
        assert_eq!(Throughput::derive(&t, 0).throughput_tps, None);
    }
}
