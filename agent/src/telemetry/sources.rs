//! The hardware readers, each optional: the system (sysinfo: CPU use, memory, swap), the serving
//! processes found by their listening ports (resident memory and CPU of the process tree),
//! NVIDIA GPUs (NVML, loaded at run time, with its clock-throttle reasons), Linux RAPL energy
//! counters and CPU heat ([`super::thermal`]), and Apple silicon through `macmon`
//! ([`super::macmon`]). A reader that cannot work on this host says why once, in
//! [`Sources::absent`], and reads nothing after.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::Sample;

/// A source this host lacks, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Absent {
    pub source: &'static str,
    pub why: String,
}

/// Every reader the host has, opened once.
pub struct Sources {
    system: Option<System>,
    nvml: Option<nvml_wrapper::Nvml>,
    rapl: Vec<RaplZone>,
    thermal: Option<super::thermal::Thermal>,
    macmon: Option<super::macmon::Macmon>,
    powermetrics: Option<super::powermetrics::Powermetrics>,
    /// Ports of the servers to watch → the pid listening there (re-resolved when it goes).
    servers: BTreeMap<u16, Option<u32>>,
    /// Refreshes so far (the process tree is rebuilt every tenth).
    ticks: u64,
    tree: BTreeMap<u16, Vec<Pid>>,
    pub absent: Vec<Absent>,
}

/// One RAPL package zone: its counter and where it wraps.
struct RaplZone {
    energy: PathBuf,
    max_uj: u64,
    last_uj: Option<u64>,
    /// Joules counted since the first read, wraps undone.
    total_j: f64,
}

impl Sources {
    /// Opens every source; `ports` are the local servers' ports to watch, `interval` how often
    /// the samples are taken.
    pub fn open(ports: &[u16], interval: std::time::Duration) -> Sources {
        let mut absent = Vec::new();
        let system = match System::new() {
            Ok(s) => Some(s),
            Err(e) => {
                absent.push(Absent {
                    source: "system",
                    why: e.to_string(),
                });
                None
            }
        };
        let nvml = match nvml_wrapper::Nvml::init() {
            Ok(n) => match n.device_count() {
                Ok(0) => {
                    absent.push(Absent {
                        source: "nvml",
                        why: "the NVIDIA driver reports no GPU".into(),
                    });
                    None
                }
                Ok(_) => Some(n),
                Err(e) => {
                    absent.push(Absent {
                        source: "nvml",
                        why: format!("NVML cannot count GPUs: {e}"),
                    });
                    None
                }
            },
            Err(e) => {
                absent.push(Absent {
                    source: "nvml",
                    why: format!("no NVIDIA driver library on this host ({e})"),
                });
                None
            }
        };
        let rapl = match rapl_zones() {
            Ok(z) => z,
            Err(why) => {
                absent.push(Absent {
                    source: "rapl",
                    why,
                });
                Vec::new()
            }
        };
        let root = super::thermal::sysfs_root();
        let thermal =
            if cfg!(target_os = "linux") || std::env::var_os("LLMPULSE_SYSFS_ROOT").is_some() {
                match super::thermal::Thermal::open(&root) {
                    Ok(t) => Some(t),
                    Err(why) => {
                        absent.push(Absent {
                            source: "thermal",
                            why,
                        });
                        None
                    }
                }
            } else {
                absent.push(Absent {
                    source: "thermal",
                    why: "CPU sensors are read from sysfs, on Linux only".into(),
                });
                None
            };
        // macmon first, wherever it is on PATH (a Mac; a stand-in elsewhere).
        let macmon = match super::macmon::Macmon::start(interval.as_millis() as u64) {
            Ok(m) => Some(m),
            Err(why) => {
                absent.push(Absent {
                    source: "macmon",
                    why,
                });
                None
            }
        };
        // powermetrics where macmon is absent (it needs root).
        let powermetrics = if macmon.is_some() {
            if cfg!(target_os = "macos") {
                absent.push(Absent {
                    source: "powermetrics",
                    why: "macmon is read instead (no root needed)".into(),
                });
            }
            None
        } else {
            match super::powermetrics::Powermetrics::start(interval.as_millis() as u64) {
                Ok(p) => Some(p),
                Err(why) => {
                    absent.push(Absent {
                        source: "powermetrics",
                        why,
                    });
                    None
                }
            }
        };
        let mut s = Sources {
            system,
            nvml,
            rapl,
            thermal,
            macmon,
            powermetrics,
            servers: ports.iter().map(|p| (*p, None)).collect(),
            ticks: 0,
            tree: BTreeMap::new(),
            absent,
        };
        s.resolve_servers();
        s
    }

