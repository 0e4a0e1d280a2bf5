//! The agent's commands, a file each (the binary's `main.rs` parses and dispatches), and what
//! they share: the default spool, the progress bar and the stop on a signal.

pub mod completions;
pub mod discover;
pub mod health;
pub mod run;
pub mod serve;
pub mod soak;
pub mod sweep;

use std::path::PathBuf;

use llmpulse_core::config::Config;
use llmpulse_core::record::Record;
use llmpulse_core::runner::Stop;
use llmpulse_core::sink::Each;

pub fn default_spool(config: &Config) -> PathBuf {
    if let Some(s) = config.agent.as_ref().and_then(|a| a.spool.clone()) {
        return s;
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("llmpulse").join("agent-spool")
}
/// A bar of calls on a terminal; elsewhere (a service, a pipe) a log line every 10%.
pub fn progress_bar(total: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} calls  {elapsed_precise}  {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// The sink that moves the bar (or logs), naming the target of the call that just ended.
pub fn progress(bar: &indicatif::ProgressBar) -> Each<impl FnMut(&Record) + Send + '_> {
    let total = bar.length().unwrap_or(0) as usize;
    let mut done = 0usize;
    Each(move |r: &Record| {
        done += 1;
        if bar.is_hidden() {
            if done == total || done.is_multiple_of((total / 10).max(1)) {
                tracing::info!(done, total, target = %r.target, "progress");
            }
        } else {
            bar.inc(1);
            bar.set_message(r.target.clone());
        }
    })
}

/// SIGTERM or Ctrl-C asks the run to stop; a second one exits at once (the spool keeps the
/// journal, which the next start publishes).
pub async fn stop_on_signal(stop: Stop) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        for n in 0.. {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if n == 0 {
                tracing::warn!("stop requested by a signal");
                stop.request();
            } else {
                std::process::exit(130);
            }
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.request();
        }
    }
}
