//! The by-origin table on the page: each target measured from several origins, side by side.

use std::fmt::Write;

use super::{escape, est, table_head, td, td_ci};
use crate::figures::Report;
use crate::text::{ORIGIN_NOTE, pct_ci};

/// Left out when every target was measured from one origin.
pub(super) fn origins(h: &mut String, r: &Report) {
    if r.targets.iter().all(|t| t.origins.is_empty()) {
        return;
    }
    let _ = write!(
        h,
        "<h2>By origin</h2><p class=\"note\">{}</p>",
        escape(ORIGIN_NOTE)
    );
    table_head(
        h,
        "origins",
        &[
            "target",
            "origin",
            "success",
            "TTFT p50 s",
            "TTFB p50 s",
            "latency p50 s",
            "network share",
        ],
    );
    for x in &r.targets {
        for o in &x.origins {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td>{}{}{}{}{}</tr>",
                escape(&x.target),
                escape(&o.origin),
                td(Some(o.success.rate.value), &pct_ci(&o.success.rate)),
                td_ci(est(&o.ttft_sec, |q| &q.p50), 3),
                td_ci(est(&o.ttfb_sec, |q| &q.p50), 3),
                td_ci(est(&o.latency_sec, |q| &q.p50), 3),
                td(
                    o.network_share,
                    &o.network_share
                        .map_or("n/a".into(), |v| format!("{:.0}%", v * 100.0))
                ),
            );
        }
    }
    h.push_str("</tbody></table></div>");
}
