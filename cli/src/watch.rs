//! `llmpulse watch`: reads a store's history, prints what changed (a table on a terminal, JSON
//! lines with --json, annotations and a step summary inside GitHub Actions), sends alerts with
//! --notify, and answers with its exit code: 0 nothing worse, 1 a regression, 2 an error.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use llmpulse_core::config::Config;
use llmpulse_core::store;
use llmpulse_report::aggregate::parse_time;
use llmpulse_report::watch::job::{self, Watched};
use llmpulse_report::watch::{Direction, Finding, Outcome, WatchOptions, Window, fmt_value};

use crate::args::{FailOn, WatchArgs};

pub const EXIT_REGRESSION: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

pub fn watch(a: WatchArgs) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let config = a
        .config
        .as_ref()
        .map(|p| Config::load_for_reading(p, &env))
        .transpose()?;
    let until = match &a.until {
        Some(s) => parse_time(s).map_err(|e| anyhow::anyhow!("--until: {e}"))?,
        None => Utc::now(),
    };
    let mut opts = WatchOptions::new(until);
    if let Some(c) = &config {
        opts = opts.with_settings(&c.watch);
    }
    if let Some(w) = a.window {
        opts.window = Window::Time(chrono::Duration::from_std(*w).context("--window is too long")?);
    }
    if let Some(n) = a.window_runs {
        if n < 2 {
            anyhow::bail!("--window-runs: expected at least 2 runs, found {n}");
        }
        opts.window = Window::Runs(n);
    }
    if let Some(b) = a.baseline {
        opts.baseline = chrono::Duration::from_std(*b).context("--baseline is too long")?;
    }
    if let Some(q) = a.q {
        if !(q > 0.0 && q < 1.0) {
            anyhow::bail!("--q: expected a level between 0 and 1, found {q}");
        }
        opts.q = q;
    }
    opts.targets = a.targets.clone();
    opts.by_origin = a.by_origin
        || config
            .as_ref()
            .and_then(|c| c.campaign.as_ref())
            .is_some_and(|c| c.per_origin);
    let notifiers = match (&config, a.notify) {
        (Some(c), true) if c.notify.is_empty() => {
            anyhow::bail!("--notify: {} has no [[notify]] table", c.origin)
        }
        (Some(c), true) => c.notify.clone(),
        _ => Vec::new(),
    };
    let campaign = a.campaign.clone().or_else(|| {
        config
            .as_ref()
            .and_then(|c| c.campaign.as_ref().map(|c| c.name.clone()))
    });

    let timeout = config
        .as_ref()
        .and_then(|c| c.watch.delivery_timeout)
        .unwrap_or(llmpulse_report::alerts::notify::REQUEST_TIMEOUT);
    let runtime = tokio::runtime::Runtime::new()?;
    let watched = runtime
        .block_on(async {
            let store = store::open(&a.from, &env).await?;
            let alerting = (!notifiers.is_empty()).then(|| job::Alerting {
                notifiers: &notifiers,
                env: &env,
                dashboard: None,
                timeout,
            });
            let got =
                job::watch_store(store.as_ref(), &opts, campaign, alerting, &|_, _| {}).await?;
            anyhow::Ok(got)
        })
        .with_context(|| format!("watching {}", a.from))?;
    for p in &watched.read.problems {
        tracing::warn!("{p}");
    }
    print(&a, &watched)?;
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        github(&watched.outcome)?;
    }
    let o = &watched.outcome;
    let silent = o.skipped.iter().any(|s| s.metric.is_none());
    let fail = match a.fail_on {
        FailOn::Regression => o.regressions().next().is_some(),
        FailOn::Any => o.regressions().next().is_some() || silent,
        FailOn::Never => false,
    };
    Ok(if fail {
        ExitCode::from(EXIT_REGRESSION)
    } else {
        ExitCode::SUCCESS
    })
}

