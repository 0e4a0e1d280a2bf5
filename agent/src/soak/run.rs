//! The soak loop: draw the next segment's calls, write them to the state file, run them as one
//! ordinary run (with the agent's telemetry), fold the records into the live summary and the
//! profiles, and go on until the end time or a stop. A restart resumes from the state file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveTime, Utc};
use llmpulse_core::config::{Config, Endpoint, Target};
use llmpulse_core::instrument::Instruments;
use llmpulse_core::job::{self, JobError, JobRequest};
use llmpulse_core::record::Record;
use llmpulse_core::runner::{self, Stop};
use llmpulse_core::sink::{Each, Fanout, RecordSink};
use llmpulse_core::store::{self, Store};
use llmpulse_core::suite::Suite;
use llmpulse_core::{journal, layout};

use super::clock::{Clock, next_at};
use super::loader::{self, Loader};
use super::scenario::{self, Scenario};
use super::state::{Call, Segment, SegmentKind, SoakState};
use super::stats::{FAILOVER_PROBE, ModelInfo, Profiles, SoakStats, call_index, write_atomic};
use super::{Soak, report};
use crate::metrics::{self, Shared, Status};
use crate::run::AgentIdentity;
use crate::telemetry::Telemetry;

/// How a soak is started.
pub struct SoakOptions {
    pub spool: PathBuf,
    pub stop: Stop,
    pub clock: Clock,
    /// Override the `[soak]` end (a resumed soak keeps the end it started with).
    pub duration: Option<Duration>,
    pub until: Option<NaiveTime>,
    /// Models found by discovery, beside the config's targets.
    pub discovered: Vec<(Target, ModelInfo)>,
    /// Serve `/metrics` and `/health` here (the soak's counters and the hardware gauges).
    pub listen: Option<std::net::SocketAddr>,
}

/// Why a soak could not go on.
#[derive(Debug, thiserror::Error)]
pub enum SoakRunError {
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("{0}")]
    State(String),
    #[error("soak directory {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("no model to soak: give targets in the config, or --discover")]
    NoModels,
}

/// How a soak ended.
#[derive(Debug)]
pub struct SoakOutcome {
    pub state: SoakState,
    pub summary: PathBuf,
    pub profiles: PathBuf,
    pub report: PathBuf,
    /// The soak ended because its time was up (not stopped).
    pub finished: bool,
}

/// A model the soak rotates through.
#[derive(Debug, Clone)]
pub struct Model {
    pub target: Target,
    pub info: ModelInfo,
}

/// What the summary writer and the record sink share.
#[derive(Debug, Default)]
struct Live {
    stats: SoakStats,
    profiles: Profiles,
    base_profiles: Profiles,
    current_model: Option<String>,
    night: bool,
    rewrites: u64,
}

/// The soak's models: the config's targets (not fallback-only ones), then the discovered ones.
pub fn models(config: &Config, discovered: &[(Target, ModelInfo)]) -> Vec<Model> {
    let mut out: Vec<Model> = config
        .targets
        .iter()
        .filter(|t| !t.fallback_only)
        .map(|t| Model {
            target: t.clone(),
            info: ModelInfo {
                model_id: t.model.clone(),
                provider: t.provider.clone(),
                size_gb: None,
                context_length: None,
            },
        })
        .collect();
    for (t, info) in discovered {
        if !out.iter().any(|m| m.target.name == t.name) {
            out.push(Model {
                target: t.clone(),
                info: info.clone(),
            });
        }
    }
    out
}

/// Calls per minute that pace a segment's calls `pause` apart, when a whole number does.
fn paced_rpm(pause: Duration) -> Option<u32> {
    let per = 60.0 / pause.as_secs_f64();
    (per >= 1.0 && (per - per.round()).abs() < 1e-9).then_some(per.round() as u32)
}

