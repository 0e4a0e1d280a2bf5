//! Running a sweep: for each point, start its server, run the config's suite against it at every
//! temperature (one target per temperature) with the agent's telemetry, stamp every record with
//! the point, stop the server, go on. A point whose server does not start is recorded (every
//! planned call `server_start_failed`, with the server's last output) and the sweep goes on.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::Utc;
use llmpulse_core::config::{Config, Endpoint, Target};
use llmpulse_core::error_kind::ErrorKind;
use llmpulse_core::instrument::Instruments;
use llmpulse_core::job::{self, JobError, JobOutcome, JobRequest};
use llmpulse_core::record::Record;
use llmpulse_core::runner::Stop;
use llmpulse_core::sink::RecordSink;

use super::launch::{self, Running};
use super::{Point, Sweep, plan};
use crate::run::AgentIdentity;
use crate::telemetry::Telemetry;

/// What each record of a point carries.
#[derive(Debug, Clone, Default)]
struct PointFields {
    server: String,
    server_version: Option<String>,
    quantization: Option<String>,
    /// What the launcher sets (none where the server was not told: vLLM's flash attention,
    /// LM Studio's cache).
    flash_attn: Option<String>,
    kv_cache_type: Option<String>,
    ctx_size: u32,
    gpu_layers: Option<u32>,
    max_num_seqs: Option<u32>,
    load_time_sec: Option<f64>,
}

/// The telemetry, plus the point on every record and in the manifest.
struct PointInstruments<'a> {
    telemetry: &'a mut Telemetry,
    fields: PointFields,
    point: serde_json::Value,
}

impl Instruments for PointInstruments<'_> {
    fn host(&mut self) -> Option<serde_json::Value> {
        let mut host = self
            .telemetry
            .host()
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(h) = host.as_object_mut() {
            h.insert("sweep_point".into(), self.point.clone());
        }
        Some(host)
    }

    fn start(
        &mut self,
        series: &std::path::Path,
        in_flight: std::sync::Arc<std::sync::atomic::AtomicU32>,
    ) -> std::io::Result<()> {
        self.telemetry.start(series, in_flight)
    }

    fn annotate(&mut self, r: &mut Record) {
        self.telemetry.annotate(r);
        let f = &self.fields;
        r.server = Some(f.server.clone());
        r.server_version = f.server_version.clone();
        r.quantization = f.quantization.clone();
        r.flash_attn = f.flash_attn.clone();
        r.kv_cache_type = f.kv_cache_type.clone();
        r.ctx_size = Some(f.ctx_size);
        r.gpu_layers = f.gpu_layers;
        r.max_num_seqs = f.max_num_seqs;
        r.load_time_sec = f.load_time_sec.map(|s| (s * 1e3).round() / 1e3);
    }

    fn stop(&mut self) {
        self.telemetry.stop();
    }

    fn server_metrics(&mut self) -> Option<serde_json::Value> {
        self.telemetry.server_metrics()
    }
}

/// How one point went.
#[derive(Debug)]
pub struct PointOutcome {
    pub label: String,
    /// `None` when the server started; else why not.
    pub start_failed: Option<String>,
    pub records: usize,
    pub successes: usize,
    pub stored_at: String,
}

/// The point's targets: each template target × each temperature, named after the point.
fn targets(config: &Config, sweep: &Sweep, label: &str, base_url: Option<&str>) -> Vec<Target> {
    let temps: Vec<Option<f64>> = if sweep.temperatures.is_empty() {
        vec![None]
    } else {
        sweep.temperatures.iter().copied().map(Some).collect()
    };
    let many_templates = config.targets.len() > 1;
    let mut out = Vec::new();
    for t in &config.targets {
        for temp in &temps {
            let mut x = t.clone();
            let mut name = label.to_string();
            if many_templates {
                name.push('-');
                name.push_str(&t.name);
            }
            if let Some(v) = temp {
                if temps.len() > 1 {
                    name.push_str(&format!("-t{v}"));
                }
                x.params.temperature = Some(*v);
            }
            x.name = name;
            if let Some(url) = base_url {
                x.endpoint = Endpoint::Http {
                    base_url: url.to_string(),
                };
                x.clock = llmpulse_core::provider::ClockSource::Kernel; // an http target's default
            }
            out.push(x);
        }
    }
    out
}

