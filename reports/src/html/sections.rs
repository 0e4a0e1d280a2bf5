//! The sections of the page, each a function that appends its HTML.

use std::fmt::Write;

use super::{escape, est, figure, table_head, td, td_ci, td_num};
use crate::charts::{self, Bar, BoxRow, Line, RadarSeries};
use crate::figures::{Quantiles, RateFigure, Report, TargetFigures, bucket_label};
use crate::text::{num, pct_ci};

/// The capability radar (seed 000), the task table and, where a target ran at several
/// temperatures, the temperature effect.
pub(super) fn capabilities(h: &mut String, r: &Report) {
    capability_radar(h, r);
    capability_table(h, r);
    temperature_effect(h, r);
}

/// The radar of success, speed, coverage and the capability rates, over the measured axes.
fn capability_radar(h: &mut String, r: &Report) {
    let task = |t: &str, k: &str| r.tasks.iter().find(|c| c.target == t && c.key == k);
    let best_speed = r
        .targets
        .iter()
        .filter_map(|t| Some(t.output_speed_tps.as_ref()?.p50.value))
        .fold(0.0f64, f64::max);
    type Axis<'a> = (
        &'static str,
        Box<dyn Fn(&TargetFigures) -> Option<f64> + 'a>,
    );
    let axes: Vec<Axis<'_>> = vec![
        ("success", Box::new(|t| Some(t.success.rate.value))),
        (
            "speed",
            Box::new(move |t| {
                let s = t.output_speed_tps.as_ref()?.p50.value;
                (best_speed > 0.0).then(|| s / best_speed)
            }),
        ),
        (
            "RAG coverage",
            Box::new(move |t| Some(task(&t.target, "rag")?.coverage?.mean)),
        ),
        ("grounding", Box::new(|t| Some(t.grounding?.mean))),
        (
            "valid JSON",
            Box::new(move |t| Some(task(&t.target, "structured_output")?.json_valid?.rate.value)),
        ),
        (
            "tool calls",
            Box::new(move |t| Some(task(&t.target, "tool_use")?.tool_call_valid?.rate.value)),
        ),
        (
            "reasoning",
            Box::new(move |t| Some(task(&t.target, "reasoning")?.coverage?.mean)),
        ),
        (
            "creative variety",
            Box::new(move |t| task(&t.target, "creative")?.distinct_answer_share),
        ),
    ];
    let measured: Vec<&Axis<'_>> = axes
        .iter()
        .filter(|(_, f)| r.targets.iter().any(|t| f(t).is_some()))
        .collect();
    let _ = write!(h, "<h2>Capabilities</h2>");
    if measured.len() >= 3 {
        let series: Vec<RadarSeries> = r
            .targets
            .iter()
            .map(|t| RadarSeries {
                name: t.target.clone(),
                values: measured.iter().map(|(_, f)| f(t)).collect(),
            })
            .collect();
        let names: Vec<String> = measured.iter().map(|(n, _)| n.to_string()).collect();
        figure(
            h,
            "capability-radar",
            charts::radar(
                "Capabilities (0 at the centre, 1 at the rim)",
                &names,
                &series,
            ),
            "Success rate; output speed relative to the fastest; mean RAG coverage and grounding; \
             valid JSON and valid tool-call rates; coverage of reasoning questions; distinct \
             answers per repeated creative question. Axes no suite question measured are left \
             out; a target not measured on an axis sits at 0 there.",
        );
    }
    h.push_str(
        "<div class=\"scroll\"><table class=\"sortable\" id=\"tasks\"><thead><tr><th>target</th>\
         <th>task</th><th>n</th><th>success</th><th>coverage</th><th>valid JSON</th>\
         <th>valid tool call</th><th>distinct answers</th><th>across answers</th>\
         <th>quality (95% CI)</th>\
         <th>output tok/s</th></tr></thead><tbody>",
    );
}

/// A mean with its interval: `0.812 [0.774, 0.850]`.
fn mean_ci(m: &Option<crate::estimate::MeanFigure>) -> String {
    match m {
        Some(m) => match m.ci95 {
            Some([lo, hi]) => format!("{:.3} [{lo:.3}, {hi:.3}]", m.mean),
            None => format!("{:.3}", m.mean),
        },
        None => String::new(),
    }
}

