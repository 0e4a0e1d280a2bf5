//! The report as text: `summary.md` (GitHub-flavoured tables for step summaries),
//! `comparison.txt` (the seed's fixed-width model comparison table) and the text of a
//! `--compare`.

use std::fmt::Write;

use comfy_table::presets::{ASCII_FULL, ASCII_MARKDOWN};
use comfy_table::{CellAlignment, Table};

mod cost;
mod heat;
mod origin;
mod split;

pub use cost::usd;
pub use heat::bands_text;
pub use origin::ORIGIN_NOTE;
pub use split::SPLIT_NOTE;

use crate::compare::{Comparison, verdict};
use crate::figures::{Estimate, Quantiles, Report};

/// `3.210` — three decimals, or `n/a`.
pub fn num(v: Option<f64>, decimals: usize) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| "n/a".to_string(), |v| format!("{v:.decimals$}"))
}

/// `1.234 [1.100–1.400]`.
pub fn with_ci(e: Option<&Estimate>, decimals: usize) -> String {
    match e {
        Some(e) => format!("{:.d$} [{:.d$}–{:.d$}]", e.value, e.lo, e.hi, d = decimals),
        None => "n/a".to_string(),
    }
}

/// `97.5% [93.1–99.2]`.
pub fn pct_ci(e: &Estimate) -> String {
    format!(
        "{:.1}% [{:.1}–{:.1}]",
        e.value * 100.0,
        e.lo * 100.0,
        e.hi * 100.0
    )
}

fn q(q: &Option<Quantiles>, f: fn(&Quantiles) -> &Estimate, d: usize) -> String {
    with_ci(q.as_ref().map(f), d)
}

