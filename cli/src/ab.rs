//! `llmpulse ab`: two targets asked the same calls in rounds, each round an ordinary run with
//! the calls in a shuffled order (seeded per round, so drift over time favours neither side),
//! then compared pair by pair with a verdict per metric (`llmpulse_report::ab`). Writes the
//! seed 001 files: `{target}_all_responses.csv`, `combined_model_responses.csv`,
//! `metrics.json` and `metrics_report.json`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use llmpulse_core::config::Config;
use llmpulse_core::job::{self, JobOutcome, JobRequest};
use llmpulse_core::record::{self, Record};
use llmpulse_core::stats;
use llmpulse_report::ab;
use serde_json::json;

use crate::args::AbArgs;
use crate::run::{default_spool, hostname, progress_bar, progress_sink};

pub fn ab(a: AbArgs) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let mut config = Config::load(&a.config, &env)?;
    if let Some(n) = &a.narrate
        && !config.targets.iter().any(|t| &t.name == n)
    {
        bail!("--narrate: no target named '{n}' in {}", a.config.display());
    }
    let names: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    let pick = |given: &Option<String>, i: usize| -> anyhow::Result<String> {
        match given {
            Some(n) if names.contains(n) => Ok(n.clone()),
            Some(n) => bail!(
                "{}: no target named '{n}' (targets: {})",
                a.config.display(),
                names.join(", ")
            ),
            None => names.get(i).cloned().with_context(|| {
                format!(
                    "{}: an A/B test needs two targets, the config has {}",
                    a.config.display(),
                    names.len()
                )
            }),
        }
    };
    let (ta, tb) = (pick(&a.a, 0)?, pick(&a.b, 1)?);
    if ta == tb {
        bail!("A and B are the same target '{ta}'");
    }
    config.select_targets(&[ta.clone(), tb.clone()])?;
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("cannot create {}", a.output.display()))?;
    config.output = a.output.display().to_string();
    let runtime = tokio::runtime::Runtime::new()?;
    let mut round_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut files: Vec<String> = Vec::new();
    for round in 0..a.rounds as usize {
        let mut c = config.clone();
        c.load.order_seed = Some(a.seed.wrapping_add(round as u64));
        let job = JobRequest::new(
            format!("local:{}", hostname()),
            default_spool(),
            chrono::Utc::now(),
        )
        .prepare(c)?;
        let total = job.planned_calls();
        tracing::info!(
            round = round + 1,
            rounds = a.rounds,
            calls = total,
            "A/B round starting"
        );
        let progress = progress_bar(total as u64, a.quiet);
        let mut sink = progress_sink(&progress, total);
        let outcome = runtime.block_on(job::run_job(job, &env, &mut sink))?;
        progress.finish_and_clear();
        let JobOutcome::Ran { manifest, .. } = outcome else {
            bail!("round {} did not run", round + 1);
        };
        files.extend(
            manifest
                .files
                .iter()
                .filter(|f| f.path.ends_with(".jsonl") && f.path.starts_with("records/"))
                .map(|f| f.path.clone()),
        );
        round_of.insert(manifest.run_id.clone(), round);
    }

    let mut records: Vec<Record> = Vec::new();
    for f in &files {
        let path = a.output.join(f);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        records.extend(
            record::read_jsonl(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        );
    }
    let pairs = ab::pairs(&records, &ta, &tb, &round_of);
    let verdicts = ab::verdicts(&pairs, a.seed);

    // The seed's files.
    for t in [&ta, &tb] {
        let mine: Vec<Record> = records.iter().filter(|r| &r.target == t).cloned().collect();
        let mut csv = Vec::new();
        record::write_csv(&mut csv, &mine)?;
        std::fs::write(a.output.join(format!("{t}_all_responses.csv")), csv)?;
    }
    let mut csv = Vec::new();
    record::write_csv(&mut csv, &records)?;
    std::fs::write(a.output.join("combined_model_responses.csv"), csv)?;
    let figures = |t: &str, round: Option<usize>| {
        let rs: Vec<&Record> = records
            .iter()
            .filter(|r| r.target == t)
            .filter(|r| round.is_none_or(|k| round_of.get(&r.run_id) == Some(&k)))
            .collect();
        let ok: Vec<&&Record> = rs.iter().filter(|r| r.success).collect();
        let col = |f: fn(&Record) -> Option<f64>| -> Vec<f64> {
            ok.iter().filter_map(|r| f(r)).collect()
        };
        json!({
            "calls": rs.len(),
            "success_rate": if rs.is_empty() { None } else { Some(ok.len() as f64 / rs.len() as f64) },
            "quality_mean": stats::mean(&col(|r| r.quality_score)),
            "latency_p50_sec": stats::percentile(&col(|r| Some(r.latency_sec)), 50.0),
            "ttft_p50_sec": stats::percentile(&col(|r| r.ttft_sec), 50.0),
            "output_speed_p50_tps": stats::percentile(&col(|r| r.output_speed_tps), 50.0),
            // Every call that was billed, failed ones included.
            "cost_usd": rs.iter().filter_map(|r| r.cost_usd).sum::<f64>(),
            "cost_per_call_usd": stats::mean(&rs.iter().filter_map(|r| r.cost_usd).collect::<Vec<_>>()),
        })
    };
    let per_target = |t: &str| {
        json!({
            "pooled": figures(t, None),
            "rounds": (0..a.rounds as usize).map(|k| figures(t, Some(k))).collect::<Vec<_>>(),
        })
    };
    let metrics = json!({ "A": ta, "B": tb, &ta: per_target(&ta), &tb: per_target(&tb) });
    std::fs::write(
        a.output.join("metrics.json"),
        serde_json::to_vec_pretty(&metrics)?,
    )?;
    let report = json!({
        "A": ta, "B": tb, "rounds": a.rounds, "seed": a.seed,
        "runs": round_of, "pairs": pairs.values().map(Vec::len).sum::<usize>(),
        "verdicts": verdicts,
    });
    std::fs::write(
        a.output.join("metrics_report.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;

    println!(
        "A = {ta}, B = {tb}: {} rounds, {} paired calls",
        a.rounds, report["pairs"]
    );
    for v in &verdicts {
        // Costs per call are fractions of a cent: two more places.
        let d = if v.metric == "cost_usd" { 6 } else { 4 };
        let fmt = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.d$}"));
        let evidence = match (v.p_value, v.ci95) {
            (Some(p), _) => format!("p = {p:.4}"),
            (None, Some([lo, hi])) => format!("95% CI of A − B [{lo:.d$}, {hi:.d$}]"),
            _ => "no pairs".into(),
        };
        println!(
            "{:<18} A {:>8}  B {:>8}  A − B {:>9}  {:<34} {}{}",
            v.metric,
            fmt(v.a),
            fmt(v.b),
            fmt(v.effect),
            evidence,
            v.verdict,
            if v.stable {
                ""
            } else {
                " (not in every round)"
            }
        );
    }
    if let Some(name) = &a.narrate {
        let said = crate::narrate::narrate_with(
            Some(&a.config),
            name,
            &report,
            "metrics_report.json",
            &a.output,
        )?;
        println!("{said}");
    }
    println!("files in {}", a.output.display());
    Ok(ExitCode::SUCCESS)
}
