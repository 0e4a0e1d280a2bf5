//! Where a finished call becomes its record: on a few threads of their own, away from the tasks
//! that read sockets.
//!
//! Scoring an answer, hashing it and building its record take CPU time the moment a call ends.
//! On Tokio's worker threads that time delays every other stream's reads, and a read that comes
//! late takes several packets in at once: the socket and client clocks then give the earlier
//! events the later packet's time (the kernel's stamp on one read is its last segment's). So the
//! runner hands each finished call here. The threads run at a lower priority than the readers
//! (on Linux, nice +10 each: a reader with bytes waiting preempts them), and each builds a
//! record and hands it to the run's record channel itself.
//!
//! Bounded as before: a call waits here, holding its permits, until its record is in the
//! channel, so finished answers in memory are still at most the calls that may run plus the
//! channel's queue.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The record builders of one run. Their threads end when this is dropped and the queue is
/// empty.
pub(crate) struct Builders {
    jobs: mpsc::Sender<Job>,
}

impl Builders {
    /// `threads` builders (at least one).
    pub(crate) fn start(threads: usize) -> Builders {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("llmpulse-build-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only to take one job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                // Fewer builders is slower, not wrong; with none, `build` runs jobs inline.
                tracing::warn!(error = %e, "could not start a record builder thread");
            }
        }
        Builders { jobs: tx }
    }

    /// Builds a record with `build` on a builder thread and sends it on `records` from there;
    /// returns once it is sent (or the receiver is gone). A panic while building is raised
    /// again here, on the caller's task, as if it had built the record itself.
    pub(crate) async fn build<R: Send + 'static>(
        &self,
        records: tokio::sync::mpsc::Sender<R>,
        build: impl FnOnce() -> R + Send + 'static,
    ) {
        let (done_tx, done_rx) = oneshot::channel::<Result<(), Box<dyn Any + Send>>>();
        let job: Job = Box::new(move || {
            let built = std::panic::catch_unwind(AssertUnwindSafe(build));
            let result = built.map(|record| {
                // Blocks this thread, never a reader, while the sink catches up. An `Err` means
                // the run is over (its receiver was dropped): nothing is left to hand over.
                let _ = records.blocking_send(record);
            });
            let _ = done_tx.send(result);
        });
        if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
            // No builder thread: build here. Never expected; kept so a run cannot hang.
            job();
        }
        match done_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // Only if the job was dropped unrun, which the threads never do.
            Err(_) => {}
        }
    }
}

/// Lowers the calling thread's scheduling priority: nice +10 from the process's (19 at most) on
/// Linux, where `setpriority` on a thread id applies to that thread alone. Elsewhere the
/// builders keep the default priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread's own id; failure only leaves the
        // priority as it was. (A nice value of -1 is a valid answer of getpriority, not an
        // error, and raising a nice value needs no privilege.)
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            let now = libc::getpriority(libc::PRIO_PROCESS, tid);
            libc::setpriority(libc::PRIO_PROCESS, tid, (now + 10).min(19))
        };
        if rc != 0 {
            tracing::debug!("could not lower a record builder's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_record_reaches_the_channel_and_each_call_waits_for_its_own() {
        let builders = Arc::new(Builders::start(2));
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..50 {
            let (b, tx) = (builders.clone(), tx.clone());
            tasks.spawn(async move { b.build(tx, move || n).await });
        }
        drop(tx);
        // Nothing is read yet: one record fills the channel, its call is done, and every other
        // call still waits (as it would, holding its permits).
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut done = 0;
        while let Some(t) = tasks.try_join_next() {
            t.unwrap();
            done += 1;
        }
        assert_eq!(done, 1);
        let mut seen = Vec::new();
        while let Some(r) = rx.recv().await {
            seen.push(r);
        }
        while let Some(t) = tasks.join_next().await {
            t.unwrap();
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[should_panic(expected = "scorer bug")]
    async fn a_panic_while_building_is_raised_on_the_calling_task() {
        let builders = Builders::start(1);
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        builders.build(tx, || -> u32 { panic!("scorer bug") }).await;
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn builder_threads_run_at_nice_ten() {
        let builders = Builders::start(1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        rt.block_on(async {
            builders
                .build(tx, || {
                    // SAFETY: reads the calling thread's own priority.
                    unsafe {
                        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                        libc::getpriority(libc::PRIO_PROCESS, tid)
                    }
                })
                .await;
        });
        // SAFETY: reads this thread's own priority.
        let mine = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(rx.try_recv().unwrap(), (mine + 10).min(19));
    }
}
