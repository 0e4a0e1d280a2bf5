//! Hardware telemetry around a run: a thread samples every [`sources`] reader at a fixed rate
//! (10 Hz by default) into the run's series file and a ring of recent samples; each finished
//! call takes its figures from the ring ([`window`]). [`Telemetry`] is the agent's
//! implementation of core's `Instruments`.

pub mod sources;
pub mod window;

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llmpulse_core::instrument::Instruments;
use llmpulse_core::record::Record;
use serde::{Deserialize, Serialize};

use sources::Sources;

/// One moment's readings. Absent sources leave their fields out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the Unix epoch.
    pub t: f64,
    /// Requests on the wire.
    pub in_flight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_used_mb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_used_mb: Option<f64>,
    /// The serving process trees, by listening port.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub servers: BTreeMap<u16, ServerSample>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_mem_mb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_util_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_power_w: Option<f64>,
    /// NVML's total energy counters, summed over GPUs, J since driver load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_energy_j: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_temp_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_clock_mhz: Option<f64>,
    /// RAPL package energy counted since the agent started, J.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rapl_energy_j: Option<f64>,
}

/// A serving process tree's readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerSample {
    pub rss_mb: f64,
    pub cpu_pct: f64,
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// How many samples the ring keeps: enough to cover any call (at 10 Hz, an hour).
const RING: usize = 36_000;

struct Shared {
    sources: Mutex<Sources>,
    ring: Mutex<VecDeque<Sample>>,
    series: Mutex<Option<BufWriter<std::fs::File>>>,
    in_flight: Mutex<Option<Arc<AtomicU32>>>,
    stop: AtomicBool,
    running: AtomicBool,
    samples: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Reads every source now; the sample goes to the ring and the series.
    fn sample(&self) -> Sample {
        let mut s = Sample {
            t: now_unix(),
            in_flight: lock(&self.in_flight)
                .as_ref()
                .map_or(0, |c| c.load(Ordering::Relaxed)),
            ..Sample::default()
        };
        lock(&self.sources).read(&mut s);
        // Time order in the ring: a sample taken on demand may race the thread's.
        {
            let mut ring = lock(&self.ring);
            let at = ring.partition_point(|x| x.t <= s.t);
            ring.insert(at, s.clone());
            while ring.len() > RING {
                ring.pop_front();
            }
        }
        if let Some(w) = lock(&self.series).as_mut() {
            let _ = serde_json::to_writer(&mut *w, &s);
            let _ = w.write_all(b"\n");
        }
        self.samples.fetch_add(1, Ordering::Relaxed);
        s
    }
}

/// Reads the newest sample from another thread.
#[derive(Clone)]
pub struct Handle(Arc<Shared>);

impl Handle {
    /// The newest sample while a run samples; a fresh one between runs.
    pub fn latest(&self) -> Sample {
        if self.0.running.load(Ordering::Relaxed)
            && let Some(s) = lock(&self.0.ring).back().cloned()
        {
            return s;
        }
        self.0.sample()
    }

    /// Samples taken so far.
    pub fn sample_count(&self) -> u64 {
        self.0.samples.load(Ordering::Relaxed)
    }
}

/// The agent's hardware measurement: a sampler thread, per-call figures, the host fingerprint.
pub struct Telemetry {
    host_id: String,
    interval: Duration,
    /// Target name → the local port of its server.
    ports: BTreeMap<String, u16>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    fingerprint: Option<serde_json::Value>,
}

impl Telemetry {
    /// Opens the sources for these targets' servers (`target → port`), sampling at `hz`.
    pub fn new(host_id: String, hz: f64, ports: BTreeMap<String, u16>) -> Telemetry {
        let unique: Vec<u16> = {
            let mut p: Vec<u16> = ports.values().copied().collect();
            p.sort_unstable();
            p.dedup();
            p
        };
        let sources = Sources::open(&unique);
        Telemetry {
            host_id,
            interval: Duration::from_secs_f64(1.0 / hz.clamp(0.01, 100.0)),
            ports,
            shared: Arc::new(Shared {
                sources: Mutex::new(sources),
                ring: Mutex::new(VecDeque::new()),
                series: Mutex::new(None),
                in_flight: Mutex::new(None),
                stop: AtomicBool::new(false),
                running: AtomicBool::new(false),
                samples: 0.into(),
            }),
            thread: None,
            fingerprint: None,
        }
    }

