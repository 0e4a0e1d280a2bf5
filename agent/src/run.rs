//! One agent run: core's job, with the host's telemetry as its `Instruments`. The servers the
//! targets use are probed first (for the fingerprint) and their processes watched by port.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use llmpulse_core::config::{Config, Endpoint};
use llmpulse_core::job::{self, Job, JobError, JobOutcome};
use llmpulse_core::pace::{Guard, Pace};
use llmpulse_core::sink::RecordSink;

use crate::discover::{self, Server};
use crate::host;
use crate::telemetry::Telemetry;

/// The agent's settings for one config: its id and sampling rate.
#[derive(Debug, Clone)]
pub struct AgentIdentity {
    pub host_id: String,
    pub sample_hz: f64,
}

impl AgentIdentity {
    /// From the config's `[agent]` table, the host name when it names no id.
    pub fn of(config: &Config) -> AgentIdentity {
        let a = config.agent.as_ref();
        AgentIdentity {
            host_id: a.and_then(|a| a.id.clone()).unwrap_or_else(host::host_name),
            sample_hz: a.map_or(10.0, |a| a.sample_hz),
        }
    }

    /// The origin its records carry.
    pub fn origin(&self) -> String {
        format!("agent:{}", self.host_id)
    }
}

/// Whether `url` points at this host.
fn is_local(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    match u.host_str() {
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1" | "0.0.0.0") => true,
        Some(h) => h.eq_ignore_ascii_case(&host::host_name()),
        None => false,
    }
}

/// Target name → the port of its server, for targets served on this host.
pub fn local_ports(config: &Config) -> BTreeMap<String, u16> {
    config
        .targets
        .iter()
        .filter_map(|t| match &t.endpoint {
            Endpoint::Http { base_url } if is_local(base_url) => {
                Some((t.name.clone(), discover::port_of(base_url)?))
            }
            _ => None,
        })
        .collect()
}

/// The servers behind the config's local targets, as they describe themselves.
pub async fn servers_of(config: &Config) -> Vec<Server> {
    let mut roots: Vec<String> = config
        .targets
        .iter()
        .filter_map(|t| match &t.endpoint {
            Endpoint::Http { base_url } if is_local(base_url) => Some(discover::root_of(base_url)),
            _ => None,
        })
        .collect();
    roots.sort();
    roots.dedup();
    discover::discover(&roots, false).await.servers
}

/// The telemetry for a config's run(s): its sources, watching the local targets' servers.
pub async fn telemetry_for(config: &Config, id: &AgentIdentity) -> Telemetry {
    let ports = local_ports(config);
    let servers = servers_of(config).await;
    let mut t = Telemetry::new(id.host_id.clone(), id.sample_hz, ports);
    if let Some(a) = &config.agent {
        t.set_prices(a.electricity_usd_per_kwh, a.hardware_usd_per_hour);
    }
    t.watch_metrics(metrics_urls(&servers));
    let fp = host::fingerprint(&id.host_id, &t, &servers);
    t.set_fingerprint(fp);
    t
}

/// Port → `/metrics` URL of the servers that publish their own counters there (vLLM; llama.cpp
/// started with `--metrics`, which answers 501 without it: the run's telemetry then says so).
pub fn metrics_urls(servers: &[Server]) -> BTreeMap<u16, String> {
    servers
        .iter()
        .filter(|s| matches!(s.kind, discover::Kind::Vllm | discover::Kind::LlamaCpp))
        .filter_map(|s| Some((discover::port_of(&s.url)?, format!("{}/metrics", s.url))))
        .collect()
}

/// `--duty` on the agent's command line: over every config's `[agent] duty`.
pub static DUTY: OnceLock<f64> = OnceLock::new();

/// The window over which the duty cycle measures the server's busy share.
pub const DUTY_WINDOW: Duration = Duration::from_secs(120);

/// The pacing a config asks for (`[agent] duty`, `max_temp_c`, `resume_temp_c`; `--duty`),
/// the guard reading the hottest sensor (CPU or GPU) from `telemetry`; `None` for neither.
pub fn pace_for(config: &Config, telemetry: &Telemetry) -> Option<Arc<Pace>> {
    pace_with(config, telemetry, None)
}

/// [`pace_for`] with a duty over every other (a soak's `[soak.night] duty` at night).
pub fn pace_with(config: &Config, telemetry: &Telemetry, duty: Option<f64>) -> Option<Arc<Pace>> {
    let a = config.agent.as_ref();
    let duty = duty.or(DUTY.get().copied()).or(a.and_then(|a| a.duty));
    let guard = a.and_then(|a| {
        let max = a.max_temp_c?;
        let handle = telemetry.handle();
        Some(Guard {
            max_temp_c: max,
            resume_temp_c: a.resume_temp_c.unwrap_or(max - 10.0),
            read: Arc::new(move || {
                let s = handle.latest();
                [s.cpu_temp_c, s.gpu_temp_c]
                    .into_iter()
                    .flatten()
                    .reduce(f64::max)
            }),
        })
    });
    Pace::new(duty, DUTY_WINDOW, guard)
}

/// `--duty`: `70%` or `0.7`.
pub fn parse_duty(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let d = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("--duty {text}: give a share of the time, 70% or 0.7"))?;
    if !(d > 0.0 && d <= 1.0) {
        return Err(format!("--duty {text}: must be above 0 and at most 100%"));
    }
    Ok(d)
}

/// Runs `job` with `telemetry`, paced as its config asks.
pub async fn run(
    mut job: Job,
    telemetry: &mut Telemetry,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    progress: &mut dyn RecordSink,
) -> Result<JobOutcome, JobError> {
    job.run.pace = pace_for(&job.config, telemetry);
    job::run_job_with(job, env, progress, Some(telemetry)).await
}
