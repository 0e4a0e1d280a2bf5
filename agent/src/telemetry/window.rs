//! One call's hardware figures from the samples around its window, with no IO: peak memory,
//! mean GPU use and power, and the call's share of the energy.
//!
//! Energy comes from cumulative counters (NVML's total energy, RAPL) where the host has them:
//! each interval between two samples contributes the counters' rise times the part of the
//! interval inside the call, divided by the requests on the wire then (at least one). So calls
//! that overlap share a device's energy by overlap time, and with `concurrency = 1` a call's
//! energy is exactly the device's energy over its window. Without a counter, mean power × time
//! (shared the same way); with neither, no figure.

use super::Sample;

/// What [`figures`] found for one call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub memory_mb: Option<f64>,
    pub memory_source: Option<&'static str>,
    pub gpu_util_pct: Option<f64>,
    /// The hottest GPU's peak temperature.
    pub gpu_temp_c: Option<f64>,
    /// The hottest CPU sensor's peak.
    pub cpu_temp_c: Option<f64>,
    /// Whether any sample in the window said the machine throttled, and the reasons given.
    pub throttled: Option<bool>,
    pub throttle_reason: Option<String>,
    /// The measured devices' mean power over the window (not shared).
    pub power_w: Option<f64>,
    /// The call's share of the devices' energy.
    pub energy_j: Option<f64>,
    pub energy_source: &'static str,
    /// The call's share of the window's wall time: each interval divided by the requests in
    /// flight in it (the whole window without samples). Its share of the hardware's time.
    pub busy_sec: f64,
}

/// The energy counter of a sample: GPU, CPU package and Apple silicon chip counters together,
/// as far as present.
fn counter(s: &Sample) -> Option<f64> {
    match (s.gpu_energy_j, s.rapl_energy_j, s.mac_energy_j) {
        (None, None, None) => None,
        (g, r, m) => Some(g.unwrap_or(0.0) + r.unwrap_or(0.0) + m.unwrap_or(0.0)),
    }
}

fn counter_source(s: &Sample) -> &'static str {
    let mac = match (s.mac_energy_j, s.mac_source.as_deref()) {
        (None, _) => None,
        (Some(_), Some("powermetrics")) => Some("powermetrics"),
        (Some(_), _) => Some("macmon"),
    };
    match (s.gpu_energy_j.is_some(), s.rapl_energy_j.is_some(), mac) {
        (true, true, Some("macmon")) => "nvml_counter+rapl+macmon",
        (true, false, Some("macmon")) => "nvml_counter+macmon",
        (false, true, Some("macmon")) => "rapl+macmon",
        (false, false, Some("macmon")) => "macmon",
        (true, true, Some(_)) => "nvml_counter+rapl+powermetrics",
        (true, false, Some(_)) => "nvml_counter+powermetrics",
        (false, true, Some(_)) => "rapl+powermetrics",
        (false, false, Some(_)) => "powermetrics",
        (true, true, None) => "nvml_counter+rapl",
        (true, false, None) => "nvml_counter",
        (false, true, None) => "rapl",
        (false, false, None) => "none",
    }
}

/// The samples that describe `[start, end]` (seconds since the epoch): those inside, plus the
/// last one before and the first one after, so a call shorter than the sampling interval still
/// has its neighbours.
fn around(samples: &[Sample], start: f64, end: f64) -> &[Sample] {
    let first = samples.partition_point(|s| s.t < start).saturating_sub(1);
    let last = samples
        .partition_point(|s| s.t <= end)
        .min(samples.len().saturating_sub(1));
    if samples.is_empty() || first > last {
        return &[];
    }
    &samples[first..=last]
}