fn print(a: &WatchArgs, w: &Watched) -> anyhow::Result<()> {
    let o = &w.outcome;
    let mut out = std::io::stdout().lock();
    if a.json {
        for f in &o.findings {
            let mut v = serde_json::to_value(f)?;
            v["kind"] = "finding".into();
            writeln!(out, "{v}")?;
        }
        for s in &o.skipped {
            let mut v = serde_json::to_value(s)?;
            v["kind"] = "skipped".into();
            writeln!(out, "{v}")?;
        }
        if let Some(r) = &w.alerts {
            let mut v = serde_json::to_value(r)?;
            v["kind"] = "alerts".into();
            writeln!(out, "{v}")?;
        }
        return Ok(());
    }
    let worse = o.regressions().count();
    let better = o.findings.len() - worse;
    writeln!(
        out,
        "{} runs of {} targets: {} tests, {worse} regression{}, {better} improvement{}",
        w.runs,
        o.targets,
        o.tests,
        if worse == 1 { "" } else { "s" },
        if better == 1 { "" } else { "s" },
    )?;
    if !o.findings.is_empty() {
        writeln!(out, "{}", table(&o.findings))?;
    }
    for s in o.skipped.iter().filter(|s| s.metric.is_none()) {
        writeln!(out, "  {}: {}", s.target, s.reason)?;
    }
    let thin = o.skipped.iter().filter(|s| s.metric.is_some()).count();
    if thin > 0 {
        writeln!(
            out,
            "  {thin} metric{} not tested for too few runs (--json lists them)",
            if thin == 1 { "" } else { "s" }
        )?;
    }
    if let Some(r) = &w.alerts {
        let mut err = std::io::stderr().lock();
        writeln!(
            err,
            "alerts: {} opened, {} resolved, {} sent, {} pending, {} open",
            r.opened.len(),
            r.resolved.len(),
            r.sent.len(),
            r.failed.len(),
            r.open
        )?;
        for f in &r.failed {
            writeln!(err, "  not delivered (will retry): {f}")?;
        }
    }
    Ok(())
}

fn table(findings: &[Finding]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "", "target", "metric", "baseline", "now", "change", "q", "since",
    ]);
    for f in findings {
        let change = match f.change.relative {
            Some(r) if f.metric.relative() => format!("{:+.1}%", r * 100.0),
            _ => format!("{:+.3}", f.change.absolute),
        };
        t.add_row(vec![
            match f.direction {
                Direction::Worse => "worse".to_string(),
                Direction::Better => "better".to_string(),
            },
            match &f.task {
                Some(task) => format!("{} [{task}]", f.target),
                None => f.target.clone(),
            },
            f.metric.name().to_string(),
            format!(
                "{} ({} runs)",
                fmt_value(f.metric, f.baseline.value),
                f.baseline.n
            ),
            format!(
                "{} ({} runs)",
                fmt_value(f.metric, f.current.value),
                f.current.n
            ),
            change,
            format!("{:.1e}", f.q_value),
            f.since
                .map(|s| s.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
        ]);
    }
    t.to_string()
}

/// GitHub Actions: an annotation per finding and a step summary.
fn github(o: &Outcome) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    // Workflow commands end at a newline; a finding's text has none, but escape as documented.
    let esc = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    for f in &o.findings {
        let (level, title) = match f.direction {
            Direction::Worse => ("error", "llmpulse regression"),
            Direction::Better => ("notice", "llmpulse improvement"),
        };
        writeln!(out, "::{level} title={title}::{}", esc(&f.line()))?;
    }
    for s in o.skipped.iter().filter(|s| s.metric.is_none()) {
        writeln!(
            out,
            "::warning title=llmpulse: no runs::{}",
            esc(&format!("{}: {}", s.target, s.reason))
        )?;
    }
    if let Ok(path) = std::env::var("GITHUB_STEP_SUMMARY") {
        let mut md = String::from("## llmpulse watch\n\n");
        if o.findings.is_empty() {
            md.push_str(&format!(
                "No change in {} tests over {} targets.\n",
                o.tests, o.targets
            ));
        } else {
            md.push_str("| | target | metric | baseline | now | q | since |\n|---|---|---|---|---|---|---|\n");
            for f in &o.findings {
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {:.1e} | {} |\n",
                    if f.direction == Direction::Worse {
                        "🔴 worse"
                    } else {
                        "🟢 better"
                    },
                    f.target,
                    f.metric.name(),
                    fmt_value(f.metric, f.baseline.value),
                    fmt_value(f.metric, f.current.value),
                    f.q_value,
                    f.since.map(|s| s.to_rfc3339()).unwrap_or_default()
                ));
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("GITHUB_STEP_SUMMARY {path}"))?;
        file.write_all(md.as_bytes())?;
    }
    Ok(())
}
