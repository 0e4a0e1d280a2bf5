//! Starting one sweep point's server: spawn it on a free port with the point's settings, wait
//! until it answers (`GET /health` 200, or `/v1/models` for a server without one), read back
//! what it loaded (`GET /props`), and stop it (and free its memory) when the point is done.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Launcher, Point, Sweep};

/// A point's server, running; killed (or asked to stop) when dropped.
pub struct Running {
    /// The server process, when the agent spawned it (LM Studio's belongs to LM Studio).
    child: Option<Child>,
    /// Commands that end the point (LM Studio: unload, stop the server), each run within
    /// `teardown_limit` with its output appended to `log`.
    teardown: Vec<Command>,
    teardown_limit: Duration,
    log: PathBuf,
    pub port: u16,
    /// The API base for the point's targets (`http://127.0.0.1:PORT/v1`).
    pub base_url: String,
    /// Spawn → ready.
    pub load_time: Duration,
    /// `server` in the records: `llamacpp` or `command`.
    pub server: &'static str,
    /// What the server says it is (`build_info`).
    pub version: Option<String>,
    /// What the server says it loaded (`model_ftype`), else the sweep file's.
    pub quantization: Option<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            stop(child);
        }
        for c in self.teardown.drain(..) {
            if let Err(e) = super::step::run(c, &self.log, self.teardown_limit) {
                tracing::warn!("{e}");
            }
        }
    }
}

/// SIGTERM, a moment to exit, then SIGKILL; always reaped.
fn stop(child: &mut Child) {
    #[cfg(unix)]
    {
        // SAFETY: our own child's pid; a signal to it has no other effect.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Why a point's server is not running: what it said last.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StartFailed {
    pub message: String,
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The last `n` lines of a log file, from at most its last 64 KiB (a server may log
/// gigabytes, or bytes that are not UTF-8).
fn tail(path: &Path, n: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    const MAX: u64 = 64 * 1024;
    let mut bytes = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let len = f.metadata().map_or(0, |m| m.len());
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(MAX)));
        let _ = f.take(MAX).read_to_end(&mut bytes);
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The command line for `point`, serving the model as `served_name` where the server takes a
/// name (vLLM answers only to the name it serves). On Linux the server gets SIGTERM when the agent dies, even by
/// `kill -9`, so no server outlives the sweep holding its memory and port.
pub fn command(sweep: &Sweep, point: &Point, port: u16, served_name: &str) -> Command {
    let mut c = launcher_command(sweep, point, port, served_name);
    c.envs(sweep.env.iter().map(|(k, v)| (k, v)));
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // The agent's pid, read before the fork: a child whose parent died between the fork and
        // the prctl below would never get the signal, so it checks and ends itself.
        let agent = std::process::id() as libc::pid_t;
        // SAFETY: prctl and getppid are async-signal-safe and touch only the child being set
        // up. The signal follows the spawning thread: a tokio worker, alive as long as the
        // runtime.
        unsafe {
            c.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                // An error here ends the child before it runs the server (a signal raised now
                // would meet the agent's own handlers, which a fork keeps until exec).
                if libc::getppid() != agent {
                    return Err(std::io::Error::other("the agent is gone"));
                }
                Ok(())
            });
        }
    }
    c
}

fn launcher_command(sweep: &Sweep, point: &Point, port: u16, served_name: &str) -> Command {
    match &sweep.launcher {
        Launcher::Ollama { binary } => super::ollama::serve(binary, point, port),
        Launcher::LmStudio { binary } => super::lmstudio::server_start(binary, port),
        Launcher::Vllm { python } => {
            let settings = point
                .vllm
                .clone()
                .unwrap_or_else(|| super::vllm::Axes::default().settings().swap_remove(0));
            super::vllm::command(python, point, &settings, port, served_name, &sweep.args)
        }
        Launcher::LlamaCpp { binary } => {
            let mut c = Command::new(binary);
            c.arg("-m")
                .arg(&point.model.path)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["-fa", &point.flash_attn])
                .args(["-ctk", &point.kv_cache_type, "-ctv", &point.kv_cache_type])
                .args(["-c", &point.ctx_size.to_string()])
                .args(["-ngl", &point.gpu_layers.to_string()])
                .arg("--metrics")
                .args(&sweep.args);
            c
        }
        Launcher::Command { template } => {
            let line = template
                .replace("{port}", &port.to_string())
                .replace("{model}", &point.model.path.display().to_string())
                .replace("{flash_attn}", &point.flash_attn)
                .replace("{kv_cache_type}", &point.kv_cache_type)
                .replace("{ctx_size}", &point.ctx_size.to_string())
                .replace("{gpu_layers}", &point.gpu_layers.to_string());
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("exec {line} {}", sweep.args.join(" ")));
            c
        }
    }
}

