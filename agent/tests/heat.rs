//! Heat, throttling and Apple silicon power on any OS: `llmpulse-agent run` against the
//! simulator with a stand-in `macmon` on PATH (printing macmon's documented `pipe` lines) and
//! a made-up sysfs tree (`LLMPULSE_SYSFS_ROOT`) whose CPU throttle counter and temperature a
//! thread changes while the run goes on; the duty cycle and the temperature guard.

mod common;
#[path = "../../cli/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use llmpulse_sim::{SimProfile, SimState};
use serde_json::Value;
use support::{ONE_QUESTION, Scratch};

const AGENT: &str = env!("CARGO_BIN_EXE_llmpulse-agent");

/// The chip power the stand-in reports, W.
const WATTS: f64 = 12.0;

/// A stand-in for `macmon pipe -s 0 -i MS`: one line every MS ms, in the format of macmon's
/// README ("Piping"), at a steady 12 W and 70.5 °C.
fn stand_in_macmon(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("macmon");
    std::fs::write(
        &script,
        format!(
            r#"#!/usr/bin/env bash
[ "$1" = pipe ] || exit 2
ms=$5
while true; do
  printf '{{"timestamp":"%s","temp":{{"cpu_temp_avg":70.5,"gpu_temp_avg":65.0}},"memory":{{"ram_total":1,"ram_usage":1,"swap_total":0,"swap_usage":0}},"ecpu_usage":[1000,0.1],"pcpu_usage":[3000,0.5],"gpu_usage":[1200,0.5],"cpu_power":2.0,"gpu_power":10.0,"ane_power":0.0,"all_power":{WATTS},"sys_power":20.0,"ram_power":0.1,"gpu_ram_power":0.0}}\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)"
  sleep "$(awk "BEGIN {{ print $ms / 1000 }}")"
done
"#
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// A sysfs tree with one CPU package sensor at `temp_mc` millidegrees and a throttle counter.
fn sysfs(dir: &Path, temp_mc: u32) -> std::path::PathBuf {
    let root = dir.join("sys");
    let put = |p: &str, text: &str| {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    put("class/thermal/thermal_zone0/type", "x86_pkg_temp\n");
    put("class/thermal/thermal_zone0/temp", &format!("{temp_mc}\n"));
    put(
        "devices/system/cpu/cpu0/thermal_throttle/core_throttle_count",
        "0\n",
    );
    root
}

/// A simulated server whose answers take about 0.5 s (TTFT 300 ms, 20 tokens 10 ms apart), on
/// a free port of `rt`; its base URL.
fn serve(rt: &tokio::runtime::Runtime) -> String {
    let profile = SimProfile {
        ttft_ms: 300.0,
        itl_ms: 10.0,
        output_tokens: 20,
        ..SimProfile::default()
    };
    let state = Arc::new(SimState::new(profile, Default::default(), false));
    let addr = rt
        .block_on(llmpulse_sim::server::spawn(
            "127.0.0.1:0".parse().unwrap(),
            state,
        ))
        .unwrap();
    format!("http://{addr}/v1")
}

fn run_agent(dir: &Scratch, base_url: &str, env: &[(&str, std::ffi::OsString)]) -> Vec<Value> {
    run_agent_with(dir, base_url, env, 6, "", &[]).0
}

/// `llmpulse-agent [ARGS] run` of `calls` calls, one at a time, with `agent` lines added to
/// its `[agent]` table; the records and stderr.
fn run_agent_with(
    dir: &Scratch,
    base_url: &str,
    env: &[(&str, std::ffi::OsString)],
    calls: u32,
    agent: &str,
    args: &[&str],
) -> (Vec<Value>, String) {
    dir.write("suite.toml", ONE_QUESTION);
    let out = dir.0.join("out");
    let config = dir.write(
        "agent.toml",
        &format!(
            "suite = \"suite.toml\"\nrepetitions = {calls}\nconcurrency = 1\noutput = \"{}\"\n\
             [agent]\nid = \"heat-box\"\nsample_hz = 20\n{agent}\n\
             [[targets]]\nname = \"local\"\nprovider = \"openai-compatible\"\nmodel = \"m\"\n\
             base_url = \"{}\"\n",
            out.display(),
            base_url
        ),
    );
    let run = Command::new(AGENT)
        .args(args)
        .args(["run", "--config"])
        .arg(&config)
        .arg("--spool")
        .arg(dir.0.join("spool"))
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    assert!(run.status.success(), "{stderr}");
    let records = support::walk(&out)
        .into_iter()
        .find(|p| {
            p.extension().is_some_and(|e| e == "jsonl") && p.to_string_lossy().contains("records")
        })
        .expect("records");
    (common::jsonl(&records), stderr)
}

/// A record's send and end times, seconds since the epoch.
fn span(r: &Value) -> (f64, f64) {
    let sent = chrono::DateTime::parse_from_rfc3339(r["timestamp"].as_str().unwrap())
        .unwrap()
        .timestamp_micros() as f64
        / 1e6;
    (sent, sent + support::f(&r["latency_sec"]))
}

#[test]
fn a_macs_power_from_macmon_becomes_each_calls_energy() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = serve(&rt);
    let dir = Scratch::new("heat-macmon");
    stand_in_macmon(&dir.0);
    let path = std::env::join_paths(std::iter::once(dir.0.join("bin")).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    // A tree without RAPL: the chip's energy is macmon's alone.
    let root = sysfs(&dir.0, 55_000);
    let rows = run_agent(
        &dir,
        &sim,
        &[
            ("PATH", path),
            ("LLMPULSE_SYSFS_ROOT", root.into_os_string()),
        ],
    );
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert_eq!(r["energy_source"], "macmon", "{r:#}");
        // One call at a time: its energy is the power over its window, within 1%.
        let expected = WATTS * support::f(&r["latency_sec"]);
        let got = support::f(&r["energy_j"]);
        assert!(
            (got - expected).abs() <= 0.01 * expected,
            "energy {got} J, {WATTS} W × latency = {expected} J"
        );
        // macmon's CPU average is the CPU's temperature on a Mac.
        assert_eq!(r["cpu_temp_c"], 70.5);
        assert_eq!(r["gpu_temp_c"], 65.0);
    }
}

#[test]
fn linux_sensors_give_cpu_heat_and_a_rising_throttle_count_marks_calls_throttled() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = serve(&rt);
    let dir = Scratch::new("heat-sysfs");
    let root = sysfs(&dir.0, 81_500);
    // The kernel counts throttling events while the run goes on.
    let counter = root.join("devices/system/cpu/cpu0/thermal_throttle/core_throttle_count");
    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&done);
    let hot = std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            std::fs::write(&counter, format!("{n}\n")).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(40));
        }
    });
    // No macmon: PATH without it.
    let rows = run_agent(
        &dir,
        &sim,
        &[
            ("PATH", "/usr/bin:/bin".into()),
            ("LLMPULSE_SYSFS_ROOT", root.clone().into_os_string()),
        ],
    );
    done.store(true, Ordering::Relaxed);
    hot.join().unwrap();
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert_eq!(r["cpu_temp_c"], 81.5, "{r:#}");
        assert_eq!(r["throttled"], true, "{r:#}");
        assert_eq!(r["throttle_reason"], "thermal", "{r:#}");
    }
    // The report counts them, and select --no-throttling leaves the target out.
    let (agg, _) = common::aggregate(&dir.0.join("out"));
    let heat = llmpulse_report::figures::heat::HeatFigures::of(&agg.targets["local"].heat).unwrap();
    assert_eq!(heat.peak_c, Some(81.5));
    assert_eq!(heat.throttled.map(|t| (t.k, t.n)), Some((6, 6)));
    let criteria = |no_throttling| llmpulse_report::select::Criteria {
        weights: llmpulse_report::select::weights(Some("rag_coverage"), None).unwrap(),
        min_calls: 1,
        min_task_calls: 1,
        no_throttling,
        ..Default::default()
    };
    assert!(llmpulse_report::select::select(&agg, &criteria(false)).is_ok());
    let refused = llmpulse_report::select::select(&agg, &criteria(true)).unwrap_err();
    assert!(
        refused.excluded[0]
            .reason
            .contains("throttled in 6 of 6 calls"),
        "{refused:?}"
    );
    // The manifest names why macmon was not read.
    let manifest = support::walk(&dir.0.join("out"))
        .into_iter()
        .find(|p| p.ends_with("manifest.json"))
        .unwrap();
    let m: Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    let absent = m.to_string();
    assert!(absent.contains("macmon is not on PATH"), "{absent}");
}

