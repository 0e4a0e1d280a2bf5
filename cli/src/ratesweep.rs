//! `llmpulse run --profile sweep[:STEPS]`: a rate sweep, as GuideLLM's `sweep` does it. First
//! a synchronous pass (one call at a time) gives the lowest useful rate, then a throughput pass
//! (every call at once) the highest the targets sustained; then STEPS open-loop constant rates
//! evenly between them. Each pass is an ordinary run of every planned call. The table at the
//! end gives each pass's offered and achieved rate, latency, TTFT, SLO attainment and goodput,
//! and, with an SLO, the highest rate whose attainment reached `--slo-target`.

use std::process::ExitCode;

use anyhow::bail;
use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use llmpulse_core::config::Config;
use llmpulse_core::job::JobOutcome;
use llmpulse_core::load::Profile;
use llmpulse_core::runner::Stop;
use llmpulse_core::summary::TargetSummary;

use crate::args::RunArgs;
use crate::signals;

/// Steps between the synchronous and throughput rates when `sweep` names none.
const DEFAULT_STEPS: u32 = 5;

/// `Some(steps)` when `profile` asks for a sweep (an error for a bad count), else `None`.
pub fn steps(profile: &str) -> Option<anyhow::Result<u32>> {
    let rest = profile.trim().strip_prefix("sweep")?;
    Some(match rest.strip_prefix(':') {
        None if rest.is_empty() => Ok(DEFAULT_STEPS),
        None => return None,
        Some(n) => match n.trim().parse::<u32>() {
            Ok(k @ 1..=50) => Ok(k),
            _ => Err(anyhow::anyhow!(
                "--profile sweep:STEPS needs 1 to 50 steps, not '{n}'"
            )),
        },
    })
}

/// One pass of the sweep, as it went.
struct Pass {
    name: String,
    offered_rps: Option<f64>,
    achieved_rps: f64,
    run_id: String,
    summary: Vec<TargetSummary>,
}

pub fn sweep(a: &RunArgs, config: Config, steps: u32) -> anyhow::Result<ExitCode> {
    if a.slot.is_some() || a.shard.is_some() || a.run_id.is_some() {
        bail!("a rate sweep is several runs: --slot, --shard and --run-id do not apply");
    }
    let stop = Stop::new(*a.stop_grace);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.spawn(signals::stop_on_signal(stop.clone()));
    let mut passes: Vec<Pass> = Vec::new();
    let mut pass = |name: String, profile: Profile, concurrency: Option<u32>| {
        let mut c = config.clone();
        c.load.profile = profile;
        if let Some(n) = concurrency {
            c.concurrency = n;
        }
        let offered = match profile {
            Profile::Constant { rate } => Some(rate),
            _ => None,
        };
        let mut args = a.clone();
        if concurrency.is_some() {
            args.concurrency = concurrency;
        }
        tracing::info!(pass = %name, "rate sweep: pass starting");
        let JobOutcome::Ran {
            manifest, summary, ..
        } = crate::run::run_once(&args, c, &stop, &runtime)?
        else {
            bail!("a rate sweep's pass did not run");
        };
        let secs = chrono::DateTime::parse_from_rfc3339(&manifest.finished_at)?
            .signed_duration_since(chrono::DateTime::parse_from_rfc3339(&manifest.started_at)?)
            .num_microseconds()
            .unwrap_or(0) as f64
            / 1e6;
        let p = Pass {
            name,
            offered_rps: offered,
            achieved_rps: if secs > 0.0 {
                manifest.records as f64 / secs
            } else {
                0.0
            },
            run_id: manifest.run_id.clone(),
            summary,
        };
        let rate = p.achieved_rps;
        passes.push(p);
        anyhow::Ok(rate)
    };
    let low = pass("synchronous".into(), Profile::Closed, Some(1))?;
    let high = pass("throughput".into(), Profile::Throughput, None)?;
    if stop.requested() {
        bail!("stopped by a signal during the sweep");
    }
    let (low, high) = (low.min(high), low.max(high));
    for i in 1..=steps {
        let rate = low + (high - low) * f64::from(i) / f64::from(steps + 1);
        pass(
            format!("constant:{rate:.2}"),
            Profile::Constant { rate },
            None,
        )?;
        if stop.requested() {
            break;
        }
    }
    print!("{}", render(&passes, a.slo_target));
    Ok(ExitCode::SUCCESS)
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.decimals$}"))
}

/// The sweep table, one row per (pass, target), and the highest rate meeting the SLO target.
fn render(passes: &[Pass], slo_target: f64) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "pass",
        "target",
        "offered/s",
        "achieved/s",
        "ok %",
        "p50 s",
        "p50 TTFT s",
        "lag p99 ms",
        "SLO met %",
        "goodput/s",
        "run",
    ]);
    for p in passes {
        for r in &p.summary {
            t.add_row(vec![
                p.name.clone(),
                r.target.clone(),
                num(p.offered_rps, 2),
                format!("{:.2}", p.achieved_rps),
                format!("{:.1}", r.success_rate * 100.0),
                num(r.latency_p50_sec, 3),
                num(r.ttft_p50_sec, 3),
                num(r.schedule_lag_p99_sec.map(|s| s * 1000.0), 1),
                num(r.slo_attainment.map(|(s, _, _)| s * 100.0), 1),
                num(r.goodput_rps, 2),
                p.run_id.clone(),
            ]);
        }
    }
    for i in 2..10 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = format!("rate sweep\n{t}\n");
    let has_slo = passes
        .iter()
        .any(|p| p.summary.iter().any(|r| r.slo_attainment.is_some()));
    if has_slo {
        // The highest offered (or, for the passes without one, achieved) rate at which every
        // target met the SLO target.
        let best = passes
            .iter()
            .filter(|p| {
                p.summary
                    .iter()
                    .all(|r| r.slo_attainment.is_some_and(|(s, _, _)| s >= slo_target))
            })
            .map(|p| (p.offered_rps.unwrap_or(p.achieved_rps), &p.name))
            .max_by(|x, y| x.0.total_cmp(&y.0));
        out.push_str(&match best {
            Some((rate, name)) => format!(
                "highest rate with SLO attainment ≥ {:.0}% for every target: {rate:.2}/s ({name})\n",
                slo_target * 100.0
            ),
            None => format!(
                "no pass reached SLO attainment ≥ {:.0}% for every target\n",
                slo_target * 100.0
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::steps;

    #[test]
    fn sweep_takes_a_step_count() {
        assert_eq!(steps("sweep").unwrap().unwrap(), 5);
        assert_eq!(steps("sweep:3").unwrap().unwrap(), 3);
        assert!(steps("sweep:0").unwrap().is_err());
        assert!(steps("sweeps").is_none());
        assert!(steps("constant:3").is_none());
    }
}