/// The figures of a call sent at `start` and ended at `end`, served by the process listening on
/// `port` (when known). `samples` are in time order.
pub fn figures(samples: &[Sample], start: f64, end: f64, port: Option<u16>) -> Figures {
    let near = around(samples, start, end);
    let mut f = Figures {
        energy_source: "none",
        ..Figures::default()
    };
    f.busy_sec = (end - start).max(0.0);
    if near.is_empty() {
        return f;
    }
    let rss = port.and_then(|p| {
        near.iter()
            .filter_map(|s| s.servers.get(&p).map(|x| x.rss_mb))
            .reduce(f64::max)
    });
    let gpu_mem = near.iter().filter_map(|s| s.gpu_mem_mb).reduce(f64::max);
    (f.memory_mb, f.memory_source) = match (rss, gpu_mem) {
        (Some(r), Some(g)) => (Some(r + g), Some("server_rss+gpu")),
        (Some(r), None) => (Some(r), Some("server_rss")),
        _ => (None, None),
    };
    let util: Vec<f64> = near.iter().filter_map(|s| s.gpu_util_pct).collect();
    f.gpu_util_pct = (!util.is_empty()).then(|| util.iter().sum::<f64>() / util.len() as f64);
    f.gpu_temp_c = near.iter().filter_map(|s| s.gpu_temp_c).reduce(f64::max);
    f.cpu_temp_c = near.iter().filter_map(|s| s.cpu_temp_c).reduce(f64::max);
    // The first sample stands before the call: its throttling was over by the time it began
    // (unless the call starts on it).
    let during = near.iter().filter(|s| s.t >= start || near.len() == 1);
    for s in during {
        if let Some(t) = s.throttled {
            f.throttled = Some(f.throttled.unwrap_or(false) || t);
        }
        for reason in s.throttle_reason.iter().flat_map(|r| r.split(',')) {
            super::thermal::push_reason(&mut f.throttle_reason, reason);
        }
    }

    let span = (end - start).max(0.0);
    let (mut energy, mut device_energy, mut covered) = (0.0, 0.0, 0.0);
    let (mut power_time, mut power_share, mut power_covered) = (0.0, 0.0, 0.0);
    let (mut busy, mut busy_covered) = (0.0, 0.0);
    for w in near.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let dt = b.t - a.t;
        if dt <= 0.0 {
            continue;
        }
        let overlap = (b.t.min(end) - a.t.max(start)).max(0.0);
        // The interval's rate of energy, over the part of it inside the call.
        let part = if span > 0.0 { overlap / dt } else { 0.0 };
        let share = f64::from(a.in_flight.max(b.in_flight).max(1));
        busy += overlap / share;
        busy_covered += overlap;
        if let (Some(ea), Some(eb)) = (counter(a), counter(b))
            && eb >= ea
        {
            device_energy += (eb - ea) * part;
            energy += (eb - ea) * part / share;
            covered += overlap;
            f.energy_source = counter_source(b);
        }
        if let (Some(pa), Some(pb)) = (a.gpu_power_w, b.gpu_power_w) {
            let p = (pa + pb) / 2.0;
            power_time += p * overlap;
            power_share += p * overlap / share;
            power_covered += overlap;
        }
    }
    if busy_covered > 0.0 {
        f.busy_sec = busy * span / busy_covered;
    }
    if covered > 0.0 {
        // Scaled to the whole window when the samples did not reach its edges.
        let scale = span / covered;
        f.energy_j = Some(energy * scale);
        f.power_w = Some(device_energy / covered);
    } else if power_covered > 0.0 {
        let scale = span / power_covered;
        f.energy_j = Some(power_share * scale);
        f.power_w = Some(power_time / power_covered);
        f.energy_source = "power_x_time";
    } else if span == 0.0 {
        f.energy_source = "none";
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::ServerSample;

    /// A device drawing `watts` steadily, sampled every 0.1 s from t = 0 to 10 s, with
    /// `in_flight(t)` requests on the wire.
    fn steady(watts: f64, in_flight: impl Fn(f64) -> u32) -> Vec<Sample> {
        (0..=100)
            .map(|i| {
                let t = f64::from(i) / 10.0;
                let mut s = Sample {
                    t,
                    in_flight: in_flight(t),
                    gpu_energy_j: Some(1000.0 + watts * t),
                    gpu_power_w: Some(watts),
                    gpu_mem_mb: Some(2000.0 + t),
                    gpu_util_pct: Some(50.0),
                    ..Sample::default()
                };
                s.servers.insert(
                    8080,
                    ServerSample {
                        rss_mb: 200.0 + 10.0 * t,
                        cpu_pct: 100.0,
                    },
                );
                s
            })
            .collect()
    }

    #[test]
    fn one_call_at_a_time_gets_all_the_energy_of_its_window() {
        let samples = steady(300.0, |t| u32::from((2.0..=4.0).contains(&t)));
        let f = figures(&samples, 2.0, 4.0, Some(8080));
        assert!((f.energy_j.unwrap() - 600.0).abs() < 1e-6, "{f:?}");
        assert!((f.power_w.unwrap() - 300.0).abs() < 1e-6);
        assert_eq!(f.energy_source, "nvml_counter");
        // Peak over the window and the first sample after it (t = 4.1): RSS 241 + GPU 2004.1.
        assert_eq!(f.memory_source, Some("server_rss+gpu"));
        assert!((f.memory_mb.unwrap() - 2245.1).abs() < 1e-6, "{f:?}");
        assert_eq!(f.gpu_util_pct, Some(50.0));
    }

    #[test]
    fn overlapping_calls_share_by_overlap_time() {
        // Two calls, [2, 6] and [4, 8]: two on the wire during [4, 6].
        let samples = steady(100.0, |t| {
            u32::from((2.0..=6.0).contains(&t)) + u32::from((4.0..=8.0).contains(&t))
        });
        let a = figures(&samples, 2.0, 6.0, None).energy_j.unwrap();
        let b = figures(&samples, 4.0, 8.0, None).energy_j.unwrap();
        // Alone for 2 s (200 J), shared for 2 s (100 J); the edges' samples add a little.
        assert!((a - 300.0).abs() < 6.0, "{a}");
        assert!((b - 300.0).abs() < 6.0, "{b}");
        // Together they account for the device's energy over [2, 8] (600 J), not twice over it.
        assert!((a + b - 600.0).abs() < 12.0, "{}", a + b);
        // And for its time: 6 s of machine between them (each 2 s alone, 2 s shared), which
        // is what `hardware_usd_per_hour` bills.
        let (ta, tb) = (
            figures(&samples, 2.0, 6.0, None).busy_sec,
            figures(&samples, 4.0, 8.0, None).busy_sec,
        );
        assert!(
            (ta - 3.0).abs() < 0.1 && (tb - 3.0).abs() < 0.1,
            "{ta} {tb}"
        );
    }

    #[test]
    fn power_times_time_without_a_counter() {
        let mut samples = steady(250.0, |_| 1);
        for s in &mut samples {
            s.gpu_energy_j = None;
        }
        let f = figures(&samples, 1.0, 3.0, None);
        assert_eq!(f.energy_source, "power_x_time");
        assert!((f.energy_j.unwrap() - 500.0).abs() < 1e-6);
    }

    #[test]
    fn heat_is_the_peak_and_throttling_any_sample_inside_the_call() {
        let mut samples = steady(100.0, |_| 1);
        for s in &mut samples {
            s.cpu_temp_c = Some(50.0 + s.t);
            s.throttled = Some(false);
        }
        // Throttled at t = 1.0 (before the call) and t = 3.0 (inside it), for two reasons.
        samples[10].throttled = Some(true);
        samples[10].throttle_reason = Some("gpu_power_cap".into());
        samples[30].throttled = Some(true);
        samples[30].throttle_reason = Some("thermal,gpu_thermal".into());
        let f = figures(&samples, 2.0, 4.0, None);
        // The peak over the window and the first sample after it (t = 4.1).
        assert_eq!(f.cpu_temp_c, Some(54.1));
        assert_eq!(f.throttled, Some(true));
        assert_eq!(f.throttle_reason.as_deref(), Some("thermal,gpu_thermal"));
        let calm = figures(&samples, 5.0, 6.0, None);
        assert_eq!((calm.throttled, calm.throttle_reason), (Some(false), None));
    }

    #[test]
    fn apple_silicon_energy_comes_from_macmons_counter() {
        let mut samples = steady(0.0, |_| 1);
        for s in &mut samples {
            s.gpu_energy_j = None;
            s.gpu_power_w = None;
            s.mac_energy_j = Some(12.5 * s.t);
        }
        let f = figures(&samples, 1.0, 3.0, None);
        assert_eq!(f.energy_source, "macmon");
        assert!((f.energy_j.unwrap() - 25.0).abs() < 1e-6, "{f:?}");
    }

    #[test]
    fn nothing_measured_says_none() {
        let samples: Vec<Sample> = (0..10)
            .map(|i| Sample {
                t: f64::from(i),
                ..Sample::default()
            })
            .collect();
        let f = figures(&samples, 2.0, 5.0, Some(1));
        assert_eq!(f.energy_source, "none");
        assert_eq!(f.energy_j, None);
        assert_eq!(f.memory_mb, None);
    }

    #[test]
    fn a_call_shorter_than_the_interval_uses_its_neighbours() {
        let samples = steady(100.0, |_| 1);
        let f = figures(&samples, 5.02, 5.07, Some(8080));
        assert!((f.energy_j.unwrap() - 5.0).abs() < 1e-6, "{f:?}");
        assert!(f.memory_mb.is_some());
    }
}
