//! `llmpulse campaign status`: expected against present, read back from the store.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use llmpulse_core::config::Config;
use llmpulse_core::store;
use llmpulse_core::suite::Suite;
use llmpulse_report::status::{self, Tally};

use crate::args::StatusArgs;

fn list(v: &[u64]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = v.iter().take(20).map(|s| s.to_string()).collect();
    format!(
        "{} (slot{} {}{})",
        v.len(),
        if v.len() == 1 { "" } else { "s" },
        shown.join(", "),
        if v.len() > 20 { ", …" } else { "" }
    )
}

fn tally_table(title: &str, rows: &BTreeMap<String, Tally>) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![title, "expected", "present", "ok"]);
    for (name, r) in rows {
        t.add_row(vec![
            name.clone(),
            r.expected.to_string(),
            r.present.to_string(),
            r.successes.to_string(),
        ]);
    }
    t.to_string()
}

pub fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let config = Config::load_for_reading(&a.config, &env)?;
    let campaign = config
        .campaign
        .clone()
        .with_context(|| format!("{}: no [campaign] section", a.config.display()))?;
    let suite = Suite::load(&config.suite, &config.base_dir)?;
    let location = a.from.clone().unwrap_or_else(|| config.output.clone());
    let as_of = match &a.now {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .with_context(|| format!("--now {t}: not an RFC 3339 time"))?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    let targets: Vec<String> = config
        .targets
        .iter()
        .filter(|t| !t.fallback_only)
        .map(|t| t.name.clone())
        .collect();
    let mut per_industry: BTreeMap<String, u64> = BTreeMap::new();
    for q in &suite.questions {
        *per_industry.entry(q.industry.clone()).or_default() += u64::from(config.repetitions);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let st = runtime.block_on(async {
        let store = store::open(&location, &env).await?;
        anyhow::Ok(
            status::campaign_status(&campaign, store.as_ref(), &targets, &per_industry, as_of)
                .await?,
        )
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "campaign {} at {} (as of {})",
        st.campaign,
        st.location,
        st.as_of.to_rfc3339()
    );
    println!(
        "slots due: {} of {}; runs present: {}",
        st.slots_due, st.slots_total, st.runs_present
    );
    println!("missing: {}", list(&st.missing_slots));
    for (origin, slots) in &st.missing_by_origin {
        println!("  not run from {origin}: {}", list(slots));
    }
    println!(
        "late (started more than a quarter slot after the slot): {}",
        list(&st.late_slots)
    );
    println!("duplicate runs: {}", list(&st.duplicate_slots));
    println!(
        "sharded runs missing shards: {}",
        list(&st.incomplete_slots)
    );
    println!(
        "dead claims (rerun with --slot N --reclaim): {}",
        list(&st.dead_claims)
    );
    let pct = if st.records_expected > 0 {
        100.0 * st.records_present as f64 / st.records_expected as f64
    } else {
        0.0
    };
    println!(
        "records: {} of {} expected ({pct:.1}%)",
        st.records_present, st.records_expected
    );
    if let Some(b) = &st.budget {
        let limit = |v: Option<f64>| v.map_or("none".to_string(), |v| format!("${v:.2}"));
        println!(
            "budget: ${:.4} spent by {} calls (limit {}, per day {}){}",
            b.spent_usd,
            b.spent_calls,
            limit(b.budget_usd),
            limit(b.daily_budget_usd),
            b.spent_by_day
                .last_key_value()
                .map(|(d, v)| format!("; ${v:.4} on {d}"))
                .unwrap_or_default()
        );
        println!(
            "stopped for budget: {} ({} calls not made)",
            list(&b.stopped_slots),
            b.skipped_calls
        );
        for (slot, why) in &b.why {
            println!("  slot {slot}: {why}");
        }
    }
    println!("{}", tally_table("target", &st.by_target));
    println!("{}", tally_table("industry", &st.by_industry));
    Ok(ExitCode::SUCCESS)
}
