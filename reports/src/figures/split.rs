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
    /// The set-up (TCP, and TLS for https) of the calls that opened a connection.
    pub setup_sec: Option<Quantiles>,
    /// Request sent → response headers. With the `client` clock (https targets) it includes a
    /// new connection's set-up; with the `kernel` or `socket` clock it runs from the request's
    /// first byte written, after the set-up.
    pub ttfb_sec: Option<Quantiles>,
    /// Response headers → the first token: the provider's queue and prefill, mostly.
    pub headers_to_first_token_sec: Option<Quantiles>,
}

impl TtftSplitFigures {
    /// `None` when no successful call said when its headers came.
    pub fn of(t: &TargetAgg, seed: u64) -> Option<TtftSplitFigures> {
        let ttfb_sec = Quantiles::of(&t.ttfb, seed)?;
        Some(TtftSplitFigures {
            new_connections: RateFigure::of_or_empty(t.new_connection),
            setup_sec: Quantiles::of(&t.setup, seed),
            ttfb_sec: Some(ttfb_sec),
            headers_to_first_token_sec: Quantiles::of(&t.after_headers, seed),
        })
    }
}