/// Draws the next segment (updating the state's counters) for `models` in night mode or not.
pub fn next_segment(state: &mut SoakState, soak: &Soak, models: &[Model], night: bool) -> Segment {
    let weights = match (&soak.night.weights, night) {
        (Some(w), true) => w.clone(),
        _ => soak.weights.clone(),
    };
    let pause = if night { soak.night.pause } else { soak.pause };
    let draw = |state: &mut SoakState| -> Call {
        state.pending.take().unwrap_or_else(|| {
            let index = state.next_call;
            state.next_call += 1;
            Call {
                index,
                scenario: scenario::draw(soak.seed, index, &weights),
            }
        })
    };
    let first = draw(state);
    let kind = match first.scenario {
        Scenario::ConcurrentLoad => SegmentKind::Burst,
        Scenario::ProviderFailover => SegmentKind::Failover,
        _ => SegmentKind::Paced,
    };
    let mut calls = vec![first];
    match kind {
        SegmentKind::Burst => {
            let size = if night { soak.night.burst } else { soak.burst };
            for _ in 1..size {
                calls.push(Call {
                    index: state.next_call,
                    scenario: Scenario::ConcurrentLoad,
                });
                state.next_call += 1;
            }
        }
        SegmentKind::Failover => {}
        SegmentKind::Paced => {
            // A pause that no whole number of calls per minute gives: one call per segment,
            // with the pause slept between segments.
            let most = if pause.is_zero() || paced_rpm(pause).is_some() {
                soak.segment_calls
            } else {
                1
            };
            while (calls.len() as u32) < most.min(state.rotation_left.max(1)) {
                let c = draw(state);
                if matches!(
                    c.scenario,
                    Scenario::ConcurrentLoad | Scenario::ProviderFailover
                ) {
                    state.pending = Some(c);
                    break;
                }
                calls.push(c);
            }
        }
    }
    let model = models[(state.rotation % models.len() as u64) as usize]
        .target
        .name
        .clone();
    state.rotation_left = state.rotation_left.saturating_sub(calls.len() as u32);
    if state.rotation_left == 0 {
        state.rotation += 1;
        state.rotation_left = scenario::rotation_length(
            soak.seed,
            state.rotation,
            soak.rotate_every.0,
            soak.rotate_every.1,
        );
        if models.len() > 1 {
            state.stats.rotations += 1;
        }
    }
    Segment {
        run_id: runner::new_run_id(Utc::now()),
        model,
        kind,
        night,
        calls,
    }
}

/// The records a staged run journaled before it died.
fn journaled(spool: &Path, run_id: &str) -> Vec<Record> {
    let dir = journal::staging_dir(spool, run_id, None);
    let mut out = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p
                .strip_prefix(&dir)
                .map(|r| r.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            if !layout::is_records_jsonl(&rel) {
                continue;
            }
            let Ok(text) = std::fs::read(&p) else {
                continue;
            };
            // A line cut by the kill is not a record: skipped, as the journal's recovery does.
            out.extend(
                text.split(|b| *b == b'\n')
                    .filter_map(|l| serde_json::from_slice::<Record>(l).ok()),
            );
        }
    }
    out
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SoakRunError + '_ {
    move |cause| SoakRunError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Runs (or resumes) the soak. `progress` sees every record.
