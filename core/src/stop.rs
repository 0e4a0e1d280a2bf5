//! [`Stop`]: a request to stop a run early (SIGTERM, Ctrl-C), shared between whoever hears the
//! signal and the calls of the run. After the first request no new call starts and calls in
//! flight have `grace` to finish; a second request, or the end of the grace, cancels them.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct State {
    requests: u8,
    first_at: Option<Instant>,
}

/// A stop request, cheap to clone and to ask.
#[derive(Debug, Clone)]
pub struct Stop {
    state: Arc<watch::Sender<State>>,
    pub grace: Duration,
}

impl Stop {
    pub fn new(grace: Duration) -> Self {
        Stop {
            state: Arc::new(watch::Sender::new(State::default())),
            grace,
        }
    }

    /// Asks the run to stop; asked again, to stop now. Returns how many times it was asked.
    pub fn request(&self) -> u8 {
        let mut n = 0;
        self.state.send_modify(|s| {
            s.requests = s.requests.saturating_add(1);
            s.first_at.get_or_insert_with(Instant::now);
            n = s.requests;
        });
        n
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.state.borrow().requests >= 1
    }

    /// Resolves once a stop was asked for.
    pub async fn wait_requested(&self) {
        let mut rx = self.state.subscribe();
        if rx.wait_for(|s| s.requests >= 1).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves when calls in flight must end: `grace` after the first request, or at the
    /// second. Never resolves while no stop is asked for.
    pub async fn cancelled(&self) {
        let mut rx = self.state.subscribe();
        let first = match rx.wait_for(|s| s.requests >= 1).await {
            Ok(s) => s.first_at,
            Err(_) => None,
        };
        let Some(first) = first else {
            return std::future::pending().await;
        };
        let until = first + self.grace;
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = rx.wait_for(|s| s.requests >= 2) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_in_flight_get_the_grace_once_not_per_wait() {
        let stop = Stop::new(Duration::from_secs(5));
        assert!(!stop.requested());
        stop.request();
        assert!(stop.requested());
        tokio::time::sleep(Duration::from_secs(3)).await;
        // A wait that starts late still ends at the first request's grace, not 5 s later.
        let t0 = tokio::time::Instant::now();
        stop.cancelled().await;
        assert!(t0.elapsed() <= Duration::from_secs(2) + Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_request_cancels_at_once() {
        let stop = Stop::new(Duration::from_secs(60));
        stop.request();
        let s2 = stop.clone();
        let waiter = tokio::spawn(async move { s2.cancelled().await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(stop.request(), 2);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("cancelled at the second request")
            .unwrap();
    }
}