/// Valid JSON, valid tool calls, reasoning coverage, creative variety and quality per target.
fn capability_table(h: &mut String, r: &Report) {
    let rate = |r: &Option<RateFigure>| -> (Option<f64>, String) {
        match r {
            Some(r) => (Some(r.rate.value), pct_ci(&r.rate)),
            None => (None, String::new()),
        }
    };
    for c in &r.tasks {
        let (jv, jt) = rate(&c.json_valid);
        let (tv, tt) = rate(&c.tool_call_valid);
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"l\">{}</td>{}{}{}{}{}{}{}{}{}</tr>",
            escape(&c.target),
            escape(&c.key),
            td(Some(c.success.n as f64), &c.success.n.to_string()),
            td(Some(c.success.rate.value), &pct_ci(&c.success.rate)),
            td(
                c.coverage.map(|m| m.mean),
                &num(c.coverage.map(|m| m.mean), 3)
            ),
            td(jv, &jt),
            td(tv, &tt),
            td(
                c.distinct_answer_share,
                &c.distinct_answer_share
                    .map(|v| format!("{:.0}%", v * 100.0))
                    .unwrap_or_default()
            ),
            td(
                c.self_bleu.or(c.structural_consistency),
                &crate::text::across_answers(c)
            ),
            td(c.quality_score.map(|m| m.mean), &mean_ci(&c.quality_score)),
            td_num(c.output_speed_tps.map(|m| m.mean), 1),
        );
    }
    h.push_str("</tbody></table></div>");
}

/// Success and quality by temperature, where a target ran at several.
fn temperature_effect(h: &mut String, r: &Report) {
    let several: Vec<&str> = r
        .targets
        .iter()
        .map(|t| t.target.as_str())
        .filter(|t| r.temperatures.iter().filter(|c| c.target == *t).count() > 1)
        .collect();
    if !several.is_empty() {
        h.push_str(
            "<h3>Temperature effect</h3><div class=\"scroll\"><table class=\"sortable\" \
             id=\"temperatures\"><thead><tr><th>target</th><th>temperature</th><th>n</th>\
             <th>success</th><th>coverage</th><th>output tok/s</th></tr></thead><tbody>",
        );
        for c in r
            .temperatures
            .iter()
            .filter(|c| several.contains(&c.target.as_str()))
        {
            let _ = write!(
                h,
                "<tr><td>{}</td>{}{}{}{}{}</tr>",
                escape(&c.target),
                td(c.key.parse().ok(), &c.key),
                td(Some(c.success.n as f64), &c.success.n.to_string()),
                td(Some(c.success.rate.value), &pct_ci(&c.success.rate)),
                td(
                    c.coverage.map(|m| m.mean),
                    &num(c.coverage.map(|m| m.mean), 3)
                ),
                td_num(c.output_speed_tps.map(|m| m.mean), 1),
            );
        }
        h.push_str("</tbody></table></div>");
    }
}

/// The sortable target table.
pub(super) fn targets_table(h: &mut String, r: &Report) {
    // The target table.
    h.push_str("<h2>Targets</h2>");
    table_head(
        h,
        "targets",
        &[
            "target",
            "model",
            "n",
            "success [95% CI]",
            "latency p50 s [CI]",
            "p90 s",
            "p95 s [CI]",
            "p99 s",
            "TTFT p50 s [CI]",
            "output tok/s p50",
            "tok/s (seed)",
            "coverage",
            "grounding",
            "429 rate",
            "errors",
        ],
    );
    for f in &r.targets {
        let errors: Vec<String> = f.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"l\">{}</td>{}{}{}{}{}{}{}{}{}{}{}{}<td class=\"l\">{}</td></tr>",
            escape(&f.target),
            escape(&format!("{}/{}", f.provider, f.model)),
            td(Some(f.calls as f64), &f.calls.to_string()),
            td(Some(f.success.rate.value), &pct_ci(&f.success.rate)),
            td_ci(est(&f.latency_sec, |q| &q.p50), 3),
            td_num(est(&f.latency_sec, |q| &q.p90).map(|e| e.value), 3),
            td_ci(est(&f.latency_sec, |q| &q.p95), 3),
            td_num(est(&f.latency_sec, |q| &q.p99).map(|e| e.value), 3),
            td_ci(est(&f.ttft_sec, |q| &q.p50), 3),
            td_num(est(&f.output_speed_tps, |q| &q.p50).map(|e| e.value), 1),
            td_num(est(&f.throughput_tps, |q| &q.p50).map(|e| e.value), 1),
            td_num(f.coverage.map(|m| m.mean), 3),
            td_num(f.grounding.map(|m| m.mean), 3),
            td(
                Some(f.rate_limited.rate.value),
                &format!("{:.1}%", f.rate_limited.rate.value * 100.0)
            ),
            escape(&errors.join(", "))
        );
    }
    h.push_str("</tbody></table></div>");
}