pub async fn run_soak(
    config: &Config,
    soak: &Soak,
    opts: SoakOptions,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    progress: &mut dyn RecordSink,
) -> Result<SoakOutcome, SoakRunError> {
    let models = models(config, &opts.discovered);
    if models.is_empty() {
        return Err(SoakRunError::NoModels);
    }
    let id = AgentIdentity::of(config);
    std::fs::create_dir_all(&soak.dir).map_err(io(&soak.dir))?;
    let store = match store::open(&config.output, env).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(event = "store", "profiles will be kept locally only: {e}");
            None
        }
    };
    let profiles_key = layout::profiles_key(&id.host_id);

    let mut state = match SoakState::load(&soak.dir).map_err(SoakRunError::State)? {
        Some(s) if s.name == soak.name && s.seed == soak.seed && !s.finished => {
            tracing::info!(
                event = "resume",
                soak = %s.name,
                calls = s.next_call,
                "resuming the soak where it stopped"
            );
            s
        }
        old => {
            if let Some(old) = old {
                let keep = soak.dir.join(format!(
                    "state-{}.json",
                    old.started_at.format("%Y%m%dT%H%M%SZ")
                ));
                std::fs::rename(SoakState::path(&soak.dir), &keep).map_err(io(&keep))?;
            }
            let now = Utc::now();
            let local = opts.clock.now();
            let duration = opts.duration.or(soak.duration);
            let until = opts.until.or(soak.until);
            let ends_at = match (duration, until) {
                (Some(d), _) => Some(now + chrono::TimeDelta::from_std(d).unwrap_or_default()),
                (None, Some(t)) => Some(now + (next_at(local, t) - local)),
                (None, None) => None,
            };
            let base_profiles = match &store {
                Some(s) => match s.get(&profiles_key).await {
                    Ok(Some(b)) => Profiles::from_json(&b).unwrap_or_else(|e| {
                        tracing::warn!(event = "profiles", "stored profiles unreadable: {e}");
                        Profiles::default()
                    }),
                    _ => Profiles::default(),
                },
                None => Profiles::default(),
            };
            SoakState {
                name: soak.name.clone(),
                seed: soak.seed,
                started_at: now,
                ends_at,
                next_call: 0,
                rotation: 0,
                rotation_left: scenario::rotation_length(
                    soak.seed,
                    0,
                    soak.rotate_every.0,
                    soak.rotate_every.1,
                ),
                pending: None,
                in_flight: None,
                stats: SoakStats::default(),
                profiles: Profiles::default(),
                base_profiles,
                rewrites: 0,
                finished: false,
            }
        }
    };
    let clock = opts.clock.clone().anchored(state.started_at);
    let live = Arc::new(Mutex::new(Live {
        stats: std::mem::take(&mut state.stats),
        profiles: std::mem::take(&mut state.profiles),
        base_profiles: state.base_profiles.clone(),
        current_model: None,
        night: false,
        rewrites: state.rewrites,
    }));
    let info = |name: &str| {
        models
            .iter()
            .find(|m| m.target.name == name)
            .map(|m| m.info.clone())
    };

    // The segment a kill interrupted: its journaled records count, the rest are asked again.
    let resumed = state.in_flight.take();
    let mut again = None;
    if let Some(seg) = &resumed {
        let done = journaled(&opts.spool, &seg.run_id);
        let mut finished = HashSet::new();
        {
            let mut l = lock(&live);
            for r in &done {
                l.stats.add(r, seg.night);
                l.profiles.add(r, info(&r.target).as_ref());
                if r.target != FAILOVER_PROBE {
                    finished.extend(call_index(r));
                }
            }
        }
        let rest: Vec<Call> = seg
            .calls
            .iter()
            .copied()
            .filter(|c| !finished.contains(&c.index))
            .collect();
        tracing::info!(
            event = "resume",
            run_id = %seg.run_id,
            recorded = finished.len(),
            asked_again = rest.len(),
            "the interrupted segment"
        );
        if !rest.is_empty() && models.iter().any(|m| m.target.name == seg.model) {
            again = Some(Segment {
                run_id: runner::new_run_id(Utc::now()),
                calls: rest,
                ..seg.clone()
            });
        }
    }
    if resumed.is_some() {
        // Written before the interrupted run leaves the spool: a kill between the two must not
        // make the next start ask the journaled calls again.
        state.in_flight = again.clone();
        save(&mut state, &live, &soak.dir)?;
    }
    // Runs left in the spool (the interrupted segment among them) go to the store first.
    crate::serve::flush_spool(&opts.spool, env).await;

    // Telemetry watches the servers of every model, discovered ones included.
    let watched = Config {
        targets: models.iter().map(|m| m.target.clone()).collect(),
        ..config.clone()
    };
    let mut telemetry = crate::run::telemetry_for(&watched, &id).await;
    let shared = match opts.listen {
        Some(addr) => {
            let live = live.clone();
            let name = soak.name.clone();
            let shared = Shared {
                status: Arc::new(Mutex::new(Status::default())),
                in_flight: Arc::new(Mutex::new(None)),
                telemetry: telemetry.handle(),
                spool: opts.spool.clone(),
                host_id: id.host_id.clone(),
                extra: Some(Arc::new(move || {
                    let l = lock(&live);
                    l.stats.prometheus(&name, l.night)
                })),
            };
            let bound = metrics::spawn(addr, shared.clone())
                .await
                .map_err(io(Path::new("--listen")))?;
            tracing::info!(event = "metrics", "serving /metrics on http://{bound}");
            Some(shared)
        }
        None => None,
    };
    let summary_path = soak.dir.join("test_summary.json");
    let profiles_path = soak.dir.join("profiles.json");
    let writer = spawn_summary_writer(
        live.clone(),
        soak.name.clone(),
        state.started_at,
        summary_path.clone(),
        profiles_path.clone(),
        soak.summary_interval,
    );
    let deadline = state.ends_at.map(|e| {
        let left = (e - Utc::now()).to_std().unwrap_or_default();
        Instant::now() + left
    });
    let mut last_upload = Instant::now();
    let mut previous: Option<String> = None;
    let mut result = Ok(());
    let mut finished = false;
    loop {
        if opts.stop.requested() {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            finished = true;
            break;
        }
        let night = soak.night.window.contains(clock.now().time());
        let seg = match again.take() {
            Some(s) => s,
            None => {
                let mut stats = lock(&live).stats.clone();
                std::mem::swap(&mut state.stats, &mut stats);
                let seg = next_segment(&mut state, soak, &models, night);
                std::mem::swap(&mut state.stats, &mut stats);
                lock(&live).stats.rotations = stats.rotations;
                seg
            }
        };
        let mut load_time = None;
        if previous.as_deref() != Some(seg.model.as_str()) {
            tracing::info!(event = "rotate", model = %seg.model, "model");
            load_time = rotate(previous.as_deref(), &seg.model, &models, &live).await;
            previous = Some(seg.model.clone());
        }
        {
            let mut l = lock(&live);
            l.current_model = Some(seg.model.clone());
            l.night = night;
        }
        state.in_flight = Some(seg.clone());
        save(&mut state, &live, &soak.dir)?;
        tracing::debug!(
            event = "segment",
            run_id = %seg.run_id,
            model = %seg.model,
            kind = ?seg.kind,
            calls = seg.calls.len(),
            night,
            "segment"
        );
        let ran = run_segment(
            config,
            soak,
            &seg,
            &models,
            &id,
            &mut telemetry,
            &opts,
            deadline,
            env,
            &live,
            shared.as_ref(),
            load_time,
            progress,
        )
        .await;
        if let Err(e) = ran {
            result = Err(e);
            break;
        }
        state.in_flight = None;
        lock(&live).stats.segments += 1;
        save(&mut state, &live, &soak.dir)?;
        if let Some(s) = &store
            && last_upload.elapsed() >= soak.summary_interval
        {
            upload_profiles(s.as_ref(), &profiles_key, &live).await;
            last_upload = Instant::now();
        }
        let pause = if night { soak.night.pause } else { soak.pause };
        if !pause.is_zero() && !opts.stop.requested() {
            let wait = match deadline {
                Some(d) => pause.min(d.saturating_duration_since(Instant::now())),
                None => pause,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = opts.stop.wait_requested() => {}
            }
        }
    }
    writer.abort();
    state.finished = finished && result.is_ok();
    save(&mut state, &live, &soak.dir)?;
    write_summary(
        &live,
        &soak.name,
        state.started_at,
        &summary_path,
        &profiles_path,
    )
    .map_err(io(&summary_path))?;
    if let Some(s) = &store {
        upload_profiles(s.as_ref(), &profiles_key, &live).await;
    }
    let report_path = soak.dir.join("final_report.md");
    {
        let l = lock(&live);
        let text = report::render(
            &soak.name,
            &state,
            &l.stats,
            &l.profiles.merged(&l.base_profiles),
            &config.output,
        );
        write_atomic(&report_path, text.as_bytes()).map_err(io(&report_path))?;
    }
    result?;
    let l = lock(&live);
    state.stats = l.stats.clone();
    state.profiles = l.profiles.clone();
    Ok(SoakOutcome {
        state,
        summary: summary_path,
        profiles: profiles_path,
        report: report_path,
        finished,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes the state with the live counters.
fn save(state: &mut SoakState, live: &Mutex<Live>, dir: &Path) -> Result<(), SoakRunError> {
    {
        let l = lock(live);
        state.stats = l.stats.clone();
        state.profiles = l.profiles.clone();
        state.rewrites = l.rewrites;
    }
    let r = state.save(dir).map_err(io(dir));
    state.stats = SoakStats::default();
    state.profiles = Profiles::default();
    r
}

async fn upload_profiles(store: &dyn Store, key: &str, live: &Mutex<Live>) {
    let bytes = {
        let l = lock(live);
        serde_json::to_vec_pretty(&l.profiles.merged(&l.base_profiles).to_json())
            .unwrap_or_default()
    };
    if let Err(e) = store.put(key, bytes.into()).await {
        tracing::warn!(
            event = "profiles",
            "profiles not stored (kept locally): {e}"
        );
    }
}

/// Rewrites the summary and the profiles (atomically) now.
fn write_summary(
    live: &Mutex<Live>,
    name: &str,
    started_at: DateTime<Utc>,
    summary: &Path,
    profiles: &Path,
) -> std::io::Result<String> {
    let (s, p, line) = {
        let mut l = lock(live);
        l.rewrites += 1;
        let now = Utc::now();
        let v = l.stats.summary(
            name,
            started_at,
            now,
            l.night,
            l.current_model.as_deref(),
            l.rewrites,
        );
        let elapsed = (now - started_at).num_milliseconds() as f64 / 1e3;
        let line = l.stats.line(elapsed, l.current_model.as_deref(), l.night);
        let p = l.profiles.merged(&l.base_profiles).to_json();
        (v, p, line)
    };
    write_atomic(
        summary,
        &serde_json::to_vec_pretty(&s).map_err(std::io::Error::other)?,
    )?;
    write_atomic(
        profiles,
        &serde_json::to_vec_pretty(&p).map_err(std::io::Error::other)?,
    )?;
    Ok(line)
}

fn spawn_summary_writer(
    live: Arc<Mutex<Live>>,
    name: String,
    started_at: DateTime<Utc>,
    summary: PathBuf,
    profiles: PathBuf,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match write_summary(&live, &name, started_at, &summary, &profiles) {
                // The one-line summary, on the terminal or in the logs.
                Ok(line) => tracing::info!(event = "summary", "{line}"),
                Err(e) => tracing::warn!(event = "summary", "cannot write the summary: {e}"),
            }
        }
    })
}