/// Starts `point`'s server, its output going to `log`, and waits until it is ready.
pub async fn start(
    sweep: &Sweep,
    point: &Point,
    log: &Path,
    served_name: &str,
) -> Result<Running, StartFailed> {
    let failed = |m: String| StartFailed { message: m };
    let missing = match sweep.launcher {
        Launcher::LlamaCpp { .. } => !point.model.path.is_file(),
        // A model folder (or a file) on this host: the agent runs without a hub.
        Launcher::Vllm { .. } => !point.model.path.exists(),
        // A model Ollama has goes by its name: its server says whether it has it.
        Launcher::Ollama { .. } | Launcher::LmStudio { .. } | Launcher::Command { .. } => false,
    };
    if missing {
        return Err(failed(format!(
            "model {} does not exist",
            point.model.path.display()
        )));
    }
    let port = free_port().map_err(|e| failed(format!("no free port: {e}")))?;
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let out = std::fs::File::create(log).map_err(|e| failed(format!("{}: {e}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(|e| failed(format!("{}: {e}", log.display())))?;
    let started = Instant::now();
    if let Launcher::LmStudio { binary } = &sweep.launcher {
        return start_lmstudio(sweep, binary, point, port, log, served_name, started).await;
    }
    let mut child = command(sweep, point, port, served_name)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| failed(format!("cannot start the server: {e}")))?;
    let http = crate::discover::client();
    let root = format!("http://127.0.0.1:{port}");
    let deadline = started + sweep.start_timeout;
    let server = sweep.launcher.server();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(failed(format!(
                "the server exited ({status}) before it was ready; its last output:\n{}",
                tail(log, 15)
            )));
        }
        if Instant::now() >= deadline {
            stop(&mut child);
            return Err(failed(format!(
                "the server was not ready within {}; its last output:\n{}",
                humantime::format_duration(sweep.start_timeout),
                tail(log, 15)
            )));
        }
        let ready = match http.get(format!("{root}/health")).send().await {
            Ok(r) if r.status().is_success() => true,
            Ok(r) if r.status().as_u16() == 404 => http
                .get(format!("{root}/v1/models"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()),
            _ => false,
        };
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Launcher::Ollama { binary } = &sweep.launcher {
        // The point's model settings: the template target's model, created from a Modelfile.
        let file = log.with_extension("Modelfile");
        std::fs::write(&file, super::ollama::modelfile(point))
            .map_err(|e| failed(format!("{}: {e}", file.display())))?;
        let create = super::ollama::create(binary, port, served_name, &file);
        if let Err(e) = cli_step(create, sweep, log).await {
            stop(&mut child);
            return Err(e);
        }
    }
    let load_time = started.elapsed();
    let props: Option<Value> = match http.get(format!("{root}/props")).send().await {
        Ok(r) if r.status().is_success() => r.json().await.ok(),
        _ => None,
    };
    let prop = |k: &str| {
        props
            .as_ref()
            .and_then(|p| p.get(k)?.as_str().map(String::from))
    };
    if let Some(n_ctx) = props
        .as_ref()
        .and_then(|p| p.pointer("/default_generation_settings/n_ctx")?.as_u64())
        && n_ctx != u64::from(point.ctx_size)
    {
        tracing::warn!(
            asked = point.ctx_size,
            loaded = n_ctx,
            "the server loaded another context size"
        );
    }
    // vLLM says its version at /version, Ollama at /api/version.
    let version_path = match sweep.launcher {
        Launcher::Ollama { .. } => "/api/version",
        _ => "/version",
    };
    let version = match prop("build_info") {
        Some(v) => Some(v),
        None => match http.get(format!("{root}{version_path}")).send().await {
            Ok(r) if r.status().is_success() => r
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| Some(v.get("version")?.as_str()?.to_string())),
            _ => None,
        },
    };
    Ok(Running {
        child: Some(child),
        teardown: Vec::new(),
        teardown_limit: sweep.start_timeout,
        log: log.to_path_buf(),
        port,
        base_url: format!("{root}/v1"),
        load_time,
        server,
        version,
        quantization: prop("model_ftype").or_else(|| point.model.quantization.clone()),
    })
}

/// Runs one CLI step to its end, within the sweep's `start_timeout`, its output appended to
/// `log`; an error carries that output, or says the step was stopped.
async fn cli_step(mut c: Command, sweep: &Sweep, log: &Path) -> Result<(), StartFailed> {
    c.envs(sweep.env.iter().map(|(k, v)| (k, v)));
    let (log, limit) = (log.to_path_buf(), sweep.start_timeout);
    tokio::task::spawn_blocking(move || super::step::run(c, &log, limit))
        .await
        .map_err(|e| StartFailed {
            message: format!("a CLI step: {e}"),
        })?
        .map_err(|e| StartFailed {
            message: e.to_string(),
        })
}

/// LM Studio's point: start its server on `port`, wait for `/v1/models`, load the model with
/// the point's settings under `served_name`. The server is LM Studio's: the point ends with
/// `lms unload` and `lms server stop`, even when a step here failed.
async fn start_lmstudio(
    sweep: &Sweep,
    binary: &Path,
    point: &Point,
    port: u16,
    log: &Path,
    served_name: &str,
    started: Instant,
) -> Result<Running, StartFailed> {
    use super::lmstudio;
    let mut running = Running {
        child: None,
        teardown: lmstudio::teardown(binary, served_name),
        teardown_limit: sweep.start_timeout,
        log: log.to_path_buf(),
        port,
        base_url: format!("http://127.0.0.1:{port}/v1"),
        load_time: Duration::ZERO,
        server: sweep.launcher.server(),
        version: None,
        quantization: point.model.quantization.clone(),
    };
    cli_step(lmstudio::server_start(binary, port), sweep, log).await?;
    let http = crate::discover::client();
    let deadline = started + sweep.start_timeout;
    loop {
        let models = http
            .get(format!("http://127.0.0.1:{port}/v1/models"))
            .send()
            .await;
        if models.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        if Instant::now() >= deadline {
            return Err(StartFailed {
                message: format!(
                    "LM Studio's server did not answer on port {port} within {}",
                    humantime::format_duration(sweep.start_timeout)
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cli_step(lmstudio::load(binary, point, served_name), sweep, log).await?;
    running.load_time = started.elapsed();
    Ok(running)
}

/// Where a point's server log goes under the spool.
pub fn log_path(spool: &Path, label: &str) -> PathBuf {
    spool.join("sweep-logs").join(format!("{label}.log"))
}
