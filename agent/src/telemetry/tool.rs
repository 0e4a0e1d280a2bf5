//! A monitoring tool the agent runs beside a run (`macmon pipe`, `powermetrics`): found on
//! `PATH`, started with its output piped, its records (lines, or NUL-ended documents) handed
//! one by one to a reader on a thread of its own, and killed when dropped. A record longer than
//! [`MAX_RECORD`] is skipped, so a tool that never ends one cannot grow the agent's memory.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The longest record read from a tool; past it the record is dropped up to its end.
pub const MAX_RECORD: usize = 1 << 20;

/// `name` on `PATH`, if it is there and executable.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// Reads the next record ended by `end` into `buf` (without `end`), at most [`MAX_RECORD`]
/// bytes: `Some(true)` a record, `Some(false)` one too long (skipped), `None` the end.
pub fn next_record(r: &mut impl BufRead, end: u8, buf: &mut Vec<u8>) -> Option<bool> {
    buf.clear();
    let n = r
        .by_ref()
        .take(MAX_RECORD as u64 + 1)
        .read_until(end, buf)
        .ok()?;
    if n == 0 {
        return None;
    }
    if buf.last() == Some(&end) {
        buf.pop();
        return Some(true);
    }
    if buf.len() <= MAX_RECORD {
        // The last record, without its end.
        return Some(true);
    }
    // Too long: skip to its end.
    let mut rest = Vec::new();
    loop {
        rest.clear();
        match r
            .by_ref()
            .take(MAX_RECORD as u64)
            .read_until(end, &mut rest)
        {
            Ok(0) | Err(_) => return None,
            Ok(_) if rest.last() == Some(&end) => return Some(false),
            Ok(_) => {}
        }
    }
}

/// A running tool; killed when dropped.
pub struct Tool(Child);

impl Tool {
    /// Starts `name` with `args`, and hands each record it writes (ended by `end`) to `each`
    /// on a thread named after it; `Err` says why it cannot run.
    pub fn start(
        name: &str,
        missing: &str,
        args: &[String],
        end: u8,
        mut each: impl FnMut(&[u8]) + Send + 'static,
    ) -> Result<Tool, String> {
        let exe = on_path(name).ok_or_else(|| missing.to_string())?;
        let mut child = Command::new(&exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| format!("{name} gave no output pipe"))?;
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut buf = Vec::new();
                while let Some(whole) = next_record(&mut reader, end, &mut buf) {
                    if whole {
                        each(&buf);
                    }
                }
            });
        if let Err(e) = thread {
            let _ = child.kill();
            return Err(e.to_string());
        }
        Ok(Tool(child))
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_split_at_their_end_and_an_endless_one_is_skipped() {
        let mut input = b"one\ntwo\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_RECORD + 10));
        input.extend(b"\nthree");
        let mut r = std::io::Cursor::new(input);
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        while let Some(whole) = next_record(&mut r, b'\n', &mut buf) {
            seen.push(whole.then(|| String::from_utf8_lossy(&buf).to_string()));
        }
        assert_eq!(
            seen,
            vec![
                Some("one".to_string()),
                Some("two".to_string()),
                None,
                Some("three".to_string())
            ]
        );
    }
}