/// Unloads the model the soak leaves and loads the one it moves to, through their servers' APIs
/// where they have one; the load time, when there was a load.
async fn rotate(from: Option<&str>, to: &str, models: &[Model], live: &Mutex<Live>) -> Option<f64> {
    let find = |name: &str| models.iter().find(|m| m.target.name == name);
    match from.and_then(find) {
        Some(m) => {
            if let Some(l) = Loader::of(&m.target) {
                match loader::unload(&l, &m.target).await {
                    Ok(()) => tracing::info!(event = "unload", model = %m.target.name, "unloaded"),
                    Err(e) => {
                        tracing::warn!(event = "unload", model = %m.target.name, "unload failed: {e}")
                    }
                }
            }
        }
        // The soak's start: the other models leave memory, whatever loaded them.
        None => {
            for m in models.iter().filter(|m| m.target.name != to) {
                if let Some(l) = Loader::of(&m.target)
                    && loader::unload(&l, &m.target).await.is_ok()
                {
                    tracing::info!(event = "unload", model = %m.target.name, "unloaded");
                }
            }
        }
    }
    let m = find(to)?;
    let l = Loader::of(&m.target)?;
    match loader::load(&l, &m.target).await {
        Ok(took) => {
            let secs = (took.as_secs_f64() * 1e3).round() / 1e3;
            tracing::info!(event = "load", model = %to, load_time_sec = secs, "loaded");
            lock(live).profiles.loaded(to, &m.info, secs);
            Some(secs)
        }
        Err(e) => {
            tracing::warn!(event = "load", model = %to, "load failed (its first call will load it): {e}");
            None
        }
    }
}

