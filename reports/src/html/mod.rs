//! `index.html`: one self-contained page (no network): the key tables, charts as inline SVG, a
//! sortable target table, and styles for a phone and for print. A few lines of script sort the
//! table and check, on load, that every chart drew (`<html data-charts="ok N">`), which CI reads.

use std::fmt::Write;

use crate::charts::{self};
use crate::figures::{Estimate, Quantiles, Report};
use crate::text::{campaign_sentence, comparison_text, num, partial_sentence, period, with_ci};

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = include_str!("assets/report.css");

const SCRIPT: &str = include_str!("assets/report.js");

fn figure(out: &mut String, id: &str, svg: Result<String, String>, caption: &str) {
    match svg {
        Ok(svg) => {
            let _ = write!(
                out,
                "<figure class=\"chart\" id=\"{id}\">{svg}<figcaption>{}</figcaption></figure>",
                escape(caption)
            );
        }
        Err(e) => {
            let _ = write!(out, "<p class=\"note\">{}</p>", escape(&e));
        }
    }
}

/// A sortable table cell with a numeric key.
fn td(v: Option<f64>, text: &str) -> String {
    format!(
        "<td data-v=\"{}\">{}</td>",
        v.filter(|v| v.is_finite())
            .map(|v| v.to_string())
            .unwrap_or_default(),
        escape(text)
    )
}

/// A cell showing a value with its interval, sorted by the value.
/// Opens a sortable table (`id`) with these column headers; the caller adds rows and closes it
/// with `</tbody></table></div>`.
fn table_head(h: &mut String, id: &str, columns: &[&str]) {
    let _ = write!(
        h,
        "<div class=\"scroll\"><table class=\"sortable\" id=\"{id}\"><thead><tr>"
    );
    for c in columns {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    h.push_str("</tr></thead><tbody>");
}

fn td_ci(e: Option<&Estimate>, decimals: usize) -> String {
    td(e.map(|e| e.value), &with_ci(e, decimals))
}

/// A cell showing a number, sorted by it.
fn td_num(v: Option<f64>, decimals: usize) -> String {
    td(v, &num(v, decimals))
}

fn est(q: &Option<Quantiles>, f: fn(&Quantiles) -> &Estimate) -> Option<&Estimate> {
    q.as_ref().map(f)
}

/// The whole page.
pub fn page(r: &Report) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>llmpulse report</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        h,
        "<h1>llmpulse report</h1><p class=\"meta\">{} records from {} {} at <code>{}</code>; \
         {}. Generated {}. Intervals are 95% (bootstrap for percentiles of up to 2,000 values, \
         order statistics beyond; Wilson for rates). Timings are over successful calls.</p>",
        r.records,
        r.runs,
        if r.runs == 1 { "run" } else { "runs" },
        escape(&r.source),
        escape(&period(r)),
        r.generated_at.format("%Y-%m-%d %H:%M UTC")
    );
    if r.partial_runs > 0 {
        let _ = write!(
            h,
            "<p class=\"banner\">{}</p>",
            escape(&partial_sentence(r)).replace("**", "")
        );
    }
    if r.synthetic {
        h.push_str(
            "<p class=\"banner\"><strong>Synthetic data.</strong> Some records come from \
             <code>llmpulse synth</code>, not from any model.</p>",
        );
    }

    targets_table(&mut h, r);
    split(&mut h, r);
    origins(&mut h, r);
    over_time(&mut h, r);
    distributions(&mut h, r);
    hardware(&mut h, r);
    sweep(&mut h, r);
    rates(&mut h, r);
    capabilities(&mut h, r);
    quality(&mut h, r);
    cost(&mut h, r);
    heat(&mut h, r);
    // Campaigns.
    for c in &r.campaigns {
        let missing: std::collections::BTreeSet<u64> = c.missing_slots.iter().copied().collect();
        let incomplete: std::collections::BTreeSet<u64> =
            c.incomplete_slots.iter().copied().collect();
        let _ = write!(
            h,
            "<h2>Campaign {}</h2><p>{}</p>",
            escape(&c.campaign),
            escape(&campaign_sentence(c))
        );
        figure(
            &mut h,
            &format!(
                "campaign-{}",
                c.campaign
                    .replace(|ch: char| !ch.is_ascii_alphanumeric(), "-")
            ),
            charts::slot_strip(
                &format!("Slots of {}", c.campaign),
                c.expected_slots,
                &|s| !missing.contains(&s),
                &|s| incomplete.contains(&s),
            ),
            "One cell per slot, in order.",
        );
    }

    if let Some(c) = &r.comparison {
        let _ = write!(
            h,
            "<h2>Comparison</h2><pre>{}</pre><p class=\"note\">Differences are B − A with 95% \
             bootstrap intervals; p-values from Mann–Whitney U (timings) and the two-proportion \
             z-test (success).</p>",
            escape(&comparison_text(c))
        );
    }

    if !r.problems.is_empty() {
        h.push_str("<h2>Data problems</h2><ul>");
        for p in &r.problems {
            let _ = write!(h, "<li>{}</li>", escape(p));
        }
        h.push_str("</ul>");
    }
    let _ = writeln!(h, "<script>{SCRIPT}</script></body></html>");
    h
}

mod cost;
mod hardware;
mod heat;
mod origin;
mod rates;
mod sections;
mod split;
mod sweep;

use cost::cost;
use hardware::hardware;
use heat::heat;
use origin::origins;
use rates::rates;
use sections::{capabilities, distributions, over_time, quality, targets_table};
use split::split;
use sweep::sweep;
