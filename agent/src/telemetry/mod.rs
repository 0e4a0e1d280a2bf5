//! Hardware telemetry around a run: a thread samples every [`sources`] reader at a fixed rate
//! (10 Hz by default) into the run's series file and a ring of recent samples; each finished
//! call takes its figures from the ring ([`window`]). A second thread reads the local servers'
//! own `/metrics` pages once a second ([`server_metrics`]): their gauges go into the samples,
//! and the run's last sample carries what their counters and histograms say about the run's
//! window. [`Telemetry`] is the agent's implementation of core's `Instruments`.

pub mod macmon;
pub mod powermetrics;
pub mod server_metrics;
pub mod sources;
pub mod thermal;
pub mod tool;
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
    /// The hottest CPU sensor (Linux sysfs, macmon's CPU average), °C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_temp_c: Option<f64>,
    /// The CPUs' mean clock as a share of their maximum, %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_freq_pct: Option<f64>,
    /// Whether a source said the machine was throttling since the last sample, and why
    /// (`thermal`, `gpu_thermal`, `gpu_power_cap`, comma-separated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_reason: Option<String>,
    /// Apple silicon (macmon): the chip's power (CPU + GPU + ANE) and the whole system's, W,
    /// and the chip's energy since the agent started, J.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_power_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_power_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_energy_j: Option<f64>,
    /// Which tool counted `mac_energy_j`: `macmon` or `powermetrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_source: Option<String>,
    /// The servers' own gauges (requests running and waiting, KV-cache use) by port, on the
    /// sample taken after each read of their `/metrics`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub server_gauges: BTreeMap<u16, BTreeMap<String, f64>>,
    /// On the run's last sample only: what each server's own counters say about the run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub server_run: BTreeMap<u16, ServerRun>,
}

/// A server's `/metrics` over one run: the deltas between the read before its first call and
/// the read after its last, or why there are none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerRun {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<server_metrics::Window>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
    /// Gauges read from the servers since the last sample, for the next one.
    server_gauges: Mutex<BTreeMap<u16, BTreeMap<String, f64>>>,
    /// The servers' account of the run, for the run's last sample.
    server_run: Mutex<BTreeMap<u16, ServerRun>>,
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
            server_gauges: std::mem::take(&mut *lock(&self.server_gauges)),
            server_run: std::mem::take(&mut *lock(&self.server_run)),
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
    /// Port → the `/metrics` URL of the server on it.
    metrics_urls: BTreeMap<u16, String>,
    reader: Option<JoinHandle<BTreeMap<u16, ServerRun>>>,
    /// The last run's server windows, for the manifest.
    last_server_run: BTreeMap<u16, ServerRun>,
    /// `[agent] electricity_usd_per_kwh` and `hardware_usd_per_hour`: what a local call costs.
    prices: (Option<f64>, Option<f64>),
}

impl Telemetry {
    /// What a kWh and an hour of this machine cost (`[agent] electricity_usd_per_kwh`,
    /// `hardware_usd_per_hour`): records of calls no provider billed get `cost_usd` from them.
    pub fn set_prices(&mut self, usd_per_kwh: Option<f64>, hardware_usd_per_hour: Option<f64>) {
        self.prices = (usd_per_kwh, hardware_usd_per_hour);
    }

    /// Opens the sources for these targets' servers (`target → port`), sampling at `hz`.
    pub fn new(host_id: String, hz: f64, ports: BTreeMap<String, u16>) -> Telemetry {
        let unique: Vec<u16> = {
            let mut p: Vec<u16> = ports.values().copied().collect();
            p.sort_unstable();
            p.dedup();
            p
        };
        let interval = Duration::from_secs_f64(1.0 / hz.clamp(0.01, 100.0));
        let sources = Sources::open(&unique, interval);
        Telemetry {
            host_id,
            prices: (None, None),
            interval,
            ports,
            shared: Arc::new(Shared {
                sources: Mutex::new(sources),
                ring: Mutex::new(VecDeque::new()),
                series: Mutex::new(None),
                in_flight: Mutex::new(None),
                stop: AtomicBool::new(false),
                running: AtomicBool::new(false),
                samples: 0.into(),
                server_gauges: Mutex::new(BTreeMap::new()),
                server_run: Mutex::new(BTreeMap::new()),
            }),
            thread: None,
            fingerprint: None,
            metrics_urls: BTreeMap::new(),
            reader: None,
            last_server_run: BTreeMap::new(),
        }
    }