#[test]
fn a_duty_cycle_keeps_the_server_busy_that_share_of_the_time() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = serve(&rt);
    let dir = Scratch::new("heat-duty");
    let (rows, _) = run_agent_with(&dir, &sim, &[], 12, "", &["--duty", "50%"]);
    assert_eq!(rows.len(), 12);
    let mut spans: Vec<(f64, f64)> = rows.iter().map(span).collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let busy: f64 = spans.iter().map(|(a, b)| b - a).sum();
    let wall = spans.last().unwrap().1 - spans[0].0;
    let share = busy / wall;
    assert!(
        (share - 0.5).abs() <= 0.05,
        "busy {busy:.2} s of {wall:.2} s = {share:.3}"
    );
    // The pauses are on the records, and never in their latency.
    let paused: f64 = rows.iter().map(|r| support::f(&r["paused_sec"])).sum();
    assert!(
        (paused - (wall - busy)).abs() < 0.2 * wall,
        "paused {paused:.2} s"
    );
}

#[test]
fn the_temperature_guard_starts_no_call_while_the_machine_is_hot() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = serve(&rt);
    let dir = Scratch::new("heat-guard");
    let root = sysfs(&dir.0, 90_000);
    let sensor = root.join("class/thermal/thermal_zone0/temp");
    // Hot at the start for 2 s, cool for 2 s, hot again for 2 s, then cool: the hot spells as
    // (from, to) seconds since the epoch.
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let spells = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&spells);
    let weather = std::thread::spawn(move || {
        for (temp, secs) in [(90_000, 2.0), (70_000, 2.0), (90_000, 2.0), (70_000, 0.0)] {
            let from = now();
            std::fs::write(&sensor, format!("{temp}\n")).unwrap();
            std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            if temp > 85_000 {
                log.lock().unwrap().push((from, now()));
            }
        }
    });
    let (rows, stderr) = run_agent_with(
        &dir,
        &sim,
        &[
            ("PATH", "/usr/bin:/bin".into()),
            ("LLMPULSE_SYSFS_ROOT", root.clone().into_os_string()),
        ],
        10,
        "max_temp_c = 85\nresume_temp_c = 75\n",
        &[],
    );
    weather.join().unwrap();
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r["success"] == true));
    let spells = spells.lock().unwrap().clone();
    // A sample every 50 ms and a look every 250 ms while paused: a call may start up to a
    // sample after the heat came, never later.
    for r in &rows {
        let (sent, _) = span(r);
        for (from, to) in &spells {
            assert!(
                !(sent > from + 0.1 && sent < *to),
                "a call went out at {sent:.2} while hot from {from:.2} to {to:.2}"
            );
        }
    }
    // The first call waited out the first hot spell, and said so.
    let first = rows.iter().map(span).map(|s| s.0).fold(f64::MAX, f64::min);
    assert!(
        first >= spells[0].1 - 0.3,
        "first call at {first:.2}, cool at {:.2}",
        spells[0].1
    );
    let paused: f64 = rows.iter().map(|r| support::f(&r["paused_sec"])).sum();
    assert!(paused > 1.5, "paused {paused} s");
    assert!(stderr.contains("cooldown"), "{stderr}");
    // The manifest counts both hot spells, and their time.
    let manifest = support::walk(&dir.0.join("out"))
        .into_iter()
        .find(|p| p.ends_with("manifest.json"))
        .unwrap();
    let m: Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    assert_eq!(m["pace"]["cooldowns"], 2, "{:#}", m["pace"]);
    assert!(
        support::f(&m["pace"]["cooldown_sec"]) > 1.5,
        "{:#}",
        m["pace"]
    );
}