    /// The fingerprint [`Instruments::host`] gives the manifest.
    pub fn set_fingerprint(&mut self, fingerprint: serde_json::Value) {
        self.fingerprint = Some(fingerprint);
    }

    /// Sources this host lacks, with why.
    pub fn absent(&self) -> Vec<sources::Absent> {
        lock(&self.shared.sources).absent.clone()
    }

    /// GPUs for the fingerprint.
    pub fn gpus(&self) -> Vec<serde_json::Value> {
        lock(&self.shared.sources).gpus()
    }

    /// The pid listening on each watched port.
    pub fn server_pids(&self) -> BTreeMap<u16, Option<u32>> {
        lock(&self.shared.sources).server_pids()
    }

    /// A handle the `/metrics` endpoint reads the newest sample through.
    pub fn handle(&self) -> Handle {
        Handle(self.shared.clone())
    }

    fn spawn(&mut self) {
        if self.thread.is_some() {
            return;
        }
        self.shared.stop.store(false, Ordering::Relaxed);
        self.shared.running.store(true, Ordering::Relaxed);
        let shared = self.shared.clone();
        let interval = self.interval;
        self.thread = std::thread::Builder::new()
            .name("telemetry".into())
            .spawn(move || {
                let mut next = std::time::Instant::now();
                while !shared.stop.load(Ordering::Relaxed) {
                    shared.sample();
                    next += interval;
                    let now = std::time::Instant::now();
                    if next > now {
                        std::thread::park_timeout(next - now);
                    } else {
                        // Behind (a slow reader): skip the missed ticks, do not burst.
                        next = now;
                    }
                }
            })
            .ok();
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.running.store(false, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.halt();
    }
}

impl Instruments for Telemetry {
    fn host(&mut self) -> Option<serde_json::Value> {
        self.fingerprint.clone()
    }

    fn start(&mut self, series: &Path, in_flight: Arc<AtomicU32>) -> std::io::Result<()> {
        if let Some(dir) = series.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::File::create(series)?;
        *lock(&self.shared.series) = Some(BufWriter::new(file));
        *lock(&self.shared.in_flight) = Some(in_flight);
        lock(&self.shared.ring).clear();
        self.spawn();
        Ok(())
    }

    fn annotate(&mut self, r: &mut Record) {
        r.host_id = Some(self.host_id.clone());
        let Ok(sent) = chrono::DateTime::parse_from_rfc3339(&r.timestamp) else {
            return;
        };
        if r.attempts == 0 {
            return;
        }
        let start = sent.timestamp_micros() as f64 / 1e6;
        let end = start + r.latency_sec;
        // A sample now, unless one came after the call's end already: the ring must reach past
        // it (and many short calls ending at once need only one).
        let newest = lock(&self.shared.ring).back().map_or(f64::MIN, |s| s.t);
        if newest < end {
            self.shared.sample();
        }
        let port = self.ports.get(&r.target).copied();
        // One slice in place (a no-op unless the ring wrapped): no copy of up to an hour of
        // samples per call.
        let f = window::figures(lock(&self.shared.ring).make_contiguous(), start, end, port);
        if f.memory_mb.is_some() {
            r.memory_mb = f.memory_mb.map(round3);
            r.memory_source = f.memory_source.map(String::from);
        }
        r.gpu_util_pct = f.gpu_util_pct.map(round3);
        r.gpu_temp_c = f.gpu_temp_c;
        r.power_w = f.power_w.map(round3);
        r.energy_j = f.energy_j.map(round6);
        r.energy_source = Some(f.energy_source.to_string());
        r.energy_per_token_j = match (f.energy_j, r.response_tokens) {
            (Some(e), Some(n)) if n > 0 && r.success => Some(round6(e / f64::from(n))),
            _ => None,
        };
    }

    fn stop(&mut self) {
        self.halt();
        if let Some(mut w) = lock(&self.shared.series).take() {
            let _ = w.flush();
            let _ = w.get_ref().sync_all();
        }
        *lock(&self.shared.in_flight) = None;
    }
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
