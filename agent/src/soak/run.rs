//! The soak loop: draw the next segment's calls, write them to the state file, run them as one
//! ordinary run (with the agent's telemetry), fold the records into the live summary and the
//! profiles, and go on until the end time or a stop. A restart resumes from the state file.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;
use llmpulse_core::config::Config;
use llmpulse_core::record::Record;
use llmpulse_core::runner;
use llmpulse_core::sink::RecordSink;
use llmpulse_core::store;
use llmpulse_core::{journal, layout};

use super::clock::next_at;
use super::live::{Live, lock, spawn_summary_writer, upload_profiles, write_summary};
use super::loader::{self, Loader};
pub use super::options::{SoakOptions, SoakOutcome, SoakRunError};
use super::scenario;
use super::segment::{Model, all_asked, models, next_segment, run_segment};
use super::state::{Call, Segment, SoakState};
use super::stats::{FAILOVER_PROBE, Profiles, SoakStats, call_index, write_atomic};
use super::{Soak, report};
use crate::metrics::{self, Shared};
use crate::run::AgentIdentity;

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
    let mut models = models(config, &opts.discovered);
    if models.is_empty() {
        return Err(SoakRunError::NoModels);
    }
    // The configured targets on local servers: their context length and size as the servers
    // say, so that the large-context scenario fits each model's window.
    let local = Config {
        targets: models.iter().map(|m| m.target.clone()).collect(),
        ..config.clone()
    };
    crate::soak::segment::fill_from_servers(&mut models, &crate::run::servers_of(&local).await);
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
                extra: Some(Arc::new(move |page| {
                    let l = lock(&live);
                    l.stats.expose(&name, l.night, page);
                })),
                ..Shared::new(telemetry.handle(), opts.spool.clone(), id.host_id.clone())
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
        if again.is_none() && all_asked(&state, soak) {
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