/// A stand-in for `powermetrics --samplers … -i MS -f plist`: a property list every MS ms, each
/// ended by a NUL as powermetrics ends them, at 20 W combined and "Serious" thermal pressure;
/// `elapsed_ns` is the time since the last one, as powermetrics measures it.
fn stand_in_powermetrics(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("powermetrics");
    std::fs::write(
        &script,
        r#"#!/usr/bin/env bash
ms=$4
last=$(date +%s%N)
while true; do
  sleep "$(awk "BEGIN { print $ms / 1000 }")"
  now=$(date +%s%N)
  printf '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>elapsed_ns</key><integer>%s</integer><key>thermal_pressure</key><string>Serious</string><key>processor</key><dict><key>cpu_power</key><real>5000.0</real><key>gpu_power</key><real>15000.0</real><key>combined_power</key><real>20000.0</real></dict></dict></plist>\n\0' "$((now - last))"
  last=$now
done
"#,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn powermetrics_where_macmon_is_absent_gives_energy_and_thermal_pressure() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: powermetrics is read only by root (the agent checks, so must this)");
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = serve(&rt);
    let dir = Scratch::new("heat-powermetrics");
    stand_in_powermetrics(&dir.0);
    let path = format!("{}:/usr/bin:/bin", dir.0.join("bin").display());
    let root = sysfs(&dir.0, 55_000);
    let rows = run_agent(
        &dir,
        &sim,
        &[
            ("PATH", path.into()),
            ("LLMPULSE_SYSFS_ROOT", root.into_os_string()),
        ],
    );
    assert_eq!(rows.len(), 6);
    let ratios: Vec<f64> = rows
        .iter()
        .map(|r| support::f(&r["energy_j"]) / support::f(&r["latency_sec"]))
        .collect();
    for r in &rows {
        assert_eq!(r["energy_source"], "powermetrics", "{r:#}");
        // One call at a time: its energy is the power over its window, within 1%.
        let expected = 20.0 * support::f(&r["latency_sec"]);
        let got = support::f(&r["energy_j"]);
        assert!(
            (got - expected).abs() <= 0.01 * expected,
            "energy {got} J, 20 W × latency = {expected} J; W per call: {ratios:?}"
        );
        assert_eq!(r["throttled"], true, "{r:#}");
        assert_eq!(r["throttle_reason"], "os_pressure:Serious", "{r:#}");
    }
}