/// The agent's telemetry, plus the load time on the records of the segment after a load.
struct SoakInstruments<'a> {
    telemetry: &'a mut Telemetry,
    load_time_sec: Option<f64>,
}

impl Instruments for SoakInstruments<'_> {
    fn host(&mut self) -> Option<serde_json::Value> {
        self.telemetry.host()
    }

    fn start(
        &mut self,
        series: &Path,
        in_flight: Arc<std::sync::atomic::AtomicU32>,
    ) -> std::io::Result<()> {
        self.telemetry.start(series, in_flight)
    }

    fn annotate(&mut self, r: &mut Record) {
        self.telemetry.annotate(r);
        if self.load_time_sec.is_some() {
            r.load_time_sec = self.load_time_sec;
        }
    }

    fn stop(&mut self) {
        self.telemetry.stop();
    }
}

/// The segment's targets: the model (paced by the pause), or the failing probe with the model
/// as its fallback.
fn segment_targets(model: &Target, soak: &Soak, seg: &Segment) -> Vec<Target> {
    let mut t = model.clone();
    match seg.kind {
        SegmentKind::Paced => {
            let pause = if seg.night {
                soak.night.pause
            } else {
                soak.pause
            };
            if !pause.is_zero() {
                t.limits.rpm = paced_rpm(pause).or(t.limits.rpm);
            }
            vec![t]
        }
        SegmentKind::Burst => {
            t.limits.max_concurrency = None;
            vec![t]
        }
        SegmentKind::Failover => {
            let mut probe = model.clone();
            probe.name = FAILOVER_PROBE.to_string();
            probe.endpoint = Endpoint::Http {
                base_url: soak.failover_url.clone(),
            };
            probe.protocol = llmpulse_core::preset::Protocol::Openai;
            probe.api_key = None;
            probe.headers.clear();
            probe.retry.max_attempts = 1;
            probe.timeouts.connect = Duration::from_secs(2);
            probe.fallback = Some(model.name.clone());
            probe.fallback_only = false;
            t.fallback_only = true;
            t.fallback = None;
            vec![probe, t]
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_segment(
    config: &Config,
    soak: &Soak,
    seg: &Segment,
    models: &[Model],
    id: &AgentIdentity,
    telemetry: &mut Telemetry,
    opts: &SoakOptions,
    deadline: Option<Instant>,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    live: &Arc<Mutex<Live>>,
    shared: Option<&Shared>,
    load_time_sec: Option<f64>,
    progress: &mut dyn RecordSink,
) -> Result<(), SoakRunError> {
    let Some(model) = models.iter().find(|m| m.target.name == seg.model) else {
        return Ok(());
    };
    let answer_room = model.target.params.max_tokens.unwrap_or(512) + 256;
    let context = model
        .info
        .context_length
        .unwrap_or(soak.context_length)
        .saturating_sub(answer_room)
        .max(256);
    let questions = seg
        .calls
        .iter()
        .map(|c| scenario::question(soak.seed, c.index, c.scenario, context))
        .collect();
    let mut cfg = config.clone();
    cfg.targets = segment_targets(&model.target, soak, seg);
    cfg.campaign = None;
    cfg.repetitions = 1;
    cfg.concurrency = match seg.kind {
        SegmentKind::Burst => seg.calls.len() as u32,
        _ => 1,
    };
    let request = JobRequest {
        stop: Some(opts.stop.clone()),
        run_id: Some(seg.run_id.clone()),
        // No call starts after the soak's end; calls going then get a minute.
        deadline: deadline.map(|d| d + Duration::from_secs(60)),
        deadline_margin: Some(Duration::from_secs(60)),
        ..JobRequest::new(id.origin(), opts.spool.clone(), Utc::now())
    };
    let mut job = request.prepare(cfg)?;
    job.suite = Suite {
        name: format!("soak-{}", soak.name),
        description: "calls drawn by llmpulse-agent soak".into(),
        system: None,
        template: "Context:\n{context}\n\nQuestion: {question}".into(),
        questions,
        sha256: format!("soak:{}:{}", soak.name, soak.seed),
    };
    job.run.campaign = Some(soak.name.clone());
    let info = model.info.clone();
    let night = seg.night;
    let live = live.clone();
    let mut fold = Each(move |r: &Record| {
        let mut l = lock(&live);
        l.stats.add(r, night);
        l.profiles.add(r, Some(&info));
        if r.success {
            tracing::debug!(event = "call", model = %r.target, question = %r.question_id, latency = r.latency_sec, "ok");
        } else {
            tracing::info!(
                event = "error",
                model = %r.target,
                question = %r.question_id,
                error_kind = r.error_kind.map(|k| k.as_str()).unwrap_or_default(),
                "call failed"
            );
        }
    });
    let mut sink = Fanout(vec![&mut fold, progress]);
    if let Some(s) = shared {
        *lock(&s.in_flight) = Some(job.run.in_flight.clone());
    }
    let mut instruments = SoakInstruments {
        telemetry,
        load_time_sec,
    };
    let outcome = job::run_job_with(job, env, &mut sink, Some(&mut instruments)).await;
    if let Some(s) = shared {
        *lock(&s.in_flight) = None;
        let mut st = lock(&s.status);
        match &outcome {
            Ok(job::JobOutcome::Ran {
                manifest, summary, ..
            }) => {
                st.runs_total += 1;
                st.last_run_id = Some(manifest.run_id.clone());
                st.last_run_finished_unix = Some(Utc::now().timestamp_millis() as f64 / 1e3);
                st.last_run = summary.clone();
            }
            Ok(_) => {}
            Err(e) => {
                st.runs_failed += 1;
                st.last_error = Some(e.to_string());
            }
        }
    }
    outcome?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soak(text: &str) -> Soak {
        Soak::parse(text, "t.toml").unwrap()
    }

    fn models(n: usize) -> Vec<Model> {
        let text = (0..n)
            .map(|i| {
                format!("[[targets]]\nname = \"m{i}\"\nprovider = \"sim\"\nmodel = \"m{i}\"\n")
            })
            .collect::<String>();
        let c = Config::parse(&text, "t", PathBuf::from("/tmp"), &|_| None).unwrap();
        super::models(&c, &[])
    }

    fn fresh(s: &Soak) -> SoakState {
        SoakState {
            name: s.name.clone(),
            seed: s.seed,
            started_at: Utc::now(),
            ends_at: None,
            next_call: 0,
            rotation: 0,
            rotation_left: scenario::rotation_length(s.seed, 0, s.rotate_every.0, s.rotate_every.1),
            pending: None,
            in_flight: None,
            stats: SoakStats::default(),
            profiles: Profiles::default(),
            base_profiles: Profiles::default(),
            rewrites: 0,
            finished: false,
        }
    }

    #[test]
    fn segments_cover_every_call_once_and_rotate_between_models() {
        let s = soak("[soak]\nrotate_every = [5, 5]\nburst = 3\npause = \"0s\"\n");
        let ms = models(2);
        let mut st = fresh(&s);
        let mut seen = Vec::new();
        let mut per_model_run = Vec::new();
        for _ in 0..200 {
            let seg = next_segment(&mut st, &s, &ms, false);
            assert!(!seg.calls.is_empty());
            match seg.kind {
                SegmentKind::Burst => assert_eq!(seg.calls.len(), 3),
                SegmentKind::Failover => assert_eq!(seg.calls.len(), 1),
                SegmentKind::Paced => assert!(seg.calls.iter().all(|c| !matches!(
                    c.scenario,
                    Scenario::ConcurrentLoad | Scenario::ProviderFailover
                ))),
            }
            match per_model_run.last_mut() {
                Some((m, n)) if *m == seg.model => *n += seg.calls.len(),
                _ => per_model_run.push((seg.model.clone(), seg.calls.len())),
            }
            seen.extend(seg.calls.iter().map(|c| c.index));
        }
        // Every call index drawn exactly once (the pending call opens the next segment).
        let n = seen.len() as u64;
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len() as u64, n);
        assert!(
            seen.iter()
                .copied()
                .eq(0..n - u64::from(st.pending.is_some()))
                || seen.iter().copied().eq(0..n)
        );
        // Models alternate, each for about 5 calls (a burst may run past the boundary).
        for pair in per_model_run.windows(2) {
            assert_ne!(pair[0].0, pair[1].0);
        }
        assert!(
            per_model_run[..per_model_run.len() - 1]
                .iter()
                .all(|(_, n)| (5..=7).contains(n)),
            "{per_model_run:?}"
        );
        assert!(st.stats.rotations > 20);
    }

    #[test]
    fn a_pause_that_divides_a_minute_paces_calls_else_one_call_per_segment() {
        assert_eq!(paced_rpm(Duration::from_millis(500)), Some(120));
        assert_eq!(paced_rpm(Duration::from_secs(30)), Some(2));
        assert_eq!(paced_rpm(Duration::from_secs(45)), None);
        assert_eq!(paced_rpm(Duration::from_secs(120)), None);
        let s = soak(
            "[soak]\npause = \"45s\"\nweights = { prompt_variety = 1, concurrent_load = 0, provider_failover = 0 }\n",
        );
        let ms = models(1);
        let mut st = fresh(&s);
        for _ in 0..5 {
            assert_eq!(next_segment(&mut st, &s, &ms, false).calls.len(), 1);
        }
    }

    #[test]
    fn night_uses_its_own_burst_and_mix() {
        let s = soak(
            "[soak]\nburst = 6\n[soak.night]\nburst = 2\nweights = { concurrent_load = 1, prompt_variety = 0, simple_inference = 0, tool_calling = 0, streaming = 0, large_context = 0, provider_failover = 0 }\n",
        );
        let ms = models(1);
        let mut st = fresh(&s);
        let seg = next_segment(&mut st, &s, &ms, true);
        assert_eq!(seg.kind, SegmentKind::Burst);
        assert_eq!(seg.calls.len(), 2);
        assert!(seg.night);
    }
}