/// Medians and rates over time, and the latency-shift flags.
pub(super) fn over_time(h: &mut String, r: &Report) {
    // Over time.
    let lines = |f: fn(&crate::figures::Point) -> Option<f64>, scale: f64| -> Vec<Line> {
        r.series
            .iter()
            .map(|s| Line {
                name: s.target.clone(),
                points: s
                    .points
                    .iter()
                    .filter_map(|p| Some((p.start, f(p)? * scale)))
                    .collect(),
            })
            .filter(|l| !l.points.is_empty())
            .collect()
    };
    let bucket = bucket_label(r.bucket_sec);
    let buckets = r.series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    let _ = write!(h, "<h2>Over time</h2>");
    if buckets < 2 {
        let _ = write!(
            h,
            "<p class=\"note\">All records fall in one {bucket} bucket: the charts over time \
             need at least two (pass <code>--bucket</code> for finer ones).</p><div>"
        );
    } else {
        let _ = write!(
            h,
            "<p class=\"note\">One point per target per {bucket} bucket.</p><div class=\"grid\">"
        );
    }
    if buckets >= 2 {
        figure(
            h,
            "latency-over-time",
            charts::time_lines(
                "Latency p50 (s)",
                "seconds",
                &lines(|p| p.latency_p50_sec, 1.0),
                false,
            ),
            &format!("Median end-to-end latency per {bucket}."),
        );
        figure(
            h,
            "ttft-over-time",
            charts::time_lines(
                "Time to first token p50 (s)",
                "seconds",
                &lines(|p| p.ttft_p50_sec, 1.0),
                false,
            ),
            &format!("Median TTFT per {bucket}."),
        );
        figure(
            h,
            "rolling-latency",
            charts::time_lines(
                "Latency p50, rolling 72 h (s)",
                "seconds",
                &lines(|p| p.rolling_latency_p50_sec, 1.0),
                false,
            ),
            "Median latency over the 72 hours ending at each point.",
        );
        figure(
            h,
            "success-over-time",
            charts::time_lines(
                "Success rate (%)",
                "%",
                &lines(|p| Some(p.success_rate), 100.0),
                true,
            ),
            "Share of calls that returned a complete answer.",
        );
        figure(
            h,
            "rate-limited-over-time",
            charts::time_lines(
                "Calls that met a 429 (%)",
                "%",
                &lines(|p| Some(p.rate_limited_rate), 100.0),
                true,
            ),
            "Share of calls answered 429 at least once, retried or not.",
        );
    }
    h.push_str("</div>");

    changes(h, r);
}

