//! Where one target's time to first token went ([`TtftSplitFigures`]): the connection set-up
//! (calls that opened one), request → response headers (TTFB), and headers → first token. A slow
//! network or handshake and a slow provider then look different.

use serde::Serialize;

use super::{Quantiles, RateFigure};
use crate::aggregate::TargetAgg;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TtftSplitFigures {
    /// Successful calls over HTTP that opened a connection (the rest reused one).
    pub new_connections: RateFigure,
    /// The set-up (name lookup, TCP, and TLS for https) of the calls that opened a connection.
    pub setup_sec: Option<Quantiles>,
    /// Its phases, where they were timed apart (the kernel and socket clocks): the name lookup,
    /// the TCP handshake and the TLS handshake.
    pub dns_sec: Option<Quantiles>,
    pub tcp_sec: Option<Quantiles>,
    pub tls_sec: Option<Quantiles>,
    /// Request sent → response headers. With the `client` clock (a proxy) it includes a
    /// new connection's set-up; with the `kernel` or `socket` clock it runs from the request's
    /// first byte written, after the set-up.
    pub ttfb_sec: Option<Quantiles>,
    /// Response headers → the first token: the provider's queue and prefill, mostly.
    pub headers_to_first_token_sec: Option<Quantiles>,
}

impl TtftSplitFigures {
    /// The set-up's phases' medians in milliseconds, `DNS / TCP / TLS` (`-` for one not timed),
    /// or `None` when none was.
    pub fn phases_ms(&self) -> Option<String> {
        let parts = [&self.dns_sec, &self.tcp_sec, &self.tls_sec];
        if parts.iter().all(|p| p.is_none()) {
            return None;
        }
        let ms = |q: &Option<Quantiles>| {
            q.as_ref()
                .map_or("-".to_string(), |q| format!("{:.1}", q.p50.value * 1000.0))
        };
        Some(parts.map(ms).join(" / "))
    }

    /// `None` when no successful call said when its headers came.
    pub fn of(t: &TargetAgg, seed: u64) -> Option<TtftSplitFigures> {
        let ttfb_sec = Quantiles::of(&t.ttfb, seed)?;
        Some(TtftSplitFigures {
            new_connections: RateFigure::of_or_empty(t.new_connection),
            setup_sec: Quantiles::of(&t.setup, seed),
            dns_sec: Quantiles::of(&t.dns, seed),
            tcp_sec: Quantiles::of(&t.tcp, seed),
            tls_sec: Quantiles::of(&t.tls, seed),
            ttfb_sec: Some(ttfb_sec),
            headers_to_first_token_sec: Quantiles::of(&t.after_headers, seed),
        })
    }
}
