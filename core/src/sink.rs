//! Where finished records go. The runner hands each record to a [`RecordSink`] the moment its
//! call ends, in completion order, from one task, and keeps none of them: the run's writer, its
//! summary and a progress display are sinks, so a run's memory does not grow with its calls.
//! (The shape is ripgrep's `Sink`: the engine reports, printers implement.)

use crate::record::Record;

/// Receives every finished record of a run, one at a time.
pub trait RecordSink: Send {
    /// One finished record. An error stops the run from starting new calls: a sink that cannot
    /// keep records (a full disk) must not let the run go on losing them.
    fn record(&mut self, record: &Record) -> std::io::Result<()>;

    /// Hands what the sink holds out of the process (a journal's buffered lines). The runner
    /// calls it whenever no further record is waiting, so a burst of records costs one write,
    /// and a record is never held back while the run waits for the next.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Several sinks fed in order; the first error stops the feed.
pub struct Fanout<'a>(pub Vec<&'a mut dyn RecordSink>);

impl RecordSink for Fanout<'_> {
    fn record(&mut self, record: &Record) -> std::io::Result<()> {
        for sink in &mut self.0 {
            sink.record(record)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        for sink in &mut self.0 {
            sink.flush()?;
        }
        Ok(())
    }
}

/// A sink that only counts (for callers that need nothing else).
#[derive(Debug, Default)]
pub struct Count {
    pub records: usize,
    pub successes: usize,
}

impl RecordSink for Count {
    fn record(&mut self, record: &Record) -> std::io::Result<()> {
        self.records += 1;
        self.successes += usize::from(record.success);
        Ok(())
    }
}

/// A sink that calls a function (a progress bar, a log line).
pub struct Each<F>(pub F);

impl<F: FnMut(&Record) + Send> RecordSink for Each<F> {
    fn record(&mut self, record: &Record) -> std::io::Result<()> {
        (self.0)(record);
        Ok(())
    }
}