/// Runs every point of `sweep` (its config's suite, output and run settings in `config`).
/// `progress` sees every record.
pub async fn run_sweep(
    config: &Config,
    sweep: &Sweep,
    spool: PathBuf,
    stop: Stop,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    progress: &mut dyn RecordSink,
) -> Result<Vec<PointOutcome>, JobError> {
    let id = AgentIdentity::of(config);
    let (points, skipped) = plan(sweep);
    for s in &skipped {
        tracing::warn!(point = %s.point.label(&sweep.name), why = %s.why, "point skipped");
    }
    let mut out = Vec::new();
    for point in points {
        if stop.requested() {
            break;
        }
        let label = point.label(&sweep.name);
        tracing::info!(point = %label, "starting the server");
        // The name the point's server answers to: the template target's model.
        let served = config.targets.first().map_or("model", |t| t.model.as_str());
        let log = launch::log_path(&spool, &label);
        let started = launch::start(sweep, &point, &log, served).await;
        let outcome = run_point(
            config, sweep, &id, &point, &label, started, &spool, &stop, env, progress,
        )
        .await?;
        out.push(outcome);
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn run_point(
    config: &Config,
    sweep: &Sweep,
    id: &AgentIdentity,
    point: &Point,
    label: &str,
    started: Result<Running, launch::StartFailed>,
    spool: &std::path::Path,
    stop: &Stop,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    progress: &mut dyn RecordSink,
) -> Result<PointOutcome, JobError> {
    let base_url = started.as_ref().ok().map(|s| s.base_url.clone());
    let mut cfg = config.clone();
    cfg.targets = targets(config, sweep, label, base_url.as_deref());
    cfg.campaign = None;
    let request = JobRequest {
        stop: Some(stop.clone()),
        ..JobRequest::new(id.origin(), spool.to_path_buf(), Utc::now())
    };
    let mut job = request.prepare(cfg)?;
    // Flash attention and GPU layers are llama.cpp's and Ollama's settings.
    let lms = matches!(sweep.launcher, super::Launcher::LmStudio { .. });
    let llama_axes = point.vllm.is_none() && !lms;
    let mut fields = PointFields {
        server: sweep.launcher.server().into(),
        quantization: point.model.quantization.clone(),
        flash_attn: llama_axes.then(|| point.flash_attn.clone()),
        kv_cache_type: (!lms).then(|| point.kv_cache_type.clone()),
        ctx_size: point.ctx_size,
        gpu_layers: llama_axes.then_some(point.gpu_layers),
        max_num_seqs: point.vllm.as_ref().map(|v| v.max_num_seqs),
        ..PointFields::default()
    };
    let ports: BTreeMap<String, u16> = match &started {
        Ok(s) => job
            .config
            .targets
            .iter()
            .map(|t| (t.name.clone(), s.port))
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    let mut telemetry = Telemetry::new(id.host_id.clone(), id.sample_hz, ports);
    if let Some(a) = &job.config.agent {
        telemetry.set_prices(a.electricity_usd_per_kwh, a.hardware_usd_per_hour);
    }
    let servers = match &base_url {
        Some(u) => {
            crate::discover::discover(std::slice::from_ref(u), false)
                .await
                .servers
        }
        None => Vec::new(),
    };
    telemetry.watch_metrics(crate::run::metrics_urls(&servers));
    telemetry.set_fingerprint(crate::host::fingerprint(&id.host_id, &telemetry, &servers));
    let start_failed = match &started {
        Ok(s) => {
            fields.server_version = s.version.clone();
            fields.quantization = s.quantization.clone().or(fields.quantization);
            fields.load_time_sec = Some(s.load_time.as_secs_f64());
            None
        }
        Err(e) => {
            tracing::error!(point = %label, "{e}");
            job.run.not_started = Some((ErrorKind::ServerStartFailed, e.message.clone()));
            Some(e.message.clone())
        }
    };
    job.run.pace = crate::run::pace_for(&job.config, &telemetry);
    let mut instruments = PointInstruments {
        telemetry: &mut telemetry,
        fields,
        point: serde_json::to_value(point).unwrap_or_default(),
    };
    let outcome = job::run_job_with(job, env, progress, Some(&mut instruments)).await;
    drop(started);
    match outcome? {
        JobOutcome::Ran {
            manifest,
            publication,
            ..
        } => Ok(PointOutcome {
            label: label.to_string(),
            start_failed,
            records: manifest.records,
            successes: manifest.successes,
            stored_at: publication.describe(),
        }),
        _ => Ok(PointOutcome {
            label: label.to_string(),
            start_failed,
            records: 0,
            successes: 0,
            stored_at: String::new(),
        }),
    }
}