#[test]
fn a_soak_waits_out_a_hot_spell_and_its_summary_counts_the_cooldown() {
    let dir = Scratch::new("heat-soak");
    let root = sysfs(&dir.0, 60_000);
    let sensor = root.join("class/thermal/thermal_zone0/temp");
    let out = dir.0.join("out");
    let config = dir.write(
        "soak.toml",
        &format!(
            r#"suite = "builtin:rag-retail-finance"
output = "{}"
[agent]
id = "heat-box"
sample_hz = 20
max_temp_c = 85
resume_temp_c = 75

[[targets]]
name = "fast"
provider = "sim"
model = "fast-3b"
max_tokens = 32
[targets.sim]
ttft_ms = 20
itl_ms = 2
output_tokens = 8

[soak]
name = "hot-soak"
dir = "soak"
duration = "14s"
summary_interval = "2s"
pause = "100ms"
burst = 2
context_length = 4096
seed = 3
"#,
            out.display()
        ),
    );
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    // Hot from 4 s to 8 s into the soak.
    let spell = Arc::new(std::sync::Mutex::new(None));
    let log = Arc::clone(&spell);
    let weather = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(4));
        let from = now();
        std::fs::write(&sensor, "95000\n").unwrap();
        std::thread::sleep(std::time::Duration::from_secs(4));
        std::fs::write(&sensor, "60000\n").unwrap();
        *log.lock().unwrap() = Some((from, now()));
    });
    let run = Command::new(AGENT)
        .current_dir(&dir.0)
        .args(["soak", "--config"])
        .arg(&config)
        .arg("--spool")
        .arg(dir.0.join("spool"))
        // Midday on the soak's clock: no night-mode pauses.
        .args(["--clock-start", "2026-11-27T12:00:00+00:00"])
        .env("LLMPULSE_SYSFS_ROOT", &root)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    weather.join().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let (from, to) = spell.lock().unwrap().unwrap();
    let rows: Vec<Value> = support::walk(&out)
        .into_iter()
        .filter(|p| {
            p.extension().is_some_and(|e| e == "jsonl") && p.to_string_lossy().contains("records")
        })
        .flat_map(|p| common::jsonl(&p))
        .filter(|r| r["attempts"].as_u64() > Some(0))
        .collect();
    assert!(rows.len() > 10, "{} calls", rows.len());
    for r in &rows {
        let (sent, _) = span(r);
        assert!(
            !(sent > from + 0.1 && sent < to),
            "a call went out at {sent:.2} while hot from {from:.2} to {to:.2}"
        );
    }
    assert!(
        rows.iter().any(|r| span(r).0 >= to),
        "the soak went on after the spell"
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("soak/test_summary.json")).unwrap())
            .unwrap();
    assert!(summary["cooldowns"].as_u64() >= Some(1), "{summary:#}");
    // The guard held calls about as long as the 4 s spell lasted: wall time, not summed over
    // the calls that waited.
    let held = support::f(&summary["cooldown_sec"]);
    assert!(held > 3.0 && held < 6.0, "{summary:#}");
    // The morning report answers for heat: the model's readings and the guard's pauses.
    let report = std::fs::read_to_string(dir.0.join("soak/final_report.md")).unwrap();
    let section = report
        .split("## Heat")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap_or_else(|| panic!("no Heat section in\n{report}"));
    assert!(section.contains("| fast | "), "{section}");
    assert!(section.contains("| fast | 60–70 |"), "{section}");
    assert!(times_held(section) >= 1, "{section}");
}

/// The number of times the report says the temperature guard held new calls.
fn times_held(section: &str) -> u64 {
    section
        .split("held new calls ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
