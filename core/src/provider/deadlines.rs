//! The time limits of one call: the first token, the silence between chunks, the whole answer,
//! the run's deadline and its stop; which limit fires next, and the `error_kind` each gives.

use std::time::{Duration, Instant};

use crate::config::Target;
use crate::error_kind::ErrorKind;
use crate::stop::Stop;

/// The time limits of one call, and which `error_kind` each gives.
pub(crate) struct Deadlines {
    sent: Instant,
    total: Instant,
    run: Option<Instant>,
    first_token: Option<Duration>,
    idle: Option<Duration>,
    limits: crate::config::Timeouts,
    stop: Option<Stop>,
}

impl Deadlines {
    pub(crate) fn new(
        target: &Target,
        sent: Instant,
        run: Option<Instant>,
        stop: Option<Stop>,
    ) -> Self {
        let t = &target.timeouts;
        Deadlines {
            sent,
            total: sent + t.total,
            run,
            first_token: t.first_token,
            idle: t.idle,
            limits: t.clone(),
            stop,
        }
    }

    /// The request went out at `written`, later than it was handed over: the first-token and
    /// total limits count from there, as the call's figures do.
    pub(crate) fn rebase(&mut self, written: Instant) {
        if written > self.sent {
            self.total += written - self.sent;
            self.sent = written;
        }
    }

    /// Runs `fut` until it ends, `limit` passes (`Err(kind)`), or the run's stop cancels calls
    /// in flight (`Err(Cancelled)`). `fut` is polled first, so an arrival is never delayed.
    pub(crate) async fn within<F: std::future::Future>(
        &self,
        limit: Instant,
        kind: ErrorKind,
        fut: F,
    ) -> Result<F::Output, ErrorKind> {
        let cancelled = async {
            match &self.stop {
                Some(stop) => stop.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            out = fut => Ok(out),
            _ = tokio::time::sleep_until(limit.into()) => Err(kind),
            _ = cancelled => Err(ErrorKind::Cancelled),
        }
    }

    /// The next limit that can fire: before the first token, after activity at `last`.
    pub(crate) fn next(&self, got_token: bool, last: Option<Instant>) -> (Instant, ErrorKind) {
        let mut best = (self.total, ErrorKind::Timeout);
        let mut consider = |at: Instant, kind| {
            if at < best.0 {
                best = (at, kind);
            }
        };
        if let Some(run) = self.run {
            consider(run, ErrorKind::Deadline);
        }
        if !got_token && let Some(ft) = self.first_token {
            consider(self.sent + ft, ErrorKind::FirstTokenTimeout);
        }
        if got_token && let (Some(idle), Some(last)) = (self.idle, last) {
            consider(last + idle, ErrorKind::IdleTimeout);
        }
        best
    }

    pub(crate) fn message(&self, kind: ErrorKind) -> String {
        match kind {
            ErrorKind::Deadline => "cancelled: the run's deadline was reached".into(),
            ErrorKind::Cancelled => format!(
                "cancelled: the run was asked to stop and the call outlived the {:?} grace",
                self.stop.as_ref().map(|s| s.grace).unwrap_or_default()
            ),
            ErrorKind::FirstTokenTimeout => format!(
                "no generated token within {:?}",
                self.first_token.unwrap_or_default()
            ),
            ErrorKind::IdleTimeout => format!(
                "the stream was silent for more than {:?}",
                self.idle.unwrap_or_default()
            ),
            ErrorKind::ConnectTimeout => {
                format!("no connection within {:?}", self.limits.connect)
            }
            _ => format!("the answer was not complete within {:?}", self.limits.total),
        }
    }
}
