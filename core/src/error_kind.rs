//! Why a call failed: the closed set of `error_kind` values a record can carry.

use serde::{Deserialize, Serialize};

/// The reason a call did not return a complete answer. Serialized in snake_case, these are the
/// `error_kind` strings of the record format (see DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The call ran past its total time limit (`timeout_sec`).
    Timeout,
    /// No connection within `connect_timeout_sec`.
    ConnectTimeout,
    /// No generated token within `first_token_timeout_sec` of sending.
    FirstTokenTimeout,
    /// The stream went quiet for longer than `idle_timeout_sec` between chunks.
    IdleTimeout,
    /// The run's deadline came while this call was in flight; it was cancelled.
    Deadline,
    /// HTTP 429, or a rate-limit error reported inside the stream.
    RateLimited,
    /// A 3xx: the target's address moves elsewhere (an http:// URL sent on to https://, say).
    /// The kernel and socket clocks follow no redirect, so the call ends here, unretried.
    Redirect,
    /// Any other 4xx: a bad request, a wrong key, an unknown model.
    #[serde(rename = "http_4xx")]
    Http4xx,
    /// A 5xx from the provider.
    #[serde(rename = "http_5xx")]
    Http5xx,
    /// The host name could not be looked up (the message says `DNS lookup of …` with
    /// `dns_servers`), the TCP connection could not be made, or the server closed it before
    /// any byte of an answer (a kept-alive connection closed as the request went out).
    Connect,
    /// The TLS handshake failed: the server's certificate was refused (an unknown issuer, a
    /// wrong host name, expired) or the handshake broke. Not retried by default: it fails the
    /// same way until someone fixes the certificate or the `ca_file`.
    Tls,
    /// The stream ended or broke before the answer was complete.
    StreamBroken,
    /// The provider sent bytes that are not the protocol (malformed JSON, missing fields).
    BadResponse,
    /// A 200 stream that carried an error event instead of (the rest of) an answer.
    StreamError,
    /// The call ended normally but with no answer text and no tool call.
    EmptyAnswer,
    /// The request could not be sent for a local reason (bad URL, bad header value).
    Request,
    /// The run's deadline came before this call was started.
    SkippedDeadline,
    /// The response was longer than the target's `max_answer_bytes`: reading stopped there and
    /// the first part was kept as a partial answer.
    AnswerTooLarge,
    /// The run was asked to stop (SIGTERM, Ctrl-C) and this call, in flight, outlived the grace.
    Cancelled,
    /// The run was asked to stop before this call was started.
    SkippedCancelled,
    /// A sweep point's server did not start (or not with the settings asked): one record for
    /// the point, with the tail of the server's output.
    ServerStartFailed,
    /// Not made: its worst-case cost would have passed a budget (`max_cost_usd`, the
    /// campaign's `budget_usd` or `daily_budget_usd`).
    SkippedBudget,
}

impl ErrorKind {
    /// The kind for an HTTP status that is not a success.
    pub fn from_status(status: u16) -> Self {
        match status {
            429 => ErrorKind::RateLimited,
            300..=399 => ErrorKind::Redirect,
            400..=499 => ErrorKind::Http4xx,
            _ => ErrorKind::Http5xx,
        }
    }

    /// The kind named `name` (as written in records and configs).
    pub fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
    }

    /// The snake_case name, as written in records.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::FirstTokenTimeout => "first_token_timeout",
            ErrorKind::IdleTimeout => "idle_timeout",
            ErrorKind::Deadline => "deadline",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Http4xx => "http_4xx",
            ErrorKind::Http5xx => "http_5xx",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::StreamBroken => "stream_broken",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::StreamError => "stream_error",
            ErrorKind::EmptyAnswer => "empty_answer",
            ErrorKind::Request => "request",
            ErrorKind::SkippedDeadline => "skipped_deadline",
            ErrorKind::AnswerTooLarge => "answer_too_large",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::SkippedCancelled => "skipped_cancelled",
            ErrorKind::ServerStartFailed => "server_start_failed",
            ErrorKind::SkippedBudget => "skipped_budget",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_name_matches_as_str() {
        for kind in [
            ErrorKind::Timeout,
            ErrorKind::ConnectTimeout,
            ErrorKind::FirstTokenTimeout,
            ErrorKind::IdleTimeout,
            ErrorKind::Deadline,
            ErrorKind::RateLimited,
            ErrorKind::Redirect,
            ErrorKind::Http4xx,
            ErrorKind::Http5xx,
            ErrorKind::Connect,
            ErrorKind::Tls,
            ErrorKind::StreamBroken,
            ErrorKind::BadResponse,
            ErrorKind::StreamError,
            ErrorKind::EmptyAnswer,
            ErrorKind::Request,
            ErrorKind::SkippedDeadline,
            ErrorKind::AnswerTooLarge,
            ErrorKind::Cancelled,
            ErrorKind::SkippedCancelled,
            ErrorKind::ServerStartFailed,
            ErrorKind::SkippedBudget,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
    }

    #[test]
    fn status_mapping() {
        assert_eq!(ErrorKind::from_status(429), ErrorKind::RateLimited);
        assert_eq!(ErrorKind::from_status(401), ErrorKind::Http4xx);
        assert_eq!(ErrorKind::from_status(301), ErrorKind::Redirect);
        assert_eq!(ErrorKind::from_status(308), ErrorKind::Redirect);
        assert_eq!(ErrorKind::from_status(503), ErrorKind::Http5xx);
    }
}
