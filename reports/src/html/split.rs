//! The time-to-first-token split on the page: per target, new connections and their set-up,
//! TTFB, and headers → first token, each a median with its interval.

use super::{escape, est, table_head, td, td_ci};
use crate::figures::Report;
use crate::text::{SPLIT_NOTE, pct_ci};
use std::fmt::Write;

/// Left out when no record says when its response headers came.
pub(super) fn split(h: &mut String, r: &Report) {
    let rows: Vec<_> = r
        .targets
        .iter()
        .filter_map(|t| Some((t, t.ttft_split.as_ref()?)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = write!(
        h,
        "<h2>Time to first token, split</h2><p class=\"note\">{}</p>",
        escape(SPLIT_NOTE)
    );
    table_head(
        h,
        "ttft-split",
        &[
            "target",
            "new connections",
            "set-up p50 s",
            "DNS / TCP / TLS p50 ms",
            "TTFB p50 s",
            "headers → first token p50 s",
            "TTFT p50 s",
        ],
    );
    for (x, sp) in rows {
        let new = &sp.new_connections;
        let _ = write!(
            h,
            "<tr><td>{}</td>{}{}<td>{}</td>{}{}{}</tr>",
            escape(&x.target),
            td(
                (new.n > 0).then_some(new.rate.value),
                &if new.n == 0 {
                    "n/a".into()
                } else {
                    pct_ci(&new.rate)
                }
            ),
            td_ci(est(&sp.setup_sec, |q| &q.p50), 3),
            escape(&sp.phases_ms().unwrap_or_else(|| "-".into())),
            td_ci(est(&sp.ttfb_sec, |q| &q.p50), 3),
            td_ci(est(&sp.headers_to_first_token_sec, |q| &q.p50), 3),
            td_ci(est(&x.ttft_sec, |q| &q.p50), 3),
        );
    }
    h.push_str("</tbody></table></div>");
}
