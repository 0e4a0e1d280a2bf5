//! Apple silicon power and heat through `macmon` (no sudo): `macmon pipe -s 0 -i MS` prints one
//! JSON object a line (its README's "Piping" section gives the fields: `temp.cpu_temp_avg`,
//! `temp.gpu_temp_avg`, `gpu_usage` as [MHz, share], `cpu_power`, `gpu_power`, `ane_power`,
//! `all_power` (the three together), `sys_power`, `ram_power`, in W). A thread reads the lines
//! and integrates `all_power` over macmon's own timestamps into an energy counter, which the
//! samples carry like NVML's and RAPL's (`energy_source = "macmon"`). The executable is looked
//! up on `PATH` on every OS: a stand-in on Linux is how it is tested.

use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::Sample;
use super::tool::Tool;

/// One line of `macmon pipe`, the fields the agent uses.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Line {
    pub timestamp: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub temp: Temps,
    /// (MHz, share of time busy 0–1).
    #[serde(default)]
    pub gpu_usage: Option<(f64, f64)>,
    #[serde(default)]
    pub cpu_power: Option<f64>,
    #[serde(default)]
    pub gpu_power: Option<f64>,
    #[serde(default)]
    pub ane_power: Option<f64>,
    #[serde(default)]
    pub all_power: Option<f64>,
    #[serde(default)]
    pub sys_power: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Temps {
    #[serde(default)]
    pub cpu_temp_avg: Option<f64>,
    #[serde(default)]
    pub gpu_temp_avg: Option<f64>,
}

impl Line {
    /// The chip's power: `all_power`, else its parts added up.
    pub fn chip_power(&self) -> Option<f64> {
        self.all_power.or_else(|| {
            let parts = [self.cpu_power, self.gpu_power, self.ane_power];
            parts
                .iter()
                .any(Option::is_some)
                .then(|| parts.iter().flatten().sum())
        })
    }
}

/// Parses one line of `macmon pipe`.
pub fn parse(line: &str) -> Result<Line, String> {
    serde_json::from_str(line).map_err(|e| format!("not a macmon line: {e}"))
}

/// What the reader thread keeps: the newest line, and the chip's energy since the first.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Meter {
    pub latest: Option<Line>,
    /// Joules: the trapezoids of `chip_power` between consecutive lines.
    pub energy_j: f64,
}

impl Meter {
    /// Adds a line: the energy between the last line and this one.
    pub fn add(&mut self, line: Line) {
        if let Some(prev) = &self.latest {
            let dt = (line.timestamp - prev.timestamp)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1e6;
            if let (Some(a), Some(b)) = (prev.chip_power(), line.chip_power())
                && dt > 0.0
            {
                self.energy_j += (a + b) / 2.0 * dt;
            }
        }
        self.latest = Some(line);
    }
}

impl Meter {
    /// The energy counter at `t` (seconds since the epoch): the newest line's count, carried on
    /// at its power to `t`, so a sample taken between two lines does not see a stale step —
    /// and carried back when `t` is before the line (a sample stamped just before a line came
    /// and read just after). At most two seconds either way (a stalled macmon is not
    /// extrapolated for ever).
    pub fn energy_at(&self, t: f64) -> f64 {
        let Some(l) = &self.latest else {
            return self.energy_j;
        };
        let at = l.timestamp.timestamp_micros() as f64 / 1e6;
        let dt = (t - at).clamp(-2.0, 2.0);
        self.energy_j + l.chip_power().unwrap_or(0.0) * dt
    }
}

/// A running `macmon pipe` and what it said so far.
pub struct Macmon {
    _tool: Tool,
    meter: Arc<Mutex<Meter>>,
}

impl Macmon {
    /// Starts `macmon pipe` at `interval_ms`; `Err` says why not.
    pub fn start(interval_ms: u64) -> Result<Macmon, String> {
        let meter = Arc::new(Mutex::new(Meter::default()));
        let shared = Arc::clone(&meter);
        let mut bad = 0u32;
        let tool = Tool::start(
            "macmon",
            "macmon is not on PATH (brew install macmon)",
            &["pipe", "-s", "0", "-i", &interval_ms.max(100).to_string()].map(String::from),
            b'\n',
            move |line| match parse(&String::from_utf8_lossy(line)) {
                Ok(l) => {
                    if let Ok(mut m) = shared.lock() {
                        m.add(l);
                    }
                }
                Err(e) => {
                    bad += 1;
                    if bad <= 3 {
                        tracing::warn!(error = %e, "macmon line skipped");
                    }
                }
            },
        )?;
        Ok(Macmon { _tool: tool, meter })
    }

    /// Copies the newest reading into `s`.
    pub fn read(&self, s: &mut Sample) {
        let Ok(m) = self.meter.lock() else { return };
        let Some(l) = &m.latest else { return };
        s.cpu_temp_c = l.temp.cpu_temp_avg.or(s.cpu_temp_c);
        s.gpu_temp_c = l.temp.gpu_temp_avg.or(s.gpu_temp_c);
        if let Some((mhz, share)) = l.gpu_usage {
            s.gpu_clock_mhz = Some(mhz);
            s.gpu_util_pct = Some(share * 100.0);
        }
        s.gpu_power_w = l.gpu_power.or(s.gpu_power_w);
        s.chip_power_w = l.chip_power();
        s.sys_power_w = l.sys_power;
        s.mac_energy_j = Some(m.energy_at(s.t));
        s.mac_source = Some("macmon".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's example line (macmon's "Piping" section), comments taken out.
    const README_LINE: &str = r#"{"timestamp":"2025-02-24T20:38:15.427569+00:00","temp":{"cpu_temp_avg":43.73614,"gpu_temp_avg":36.95167},"memory":{"ram_total":25769803776,"ram_usage":20985479168,"swap_total":4294967296,"swap_usage":2602434560},"ecpu_usage":[1181,0.082656614],"pcpu_usage":[1974,0.015181795],"gpu_usage":[461,0.021497859],"cpu_power":0.20486385,"gpu_power":0.017451683,"ane_power":0.0,"all_power":0.22231553,"sys_power":5.876533,"ram_power":0.11635789,"gpu_ram_power":0.0009615385}"#;

    #[test]
    fn the_documented_line_parses() {
        let l = parse(README_LINE).unwrap();
        assert_eq!(l.temp.cpu_temp_avg, Some(43.73614));
        assert_eq!(l.gpu_usage, Some((461.0, 0.021497859)));
        assert_eq!(l.chip_power(), Some(0.22231553));
        assert_eq!(l.sys_power, Some(5.876533));
        assert!(parse("{\"temp\": 1}").is_err());
    }

    #[test]
    fn energy_is_power_integrated_over_macmons_own_clock() {
        let mut m = Meter::default();
        // 10 W, then 20 W one second later, then 20 W half a second after: 15 J + 10 J.
        for (t, w) in [("00.000", 10.0), ("01.000", 20.0), ("01.500", 20.0)] {
            let line = format!(
                r#"{{"timestamp":"2026-12-01T10:00:{t}Z","cpu_power":{w},"gpu_power":0.0}}"#
            );
            m.add(parse(&line).unwrap());
        }
        assert!((m.energy_j - 25.0).abs() < 1e-9, "{}", m.energy_j);
    }
}
