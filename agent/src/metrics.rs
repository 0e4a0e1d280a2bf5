//! What `llmpulse-agent serve` shows on its local port: `GET /metrics` in the Prometheus text
//! format (calls in flight, runs, the last run's figures per target, the spool, the hardware
//! gauges) and `GET /health`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use llmpulse_core::summary::TargetSummary;

use crate::telemetry::{Handle, Sample};

/// What the daemon has done, shared with the HTTP server.
#[derive(Default)]
pub struct Status {
    pub runs_total: u64,
    pub runs_failed: u64,
    pub last_run_id: Option<String>,
    pub last_run_finished_unix: Option<f64>,
    pub last_run: Vec<TargetSummary>,
    pub last_error: Option<String>,
}

/// Everything `/metrics` reads.
#[derive(Clone)]
pub struct Shared {
    pub status: Arc<Mutex<Status>>,
    /// Requests on the wire in the run going now.
    pub in_flight: Arc<Mutex<Option<Arc<AtomicU32>>>>,
    pub telemetry: Handle,
    pub spool: PathBuf,
    pub host_id: String,
    /// More metric families, appended as they are (a soak's counters).
    pub extra: Option<Arc<dyn Fn() -> String + Send + Sync>>,
}

impl Shared {
    /// What a fresh agent shows: no runs yet, nothing in flight.
    pub fn new(telemetry: Handle, spool: PathBuf, host_id: String) -> Shared {
        Shared {
            status: Arc::new(Mutex::new(Status::default())),
            in_flight: Arc::new(Mutex::new(None)),
            telemetry,
            spool,
            host_id,
            extra: None,
        }
    }
}