    /// Reads these servers' own `/metrics` (port → URL) around each run.
    pub fn watch_metrics(&mut self, urls: BTreeMap<u16, String>) {
        self.metrics_urls = urls;
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

    /// Starts the `/metrics` reader; returns once its first read (the run's "before") is done,
    /// so that no call of the run precedes it.
    fn spawn_reader(&mut self) {
        if self.metrics_urls.is_empty() || self.reader.is_some() {
            return;
        }
        let (ready, first) = std::sync::mpsc::channel();
        let urls = self.metrics_urls.clone();
        let shared = self.shared.clone();
        let every = self.interval.max(Duration::from_secs(1));
        self.reader = std::thread::Builder::new()
            .name("server-metrics".into())
            .spawn(move || read_servers(&shared, &urls, every, ready))
            .ok();
        let _ = first.recv_timeout(Duration::from_secs(5));
    }

    fn halt(&mut self) -> BTreeMap<u16, ServerRun> {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.running.store(false, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        match self.reader.take() {
            Some(r) => {
                r.thread().unpark();
                r.join().unwrap_or_default()
            }
            None => BTreeMap::new(),
        }
    }
}

/// How long a read of a `/metrics` page may take.
const METRICS_TIMEOUT: Duration = Duration::from_secs(2);

/// The `/metrics` reader's thread: a read now (the run's "before", then `ready` is told), one
/// every `every` for the gauges, and one when the run stops; returns each server's window.
fn read_servers(
    shared: &Shared,
    urls: &BTreeMap<u16, String>,
    every: Duration,
    ready: std::sync::mpsc::Sender<()>,
) -> BTreeMap<u16, ServerRun> {
    let client = reqwest::blocking::Client::builder()
        .timeout(METRICS_TIMEOUT)
        .build();
    let read = |url: &str| -> Result<server_metrics::Page, String> {
        let client = client.as_ref().map_err(|e| e.to_string())?;
        let answer = client
            .get(url)
            .send()
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}"));
        }
        let text = answer.text().map_err(|e| format!("GET {url}: {e}"))?;
        server_metrics::parse(&text).map_err(|e| format!("GET {url}: {e}"))
    };
    let read_all = || -> BTreeMap<u16, Result<server_metrics::Page, String>> {
        let pages: BTreeMap<u16, _> = urls.iter().map(|(p, u)| (*p, read(u))).collect();
        let mut gauges = lock(&shared.server_gauges);
        for (port, page) in &pages {
            if let Ok(page) = page {
                gauges.insert(*port, page.gauges.clone());
            }
        }
        pages
    };
    let started = std::time::Instant::now();
    let before = read_all();
    let _ = ready.send(());
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::park_timeout(every);
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        read_all();
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = read_all();
    urls.iter()
        .map(|(port, url)| {
            let run = match (before.get(port), after.get(port)) {
                (Some(Ok(b)), Some(Ok(a))) => ServerRun {
                    url: url.clone(),
                    window: Some(server_metrics::window(b, a, seconds)),
                    error: None,
                },
                (Some(Err(e)), _) | (_, Some(Err(e))) => ServerRun {
                    url: url.clone(),
                    window: None,
                    error: Some(e.clone()),
                },
                _ => ServerRun {
                    url: url.clone(),
                    ..ServerRun::default()
                },
            };
            (*port, run)
        })
        .collect()
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
        self.spawn_reader();
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
        r.cpu_temp_c = f.cpu_temp_c;
        r.throttled = f.throttled;
        r.throttle_reason = f.throttle_reason;
        r.power_w = f.power_w.map(round3);
        r.energy_j = f.energy_j.map(round6);
        r.energy_source = Some(f.energy_source.to_string());
        r.energy_per_token_j = match (f.energy_j, r.response_tokens) {
            (Some(e), Some(n)) if n > 0 && r.success => Some(round6(e / f64::from(n))),
            _ => None,
        };
        // A call nobody billed costs its electricity and its share of the hardware's time.
        let (kwh, hourly) = self.prices;
        if r.cost_usd.is_none()
            && let Some(usd) = llmpulse_core::cost::of_energy(f.energy_j, kwh, hourly, f.busy_sec)
        {
            r.cost_usd = Some(usd);
            r.cost_source = Some(llmpulse_core::cost::CostSource::Energy);
        }
    }

    fn stop(&mut self) {
        let server_run = self.halt();
        self.last_server_run = server_run.clone();
        if !server_run.is_empty() {
            // The run's last sample, with the servers' own account of the run.
            *lock(&self.shared.server_run) = server_run;
            self.shared.sample();
        }
        if let Some(mut w) = lock(&self.shared.series).take() {
            let _ = w.flush();
            let _ = w.get_ref().sync_all();
        }
        *lock(&self.shared.in_flight) = None;
    }

    fn server_metrics(&mut self) -> Option<serde_json::Value> {
        let by_target: serde_json::Map<String, serde_json::Value> = self
            .ports
            .iter()
            .filter_map(|(target, port)| {
                let run = self.last_server_run.get(port)?;
                let mut v = serde_json::json!({ "port": port, "url": run.url });
                match (&run.window, &run.error) {
                    (Some(w), _) => {
                        v["named"] = serde_json::to_value(&w.named).ok()?;
                        if w.reset {
                            v["reset"] = true.into();
                        }
                    }
                    (None, Some(e)) => v["error"] = e.clone().into(),
                    (None, None) => {}
                }
                Some((target.clone(), v))
            })
            .collect();
        (!by_target.is_empty()).then_some(serde_json::Value::Object(by_target))
    }
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
