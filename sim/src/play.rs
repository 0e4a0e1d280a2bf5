//! [`play`]: plays a reply's events at their offsets, logging when each actually went out.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;

use crate::schedule::Event;
use crate::state::LogEntry;

/// The connection was dropped on purpose.
#[derive(Debug)]
pub struct Cut;

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the simulator")
    }
}

impl std::error::Error for Cut {}

/// Plays a reply's body events at their offsets from `received`, logging when each went out.
pub fn play(
    events: Vec<(Duration, Event)>,
    received: Instant,
    log: Arc<Mutex<LogEntry>>,
) -> impl Stream<Item = Result<Bytes, Cut>> + Send + 'static {
    let received = tokio::time::Instant::from_std(received);
    let events = events.into_iter();
    futures_util::stream::unfold((events, None, false), move |(mut it, repeat, done)| {
        let log = log.clone();
        async move {
            if done {
                return None;
            }
            // After a `Repeat`, the same bytes again and again, each period (not logged: the
            // log would grow for as long as the client reads).
            if let Some((bytes, period, next)) = repeat {
                tokio::time::sleep_until(next).await;
                let again: Bytes = Clone::clone(&bytes);
                return Some((Ok(again), (it, Some((bytes, period, next + period)), false)));
            }
            let (at, event) = it.next()?;
            tokio::time::sleep_until(received + at).await;
            let sent_ms = received.elapsed().as_secs_f64() * 1000.0;
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .events_ms
                .push(sent_ms);
            match event {
                Event::Data(b) => Some((Ok(b), (it, None, false))),
                Event::Repeat(b, period) => {
                    let next = tokio::time::Instant::now() + period;
                    Some((Ok(b.clone()), (it, Some((b, period, next)), false)))
                }
                Event::Cut => Some((Err(Cut), (it, None, true))),
            }
        }
    })
}