/// The spool's size: runs waiting (directories) and bytes.
fn spool_size(dir: &std::path::Path) -> (u64, u64) {
    fn bytes(p: &std::path::Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(p) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => bytes(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    let runs = std::fs::read_dir(dir)
        .map(|e| e.flatten().filter(|e| e.path().is_dir()).count() as u64)
        .unwrap_or(0);
    (runs, bytes(dir))
}

/// A label value, escaped as the text format asks.
pub(crate) fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) fn metric(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[(String, f64)],
) {
    if samples.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// The `/metrics` page.
pub fn render(shared: &Shared, sample: &Sample) -> String {
    let mut out = String::new();
    let host = format!("{{host=\"{}\"}}", label(&shared.host_id));
    let one = |v: f64| vec![(host.clone(), v)];
    let opt = |v: Option<f64>| v.map(&one).unwrap_or_default();
    let in_flight = shared
        .in_flight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map_or(0, |c| c.load(Ordering::Relaxed));
    metric(
        &mut out,
        "llmpulse_agent_calls_in_flight",
        "gauge",
        "Requests on the wire now.",
        &one(f64::from(in_flight)),
    );
    let (runs, bytes) = spool_size(&shared.spool);
    metric(
        &mut out,
        "llmpulse_agent_spool_runs",
        "gauge",
        "Runs staged or waiting for the store.",
        &one(runs as f64),
    );
    metric(
        &mut out,
        "llmpulse_agent_spool_bytes",
        "gauge",
        "Bytes in the spool.",
        &one(bytes as f64),
    );
    {
        let st = shared.status.lock().unwrap_or_else(|e| e.into_inner());
        metric(
            &mut out,
            "llmpulse_agent_runs_total",
            "counter",
            "Runs finished since the agent started.",
            &one(st.runs_total as f64),
        );
        metric(
            &mut out,
            "llmpulse_agent_runs_failed_total",
            "counter",
            "Runs that ended in an error since the agent started.",
            &one(st.runs_failed as f64),
        );
        metric(
            &mut out,
            "llmpulse_agent_last_run_finished_seconds",
            "gauge",
            "When the last run finished, Unix time.",
            &opt(st.last_run_finished_unix),
        );
        let per = |f: &dyn Fn(&TargetSummary) -> Option<f64>| -> Vec<(String, f64)> {
            st.last_run
                .iter()
                .filter_map(|t| {
                    f(t).map(|v| {
                        (
                            format!(
                                "{{host=\"{}\",target=\"{}\"}}",
                                label(&shared.host_id),
                                label(&t.target)
                            ),
                            v,
                        )
                    })
                })
                .collect()
        };
        metric(
            &mut out,
            "llmpulse_agent_last_run_calls",
            "gauge",
            "Calls in the last run, per target.",
            &per(&|t| Some(t.n as f64)),
        );
        metric(
            &mut out,
            "llmpulse_agent_last_run_success_ratio",
            "gauge",
            "Share of the last run's calls that succeeded, per target.",
            &per(&|t| Some(t.success_rate)),
        );
        metric(
            &mut out,
            "llmpulse_agent_last_run_latency_p50_seconds",
            "gauge",
            "Median latency in the last run, per target.",
            &per(&|t| t.latency_p50_sec),
        );
        metric(
            &mut out,
            "llmpulse_agent_last_run_ttft_p50_seconds",
            "gauge",
            "Median time to first token in the last run, per target.",
            &per(&|t| t.ttft_p50_sec),
        );
        metric(
            &mut out,
            "llmpulse_agent_last_run_output_speed_tps",
            "gauge",
            "Median output speed in the last run, per target.",
            &per(&|t| t.output_speed_median_tps),
        );
    }
    metric(
        &mut out,
        "llmpulse_agent_cpu_percent",
        "gauge",
        "Host CPU use.",
        &opt(sample.cpu_pct),
    );
    metric(
        &mut out,
        "llmpulse_agent_memory_used_bytes",
        "gauge",
        "Host memory in use.",
        &opt(sample.mem_used_mb.map(|m| m * 1_048_576.0)),
    );
    metric(
        &mut out,
        "llmpulse_agent_swap_used_bytes",
        "gauge",
        "Host swap in use.",
        &opt(sample.swap_used_mb.map(|m| m * 1_048_576.0)),
    );
    let servers: Vec<(String, f64)> = sample
        .servers
        .iter()
        .map(|(port, s)| {
            (
                format!("{{host=\"{}\",port=\"{port}\"}}", label(&shared.host_id)),
                s.rss_mb * 1_048_576.0,
            )
        })
        .collect();
    metric(
        &mut out,
        "llmpulse_agent_server_resident_bytes",
        "gauge",
        "Resident memory of each watched server's process tree.",
        &servers,
    );
    metric(
        &mut out,
        "llmpulse_agent_gpu_memory_used_bytes",
        "gauge",
        "GPU memory in use, all GPUs.",
        &opt(sample.gpu_mem_mb.map(|m| m * 1_048_576.0)),
    );
    metric(
        &mut out,
        "llmpulse_agent_gpu_utilization_percent",
        "gauge",
        "GPU utilisation, mean over GPUs.",
        &opt(sample.gpu_util_pct),
    );
    metric(
        &mut out,
        "llmpulse_agent_gpu_power_watts",
        "gauge",
        "GPU power, all GPUs.",
        &opt(sample.gpu_power_w),
    );
    metric(
        &mut out,
        "llmpulse_agent_gpu_temperature_celsius",
        "gauge",
        "Hottest GPU.",
        &opt(sample.gpu_temp_c),
    );
    metric(
        &mut out,
        "llmpulse_agent_gpu_energy_joules_total",
        "counter",
        "GPU energy since the driver loaded.",
        &opt(sample.gpu_energy_j),
    );
    metric(
        &mut out,
        "llmpulse_agent_rapl_energy_joules_total",
        "counter",
        "CPU package energy since the agent started.",
        &opt(sample.rapl_energy_j),
    );
    if let Some(extra) = &shared.extra {
        out.push_str(&extra());
    }
    out
}

async fn metrics(State(s): State<Shared>) -> impl IntoResponse {
    let t = s.telemetry.clone();
    let sample = tokio::task::spawn_blocking(move || t.latest())
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&s, &sample),
    )
}

async fn health(State(s): State<Shared>) -> impl IntoResponse {
    let st = s.status.lock().unwrap_or_else(|e| e.into_inner());
    axum::Json(serde_json::json!({
        "status": "ok",
        "host_id": s.host_id,
        "runs_total": st.runs_total,
        "last_run_id": st.last_run_id,
        "last_error": st.last_error,
    }))
}

/// Serves `/metrics` and `/health` on `addr` until the task is dropped; returns the bound address.
pub async fn spawn(addr: SocketAddr, shared: Shared) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(shared);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("metrics server: {e}");
        }
    });
    Ok(bound)
}
