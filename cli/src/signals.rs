//! SIGTERM and Ctrl-C during a run: the first asks the run to stop (no new call; calls in flight
//! get the grace, then are cancelled; the run is published as partial), the second exits at
//! once, leaving the journal for `llmpulse upload` to recover.

use llmpulse_core::runner::Stop;

/// Waits for signals for as long as the run goes on.
pub async fn stop_on_signal(stop: Stop) {
    let mut signals = 0u32;
    loop {
        if wait().await.is_err() {
            return;
        }
        signals += 1;
        if signals == 1 {
            eprintln!(
                "\nstopping: no new calls; calls in flight have {} to finish (again to stop now)",
                humantime::format_duration(stop.grace)
            );
            tracing::warn!("stop requested by a signal");
            stop.request();
        } else {
            eprintln!("stopped at once; `llmpulse upload` recovers the finished calls");
            std::process::exit(i32::from(crate::EXIT_STOPPED));
        }
    }
}

#[cfg(unix)]
async fn wait() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
