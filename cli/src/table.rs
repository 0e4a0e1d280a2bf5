//! The summary table printed after a run.

use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use llmpulse_core::summary::TargetSummary;

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.decimals$}"))
}

/// Renders one row per target.
pub fn render(rows: &[TargetSummary]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "target",
        "n",
        "ok %",
        "p50 s",
        "p95 s",
        "p50 TTFT s",
        "tok/s",
        "out tok/s",
        "coverage",
        "errors",
    ]);
    for r in rows {
        let errors = r
            .errors
            .iter()
            .map(|(k, n)| format!("{k}×{n}"))
            .collect::<Vec<_>>()
            .join(" ");
        t.add_row(vec![
            r.target.clone(),
            r.n.to_string(),
            format!("{:.1}", r.success_rate * 100.0),
            num(r.latency_p50_sec, 2),
            num(r.latency_p95_sec, 2),
            num(r.ttft_p50_sec, 3),
            num(r.throughput_median_tps, 1),
            num(r.output_speed_median_tps, 1),
            num(r.coverage_mean, 2),
            errors,
        ]);
    }
    for i in 1..9 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t.to_string()
}

/// Lines under the table for what only some runs have: SLO attainment and goodput, and how
/// late an open loop's calls went out.
pub fn extra_lines(rows: &[TargetSummary]) -> String {
    let mut out = String::new();
    for r in rows {
        if let (Some(met), Some((share, lo, hi))) = (r.slo_met, r.slo_attainment) {
            out.push_str(&format!(
                "{}: SLO met by {met} of {} calls ({:.1}%, 95% CI {:.1}–{:.1}%), goodput {} req/s\n",
                r.target,
                r.n,
                share * 100.0,
                lo * 100.0,
                hi * 100.0,
                num(r.goodput_rps, 2)
            ));
        }
        if let (Some(p50), Some(p99)) = (r.schedule_lag_p50_sec, r.schedule_lag_p99_sec) {
            out.push_str(&format!(
                "{}: sent late by {:.1} ms at p50, {:.1} ms at p99 (open loop)\n",
                r.target,
                p50 * 1000.0,
                p99 * 1000.0
            ));
        }
    }
    out
}

/// The same rows as a GitHub-flavoured Markdown table (for `$GITHUB_STEP_SUMMARY`).
pub fn render_markdown(rows: &[TargetSummary]) -> String {
    let mut out = String::from(
        "| target | n | ok % | p50 s | p95 s | p50 TTFT s | tok/s | out tok/s | coverage | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let errors = r
            .errors
            .iter()
            .map(|(k, n)| format!("{k}×{n}"))
            .collect::<Vec<_>>()
            .join(" ");
        out.push_str(&format!(
            "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.target,
            r.n,
            r.success_rate * 100.0,
            num(r.latency_p50_sec, 2),
            num(r.latency_p95_sec, 2),
            num(r.ttft_p50_sec, 3),
            num(r.throughput_median_tps, 1),
            num(r.output_speed_median_tps, 1),
            num(r.coverage_mean, 2),
            errors
        ));
    }
    out
}
