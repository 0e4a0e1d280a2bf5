//! The morning report (`final_report.md`): model rankings on speed, reliability and tool
//! calling, the capability matrix, hardware over time, errors, and recommendations by use case.
//! Pure: text from the soak's counters and profiles.

use std::fmt::Write as _;

use super::scenario::Scenario;
use super::state::SoakState;
use super::stats::{ModelProfile, Profiles, SoakStats};

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1}%", v * 100.0))
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

fn rate(p: &ModelProfile) -> Option<f64> {
    (p.tests_run > 0).then(|| p.successes as f64 / p.tests_run as f64)
}

/// The scenario success rate of a model, when it was tried.
fn scenario_rate(p: &ModelProfile, s: Scenario) -> Option<f64> {
    p.scenario_results.get(s.name()).and_then(|c| c.rate())
}

/// The best model by `key` among those with at least one call and a 90% success rate (any
/// model when none is that reliable), with the figure.
fn best(profiles: &Profiles, key: impl Fn(&ModelProfile) -> Option<f64>) -> Option<(&str, f64)> {
    let pick = |reliable: bool| {
        profiles
            .0
            .iter()
            .filter(|(_, p)| !reliable || rate(p).is_some_and(|r| r >= 0.9))
            .filter_map(|(k, p)| key(p).map(|v| (k.as_str(), v)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    };
    pick(true).or_else(|| pick(false))
}

/// The Heat section: per model the hottest reading, throttling, speed by temperature band and
/// the sustained speed against the first minutes; then what the agent's pacing did.
fn heat(t: &mut String, stats: &SoakStats) {
    let _ = writeln!(t, "\n## Heat\n");
    if stats.heat.is_empty() {
        let _ = writeln!(
            t,
            "No call had a temperature reading or a throttle state: this host's telemetry has \
             no thermal source (see the runs' `host` in their manifests)."
        );
    } else {
        let _ = writeln!(
            t,
            "| model | calls with a reading | peak (°C) | throttled | first throttled after | \
             first 5 min (tok/s) | last 30 min (tok/s) | sustained / first |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|"
        );
        for (model, h) in &stats.heat {
            let first_last = h.first_and_sustained_tps();
            let _ = writeln!(
                t,
                "| {model} | {} | {} | {} | {} | {} | {} | {} |",
                h.readings,
                num(h.peak_c, 1),
                h.throttled_share().map_or("–".into(), |s| format!(
                    "{:.1}% ({} of {})",
                    s * 100.0,
                    h.throttled,
                    h.throttle_known
                )),
                h.first_throttled_after_sec().map_or("–".into(), |s| {
                    humantime::format_duration(std::time::Duration::from_secs(s as u64)).to_string()
                }),
                num(first_last.map(|f| f.0), 1),
                num(first_last.map(|f| f.1), 1),
                num(first_last.map(|f| f.1 / f.0), 2),
            );
        }
        let _ = writeln!(
            t,
            "\nThe first 5 and last 30 minutes need calls spanning 35 minutes or more.\n\n\
             Output speed by temperature (the hotter of the CPU and GPU readings during a call):\n\n\
             | model | band (°C) | calls | output speed (tok/s) |\n|---|---|---:|---:|"
        );
        for (model, h) in &stats.heat {
            for (from, speed) in &h.bands {
                let _ = writeln!(
                    t,
                    "| {model} | {from}–{} | {} | {} |",
                    from + super::heat::BAND_C,
                    speed.n,
                    num(speed.value(), 1),
                );
            }
        }
    }
    let _ = writeln!(
        t,
        "\nPacing: the temperature guard held new calls {} times for {:.0} s in all; calls \
         waited {:.0} s for the duty cycle; {} calls were throttled.",
        stats.cooldowns, stats.cooldown_sec, stats.duty_wait_sec, stats.throttled_calls
    );
}

/// `final_report.md`.
pub fn render(
    name: &str,
    state: &SoakState,
    stats: &SoakStats,
    profiles: &Profiles,
    output: &str,
) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "# Soak `{name}`: final report\n");
    let _ = writeln!(
        t,
        "Started {}{}. {} calls ({} successful, {}), {} at night, {} model rotations, {} segments \
         (runs).\n",
        state.started_at.format("%Y-%m-%d %H:%M UTC"),
        state.ends_at.map_or(String::new(), |e| format!(
            ", planned to end {}",
            e.format("%Y-%m-%d %H:%M UTC")
        )),
        stats.all.calls,
        stats.all.successes,
        pct(stats.all.success_rate()),
        stats.night_calls,
        stats.rotations,
        stats.segments,
    );
    let _ = writeln!(
        t,
        "Model figures include earlier soaks of this host (the profile database). The full \
         HTML report over this soak's runs: `llmpulse report --from {output} --campaign {name} \
         --out report`.\n"
    );

    let _ = writeln!(t, "## Model rankings\n");
    let _ = writeln!(
        t,
        "| model | calls | success | avg latency (s) | avg output speed (tok/s) | tool calls explicit | tool calls implicit | memory (MB) | energy per token (J) |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut ranked: Vec<(&String, &ModelProfile)> = profiles.0.iter().collect();
    ranked.sort_by(|a, b| {
        b.1.output_tps
            .value()
            .unwrap_or(0.0)
            .total_cmp(&a.1.output_tps.value().unwrap_or(0.0))
    });
    for (k, p) in &ranked {
        let _ = writeln!(
            t,
            "| {k} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.tests_run,
            pct(rate(p)),
            num(p.avg_response_time(), 3),
            num(p.output_tps.value(), 1),
            pct(p.tool_calls_explicit.rate()),
            pct(p.tool_calls_implicit.rate()),
            num(p.memory_mb.value(), 0),
            num(p.energy_per_token_j.value(), 4),
        );
    }

    let _ = writeln!(t, "\n## Capability matrix\n");
    let _ = writeln!(
        t,
        "Success rate per scenario: ✓ at least 90%, ~ at least 50%, ✗ below, blank not tried.\n"
    );
    let mut head = String::from("| model |");
    let mut rule = String::from("|---|");
    for s in Scenario::ALL {
        let _ = write!(head, " {} |", s.name());
        rule.push_str(":---:|");
    }
    let _ = writeln!(t, "{head}\n{rule}");
    for (k, p) in &profiles.0 {
        let mut row = format!("| {k} |");
        for s in Scenario::ALL {
            let cell = match scenario_rate(p, s) {
                None => String::new(),
                Some(r) if r >= 0.9 => format!("✓ {:.0}%", r * 100.0),
                Some(r) if r >= 0.5 => format!("~ {:.0}%", r * 100.0),
                Some(r) => format!("✗ {:.0}%", r * 100.0),
            };
            let _ = write!(row, " {cell} |");
        }
        let _ = writeln!(t, "{row}");
    }

    let _ = writeln!(t, "\n## Hardware over time\n");
    if stats.hours.is_empty() {
        let _ = writeln!(t, "No calls yet.");
    } else {
        let _ = writeln!(
            t,
            "| hour (UTC) | calls | success | memory (MB) | power (W) | GPU temperature (°C) |\n|---|---:|---:|---:|---:|---:|"
        );
        for (h, x) in &stats.hours {
            let _ = writeln!(
                t,
                "| {h}:00 | {} | {} | {} | {} | {} |",
                x.calls,
                pct((x.calls > 0).then(|| x.successes as f64 / x.calls as f64)),
                num(x.memory_mb.value(), 0),
                num(x.power_w.value(), 1),
                num(x.gpu_temp_c.value(), 1),
            );
        }
        let _ = writeln!(
            t,
            "\nA blank figure means the host's telemetry has no such source (see the runs' \
             `host` in their manifests)."
        );
    }

    heat(&mut t, stats);

    let _ = writeln!(t, "\n## Errors\n");
    if stats.errors.is_empty() {
        let _ = writeln!(t, "None.");
    } else {
        let _ = writeln!(t, "| target | error kind | calls |\n|---|---|---:|");
        for (model, kinds) in &stats.errors_by_model {
            for (k, n) in kinds {
                let _ = writeln!(t, "| {model} | {k} | {n} |");
            }
        }
        let _ = writeln!(
            t,
            "\n`failover-probe` errors are expected: each provider-failover call is first sent \
             to a server that refuses it, then answered by the model as its fallback."
        );
    }

    let _ = writeln!(t, "\n## Recommendations by use case\n");
    let mut rec = |use_case: &str, pick: Option<(&str, f64)>, what: &str| {
        let _ = match pick {
            Some((m, v)) => writeln!(t, "- **{use_case}**: `{m}` ({what} {v:.3})"),
            None => writeln!(t, "- **{use_case}**: no model has a figure yet"),
        };
    };
    rec(
        "Interactive chat",
        best(profiles, |p| p.avg_response_time().map(|l| -l)).map(|(m, v)| (m, -v)),
        "mean latency, s:",
    );
    rec(
        "Throughput",
        best(profiles, |p| p.output_tps.value()),
        "mean output speed, tok/s:",
    );
    rec(
        "Agents and tool use",
        best(profiles, ModelProfile::tool_call_success_rate),
        "tool-call success rate:",
    );
    rec(
        "Long documents",
        best(profiles, |p| scenario_rate(p, Scenario::LargeContext)),
        "large-context success rate:",
    );
    rec(
        "Under concurrent load",
        best(profiles, |p| scenario_rate(p, Scenario::ConcurrentLoad)),
        "concurrent-load success rate:",
    );
    rec(
        "Unattended reliability",
        best(profiles, rate),
        "success rate:",
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::stats::{Count, ModelProfile};

    #[test]
    fn the_report_ranks_and_recommends_from_the_profiles() {
        let mut profiles = Profiles::default();
        let mut fast = ModelProfile {
            tests_run: 10,
            successes: 10,
            ..ModelProfile::default()
        };
        fast.response_time.sum = 5.0;
        fast.response_time.n = 10;
        fast.tool_calls_explicit = Count {
            count: 4,
            success: 1,
        };
        fast.scenario_results.insert(
            "tool_calling".into(),
            Count {
                count: 4,
                success: 1,
            },
        );
        let mut careful = fast.clone();
        careful.response_time.sum = 20.0;
        careful.tool_calls_explicit = Count {
            count: 4,
            success: 4,
        };
        careful.scenario_results.insert(
            "tool_calling".into(),
            Count {
                count: 4,
                success: 4,
            },
        );
        profiles.0.insert("fast".into(), fast);
        profiles.0.insert("careful".into(), careful);
        let state: SoakState = serde_json::from_value(serde_json::json!({
            "name": "n", "seed": 1, "started_at": "2026-11-27T22:00:00Z", "ends_at": null,
            "next_call": 20, "rotation": 3, "rotation_left": 2, "pending": null,
            "in_flight": null, "stats": SoakStats::default(), "profiles": {}, "base_profiles": {},
            "rewrites": 0, "finished": true
        }))
        .unwrap();
        let text = render("n", &state, &SoakStats::default(), &profiles, "results");
        assert!(
            text.contains("- **Interactive chat**: `fast` (mean latency, s: 0.500)"),
            "{text}"
        );
        assert!(
            text.contains("- **Agents and tool use**: `careful` (tool-call success rate: 1.000)"),
            "{text}"
        );
        assert!(text.contains("| fast |"));
        assert!(text.contains("✗ 25%") && text.contains("✓ 100%"), "{text}");
        assert!(text.contains("llmpulse report --from results --campaign n"));
    }

    #[test]
    fn the_heat_section_has_a_row_per_model_with_a_reading_and_says_when_none_had_one() {
        let state: SoakState = serde_json::from_value(serde_json::json!({
            "name": "n", "seed": 1, "started_at": "2026-11-27T22:00:00Z", "ends_at": null,
            "next_call": 20, "rotation": 3, "rotation_left": 2, "pending": null,
            "in_flight": null, "stats": SoakStats::default(), "profiles": {}, "base_profiles": {},
            "rewrites": 0, "finished": true
        }))
        .unwrap();
        let profiles = Profiles::default();
        let none = render("n", &state, &SoakStats::default(), &profiles, "out");
        assert!(
            none.contains("## Heat\n\nNo call had a temperature reading"),
            "{none}"
        );

        let at = |m: i64| Some(state.started_at + chrono::Duration::minutes(m));
        let mut hot = crate::soak::heat::ModelHeat {
            readings: 40,
            peak_c: Some(91.5),
            throttle_known: 40,
            throttled: 10,
            first: at(0),
            first_throttled: at(90),
            ..Default::default()
        };
        hot.bands
            .insert(80, crate::soak::stats::Avg { sum: 420.0, n: 10 });
        let stats = SoakStats {
            heat: [("mlx-7b".to_string(), hot)].into(),
            cooldowns: 2,
            cooldown_sec: 61.0,
            ..SoakStats::default()
        };
        let text = render("n", &state, &stats, &profiles, "out");
        assert!(
            text.contains("| mlx-7b | 40 | 91.5 | 25.0% (10 of 40) | 1h 30m | – | – | – |"),
            "{text}"
        );
        assert!(text.contains("| mlx-7b | 80–90 | 10 | 42.0 |"), "{text}");
        assert!(text.contains("held new calls 2 times for 61 s"), "{text}");
    }
}
