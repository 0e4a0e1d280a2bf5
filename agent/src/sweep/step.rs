//! One-shot steps of a server's CLI (`ollama create`, `lms server start`, `lms load`, `lms
//! unload`): run to their end within a time limit, their output appended to the point's log.
//! A step that outlives its limit is killed with every process it started (it runs in a
//! process group of its own), so a CLI that hangs stops one point, never the sweep.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Why a step did not finish well.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("cannot run {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("{what} did not finish within {}; it was stopped", humantime::format_duration(*.limit))]
    TimedOut { what: String, limit: Duration },
    #[error("{what} failed ({status}): {output}")]
    Failed {
        what: String,
        status: ExitStatus,
        output: String,
    },
}

/// The command as a user would type it, for logs and errors.
pub fn describe(c: &Command) -> String {
    std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `c` until it exits or `limit` passes, stdin closed, stdout and stderr appended to `log`
/// under a `$ command` line. A daemon the step leaves behind may keep writing to the log; the
/// step ends when its own process exits. Blocking: call it from `spawn_blocking` in async code.
pub fn run(mut c: Command, log: &Path, limit: Duration) -> Result<(), StepError> {
    let what = describe(&c);
    let spawn = |source| StepError::Spawn {
        what: what.clone(),
        source,
    };
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(spawn)?;
    let start = out.metadata().map_or(0, |m| m.len());
    {
        use std::io::Write;
        writeln!(out, "$ {what}").map_err(spawn)?;
    }
    let err = out.try_clone().map_err(spawn)?;
    c.stdin(Stdio::null()).stdout(out).stderr(err);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        c.process_group(0);
    }
    let mut child = c.spawn().map_err(spawn)?;
    let until = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                kill_group(&mut child);
                return Err(StepError::TimedOut { what, limit });
            }
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(StepError::Failed {
            what,
            status,
            output: appended(log, start).trim().to_string(),
        })
    }
}

/// SIGKILL to the step's process group (the step and all it started), then reaped.
fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    // SAFETY: the group of our own child, which `process_group(0)` made its leader.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// What `log` gained after byte `start` (at most its last 16 KiB, lossy), past the `$` line.
fn appended(log: &Path, start: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    const MAX: u64 = 16 * 1024;
    let mut bytes = Vec::new();
    if let Ok(mut f) = std::fs::File::open(log) {
        let len = f.metadata().map_or(0, |m| m.len());
        let _ = f.seek(SeekFrom::Start(start.max(len.saturating_sub(MAX))));
        let _ = f.take(MAX).read_to_end(&mut bytes);
    }
    let text = String::from_utf8_lossy(&bytes);
    match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("$ ") => rest.to_string(),
        _ => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder for one test under the system's temp dir.
    fn scratch(test: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("llmpulse-step-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn a_step_that_hangs_is_stopped_with_what_it_started() {
        let dir = scratch("hang");
        let log = dir.join("point.log");
        let pid_file = dir.join("grandchild");
        // The shell starts a sleeper of its own and waits on it: both must go.
        let script = format!("sleep 600 & echo $! >'{}'; wait", pid_file.display());
        let started = Instant::now();
        let e = run(sh(&script), &log, Duration::from_millis(500)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(matches!(e, StepError::TimedOut { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("did not finish within 500ms; it was stopped"),
            "{e}"
        );
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild is gone (kill(pid, 0) fails) once the kernel has delivered the signal.
        let until = Instant::now() + Duration::from_secs(5);
        while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_ne!(
            unsafe { libc::kill(pid, 0) },
            0,
            "sleep 600 outlived its step"
        );
    }

    #[test]
    fn a_failed_step_says_its_output_and_the_log_keeps_it() {
        let dir = scratch("failed");
        let log = dir.join("point.log");
        std::fs::write(&log, "earlier server output\n").unwrap();
        let e = run(
            sh("echo no such model >&2; exit 3"),
            &log,
            Duration::from_secs(30),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("sh -c echo no such model"), "{text}");
        assert!(text.ends_with("): no such model"), "{text}");
        let kept = std::fs::read_to_string(&log).unwrap();
        assert!(
            kept.starts_with("earlier server output\n$ sh -c "),
            "{kept}"
        );
        assert!(kept.ends_with("no such model\n"), "{kept}");
    }

    #[test]
    fn a_step_that_leaves_a_daemon_ends_when_it_exits() {
        let dir = scratch("daemon");
        let log = dir.join("point.log");
        let pid_file = dir.join("daemon");
        // A daemon keeps the log open for a minute; the step itself exits at once.
        let script = format!(
            "(sleep 60; echo late) & echo $! >'{}'; echo up",
            pid_file.display()
        );
        let started = Instant::now();
        run(sh(&script), &log, Duration::from_secs(120)).unwrap();
        let waited = started.elapsed();
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert!(
            waited < Duration::from_secs(50),
            "waited {waited:?} for the daemon"
        );
        assert!(std::fs::read_to_string(&log).unwrap().contains("up\n"));
    }
}
