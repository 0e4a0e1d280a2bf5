//! The by-origin table of `summary.md`: each target measured from several origins, side by side.

use std::fmt::Write;

use comfy_table::Table;
use comfy_table::presets::ASCII_MARKDOWN;

use super::{pct_ci, q, right};
use crate::figures::Report;

/// What the by-origin columns mean, for both the Markdown and the page.
pub const ORIGIN_NOTE: &str = "Targets measured from more than one origin (regions, agents), \
     each origin apart: medians over successful calls with 95% intervals. Network share is TTFB \
     over TTFT: high at one origin only points at that origin's network, not the model.";

pub(super) fn origin_table(s: &mut String, r: &Report) {
    if r.targets.iter().all(|t| t.origins.is_empty()) {
        return;
    }
    let mut t = Table::new();
    t.load_preset(ASCII_MARKDOWN).set_header(vec![
        "target",
        "origin",
        "success [CI]",
        "TTFT p50 s [CI]",
        "TTFB p50 s [CI]",
        "latency p50 s [CI]",
        "network share",
    ]);
    for x in &r.targets {
        for o in &x.origins {
            t.add_row(vec![
                x.target.clone(),
                o.origin.clone(),
                pct_ci(&o.success.rate),
                q(&o.ttft_sec, |q| &q.p50, 3),
                q(&o.ttfb_sec, |q| &q.p50, 3),
                q(&o.latency_sec, |q| &q.p50, 3),
                o.network_share
                    .map_or("n/a".into(), |v| format!("{:.0}%", v * 100.0)),
            ]);
        }
    }
    right(&mut t, 2);
    let _ = writeln!(s, "## By origin\n\n{ORIGIN_NOTE}\n\n{t}\n");
}
