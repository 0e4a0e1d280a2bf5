//! The time-to-first-token split of `summary.md`: per target, the share of calls that opened a
//! connection and its set-up, request → headers (TTFB), and headers → first token.

use std::fmt::Write;

use comfy_table::Table;
use comfy_table::presets::ASCII_MARKDOWN;

use super::{pct_ci, q, right};
use crate::figures::Report;

/// What the split's columns mean, for both the Markdown and the page.
pub const SPLIT_NOTE: &str = "Medians over successful calls, with 95% intervals. Set-up is the \
     name lookup, TCP and TLS handshakes of the calls that opened a connection; the rest reused \
     one. With the client clock (a proxy, clock = \"client\") TTFB includes a new connection's set-up; with \
     the kernel or socket clock (the default, http and https, HTTP/1.1 and HTTP/2) it starts at the request's first \
     byte, after it. Headers → first token is \
     the provider's queue and prefill, mostly: a slow network shows in set-up and TTFB, a slow \
     provider after the headers.";

pub(super) fn split_table(s: &mut String, r: &Report) {
    let rows: Vec<_> = r
        .targets
        .iter()
        .filter_map(|t| Some((t, t.ttft_split.as_ref()?)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let mut t = Table::new();
    t.load_preset(ASCII_MARKDOWN).set_header(vec![
        "target",
        "new connections [CI]",
        "set-up p50 s [CI]",
        "DNS / TCP / TLS p50 ms",
        "TTFB p50 s [CI]",
        "headers → first token p50 s [CI]",
        "TTFT p50 s [CI]",
    ]);
    for (x, sp) in rows {
        t.add_row(vec![
            x.target.clone(),
            if sp.new_connections.n == 0 {
                "n/a".into()
            } else {
                pct_ci(&sp.new_connections.rate)
            },
            q(&sp.setup_sec, |q| &q.p50, 3),
            sp.phases_ms().unwrap_or_else(|| "-".into()),
            q(&sp.ttfb_sec, |q| &q.p50, 3),
            q(&sp.headers_to_first_token_sec, |q| &q.p50, 3),
            q(&x.ttft_sec, |q| &q.p50, 3),
        ]);
    }
    right(&mut t, 1);
    let _ = writeln!(s, "## Time to first token, split\n\n{SPLIT_NOTE}\n\n{t}\n");
}