fn right(t: &mut Table, from: usize) {
    let n = t.column_count();
    for i in from..n {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// The key per-target table.
fn target_table(r: &Report, preset: &str) -> Table {
    let mut t = Table::new();
    t.load_preset(preset);
    t.set_header(vec![
        "target",
        "n",
        "success [95% CI]",
        "latency p50 s [CI]",
        "p95 s [CI]",
        "p99 s",
        "TTFT p50 s [CI]",
        "output tok/s p50",
        "coverage",
        "grounding",
        "429 rate",
    ]);
    for f in &r.targets {
        t.add_row(vec![
            f.target.clone(),
            f.calls.to_string(),
            pct_ci(&f.success.rate),
            q(&f.latency_sec, |q| &q.p50, 3),
            q(&f.latency_sec, |q| &q.p95, 3),
            num(f.latency_sec.as_ref().map(|q| q.p99.value), 3),
            q(&f.ttft_sec, |q| &q.p50, 3),
            num(f.output_speed_tps.as_ref().map(|q| q.p50.value), 1),
            num(f.coverage.map(|m| m.mean), 3),
            num(f.grounding.map(|m| m.mean), 3),
            format!("{:.1}%", f.rate_limited.rate.value * 100.0),
        ]);
    }
    right(&mut t, 1);
    t
}

/// `summary.md`.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# llmpulse report\n");
    if r.synthetic {
        let _ = writeln!(
            s,
            "> **Synthetic data.** Some records come from `llmpulse synth`, not from any model.\n"
        );
    }
    let _ = writeln!(
        s,
        "{} records from {} {} at `{}`; {}. Intervals are 95%; timings are over successful \
         calls.\n",
        r.records,
        r.runs,
        if r.runs == 1 { "run" } else { "runs" },
        r.source,
        period(r)
    );
    if r.partial_runs > 0 {
        let _ = writeln!(s, "{}\n", partial_sentence(r));
    }
    let _ = writeln!(s, "## Targets\n\n{}\n", target_table(r, ASCII_MARKDOWN));
    for line in server_timing_lines(r) {
        let _ = writeln!(s, "{line}\n");
    }
    for line in prompt_cache_lines(r) {
        let _ = writeln!(s, "{line}\n");
    }
    split::split_table(&mut s, r);
    origin::origin_table(&mut s, r);

    industry_table(&mut s, r);
    task_table(&mut s, r);
    cost::cost_tables(&mut s, r);
    heat::heat_table(&mut s, r);
    rate_table(&mut s, r);

    let w = &r.watch;
    let _ = writeln!(
        s,
        "## Changes\n\nWhat `llmpulse watch` finds: each target's runs of the {} before {} against \
         the {:.0} days before them, one value per run, Benjamini–Hochberg over {} tests.\n",
        w.window,
        w.until.format("%Y-%m-%d %H:%M UTC"),
        w.baseline_days,
        w.tests
    );
    if w.findings.is_empty() {
        let _ = writeln!(s, "No change.\n");
    } else {
        for f in &w.findings {
            let _ = writeln!(s, "- {}", f.line());
        }
        let _ = writeln!(s);
    }
    if let Some(state) = &r.alerts {
        let _ = writeln!(s, "## Alerts\n");
        if state.alerts.is_empty() {
            let _ = writeln!(s, "None.\n");
        }
        for a in &state.alerts {
            let _ = writeln!(
                s,
                "- {} `{}` {} (opened {}{})",
                if a.open { "OPEN" } else { "resolved" },
                a.alert,
                a.text,
                a.opened_at.format("%Y-%m-%d %H:%M UTC"),
                a.resolved_at
                    .map(|t| format!(", resolved {}", t.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(s);
    }

    for c in &r.campaigns {
        let _ = writeln!(
            s,
            "## Campaign `{}`\n\n{}\n",
            c.campaign,
            campaign_sentence(c)
        );
    }
    if let Some(c) = &r.comparison {
        let _ = writeln!(s, "## Comparison\n\n```text\n{}```\n", comparison_text(c));
    }
    if !r.problems.is_empty() {
        let _ = writeln!(s, "## Data problems\n");
        for p in &r.problems {
            let _ = writeln!(s, "- {p}");
        }
        if r.bad_lines > 20 {
            let _ = writeln!(s, "- … {} unreadable lines in all", r.bad_lines);
        }
    }
    s
}

/// One sentence per target whose TTFT the server's own timing contradicts or leaves mostly
/// unexplained: time outside the server is network, HTTP, its queue or the client.
pub fn server_timing_lines(r: &Report) -> Vec<String> {
    r.targets
        .iter()
        .filter_map(|t| {
            let s = t.server_timing.as_ref()?;
            if s.queued() {
                return Some(format!(
                    "**Server queue, `{}`:** the server's own `/metrics` counted {:.0} requests \
                     over these runs: they waited {:.3} s on average in its queue, of a mean \
                     TTFT of {:.3} s by its clock. Calls arrive faster than it admits them \
                     (its `max_num_seqs` or slots).",
                    t.target,
                    s.server_requests.unwrap_or(0.0),
                    s.server_queue_sec_mean.unwrap_or(0.0),
                    s.server_metrics_ttft_sec_mean.unwrap_or(0.0)
                ));
            }
            let server_ttft = s.server_ttft_sec.as_ref().filter(|_| s.notable())?;
            let client = t.ttft_sec.as_ref()?.p50.value;
            let outside = s.outside_server_sec.as_ref().map_or(0.0, |q| q.p50.value);
            let mut line = format!(
                "**Client and server, `{}`:** TTFT p50 {client:.3} s at the client, {:.3} s by \
                 the server's own clock (`server_ttft_sec`, {} calls): {outside:.3} s ({:.0}%) \
                 passed outside the server's prompt processing: the network, HTTP, the \
                 server's queue (calls waiting for a free slot) or the client.",
                t.target,
                server_ttft.p50.value,
                server_ttft.n,
                s.outside_share.unwrap_or(0.0) * 100.0
            );
            if s.server_ahead.k > 0 {
                line.push_str(&format!(
                    " In {} of {} calls the server's figure was the larger: the two clocks \
                     disagree (a proxy answering before the server, or a server timing more \
                     than its first token).",
                    s.server_ahead.k, s.server_ahead.n
                ));
            }
            Some(line)
        })
        .collect()
}

/// One sentence per target whose TTFT pools calls the server's prefix cache served in part
/// with calls it computed whole: the two are different measurements.
pub fn prompt_cache_lines(r: &Report) -> Vec<String> {
    let p50 = |q: &Option<Quantiles>| {
        q.as_ref()
            .map_or("–".to_string(), |q| format!("{:.3} s", q.p50.value))
    };
    r.targets
        .iter()
        .filter_map(|t| {
            let c = t.prompt_cache.as_ref().filter(|c| c.mixed())?;
            Some(format!(
                "**Prompt cache, `{}`:** {} of {} calls took part of their prompt from the \
                 server's cache (`prompt_cached_tokens` > 0); TTFT p50 warm {}, cold {}. The \
                 table pools both; set `prompt_cache = \"off\"` on the target to measure cold \
                 prompts only.",
                t.target,
                c.warm.k,
                c.warm.n,
                p50(&c.ttft_warm_sec),
                p50(&c.ttft_cold_sec)
            ))
        })
        .collect()
}

/// A campaign's completeness in one sentence.
pub fn campaign_sentence(c: &super::figures::CampaignFigures) -> String {
    format!(
        "{} of {} slots present ({:.1}%, expected from the {}); {} runs, {} records, {} \
         successful. Missing slots: {}.",
        c.present_slots,
        c.expected_slots,
        c.completeness * 100.0,
        c.expected_from,
        c.runs,
        c.records,
        c.successes,
        slot_list(&c.missing_slots)
    )
}

pub fn slot_list(v: &[u64]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = v.iter().take(30).map(u64::to_string).collect();
    format!(
        "{}{}",
        shown.join(", "),
        if v.len() > 30 { ", …" } else { "" }
    )
}

/// The time the report covers, in words.
pub fn period(r: &Report) -> String {
    let first = r.targets.iter().filter_map(|t| t.first).min();
    let last = r.targets.iter().filter_map(|t| t.last).max();
    match (first, last) {
        (Some(a), Some(b)) => format!(
            "{} to {}",
            a.format("%Y-%m-%d %H:%M UTC"),
            b.format("%Y-%m-%d %H:%M UTC")
        ),
        _ => "no records".into(),
    }
}

/// `comparison.txt`: the seed's table (`003_*`): total latency, first token, memory, average
/// output length, average tokens, tokens per second — one row per model, means as the seed
/// reported them, with n.
pub fn comparison_table(r: &Report) -> String {
    let mut t = Table::new();
    t.load_preset(ASCII_FULL);
    t.set_header(vec![
        "Model",
        "Runs",
        "Total Latency (s)",
        "First Token (s)",
        "Memory (MB)",
        "Avg Output Len",
        "Avg Tokens",
        "Tokens/Second",
    ]);
    for f in &r.targets {
        t.add_row(vec![
            format!("{} ({})", f.model, f.target),
            f.success.k.to_string(),
            num(f.latency_sec.as_ref().map(|q| q.mean), 3),
            num(f.ttft_sec.as_ref().map(|q| q.mean), 3),
            num(f.memory_mb.map(|m| m.mean), 0),
            num(f.answer_chars.map(|m| m.mean), 0),
            num(f.response_tokens.map(|m| m.mean), 1),
            num(f.throughput_tps.as_ref().map(|q| q.mean), 1),
        ]);
    }
    right(&mut t, 1);
    format!(
        "Model comparison ({})\nLower is better for Total Latency, First Token and Memory; higher \
         for Tokens/Second. Means over successful calls; Runs = successful calls.\n{t}\n",
        period(r)
    )
}

/// A comparison as text.
pub fn comparison_text(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "A = {}   B = {}{}",
        c.a,
        c.b,
        c.target
            .as_ref()
            .map(|t| format!("   (target {t})"))
            .unwrap_or_default()
    );
    let mut t = Table::new();
    t.load_preset(ASCII_FULL);
    t.set_header(vec![
        "metric",
        "n A",
        "n B",
        "median A",
        "median B",
        "B − A [95% CI]",
        "Mann–Whitney p",
        "verdict",
    ]);
    for m in &c.metrics {
        t.add_row(vec![
            m.metric.to_string(),
            m.n_a.to_string(),
            m.n_b.to_string(),
            format!("{:.3}", m.median_a),
            format!("{:.3}", m.median_b),
            with_ci(Some(&m.difference), 3),
            format!("{:.4}", m.p_value),
            verdict(m.p_value, c.alpha).to_string(),
        ]);
    }
    if let Some(r) = &c.success {
        t.add_row(vec![
            "success rate".to_string(),
            r.a.n.to_string(),
            r.b.n.to_string(),
            format!("{:.1}%", r.a.rate.value * 100.0),
            format!("{:.1}%", r.b.rate.value * 100.0),
            format!(
                "{:+.1} pp [{:+.1}–{:+.1}]",
                r.difference.value * 100.0,
                r.difference.lo * 100.0,
                r.difference.hi * 100.0
            ),
            r.p_value.map_or("n/a".into(), |p| format!("{p:.4}")),
            r.p_value.map_or("n/a", |p| verdict(p, c.alpha)).to_string(),
        ]);
    }
    right(&mut t, 1);
    let _ = writeln!(s, "{t}");
    s
}

/// RAG quality by target and industry, as a Markdown table.
/// Load against offered rate: one row per open-loop run of a target.
fn rate_table(s: &mut String, r: &Report) {
    if r.rate_curves.is_empty() {
        return;
    }
    let mut t = Table::new();
    t.load_preset(ASCII_MARKDOWN).set_header(vec![
        "target",
        "run",
        "offered/s",
        "achieved/s",
        "latency p50 s",
        "latency p99 s",
        "TTFT p50 s",
        "SLO met",
        "goodput/s",
    ]);
    for c in &r.rate_curves {
        for p in &c.points {
            t.add_row(vec![
                c.target.clone(),
                p.run_id.clone(),
                p.offered_rps
                    .map_or_else(|| "all at once".into(), |v| format!("{v:.2}")),
                num(p.achieved_rps, 2),
                num(p.latency_p50_sec, 3),
                num(p.latency_p99_sec, 3),
                num(p.ttft_p50_sec, 3),
                num(p.slo_attainment, 3),
                num(p.goodput_rps, 2),
            ]);
        }
    }
    right(&mut t, 2);
    let _ = writeln!(
        s,
        "## Load against offered rate\n\nOne row per open-loop run (`--profile constant`, \
         `poisson`, `throughput` or a `sweep`).\n\n{t}\n"
    );
}

fn industry_table(s: &mut String, r: &Report) {
    if !r.industries.is_empty() {
        let mut t = Table::new();
        t.load_preset(ASCII_MARKDOWN);
        t.set_header(vec![
            "target",
            "industry",
            "n",
            "success",
            "coverage",
            "grounding",
        ]);
        for c in &r.industries {
            t.add_row(vec![
                c.target.clone(),
                c.industry.clone(),
                c.success.n.to_string(),
                format!("{:.1}%", c.success.rate.value * 100.0),
                num(c.coverage.map(|m| m.mean), 3),
                num(c.grounding.map(|m| m.mean), 3),
            ]);
        }
        right(&mut t, 2);
        let _ = writeln!(s, "## RAG quality by industry\n\n{t}\n");
    }
}

/// How one question's answers compare with each other: self-BLEU for creative questions (lower
/// is more varied), the share in the most common JSON shape for structured ones.
pub fn across_answers(c: &super::figures::TaskFigures) -> String {
    match (c.self_bleu, c.structural_consistency) {
        (Some(b), _) => format!("self-BLEU {b:.3}"),
        (None, Some(s)) => format!("same shape {:.0}%", s * 100.0),
        (None, None) => String::new(),
    }
}

/// Capabilities by target and task, as a Markdown table.
fn task_table(s: &mut String, r: &Report) {
    if r.tasks.iter().any(|c| c.key != "rag") {
        let mut t = Table::new();
        t.load_preset(ASCII_MARKDOWN);
        t.set_header(vec![
            "target",
            "task",
            "n",
            "success",
            "coverage",
            "valid JSON",
            "valid tool call",
            "distinct answers",
            "across answers",
            "quality (95% CI)",
        ]);
        let rate = |r: &Option<super::figures::RateFigure>| {
            r.as_ref()
                .map_or(String::new(), |r| format!("{:.1}%", r.rate.value * 100.0))
        };
        for c in &r.tasks {
            t.add_row(vec![
                c.target.clone(),
                c.key.clone(),
                c.success.n.to_string(),
                format!("{:.1}%", c.success.rate.value * 100.0),
                num(c.coverage.map(|m| m.mean), 3),
                rate(&c.json_valid),
                rate(&c.tool_call_valid),
                c.distinct_answer_share
                    .map_or(String::new(), |v| format!("{:.0}%", v * 100.0)),
                across_answers(c),
                c.quality_score.map_or(String::new(), |m| match m.ci95 {
                    Some([lo, hi]) => format!("{:.3} [{lo:.3}, {hi:.3}]", m.mean),
                    None => format!("{:.3}", m.mean),
                }),
            ]);
        }
        right(&mut t, 2);
        let _ = writeln!(s, "## Capabilities by task\n\n{t}\n");
    }
}

/// Says how many runs are partial (stopped early or recovered after they died).
pub fn partial_sentence(r: &Report) -> String {
    format!(
        "**{} of {} {} partial** (stopped early or recovered after the process died): their \
         records are included, but they hold fewer calls than planned.",
        r.partial_runs,
        r.runs,
        if r.runs == 1 { "run is" } else { "runs are" }
    )
}