    /// Whether a GPU is read.
    pub fn has_gpu(&self) -> bool {
        self.nvml.is_some()
    }

    /// The GPUs as the fingerprint lists them: name, memory, driver.
    pub fn gpus(&self) -> Vec<serde_json::Value> {
        let Some(nvml) = &self.nvml else {
            return Vec::new();
        };
        let driver = nvml.sys_driver_version().ok();
        let count = nvml.device_count().unwrap_or(0);
        (0..count)
            .filter_map(|i| {
                let d = nvml.device_by_index(i).ok()?;
                Some(serde_json::json!({
                    "index": i,
                    "name": d.name().ok(),
                    "memory_mb": d.memory_info().ok().map(|m| m.total as f64 / 1_048_576.0),
                    "driver": driver,
                }))
            })
            .collect()
    }

    /// The pid found listening on each watched port.
    pub fn server_pids(&self) -> BTreeMap<u16, Option<u32>> {
        self.servers.clone()
    }

    fn resolve_servers(&mut self) {
        for (port, pid) in self.servers.iter_mut() {
            if pid.is_none() {
                *pid = listeners::get_process_by_port(*port, listeners::Protocol::TCP)
                    .ok()
                    .map(|p| p.pid);
            }
        }
    }

    /// Reads every source into `s`.
    pub fn read(&mut self, s: &mut Sample) {
        self.ticks += 1;
        self.read_system(s);
        self.read_servers(s);
        self.read_gpus(s);
        self.read_rapl(s);
        if let Some(t) = &mut self.thermal {
            t.read(s);
        }
        if let Some(m) = &self.macmon {
            m.read(s);
        }
        if let Some(p) = &self.powermetrics {
            p.read(s);
        }
    }

    fn read_system(&mut self, s: &mut Sample) {
        let Some(sys) = &mut self.system else { return };
        sys.refresh_cpu_usage();
        sys.refresh_memory();
        s.cpu_pct = Some(f64::from(sys.global_cpu_usage()));
        s.mem_used_mb = Some(sys.used_memory() as f64 / 1_048_576.0);
        s.swap_used_mb = Some(sys.used_swap() as f64 / 1_048_576.0);
    }

    fn read_servers(&mut self, s: &mut Sample) {
        if self.servers.is_empty() {
            return;
        }
        if self.ticks % 10 == 1 {
            self.resolve_servers();
        }
        let Some(sys) = &mut self.system else { return };
        // Without tasks: on Linux each thread is listed as a process with the whole process's
        // memory, and counting them would multiply it by the number of threads.
        let kind = ProcessRefreshKind::nothing()
            .with_memory()
            .with_cpu()
            .without_tasks();
        if self.ticks % 10 == 1 || self.tree.is_empty() {
            // Children too: Ollama and LM Studio load models in a child process.
            sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
            self.tree.clear();
            for (port, pid) in &self.servers {
                let Some(root) = pid.map(Pid::from_u32) else {
                    continue;
                };
                let mut tree = vec![root];
                let mut i = 0;
                while i < tree.len() {
                    let parent = tree[i];
                    tree.extend(
                        sys.processes()
                            .iter()
                            .filter(|(_, p)| {
                                p.parent() == Some(parent) && p.thread_kind().is_none()
                            })
                            .map(|(pid, _)| *pid),
                    );
                    i += 1;
                }
                self.tree.insert(*port, tree);
            }
        } else {
            let pids: Vec<Pid> = self.tree.values().flatten().copied().collect();
            sys.refresh_processes_specifics(ProcessesToUpdate::Some(&pids), true, kind);
        }
        for (port, pids) in &self.tree {
            let alive: Vec<_> = pids.iter().filter_map(|p| sys.process(*p)).collect();
            if alive.is_empty() {
                // The server went: find whoever listens there now.
                self.servers.insert(*port, None);
                continue;
            }
            let rss: u64 = alive.iter().map(|p| p.memory()).sum();
            let cpu: f32 = alive.iter().map(|p| p.cpu_usage()).sum();
            s.servers.insert(
                *port,
                super::ServerSample {
                    rss_mb: rss as f64 / 1_048_576.0,
                    cpu_pct: f64::from(cpu),
                },
            );
        }
    }

