//! `llmpulse report` and the reading shared with `llmpulse select`: records from any store,
//! filtered, folded and written as a report.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use llmpulse_core::config::Config;
use llmpulse_core::store;
use llmpulse_report::aggregate::{Aggregate, Plan, Side, parse_time};
use llmpulse_report::figures::{self, Context as FigContext};
use llmpulse_report::read::{self, Filter, ReadStats};
use llmpulse_report::text;

use crate::args::{ReportArgs, SourceArgs};

/// The filter the source arguments describe.
pub fn filter(a: &SourceArgs) -> anyhow::Result<Filter> {
    let time = |flag: &str, v: &Option<String>| -> anyhow::Result<_> {
        v.as_deref()
            .map(parse_time)
            .transpose()
            .map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    };
    Ok(Filter {
        since: time("--since", &a.since)?,
        until: time("--until", &a.until)?,
        campaign: a.campaign.clone(),
        targets: a.targets.clone(),
    })
}

/// Reads and folds the records at `a.from` that `filter` keeps, with a progress bar on a
/// terminal.
pub fn load(
    a: &SourceArgs,
    filter: &Filter,
    plan: impl FnOnce(Option<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)>) -> Plan,
) -> anyhow::Result<(Aggregate, ReadStats)> {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} runs read  {elapsed}") {
        bar.set_style(style);
    }
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let env = |k: &str| std::env::var(k).ok();
    let runtime = tokio::runtime::Runtime::new()?;
    let out = runtime.block_on(async {
        let store = store::open(&a.from, &env).await?;
        anyhow::Ok(read::read(store.as_ref(), filter, plan, &progress).await?)
    });
    bar.finish_and_clear();
    let (agg, stats) = out.with_context(|| format!("reading {}", a.from))?;
    for p in stats.problems.iter().chain(&agg.bad_lines) {
        tracing::warn!("{p}");
    }
    Ok((agg, stats))
}

pub fn report(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let compare = match a.compare.as_slice() {
        [] => None,
        [x, y] => Some((
            Side::parse(x).map_err(|e| anyhow::anyhow!("--compare: {e}"))?,
            Side::parse(y).map_err(|e| anyhow::anyhow!("--compare: {e}"))?,
        )),
        _ => anyhow::bail!("--compare takes two targets or two windows"),
    };
    let config = match &a.config {
        Some(path) => {
            let env = |k: &str| std::env::var(k).ok();
            Some(Config::load_for_reading(path, &env)?)
        }
        None => None,
    };
    let campaigns: Vec<_> = config.iter().filter_map(|c| c.campaign.clone()).collect();
    let bucket = a.bucket.map(|d| d.as_secs() as i64);
    if bucket == Some(0) {
        anyhow::bail!("--bucket must be at least one second");
    }
    let filter = filter(&a.source)?;
    let default_watch = Default::default();
    let watch = config.as_ref().map_or(&default_watch, |c| &c.watch);
    let (agg, stats) = load(&a.source, &filter, |span| Plan {
        bucket_sec: bucket.unwrap_or_else(|| figures::bucket_for(span)),
        compare: compare.clone(),
        compare_target: a.target.clone(),
        // The page's Changes need the window and its baseline only.
        history_from: filter
            .until
            .or(span.map(|(_, last)| last))
            .and_then(|end| llmpulse_report::after_run::history_from(watch, end)),
    })?;
    if agg.records == 0 {
        anyhow::bail!(
            "no records at {} match (runs seen: {}); check --since, --until, --campaign and \
             --targets",
            a.source.from,
            stats.runs.len()
        );
    }
    if let Some((Side::Target(x), Side::Target(y))) = &compare {
        for t in [x, y] {
            if !agg.targets.contains_key(t) {
                anyhow::bail!(
                    "--compare: no records of target '{t}'; targets seen: {}",
                    agg.targets.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
    }
    let cx = FigContext {
        source: a.source.from.clone(),
        since: filter.since,
        until: filter.until,
        campaign: filter.campaign.clone(),
        campaigns: &campaigns,
        now: Utc::now(),
        watch: config.as_ref().map(|c| &c.watch),
    };
    let mut r = figures::compute(&agg, &stats, &cx);
    // The store's alerts (kept by `watch --notify`), and the dashboard when asked.
    let env = |k: &str| std::env::var(k).ok();
    let runtime = tokio::runtime::Runtime::new()?;
    let published = runtime
        .block_on(async {
            let store = store::open(&a.source.from, &env).await?;
            let state = llmpulse_report::alerts::read_state(store.as_ref()).await?;
            r.alerts = state.updated_at.is_some().then_some(state);
            if a.publish {
                let keys = llmpulse_report::dashboard::publish(store.as_ref(), &r).await?;
                return anyhow::Ok(Some((store.describe(), keys)));
            }
            anyhow::Ok(None)
        })
        .with_context(|| format!("reading alerts at {}", a.source.from))?;
    let files = llmpulse_report::write(&r, &a.out)
        .with_context(|| format!("writing the report into {}", a.out.display()))?;
    if let Some((at, keys)) = &published {
        eprintln!("published {} files to {at}/dashboard/", keys.len());
    }
    if let Some(name) = &a.narrate {
        let figures = serde_json::to_value(&r)?;
        let path = crate::narrate::narrate_with(
            a.config.as_deref(),
            name,
            &figures,
            "summary.json",
            &a.out,
        )?;
        println!("{path}");
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", text::comparison_table(&r))?;
    if let Some(c) = &r.comparison {
        writeln!(stdout, "{}", text::comparison_text(c))?;
    }
    writeln!(
        stdout,
        "{} records from {} run{}; wrote {}",
        r.records,
        r.runs,
        if r.runs == 1 { "" } else { "s" },
        files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    Ok(ExitCode::SUCCESS)
}