/// What `watch` finds over these records, and the store's alerts: open first, then resolved
/// with how long they lasted.
fn changes(h: &mut String, r: &Report) {
    let w = &r.watch;
    let rows: Vec<String> = w
        .findings
        .iter()
        .map(|f| {
            let change = match f.change.relative {
                Some(x) if f.metric.relative() => format!("{:+.1}%", x * 100.0),
                _ => format!("{:+.3}", f.change.absolute),
            };
            format!(
                "<tr class=\"{}\"><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{change}</td><td>{:.1e}</td><td>{}</td></tr>",
                match f.direction {
                    crate::watch::Direction::Worse => "worse",
                    crate::watch::Direction::Better => "better",
                },
                match f.direction {
                    crate::watch::Direction::Worse => "worse",
                    crate::watch::Direction::Better => "better",
                },
                escape(&f.target),
                f.task.as_deref().map(|t| format!(" [{}]", escape(t))).unwrap_or_default(),
                f.metric.name(),
                crate::watch::fmt_value(f.metric, f.baseline.value),
                crate::watch::fmt_value(f.metric, f.current.value),
                f.q_value,
                f.since.map(|s| s.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default(),
            )
        })
        .collect();
    let _ = write!(
        h,
        "<h3 id=\"changes\">Changes</h3><p class=\"note\">What <code>llmpulse watch</code> finds: \
         each target's runs of the {} before {} against the {:.0} days before them, one value per \
         run, Benjamini–Hochberg over {} tests; the latency chart is marked from a latency \
         finding's start on.</p>{}",
        escape(&w.window),
        w.until.format("%Y-%m-%d %H:%M UTC"),
        w.baseline_days,
        w.tests,
        if rows.is_empty() {
            "<p>No change.</p>".to_string()
        } else {
            format!(
                "<table id=\"changes-table\"><thead><tr><th></th><th>target</th><th>metric</th>\
                 <th>baseline</th><th>now</th><th>change</th><th>q</th><th>since</th></tr></thead>\
                 <tbody>{}</tbody></table>",
                rows.join("")
            )
        }
    );
    if let Some(state) = &r.alerts {
        let item = |a: &crate::alerts::AlertSummary| {
            let lasted = humantime::format_duration(std::time::Duration::from_secs(
                a.duration_sec.max(0) as u64,
            ));
            format!(
                "<li><strong>{}</strong> {}; opened {} ({lasted}{})</li>",
                escape(&a.alert),
                escape(&a.text),
                a.opened_at.format("%Y-%m-%d %H:%M UTC"),
                a.resolved_at
                    .map(|t| format!(", resolved {}", t.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_else(|| ", open".into()),
            )
        };
        let open: Vec<String> = state.alerts.iter().filter(|a| a.open).map(item).collect();
        let done: Vec<String> = state.alerts.iter().filter(|a| !a.open).map(item).collect();
        let list = |v: &[String]| {
            if v.is_empty() {
                "<p>None.</p>".to_string()
            } else {
                format!("<ul>{}</ul>", v.join(""))
            }
        };
        let _ = write!(
            h,
            "<h3 id=\"alerts\">Alerts</h3><h4>Open</h4>{}<h4>Resolved</h4>{}",
            list(&open),
            list(&done)
        );
    }
}

/// Latency and TTFT box plots, output speed and success.
pub(super) fn distributions(h: &mut String, r: &Report) {
    // Distributions and speed.
    let box_rows = |f: fn(&crate::figures::TargetFigures) -> &Option<Quantiles>| -> Vec<BoxRow> {
        r.targets
            .iter()
            .filter_map(|t| {
                let q = f(t).as_ref()?;
                Some(BoxRow {
                    name: t.target.clone(),
                    p05: q.p05,
                    p25: q.p25,
                    p50: q.p50.value,
                    p75: q.p75,
                    p95: q.p95.value,
                    n: q.n,
                })
            })
            .collect()
    };
    h.push_str("<h2>Distributions</h2><div class=\"grid\">");
    figure(
        h,
        "latency-distribution",
        charts::boxes("Latency (s)", "seconds", &box_rows(|t| &t.latency_sec)),
        "Box: 25th–75th percentile, line: median, whiskers: 5th–95th percentile.",
    );
    figure(
        h,
        "ttft-distribution",
        charts::boxes(
            "Time to first token (s)",
            "seconds",
            &box_rows(|t| &t.ttft_sec),
        ),
        "Box: 25th–75th percentile, line: median, whiskers: 5th–95th percentile.",
    );
    let speed: Vec<Bar> = r
        .targets
        .iter()
        .filter_map(|t| {
            let q = t.output_speed_tps.as_ref()?;
            Some(Bar {
                name: t.target.clone(),
                value: q.p50.value,
                lo: q.p50.lo,
                hi: q.p50.hi,
                n: q.n,
            })
        })
        .collect();
    figure(
        h,
        "speed",
        charts::bars("Output speed p50 (tokens/s)", "tokens/s", &speed, None),
        "Decode speed after the first token; whiskers: 95% interval of the median.",
    );
    let success: Vec<Bar> = r
        .targets
        .iter()
        .map(|t| Bar {
            name: t.target.clone(),
            value: t.success.rate.value * 100.0,
            lo: t.success.rate.lo * 100.0,
            hi: t.success.rate.hi * 100.0,
            n: t.success.n,
        })
        .collect();
    figure(
        h,
        "success",
        charts::bars("Success rate (%)", "%", &success, Some(100.0)),
        "Whiskers: Wilson 95% interval.",
    );
    h.push_str("</div>");
}

/// RAG coverage and grounding by target and industry.
pub(super) fn quality(h: &mut String, r: &Report) {
    // Quality by industry.
    if !r.industries.is_empty() {
        h.push_str("<h2>RAG quality by target and industry</h2><div class=\"grid\">");
        let cells = |f: fn(&crate::figures::CellFigures) -> Option<crate::figures::MeanFigure>| {
            r.industries
                .iter()
                .filter_map(|c| {
                    let m = f(c)?;
                    Some(Bar {
                        name: format!("{} · {}", c.target, c.industry),
                        value: m.mean,
                        lo: m.mean,
                        hi: m.mean,
                        n: m.n,
                    })
                })
                .collect::<Vec<_>>()
        };
        figure(
            h,
            "coverage",
            charts::bars(
                "Coverage (mean)",
                "share of key facts",
                &cells(|c| c.coverage),
                Some(1.0),
            ),
            "Share of the question's key facts found in the answer.",
        );
        figure(
            h,
            "grounding",
            charts::bars(
                "Grounding (mean)",
                "share grounded",
                &cells(|c| c.grounding),
                Some(1.0),
            ),
            "Share of the answer's content supported by the retrieved context.",
        );
        h.push_str("</div>");
    }
}
