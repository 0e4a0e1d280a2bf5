//! What `llmpulse-agent serve` shows on its local port: `GET /metrics` in the OpenMetrics text
//! format (written by `prometheus-client`) (calls in flight, runs, the last run's figures per target, the spool, the hardware
//! gauges) and `GET /health`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use llmpulse_core::summary::TargetSummary;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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

/// Registers more families on each page.
pub type Extra = Arc<dyn Fn(&mut Exposition) + Send + Sync>;

/// Everything `/metrics` reads.
#[derive(Clone)]
pub struct Shared {
    pub status: Arc<Mutex<Status>>,
    /// Requests on the wire in the run going now.
    pub in_flight: Arc<Mutex<Option<Arc<AtomicU32>>>>,
    pub telemetry: Handle,
    pub spool: PathBuf,
    pub host_id: String,
    /// More metric families (a soak's counters).
    pub extra: Option<Extra>,
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

/// A series' labels, in order.
pub type Labels = Vec<(String, String)>;

/// A `/metrics` page being built: metric families registered with `prometheus-client`, which
/// writes the OpenMetrics text (names, escaping, `_total` on counters).
#[derive(Default)]
pub struct Exposition {
    registry: Registry,
}

impl Exposition {
    /// A gauge family; none when `samples` is empty.
    pub fn gauge(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        let mut any = false;
        for (labels, v) in samples {
            family.get_or_create(&labels).set(v);
            any = true;
        }
        if any {
            // The encoder ends the help with a full stop.
            self.registry
                .register(name, help.trim_end_matches('.'), family);
        }
    }

    /// A counter family, `name` without its `_total` (the encoder adds it).
    pub fn counter(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        let family = Family::<Labels, Counter<f64, AtomicU64>>::default();
        let mut any = false;
        for (labels, v) in samples {
            family.get_or_create(&labels).inc_by(v.max(0.0));
            any = true;
        }
        if any {
            // The encoder ends the help with a full stop.
            self.registry
                .register(name, help.trim_end_matches('.'), family);
        }
    }