    fn read_gpus(&mut self, s: &mut Sample) {
        let Some(nvml) = &self.nvml else { return };
        let count = nvml.device_count().unwrap_or(0);
        let (mut mem, mut util, mut power, mut energy, mut temp, mut clock) = (
            None::<f64>,
            Vec::new(),
            None::<f64>,
            None::<f64>,
            None::<f64>,
            None::<f64>,
        );
        for i in 0..count {
            let Ok(d) = nvml.device_by_index(i) else {
                continue;
            };
            if let Ok(m) = d.memory_info() {
                *mem.get_or_insert(0.0) += m.used as f64 / 1_048_576.0;
            }
            if let Ok(u) = d.utilization_rates() {
                util.push(f64::from(u.gpu));
            }
            if let Ok(mw) = d.power_usage() {
                *power.get_or_insert(0.0) += f64::from(mw) / 1000.0;
            }
            if let Ok(mj) = d.total_energy_consumption() {
                *energy.get_or_insert(0.0) += mj as f64 / 1000.0;
            }
            if let Ok(t) =
                d.temperature(nvml_wrapper::enum_wrappers::device::TemperatureSensor::Gpu)
            {
                temp = Some(temp.unwrap_or(0.0).max(f64::from(t)));
            }
            if let Ok(c) = d.clock_info(nvml_wrapper::enum_wrappers::device::Clock::Graphics) {
                clock = Some(clock.unwrap_or(0.0).max(f64::from(c)));
            }
            if let Ok(r) = d.current_throttle_reasons() {
                use nvml_wrapper::bitmasks::device::ThrottleReasons as T;
                let thermal = T::HW_SLOWDOWN | T::SW_THERMAL_SLOWDOWN | T::HW_THERMAL_SLOWDOWN;
                let power = T::SW_POWER_CAP | T::HW_POWER_BRAKE_SLOWDOWN;
                if r.intersects(thermal) {
                    super::thermal::add_reason(s, "gpu_thermal");
                }
                if r.intersects(power) {
                    super::thermal::add_reason(s, "gpu_power_cap");
                }
                if !r.intersects(thermal | power) && s.throttled.is_none() {
                    s.throttled = Some(false);
                }
            }
        }
        s.gpu_mem_mb = mem;
        s.gpu_util_pct = (!util.is_empty()).then(|| util.iter().sum::<f64>() / util.len() as f64);
        s.gpu_power_w = power;
        s.gpu_energy_j = energy;
        s.gpu_temp_c = temp;
        s.gpu_clock_mhz = clock;
    }

    fn read_rapl(&mut self, s: &mut Sample) {
        if self.rapl.is_empty() {
            return;
        }
        let mut total = 0.0;
        for z in &mut self.rapl {
            let Some(uj) = std::fs::read_to_string(&z.energy)
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
            else {
                continue;
            };
            if let Some(last) = z.last_uj {
                let delta = if uj >= last {
                    uj - last
                } else {
                    // The counter wrapped.
                    z.max_uj.saturating_sub(last) + uj
                };
                z.total_j += delta as f64 / 1e6;
            }
            z.last_uj = Some(uj);
            total += z.total_j;
        }
        s.rapl_energy_j = Some(total);
    }
}

/// The package-level RAPL zones (`intel-rapl:N`, not their sub-zones), readable by this user.
fn rapl_zones() -> Result<Vec<RaplZone>, String> {
    if !cfg!(target_os = "linux") {
        return Err("RAPL counters are read on Linux only".into());
    }
    let root = super::thermal::sysfs_root().join("class/powercap");
    let root = root.as_path();
    let entries = std::fs::read_dir(root)
        .map_err(|e| format!("{}: {e} (no powercap support)", root.display()))?;
    let mut zones = Vec::new();
    let mut denied = None;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("intel-rapl:") || name.matches(':').count() != 1 {
            continue;
        }
        let energy = e.path().join("energy_uj");
        match std::fs::read_to_string(&energy) {
            Ok(_) => {
                let max_uj = std::fs::read_to_string(e.path().join("max_energy_range_uj"))
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(u64::MAX);
                zones.push(RaplZone {
                    energy,
                    max_uj,
                    last_uj: None,
                    total_j: 0.0,
                });
            }
            Err(err) => denied = Some(format!("{}: {err}", energy.display())),
        }
    }
    if zones.is_empty() {
        return Err(match denied {
            Some(d) => format!(
                "{d} (energy_uj is readable only by root on most kernels: run the agent as root \
                 or grant read access)"
            ),
            None => "no RAPL package zones under /sys/class/powercap".into(),
        });
    }
    Ok(zones)
}
