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
