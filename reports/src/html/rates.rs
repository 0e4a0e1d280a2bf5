//! Load against offered rate: latency and goodput (or achieved rate) per target, one point per
//! open-loop run, and the table behind them. Left out without two runs at known rates.

use std::fmt::Write;

use super::{escape, figure, table_head, td_num};
use crate::charts::{self, XyLine};
use crate::figures::Report;

pub(super) fn rates(h: &mut String, r: &Report) {
    if r.rate_curves.is_empty() {
        return;
    }
    h.push_str("<h2>Load against offered rate</h2>");
    h.push_str(
        "<p class=\"note\">One point per open-loop run of a target (<code>--profile \
         constant:RATE</code>, <code>poisson:RATE</code> or a <code>sweep</code>): the rate its \
         schedule asked for against what it got. Where latency turns up and goodput stops \
         growing, the server is saturated.</p>",
    );
    let mut latency = Vec::new();
    let mut output = Vec::new();
    let with_slo = r
        .rate_curves
        .iter()
        .any(|c| c.points.iter().any(|p| p.goodput_rps.is_some()));
    for (i, c) in r.rate_curves.iter().enumerate() {
        let at = |f: &dyn Fn(&crate::rates::RatePoint) -> Option<f64>| -> Vec<(f64, f64)> {
            c.points
                .iter()
                .filter_map(|p| Some((p.offered_rps?, f(p)?)))
                .collect()
        };
        latency.push(XyLine {
            name: format!("{} p50", c.target),
            color: i,
            dashed: false,
            points: at(&|p| p.latency_p50_sec),
        });
        latency.push(XyLine {
            name: format!("{} p99", c.target),
            color: i,
            dashed: true,
            points: at(&|p| p.latency_p99_sec),
        });
        output.push(XyLine {
            name: c.target.clone(),
            color: i,
            dashed: false,
            points: if with_slo {
                at(&|p| p.goodput_rps)
            } else {
                at(&|p| p.achieved_rps)
            },
        });
    }
    figure(
        h,
        "rate-latency",
        charts::xy_lines(
            "Latency against offered rate",
            "offered rate (calls/s)",
            "seconds",
            &latency,
        ),
        "Latency of the successful calls of each run, p50 (solid) and p99 (dashed).",
    );
    let (title, caption) = if with_slo {
        (
            "Goodput against offered rate",
            "Calls meeting the SLO per second, first send to last answer.",
        )
    } else {
        (
            "Achieved rate against offered rate",
            "Calls answered per second, first send to last answer (no SLO was set).",
        )
    };
    figure(
        h,
        "rate-goodput",
        charts::xy_lines(title, "offered rate (calls/s)", "calls/s", &output),
        caption,
    );
    table_head(
        h,
        "rates",
        &[
            "target",
            "run",
            "offered/s",
            "achieved/s",
            "calls",
            "success",
            "latency p50 s",
            "latency p99 s",
            "TTFT p50 s",
            "SLO met",
            "goodput/s",
        ],
    );
    for c in &r.rate_curves {
        for p in &c.points {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"l\">{}</td>{}{}{}{}{}{}{}{}{}</tr>",
                escape(&c.target),
                escape(&p.run_id),
                td_num(p.offered_rps, 2),
                td_num(p.achieved_rps, 2),
                td_num(Some(p.calls as f64), 0),
                td_num(Some(p.success), 3),
                td_num(p.latency_p50_sec, 3),
                td_num(p.latency_p99_sec, 3),
                td_num(p.ttft_p50_sec, 3),
                td_num(p.slo_attainment, 3),
                td_num(p.goodput_rps, 2),
            );
        }
    }
    h.push_str("</tbody></table></div>");
}
