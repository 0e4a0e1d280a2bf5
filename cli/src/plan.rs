//! `llmpulse plan`: a campaign's slots, the runs and records it should produce, and whether
//! given triggers can serve its cadence.

use std::process::ExitCode;

use anyhow::Context;
use llmpulse_core::config::Config;
use llmpulse_core::schedule::{self, Trigger};
use llmpulse_core::suite::Suite;
use serde_json::json;

use crate::args::PlanArgs;

/// `12h`, `51m 25.7s`, `1h 30m`: the parts that are not zero.
fn human(d: std::time::Duration) -> String {
    let secs = d.as_secs_f64();
    let (h, m, s) = (
        (secs / 3600.0).floor() as u64,
        ((secs % 3600.0) / 60.0).floor() as u64,
        ((secs % 60.0) * 10.0).round() / 10.0,
    );
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0.0 || parts.is_empty() {
        parts.push(if s.fract() == 0.0 {
            format!("{s:.0}s")
        } else {
            format!("{s:.1}s")
        });
    }
    parts.join(" ")
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn plan(a: PlanArgs) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let config = Config::load_for_reading(&a.config, &env)?;
    let campaign = config
        .campaign
        .as_ref()
        .with_context(|| format!("{}: no [campaign] section to plan", a.config.display()))?;
    let suite = Suite::load(&config.suite, &config.base_dir)?;
    let targets = config.targets.iter().filter(|t| !t.fallback_only).count() as u64;
    let per_run = suite.questions.len() as u64 * targets * u64::from(config.repetitions);
    let slots = campaign.slot_count();
    let triggers: Vec<(String, Trigger)> = a
        .trigger
        .iter()
        .map(|t| Trigger::parse(t).map(|p| (t.clone(), p)))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("--trigger {e}"))?;
    let checks: Vec<_> = triggers
        .iter()
        .map(|(text, t)| (text, t, schedule::check(campaign, t)))
        .collect();
    let proposals = schedule::proposals(campaign);

    if a.json {
        let v = json!({
            "campaign": campaign.name,
            "start": campaign.start,
            "end": campaign.end,
            "cadence": campaign.cadence,
            "interval_sec": campaign.interval().as_secs_f64(),
            "slots": slots,
            "records_per_run": per_run,
            "runs_expected": slots,
            "records_expected": slots * per_run,
            "triggers": checks.iter().map(|(text, t, c)| json!({
                "trigger": text, "check": c, "serves": c.serves(), "note": t.step_warning(),
            })).collect::<Vec<_>>(),
            "proposals": proposals.iter().map(|(p, e, n)| json!({"platform": p, "trigger": e, "note": n})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }

    println!(
        "campaign {}: {} → {}, {} (a slot every {})",
        campaign.name,
        time(campaign.start),
        time(campaign.end),
        campaign.cadence,
        human(campaign.interval())
    );
    if let (Some(first), Some(last)) = (campaign.slot(0), campaign.slot(slots.saturating_sub(1))) {
        println!(
            "slots: {slots} (first {}, last {})",
            time(first.start),
            time(last.start)
        );
    }
    println!(
        "per run: {} questions × {targets} targets × {} repetition{} = {} records",
        suite.questions.len(),
        config.repetitions,
        if config.repetitions == 1 { "" } else { "s" },
        thousands(per_run)
    );
    println!(
        "expected: {} runs, {} records",
        thousands(slots),
        thousands(slots * per_run)
    );
    let mut all_serve = true;
    for (text, trigger, c) in &checks {
        println!();
        println!(
            "trigger `{text}`: fires {:.1} times per {} ({} over the campaign)",
            c.fires_per_window,
            human(campaign.window),
            thousands(c.fires as u64)
        );
        if let Some(w) = trigger.step_warning() {
            println!("  note: {w}");
        }
        if c.serves() {
            println!(
                "  serves every slot: yes (at most {} from a slot's start to its run)",
                human(c.worst_delay)
            );
        } else {
            all_serve = false;
            let shown: Vec<String> = c
                .slots_missed
                .iter()
                .take(10)
                .map(|s| s.to_string())
                .collect();
            println!(
                "  serves every slot: NO — {} slot{} would never run (slots {}{})",
                c.slots_missed.len(),
                if c.slots_missed.len() == 1 { "" } else { "s" },
                shown.join(", "),
                if c.slots_missed.len() > 10 {
                    ", …"
                } else {
                    ""
                }
            );
        }
    }
    println!();
    println!(
        "working triggers (each fire runs `llmpulse run --slot auto`; the claim makes extra fires no-ops):"
    );
    for (platform, expr, note) in &proposals {
        println!("  {platform:<22} {expr:<18} {note}");
    }
    Ok(if all_serve {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