    /// The page's text.
    pub fn text(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One label.
pub fn label(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// The `/metrics` page.
pub fn render(shared: &Shared, sample: &Sample) -> String {
    let mut page = Exposition::default();
    let host = vec![label("host", &shared.host_id)];
    let one = |v: f64| vec![(host.clone(), v)];
    let opt = |v: Option<f64>| v.map(&one).unwrap_or_default();
    let in_flight = shared
        .in_flight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map_or(0, |c| c.load(Ordering::Relaxed));
    page.gauge(
        "llmpulse_agent_calls_in_flight",
        "Requests on the wire now.",
        one(f64::from(in_flight)),
    );
    let (runs, bytes) = spool_size(&shared.spool);
    page.gauge(
        "llmpulse_agent_spool_runs",
        "Runs staged or waiting for the store.",
        one(runs as f64),
    );
    page.gauge(
        "llmpulse_agent_spool_bytes",
        "Bytes in the spool.",
        one(bytes as f64),
    );
    {
        let st = shared.status.lock().unwrap_or_else(|e| e.into_inner());
        page.counter(
            "llmpulse_agent_runs",
            "Runs finished since the agent started.",
            one(st.runs_total as f64),
        );
        page.counter(
            "llmpulse_agent_runs_failed",
            "Runs that ended in an error since the agent started.",
            one(st.runs_failed as f64),
        );
        page.gauge(
            "llmpulse_agent_last_run_finished_seconds",
            "When the last run finished, Unix time.",
            opt(st.last_run_finished_unix),
        );
        let per = |f: &dyn Fn(&TargetSummary) -> Option<f64>| -> Vec<(Labels, f64)> {
            st.last_run
                .iter()
                .filter_map(|t| {
                    f(t).map(|v| {
                        (
                            vec![label("host", &shared.host_id), label("target", &t.target)],
                            v,
                        )
                    })
                })
                .collect()
        };
        page.gauge(
            "llmpulse_agent_last_run_calls",
            "Calls in the last run, per target.",
            per(&|t| Some(t.n as f64)),
        );
        page.gauge(
            "llmpulse_agent_last_run_success_ratio",
            "Share of the last run's calls that succeeded, per target.",
            per(&|t| Some(t.success_rate)),
        );
        page.gauge(
            "llmpulse_agent_last_run_latency_p50_seconds",
            "Median latency in the last run, per target.",
            per(&|t| t.latency_p50_sec),
        );
        page.gauge(
            "llmpulse_agent_last_run_ttft_p50_seconds",
            "Median time to first token in the last run, per target.",
            per(&|t| t.ttft_p50_sec),
        );
        page.gauge(
            "llmpulse_agent_last_run_output_speed_tps",
            "Median output speed in the last run, per target.",
            per(&|t| t.output_speed_median_tps),
        );
    }
    page.gauge(
        "llmpulse_agent_cpu_percent",
        "Host CPU use.",
        opt(sample.cpu_pct),
    );
    page.gauge(
        "llmpulse_agent_memory_used_bytes",
        "Host memory in use.",
        opt(sample.mem_used_mb.map(|m| m * 1_048_576.0)),
    );
    page.gauge(
        "llmpulse_agent_swap_used_bytes",
        "Host swap in use.",
        opt(sample.swap_used_mb.map(|m| m * 1_048_576.0)),
    );
    page.gauge(
        "llmpulse_agent_server_resident_bytes",
        "Resident memory of each watched server's process tree.",
        sample.servers.iter().map(|(port, s)| {
            (
                vec![
                    label("host", &shared.host_id),
                    label("port", &port.to_string()),
                ],
                s.rss_mb * 1_048_576.0,
            )
        }),
    );
    page.gauge(
        "llmpulse_agent_gpu_memory_used_bytes",
        "GPU memory in use, all GPUs.",
        opt(sample.gpu_mem_mb.map(|m| m * 1_048_576.0)),
    );
    page.gauge(
        "llmpulse_agent_gpu_utilization_percent",
        "GPU utilisation, mean over GPUs.",
        opt(sample.gpu_util_pct),
    );
    page.gauge(
        "llmpulse_agent_gpu_power_watts",
        "GPU power, all GPUs.",
        opt(sample.gpu_power_w),
    );
    page.gauge(
        "llmpulse_agent_gpu_temperature_celsius",
        "Hottest GPU.",
        opt(sample.gpu_temp_c),
    );
    page.gauge(
        "llmpulse_agent_cpu_temperature_celsius",
        "Hottest CPU sensor (Linux sysfs, macmon).",
        opt(sample.cpu_temp_c),
    );
    page.gauge(
        "llmpulse_agent_throttled",
        "1 when a source said the machine throttled since the last sample.",
        opt(sample.throttled.map(|t| if t { 1.0 } else { 0.0 })),
    );
    page.gauge(
        "llmpulse_agent_chip_power_watts",
        "Apple silicon: CPU, GPU and ANE power (macmon).",
        opt(sample.chip_power_w),
    );
    page.counter(
        "llmpulse_agent_chip_energy_joules",
        "Apple silicon chip energy since the agent started (macmon).",
        opt(sample.mac_energy_j),
    );
    page.counter(
        "llmpulse_agent_gpu_energy_joules",
        "GPU energy since the driver loaded.",
        opt(sample.gpu_energy_j),
    );
    page.counter(
        "llmpulse_agent_rapl_energy_joules",
        "CPU package energy since the agent started.",
        opt(sample.rapl_energy_j),
    );
    if let Some(extra) = &shared.extra {
        extra(&mut page);
    }
    page.text()
}

async fn metrics(State(s): State<Shared>) -> impl IntoResponse {
    let t = s.telemetry.clone();
    let sample = tokio::task::spawn_blocking(move || t.latest())
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
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
