//! Long runs that stay cool and quiet ([`Pace`]): a duty cycle, which keeps the model server
//! busy at most a share of wall time over a sliding window by pausing before calls in
//! proportion to the busy time measured, and a temperature guard, which starts no call while
//! the hottest sensor is above `max_temp_c` until it falls below `resume_temp_c`. Both are
//! awaited before a call is sent (never part of its latency) and the wait is the record's
//! `paused_sec`. The server counts as busy while any request is on the wire.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Reads the hottest temperature sensor now, °C (`None`: no reading).
pub type Thermometer = Arc<dyn Fn() -> Option<f64> + Send + Sync>;

/// How often a paused call looks at the temperature again.
const GUARD_POLL: Duration = Duration::from_millis(250);

/// The temperature guard's two thresholds and where the temperature comes from.
#[derive(Clone)]
pub struct Guard {
    pub max_temp_c: f64,
    pub resume_temp_c: f64,
    pub read: Thermometer,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("max_temp_c", &self.max_temp_c)
            .field("resume_temp_c", &self.resume_temp_c)
            .finish_non_exhaustive()
    }
}

/// What the pacing did over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PaceReport {
    /// Cooldowns: times the guard stopped new calls, and how long they lasted together.
    pub cooldowns: u64,
    pub cooldown_sec: f64,
    /// Time calls waited for the duty cycle, summed over calls.
    pub duty_wait_sec: f64,
}

#[derive(Debug, Default)]
struct State {
    /// Requests on the wire now, and since when the server has been busy.
    in_flight: u32,
    busy_since: Option<Instant>,
    /// Busy intervals that ended, oldest first (dropped once past the window).
    busy: VecDeque<(Instant, Instant)>,
    /// The guard is holding calls (set on passing the maximum, cleared below the resume), and
    /// since when: a cooldown's time is wall time, however many calls wait it out.
    hot: bool,
    hot_since: Option<Instant>,
    report: PaceReport,
}

/// A run's pacing, shared by its calls.
#[derive(Debug)]
pub struct Pace {
    /// The most of wall time the server may be busy, in (0, 1]; `None`: no duty cycle.
    duty: Option<f64>,
    window: Duration,
    guard: Option<Guard>,
    started: Instant,
    state: Mutex<State>,
}

