//! What an on-prem agent adds to a run: a host fingerprint for the manifest, a telemetry series
//! sampled while the run goes, and hardware figures on each record (memory, power, energy).
//! The run path only calls [`Instruments`]; the agent's telemetry implements it, so core needs
//! no hardware libraries.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use crate::record::Record;
use crate::sink::RecordSink;

/// Hardware measurement around a run.
pub trait Instruments: Send {
    /// The host fingerprint stored in the run's manifest.
    fn host(&mut self) -> Option<serde_json::Value>;
    /// The run starts: sample into `series` (a JSON line per sample), reading `in_flight`, the
    /// count of requests on the wire.
    fn start(&mut self, series: &Path, in_flight: Arc<AtomicU32>) -> std::io::Result<()>;
    /// Fills a finished call's hardware fields from the samples over its window.
    fn annotate(&mut self, record: &mut Record);
    /// The run ended: stop sampling and close the series.
    fn stop(&mut self);
    /// After `stop`: what the run's servers said about it on their own metrics pages, by
    /// target, for the manifest. None by default.
    fn server_metrics(&mut self) -> Option<serde_json::Value> {
        None
    }
}

/// A sink that annotates each record before handing it on.
pub struct Annotated<'a, S> {
    pub instruments: &'a mut dyn Instruments,
    pub inner: S,
}

impl<S: RecordSink> RecordSink for Annotated<'_, S> {
    fn record(&mut self, record: &Record) -> std::io::Result<()> {
        let mut r = record.clone();
        self.instruments.annotate(&mut r);
        self.inner.record(&r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
