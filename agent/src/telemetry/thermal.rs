//! Heat and throttling on Linux, from sysfs: the CPU's temperature sensors
//! (`class/thermal/thermal_zone*/{type,temp}`, `class/hwmon/hwmon*/{name,temp*_input,temp*_label}`),
//! its clock against its maximum (`devices/system/cpu/cpu*/cpufreq/{scaling_cur_freq,cpuinfo_max_freq}`)
//! and the kernel's count of thermal throttling events
//! (`devices/system/cpu/cpu*/thermal_throttle/{core,package}_throttle_count`). Every path is read
//! under `LLMPULSE_SYSFS_ROOT` when it is set (it stands for `/sys`), so tests point the agent at
//! a made-up tree. The parsers are pure; [`Thermal`] only finds the files and reads them.

use std::path::{Path, PathBuf};

use super::Sample;

/// Where sysfs is: `LLMPULSE_SYSFS_ROOT`, else `/sys`.
pub fn sysfs_root() -> PathBuf {
    std::env::var_os("LLMPULSE_SYSFS_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/sys"))
}

/// A temperature file's millidegrees Celsius as degrees; `None` for anything else (a sensor
/// that reports an error reads as text the kernel cannot parse).
pub fn millidegrees(text: &str) -> Option<f64> {
    let v: i64 = text.trim().parse().ok()?;
    // Below absolute zero or above a kiln: a broken sensor, not a reading.
    let c = v as f64 / 1000.0;
    (-273.0..=250.0).contains(&c).then_some(c)
}

/// Whether a thermal zone of this `type` measures the CPU package or its cores (x86's
/// `x86_pkg_temp`, ARM boards' `cpu-thermal`, `soc_thermal`…), not a battery, a Wi-Fi chip or
/// the ACPI's guess.
pub fn is_cpu_zone(kind: &str) -> bool {
    let k = kind.trim().to_ascii_lowercase();
    k == "x86_pkg_temp" || k.starts_with("cpu") || k.starts_with("soc") || k.contains("cpu-")
}

/// Whether an hwmon chip of this `name` is a CPU's sensor (Intel `coretemp`, AMD `k10temp` and
/// `zenpower`, ARM `cpu_thermal`), and which of its inputs count (all of them).
pub fn is_cpu_hwmon(name: &str) -> bool {
    matches!(
        name.trim(),
        "coretemp" | "k10temp" | "zenpower" | "cpu_thermal" | "soc_thermal" | "cpu-thermal"
    )
}

/// The hottest of `readings`.
pub fn hottest(readings: impl IntoIterator<Item = f64>) -> Option<f64> {
    readings.into_iter().reduce(f64::max)
}

/// The CPU's sensors, clocks and throttle counters found under a sysfs root.
pub struct Thermal {
    sensors: Vec<PathBuf>,
    /// (current, maximum kHz) per CPU.
    clocks: Vec<(PathBuf, f64)>,
    throttle: Vec<PathBuf>,
    last_throttle: Option<u64>,
}

impl Thermal {
    /// Finds what `root` has; `Err` says why there is nothing to read.
    pub fn open(root: &Path) -> Result<Thermal, String> {
        let mut sensors = Vec::new();
        for zone in dir(&root.join("class/thermal"), "thermal_zone") {
            let kind = read(&zone.join("type")).unwrap_or_default();
            if is_cpu_zone(&kind) && zone.join("temp").is_file() {
                sensors.push(zone.join("temp"));
            }
        }
        for chip in dir(&root.join("class/hwmon"), "hwmon") {
            let name = read(&chip.join("name")).unwrap_or_default();
            if !is_cpu_hwmon(&name) {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&chip) else {
                continue;
            };
            let mut inputs: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("temp") && n.ends_with("_input"))
                })
                .collect();
            inputs.sort();
            sensors.extend(inputs);
        }
        let mut clocks = Vec::new();
        let mut throttle = Vec::new();
        for cpu in dir(&root.join("devices/system/cpu"), "cpu") {
            let digits = cpu
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("cpu"))
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
            if !digits {
                continue;
            }
            let freq = cpu.join("cpufreq");
            if let Some(max) =
                read(&freq.join("cpuinfo_max_freq")).and_then(|t| t.trim().parse::<f64>().ok())
                && max > 0.0
                && freq.join("scaling_cur_freq").is_file()
            {
                clocks.push((freq.join("scaling_cur_freq"), max));
            }
            for counter in ["core_throttle_count", "package_throttle_count"] {
                let p = cpu.join("thermal_throttle").join(counter);
                if p.is_file() {
                    throttle.push(p);
                }
            }
        }
        if sensors.is_empty() && clocks.is_empty() && throttle.is_empty() {
            return Err(format!(
                "no CPU temperature sensor, clock or throttle counter under {}",
                root.display()
            ));
        }
        Ok(Thermal {
            sensors,
            clocks,
            throttle,
            last_throttle: None,
        })
    }

    /// Reads the sensors into `s`: the hottest CPU sensor, the mean clock as a share of its
    /// maximum, and whether the kernel counted a thermal throttling event since the last read.
    pub fn read(&mut self, s: &mut Sample) {
        s.cpu_temp_c = hottest(self.sensors.iter().filter_map(|p| millidegrees(&read(p)?)));
        let shares: Vec<f64> = self
            .clocks
            .iter()
            .filter_map(|(p, max)| Some(read(p)?.trim().parse::<f64>().ok()? / max * 100.0))
            .collect();
        s.cpu_freq_pct =
            (!shares.is_empty()).then(|| shares.iter().sum::<f64>() / shares.len() as f64);
        if !self.throttle.is_empty() {
            let count: u64 = self
                .throttle
                .iter()
                .filter_map(|p| read(p)?.trim().parse::<u64>().ok())
                .sum();
            if let Some(last) = self.last_throttle {
                let hot = count > last;
                s.throttled = Some(s.throttled.unwrap_or(false) || hot);
                if hot {
                    add_reason(s, "thermal");
                }
            }
            self.last_throttle = Some(count);
        }
    }
}