impl Pace {
    /// Pacing with a duty cycle (a share of the `window`) and/or a guard; `None` when neither.
    pub fn new(duty: Option<f64>, window: Duration, guard: Option<Guard>) -> Option<Arc<Pace>> {
        if duty.is_none_or(|d| d >= 1.0) && guard.is_none() {
            return None;
        }
        Some(Arc::new(Pace {
            duty: duty.filter(|d| *d < 1.0),
            window,
            guard,
            started: Instant::now(),
            state: Mutex::new(State::default()),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server's busy share of the window ending `now`: busy time over the window's span
    /// (the run's age while it is younger than the window).
    fn busy_share(&self, now: Instant) -> (f64, f64) {
        let from = now
            .checked_sub(self.window)
            .unwrap_or(self.started)
            .max(self.started);
        let mut st = self.state();
        while st.busy.front().is_some_and(|(_, end)| *end <= from) {
            st.busy.pop_front();
        }
        let closed: f64 = st
            .busy
            .iter()
            .map(|(a, b)| (*b - (*a).max(from)).as_secs_f64())
            .sum();
        let open = st
            .busy_since
            .map_or(0.0, |a| (now - a.max(from)).as_secs_f64());
        (closed + open, (now - from).as_secs_f64())
    }

    /// Waits until a call may start: below the guard's limit, and within the duty cycle.
    /// Returns how long it waited.
    pub async fn before_call(&self) -> Duration {
        let waited = Instant::now();
        if let Some(g) = &self.guard {
            self.cool_down(g).await;
        }
        if let Some(duty) = self.duty {
            let t0 = Instant::now();
            loop {
                let (busy, span) = self.busy_share(Instant::now());
                // Busy ÷ (span + wait) ≤ duty.
                let wait = busy / duty - span;
                // Under a millisecond is rounding, not a pause (and a sleep of nothing would
                // spin).
                if wait < 0.001 || span <= 0.0 {
                    break;
                }
                tokio::time::sleep(Duration::from_secs_f64(wait.min(1.0))).await;
            }
            let d = t0.elapsed().as_secs_f64();
            self.state().report.duty_wait_sec += d;
        }
        waited.elapsed()
    }

    async fn cool_down(&self, g: &Guard) {
        loop {
            let temp = (g.read)();
            let hot = {
                let mut st = self.state();
                match temp {
                    Some(t) if t >= g.max_temp_c && !st.hot => {
                        st.hot = true;
                        st.hot_since = Some(Instant::now());
                        st.report.cooldowns += 1;
                        tracing::warn!(
                            event = "cooldown",
                            temp_c = t,
                            max_temp_c = g.max_temp_c,
                            resume_temp_c = g.resume_temp_c,
                            "too hot: no new call until it cools"
                        );
                    }
                    Some(t) if t < g.resume_temp_c && st.hot => {
                        st.cool();
                        tracing::info!(event = "cooldown_over", temp_c = t, "cool again");
                    }
                    // No reading: the guard cannot tell, and holds nothing.
                    None if st.hot => st.cool(),
                    _ => {}
                }
                st.hot
            };
            if !hot {
                break;
            }
            tokio::time::sleep(GUARD_POLL).await;
        }
    }

    /// A request went on the wire.
    pub fn enter(&self) {
        let mut st = self.state();
        if st.in_flight == 0 {
            st.busy_since = Some(Instant::now());
        }
        st.in_flight += 1;
    }

    /// A request left the wire.
    pub fn exit(&self) {
        let mut st = self.state();
        st.in_flight = st.in_flight.saturating_sub(1);
        if st.in_flight == 0
            && let Some(a) = st.busy_since.take()
        {
            st.busy.push_back((a, Instant::now()));
        }
    }

    /// Whether the guard is holding calls now.
    pub fn hot(&self) -> bool {
        self.state().hot
    }

    /// What the pacing did so far, a cooldown still under way counted to now.
    pub fn report(&self) -> PaceReport {
        let st = self.state();
        let mut r = st.report;
        r.cooldown_sec += st.hot_since.map_or(0.0, |s| s.elapsed().as_secs_f64());
        r
    }
}

impl State {
    /// The guard lets calls go again.
    fn cool(&mut self) {
        self.hot = false;
        if let Some(s) = self.hot_since.take() {
            self.report.cooldown_sec += s.elapsed().as_secs_f64();
        }
    }
}

/// Marks one request on the wire for the pacing until dropped (also when its call is
/// cancelled).
pub struct OnWire<'a>(Option<&'a Pace>);

impl<'a> OnWire<'a> {
    pub fn enter(pace: Option<&'a Pace>) -> OnWire<'a> {
        if let Some(p) = pace {
            p.enter();
        }
        OnWire(pace)
    }
}

impl Drop for OnWire<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            p.exit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_half_duty_pauses_as_long_as_the_call_was_busy() {
        let pace = Pace::new(Some(0.5), Duration::from_secs(120), None).unwrap();
        let mut busy = Duration::ZERO;
        let t0 = Instant::now();
        for _ in 0..10 {
            pace.before_call().await;
            let w = OnWire::enter(Some(&pace));
            tokio::time::sleep(Duration::from_millis(400)).await;
            busy += Duration::from_millis(400);
            drop(w);
        }
        let share = busy.as_secs_f64() / t0.elapsed().as_secs_f64();
        // Nine pauses of 400 ms between ten calls: 4 s busy of 7.6 s.
        assert!((share - 0.5).abs() < 0.05, "busy share {share}");
        assert!(
            (pace.report().duty_wait_sec - 3.6).abs() < 0.05,
            "{:?}",
            pace.report()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_guard_holds_calls_from_the_maximum_until_the_resume_temperature() {
        // Millidegrees a test moves by hand.
        let temp = Arc::new(AtomicU64::new(80_000));
        let read = {
            let t = Arc::clone(&temp);
            Arc::new(move || Some(t.load(Ordering::Relaxed) as f64 / 1000.0)) as Thermometer
        };
        let guard = Guard {
            max_temp_c: 85.0,
            resume_temp_c: 75.0,
            read,
        };
        let pace = Pace::new(None, Duration::from_secs(120), Some(guard)).unwrap();
        assert_eq!(pace.before_call().await, Duration::ZERO);
        temp.store(86_000, Ordering::Relaxed);
        let wait = || {
            let pace = Arc::clone(&pace);
            tokio::spawn(async move { pace.before_call().await })
        };
        // Two calls wait out the same cooldown.
        let (waiting, also) = (wait(), wait());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(pace.hot() && !waiting.is_finished());
        // Below the maximum, above the resume temperature: still held.
        temp.store(80_000, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!waiting.is_finished());
        temp.store(74_000, Ordering::Relaxed);
        let waited = waiting.await.unwrap();
        assert!(waited >= Duration::from_secs(4), "{waited:?}");
        assert!(also.await.unwrap() >= Duration::from_secs(4));
        let r = pace.report();
        assert_eq!(r.cooldowns, 1);
        // The guard held calls for 4 s of wall time, not 4 s per waiting call.
        assert!(r.cooldown_sec >= 4.0 && r.cooldown_sec < 4.5, "{r:?}");
    }
}
