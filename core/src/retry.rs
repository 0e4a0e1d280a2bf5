//! When and how long to wait before asking again: the retry policy, exponential backoff with
//! full jitter, and the rate-limit headers providers send (`Retry-After` in seconds or as an
//! HTTP date, `retry-after-ms`, Groq's and OpenAI's `x-ratelimit-*`).

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::error_kind::ErrorKind;

/// How a target retries a failed call.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Requests at most, the first included (1 = no retry).
    pub max_attempts: u32,
    /// The backoff before attempt `n + 1` is drawn from `[0, min(max_backoff, base · 2^(n−1))]`.
    pub base: Duration,
    pub max_backoff: Duration,
    /// A provider asking for a longer wait than this ends the retries (the failure is recorded).
    pub max_wait: Duration,
    /// The failures worth another attempt.
    pub retry_on: Vec<ErrorKind>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_wait: Duration::from_secs(60),
            retry_on: vec![
                ErrorKind::RateLimited,
                ErrorKind::Http5xx,
                ErrorKind::Connect,
                ErrorKind::StreamError,
            ],
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt after attempt `attempt` (1-based) failed with `kind`,
    /// or `None` when there is no next attempt. `asked` is what the provider asked for.
    pub fn next_wait(
        &self,
        attempt: u32,
        kind: ErrorKind,
        asked: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts || !self.retry_on.contains(&kind) {
            return None;
        }
        match asked {
            Some(wait) if wait > self.max_wait => None,
            Some(wait) => Some(wait),
            None => {
                let exp = self
                    .base
                    .saturating_mul(1u32 << (attempt - 1).min(20))
                    .min(self.max_backoff);
                Some(Duration::from_secs_f64(
                    rng.random_range(0.0..=exp.as_secs_f64()),
                ))
            }
        }
    }
}

/// What a response said about the provider's limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimitInfo {
    /// How long the provider asked us to wait (`Retry-After`, `retry-after-ms`, or for a 429 the
    /// reset time of the exhausted budget).
    pub retry_after: Option<Duration>,
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_requests: Option<Duration>,
    pub reset_tokens: Option<Duration>,
}

impl RateLimitInfo {
    /// Reads the headers of a response with HTTP `status`, at wall-clock time `now`.
    pub fn from_headers(headers: &HeaderMap, status: u16, now: SystemTime) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let number = |name: &str| text(name).and_then(|v| v.parse::<u64>().ok());
        let mut info = RateLimitInfo {
            retry_after: None,
            remaining_requests: number("x-ratelimit-remaining-requests"),
            remaining_tokens: number("x-ratelimit-remaining-tokens"),
            reset_requests: text("x-ratelimit-reset-requests").and_then(parse_reset),
            reset_tokens: text("x-ratelimit-reset-tokens").and_then(parse_reset),
        };
        info.retry_after = text("retry-after-ms")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|ms| *ms >= 0.0 && ms.is_finite())
            .map(|ms| Duration::from_secs_f64(ms / 1000.0))
            .or_else(|| text("retry-after").and_then(|v| parse_retry_after(v, now)));
        if info.retry_after.is_none() && status == 429 {
            // An exhausted budget resets when the header says; wait for the one that ran out.
            info.retry_after = match (info.remaining_requests, info.remaining_tokens) {
                (Some(0), _) => info.reset_requests,
                (_, Some(0)) => info.reset_tokens,
                _ => None,
            };
        }
        info
    }
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A reset time as Groq and OpenAI write it: `2m59.56s`, `7.66s`, `1h2m3s`, `120ms`, or plain
/// seconds.
pub fn parse_reset(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs));
    }
    let mut total = 0.0;
    let mut rest = value;
    let mut any = false;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let (unit, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else {
            return None;
        };
        total += number * unit;
        rest = &rest[len..];
        any = true;
    }
    any.then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn groq_reset_formats() {
        assert_eq!(
            parse_reset("2m59.56s"),
            Some(Duration::from_secs_f64(179.56))
        );
        assert_eq!(parse_reset("7.66s"), Some(Duration::from_secs_f64(7.66)));
        assert_eq!(parse_reset("1h2m"), Some(Duration::from_secs(3720)));
        assert_eq!(parse_reset("120ms"), Some(Duration::from_millis(120)));
        assert_eq!(parse_reset("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_reset("soon"), None);
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = httpdate::parse_http_date("Wed, 25 Nov 2026 10:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("later", now), None);
    }

    #[test]
    fn retry_after_ms_wins_over_seconds() {
        let h = headers(&[("retry-after", "2"), ("retry-after-ms", "1500")]);
        let info = RateLimitInfo::from_headers(&h, 429, SystemTime::now());
        assert_eq!(info.retry_after, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn exhausted_groq_budget_sets_the_wait() {
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "14"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-requests", "2m59.56s"),
            ("x-ratelimit-reset-tokens", "7.66s"),
        ]);
        let info = RateLimitInfo::from_headers(&h, 429, SystemTime::now());
        assert_eq!(info.remaining_requests, Some(14));
        assert_eq!(info.retry_after, Some(Duration::from_secs_f64(7.66)));
        // On a success the reset times are headroom, not a wait.
        let ok = RateLimitInfo::from_headers(&h, 200, SystemTime::now());
        assert_eq!(ok.retry_after, None);
    }

    #[test]
    fn backoff_is_full_jitter_and_bounded() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_secs(1),
            max_backoff: Duration::from_secs(4),
            ..Default::default()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for attempt in 1..10 {
            let cap = Duration::from_secs(1 << (attempt - 1)).min(Duration::from_secs(4));
            for _ in 0..50 {
                let w = p
                    .next_wait(attempt, ErrorKind::Http5xx, None, &mut rng)
                    .unwrap();
                assert!(w <= cap, "attempt {attempt}: {w:?} > {cap:?}");
            }
        }
        assert_eq!(p.next_wait(10, ErrorKind::Http5xx, None, &mut rng), None);
    }

    #[test]
    fn asked_wait_is_honoured_unless_too_long_and_only_for_retryable_kinds() {
        let p = RetryPolicy::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let two = Some(Duration::from_secs(2));
        assert_eq!(p.next_wait(1, ErrorKind::RateLimited, two, &mut rng), two);
        assert_eq!(
            p.next_wait(
                1,
                ErrorKind::RateLimited,
                Some(Duration::from_secs(600)),
                &mut rng
            ),
            None
        );
        assert_eq!(p.next_wait(1, ErrorKind::Http4xx, None, &mut rng), None);
        assert_eq!(
            p.next_wait(1, ErrorKind::StreamBroken, None, &mut rng),
            None
        );
    }
}
