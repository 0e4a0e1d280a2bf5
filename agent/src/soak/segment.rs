//! One segment of a soak: the models it rotates through, how the next segment's calls are
//! drawn (`next_segment`), the targets a segment runs against, and running it as one ordinary
//! run with the agent's telemetry.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use llmpulse_core::config::{Config, Endpoint, Target};
use llmpulse_core::instrument::Instruments;
use llmpulse_core::job::{self, JobRequest};
use llmpulse_core::record::Record;
use llmpulse_core::runner;
use llmpulse_core::sink::{Each, Fanout, RecordSink};
use llmpulse_core::suite::Suite;

use super::Soak;
use super::live::{Live, lock};
use super::options::{SoakOptions, SoakRunError};
use super::scenario::{self, Scenario};
use super::state::{Call, Segment, SegmentKind, SoakState};
use super::stats::{FAILOVER_PROBE, ModelInfo};
use crate::metrics::Shared;
use crate::run::AgentIdentity;
use crate::telemetry::Telemetry;

/// A model the soak rotates through.
#[derive(Debug, Clone)]
pub struct Model {
    pub target: Target,
    pub info: ModelInfo,
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

/// Fills what a model's own server says (context length, size) where the config did not: the
/// server at the target's base URL, its model of the target's name, else its only model.
pub fn fill_from_servers(models: &mut [Model], servers: &[crate::discover::Server]) {
    for m in models.iter_mut() {
        let llmpulse_core::config::Endpoint::Http { base_url } = &m.target.endpoint else {
            continue;
        };
        let root = crate::discover::root_of(base_url);
        let Some(server) = servers.iter().find(|s| s.url == root) else {
            continue;
        };
        let found = server
            .models
            .iter()
            .find(|x| x.name == m.target.model)
            .or_else(|| (server.models.len() == 1).then(|| &server.models[0]));
        if let Some(x) = found {
            m.info.context_length = m
                .info
                .context_length
                .or(x.context_length.and_then(|c| u32::try_from(c).ok()));
            m.info.size_gb = m.info.size_gb.or(x.size_bytes.map(|b| b as f64 / 1e9));
        }
    }
}

/// Calls per minute that pace a segment's calls `pause` apart, when a whole number does.
fn paced_rpm(pause: Duration) -> Option<u32> {
    let per = 60.0 / pause.as_secs_f64();
    (per >= 1.0 && (per - per.round()).abs() < 1e-9).then_some(per.round() as u32)
}

/// Whether a soak of a number of calls (`[soak] calls`) has drawn them all.
fn all_drawn(state: &SoakState, soak: &Soak) -> bool {
    soak.calls.is_some_and(|n| state.next_call >= n)
}

/// Whether a soak of a number of calls has asked them all: a drawn call still waiting for its
/// segment has not been asked.
pub fn all_asked(state: &SoakState, soak: &Soak) -> bool {
    state.pending.is_none() && all_drawn(state, soak)
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
                if all_drawn(state, soak) {
                    break;
                }
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
            while (calls.len() as u32) < most.min(state.rotation_left.max(1))
                && !all_drawn(state, soak)
            {
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

    fn server_metrics(&mut self) -> Option<serde_json::Value> {
        self.telemetry.server_metrics()
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
            probe.clock = llmpulse_core::provider::ClockSource::Kernel; // an http target's default
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
pub(super) async fn run_segment(
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
    let live_after = Arc::clone(live);
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
    let night_duty = if seg.night { soak.night.duty } else { None };
    let pace = crate::run::pace_with(&job.config, telemetry, night_duty);
    job.run.pace = pace.clone();
    let mut instruments = SoakInstruments {
        telemetry,
        load_time_sec,
    };
    let outcome = job::run_job_with(job, env, &mut sink, Some(&mut instruments)).await;
    if let Some(p) = &pace {
        lock(&live_after).stats.add_pace(p.report());
    }
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
    use crate::soak::stats::{Profiles, SoakStats};
    use std::path::PathBuf;

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
    fn a_soak_of_a_number_of_calls_asks_each_once_and_no_more() {
        for seed in 1..40 {
            let s = soak(&format!(
                "[soak]\ncalls = 17\nrotate_every = [3, 3]\nburst = 4\npause = \"0s\"\nseed = {seed}\n"
            ));
            let ms = models(2);
            let mut st = fresh(&s);
            let mut asked = Vec::new();
            while !all_asked(&st, &s) {
                asked.extend(
                    next_segment(&mut st, &s, &ms, false)
                        .calls
                        .iter()
                        .map(|c| c.index),
                );
            }
            assert!(asked.iter().copied().eq(0..17), "seed {seed}: {asked:?}");
        }
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