/// Marks the sample throttled, for `reason`.
pub fn add_reason(s: &mut Sample, reason: &str) {
    s.throttled = Some(true);
    push_reason(&mut s.throttle_reason, reason);
}

/// Adds `reason` to a comma-separated list of reasons, each once.
pub fn push_reason(list: &mut Option<String>, reason: &str) {
    match list {
        Some(r) if r.split(',').any(|x| x == reason) => {}
        Some(r) => {
            r.push(',');
            r.push_str(reason);
        }
        None => *list = Some(reason.to_string()),
    }
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// The entries of `parent` whose names start with `prefix`, sorted.
fn dir(parent: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sysfs tree as the kernel lays it out (Documentation/ABI/testing/sysfs-class-thermal,
    /// sysfs-class-hwmon, sysfs-devices-system-cpu): two zones (one a battery), a coretemp chip
    /// with two inputs and an Wi-Fi chip, two CPUs with clocks and throttle counters.
    fn tree(name: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("llmpulse-sysfs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let put = |p: &str, text: &str| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        put("class/thermal/thermal_zone0/type", "x86_pkg_temp\n");
        put("class/thermal/thermal_zone0/temp", "61000\n");
        put("class/thermal/thermal_zone1/type", "BAT0\n");
        put("class/thermal/thermal_zone1/temp", "99000\n");
        put("class/hwmon/hwmon0/name", "coretemp\n");
        put("class/hwmon/hwmon0/temp1_input", "64000\n");
        put("class/hwmon/hwmon0/temp1_label", "Package id 0\n");
        put("class/hwmon/hwmon0/temp2_input", "58000\n");
        put("class/hwmon/hwmon1/name", "iwlwifi_1\n");
        put("class/hwmon/hwmon1/temp1_input", "90000\n");
        for cpu in ["cpu0", "cpu1"] {
            put(
                &format!("devices/system/cpu/{cpu}/cpufreq/cpuinfo_max_freq"),
                "4000000\n",
            );
            put(
                &format!("devices/system/cpu/{cpu}/cpufreq/scaling_cur_freq"),
                "3000000\n",
            );
            put(
                &format!("devices/system/cpu/{cpu}/thermal_throttle/core_throttle_count"),
                "5\n",
            );
        }
        put(
            "devices/system/cpu/cpufreq/policy0/scaling_governor",
            "performance\n",
        );
        root
    }

    #[test]
    fn the_hottest_cpu_sensor_counts_and_the_battery_and_wifi_do_not() {
        let root = tree("hottest");
        let mut t = Thermal::open(&root).unwrap();
        let mut s = Sample::default();
        t.read(&mut s);
        assert_eq!(s.cpu_temp_c, Some(64.0));
        assert_eq!(s.cpu_freq_pct, Some(75.0));
        // The first read sets the counters' base: nothing is known to have throttled yet.
        assert_eq!(s.throttled, None);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_rising_throttle_count_is_thermal_throttling() {
        let root = tree("throttle");
        let mut t = Thermal::open(&root).unwrap();
        let mut s = Sample::default();
        t.read(&mut s);
        let mut calm = Sample::default();
        t.read(&mut calm);
        assert_eq!(
            (calm.throttled, calm.throttle_reason.as_deref()),
            (Some(false), None)
        );
        std::fs::write(
            root.join("devices/system/cpu/cpu1/thermal_throttle/core_throttle_count"),
            "7\n",
        )
        .unwrap();
        let mut hot = Sample::default();
        t.read(&mut hot);
        assert_eq!(
            (hot.throttled, hot.throttle_reason.as_deref()),
            (Some(true), Some("thermal"))
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn sensor_text_is_checked() {
        assert_eq!(millidegrees("45500\n"), Some(45.5));
        assert_eq!(millidegrees("-5000"), Some(-5.0));
        assert_eq!(millidegrees("N/A"), None);
        assert_eq!(millidegrees("999999999"), None);
        assert!(is_cpu_zone("cpu-thermal") && is_cpu_zone("x86_pkg_temp"));
        assert!(!is_cpu_zone("acpitz") && !is_cpu_zone("BAT0") && !is_cpu_zone("iwlwifi_1"));
        assert!(Thermal::open(Path::new("/nonexistent-sysfs")).is_err());
    }
}
