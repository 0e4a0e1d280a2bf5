//! Apple silicon power and thermal pressure through `powermetrics` (needs root), read where
//! `macmon` is absent: `powermetrics --samplers cpu_power,gpu_power,thermal -i MS -f plist`
//! writes one XML property list per sample, each ended by a NUL byte. A sample holds its
//! interval (`elapsed_ns`), the `processor`'s power in mW (`cpu_power`, `gpu_power`,
//! `ane_power`, `combined_power`) and the OS's `thermal_pressure` (`Nominal`, `Fair`/`Light`,
//! `Serious`/`Moderate`/`Heavy`, `Critical`: the names changed between macOS versions). The
//! chip's energy is `combined_power` × `elapsed_ns`, summed; a pressure above `Nominal` marks
//! the samples throttled (`os_pressure:LEVEL`). Looked up on `PATH` on every OS: a stand-in is
//! how it is tested on Linux.

use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::Sample;
use super::tool::Tool;

/// The fields of one sample the agent uses.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Plist {
    pub elapsed_ns: u64,
    #[serde(default)]
    pub processor: Processor,
    #[serde(default)]
    pub thermal_pressure: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Processor {
    /// mW.
    #[serde(default)]
    pub cpu_power: Option<f64>,
    #[serde(default)]
    pub gpu_power: Option<f64>,
    #[serde(default)]
    pub ane_power: Option<f64>,
    #[serde(default)]
    pub combined_power: Option<f64>,
}

impl Plist {
    /// The chip's power in W: `combined_power`, else its parts added up.
    pub fn chip_power_w(&self) -> Option<f64> {
        let p = &self.processor;
        p.combined_power
            .or_else(|| {
                let parts = [p.cpu_power, p.gpu_power, p.ane_power];
                parts
                    .iter()
                    .any(Option::is_some)
                    .then(|| parts.iter().flatten().sum())
            })
            .map(|mw| mw / 1000.0)
    }

    /// Whether the OS says the machine is under thermal pressure, and how much.
    pub fn pressure(&self) -> Option<&str> {
        self.thermal_pressure
            .as_deref()
            .filter(|p| !p.eq_ignore_ascii_case("nominal"))
    }
}

/// Parses one sample (the bytes between two NULs).
pub fn parse(doc: &[u8]) -> Result<Plist, String> {
    plist::from_bytes(doc).map_err(|e| format!("not a powermetrics sample: {e}"))
}

/// What the reader thread keeps: the newest sample and the chip's energy so far.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Meter {
    pub latest: Option<Plist>,
    pub energy_j: f64,
    /// When the newest sample's interval ended, seconds since the epoch: the first sample's
    /// arrival, then each interval's `elapsed_ns` added, so that when a sample reaches the
    /// agent late its energy is still placed in its own interval.
    pub at: f64,
}

impl Meter {
    pub fn add(&mut self, p: Plist, arrived: f64) {
        if let Some(w) = p.chip_power_w() {
            self.energy_j += w * p.elapsed_ns as f64 / 1e9;
        }
        let next = self.at + p.elapsed_ns as f64 / 1e9;
        // The first sample, or one after a gap (samples lost, the clock stepped): anchor again.
        self.at = if self.latest.is_none() || (arrived - next).abs() > 1.0 {
            arrived
        } else {
            next
        };
        self.latest = Some(p);
    }

    /// The energy counter at `t`, carried on (or back, for a sample stamped before the newest
    /// interval ended) at the newest power, at most two seconds either way.
    pub fn energy_at(&self, t: f64) -> f64 {
        let w = self
            .latest
            .as_ref()
            .and_then(Plist::chip_power_w)
            .unwrap_or(0.0);
        self.energy_j + w * (t - self.at).clamp(-2.0, 2.0)
    }
}

/// A running `powermetrics` and what it said so far.
pub struct Powermetrics {
    _tool: Tool,
    meter: Arc<Mutex<Meter>>,
}

impl Powermetrics {
    /// Starts `powermetrics` at `interval_ms`; `Err` says why not.
    pub fn start(interval_ms: u64) -> Result<Powermetrics, String> {
        // powermetrics refuses to run without root (and says so only on its stderr).
        #[cfg(unix)]
        // SAFETY: geteuid has no preconditions and cannot fail.
        if super::tool::on_path("powermetrics").is_some() && unsafe { libc::geteuid() } != 0 {
            return Err("powermetrics needs root: run the agent as root, or install macmon".into());
        }
        let meter = Arc::new(Mutex::new(Meter::default()));
        let shared = Arc::clone(&meter);
        let mut bad = 0u32;
        let args = [
            "--samplers",
            "cpu_power,gpu_power,thermal",
            "-i",
            &interval_ms.max(100).to_string(),
            "-f",
            "plist",
        ]
        .map(String::from);
        // Each sample is a property list ended by a NUL.
        let tool = Tool::start(
            "powermetrics",
            "powermetrics is not on PATH",
            &args,
            0,
            move |doc| {
                if doc.iter().all(u8::is_ascii_whitespace) {
                    return;
                }
                match parse(doc) {
                    Ok(p) => {
                        if let Ok(mut m) = shared.lock() {
                            m.add(p, super::now_unix());
                        }
                    }
                    Err(e) => {
                        bad += 1;
                        if bad <= 3 {
                            tracing::warn!(error = %e, "powermetrics sample skipped");
                        }
                    }
                }
            },
        )?;
        Ok(Powermetrics { _tool: tool, meter })
    }

    /// Copies the newest sample into `s`.
    pub fn read(&self, s: &mut Sample) {
        let Ok(m) = self.meter.lock() else { return };
        let Some(p) = &m.latest else { return };
        s.chip_power_w = p.chip_power_w();
        s.gpu_power_w = p
            .processor
            .gpu_power
            .map(|mw| mw / 1000.0)
            .or(s.gpu_power_w);
        s.mac_energy_j = Some(m.energy_at(s.t));
        s.mac_source = Some("powermetrics".into());
        match p.pressure() {
            Some(level) => super::thermal::add_reason(s, &format!("os_pressure:{level}")),
            None => {
                s.throttled.get_or_insert(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample as `powermetrics -f plist` writes it (the fields the agent reads; the real one
    /// has many more, which are skipped).
    pub const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>hw_model</key><string>Mac15,8</string>
  <key>elapsed_ns</key><integer>500000000</integer>
  <key>thermal_pressure</key><string>Serious</string>
  <key>processor</key>
  <dict>
    <key>cpu_power</key><real>4000.0</real>
    <key>gpu_power</key><real>16000.0</real>
    <key>ane_power</key><real>0.0</real>
    <key>combined_power</key><real>20000.0</real>
  </dict>
</dict>
</plist>"#;

    #[test]
    fn a_sample_gives_power_energy_and_pressure() {
        let p = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(p.chip_power_w(), Some(20.0));
        assert_eq!(p.pressure(), Some("Serious"));
        let mut m = Meter::default();
        m.add(p.clone(), 100.0);
        m.add(p, 100.5);
        // 20 W over two half-second intervals.
        assert!((m.energy_j - 20.0).abs() < 1e-9);
        assert!((m.energy_at(100.75) - 25.0).abs() < 1e-9);
        let nominal = SAMPLE.replace("Serious", "Nominal");
        assert_eq!(parse(nominal.as_bytes()).unwrap().pressure(), None);
        assert!(parse(b"<plist><dict></dict></plist>").is_err());
    }
}
