//! The cost section: what each target's calls cost (per call, per 1,000, per million output
//! tokens, per correct answer), the cost–quality chart with its Pareto front, the spend per day
//! and campaign, and the runs a budget stopped.

use std::fmt::Write;

use super::{escape, figure, table_head, td};
use crate::charts::{self, ScatterPoint};
use crate::figures::Report;
use crate::text::usd;

/// Left out when no record has a cost and no budget refused a call.
pub(super) fn cost(h: &mut String, r: &Report) {
    let Some(spend) = &r.spend else { return };
    let _ = write!(
        h,
        "<h2>Cost</h2><p class=\"note\">{} spent in all. A call's cost is the provider's own \
         figure where it gives one, else its tokens at the target's price; billed failures \
         count. Per correct answer: what the graded calls cost over their correct answers, its \
         interval from the correct share's Wilson interval. <b>front</b>: no other target is \
         both cheaper a call and correct at least as often.</p>",
        escape(&usd(spend.total_usd))
    );
    table_head(
        h,
        "cost",
        &[
            "target",
            "priced calls",
            "spent",
            "per call",
            "per 1k calls",
            "per 1M out tok",
            "correct / graded",
            "per correct answer",
            "front",
        ],
    );
    let priced: Vec<_> = r
        .targets
        .iter()
        .filter_map(|t| Some((t, t.cost.as_ref()?)))
        .collect();
    for (t, c) in &priced {
        let interval = |v: f64, ci: Option<(f64, f64)>| match ci {
            Some((lo, hi)) if usd(lo) != usd(hi) => {
                format!("{} [{}–{}]", usd(v), usd(lo), usd(hi))
            }
            _ => usd(v),
        };
        let per_call = &c.per_call_usd;
        let _ = write!(
            h,
            "<tr><td>{}</td>{}{}{}{}{}{}{}<td class=\"l\">{}</td></tr>",
            escape(&t.target),
            td(Some(c.priced_calls as f64), &c.priced_calls.to_string()),
            td(Some(c.spent_usd), &usd(c.spent_usd)),
            td(
                Some(per_call.mean),
                &interval(per_call.mean, per_call.ci95.map(|[lo, hi]| (lo, hi)))
            ),
            td(Some(c.per_1k_calls_usd), &usd(c.per_1k_calls_usd)),
            td(
                c.per_1m_output_tokens_usd,
                &c.per_1m_output_tokens_usd.map_or("n/a".into(), usd)
            ),
            td(
                (c.graded_calls > 0).then(|| c.correct_answers as f64 / c.graded_calls as f64),
                &format!("{} / {}", c.correct_answers, c.graded_calls)
            ),
            td(
                c.per_correct_answer_usd.map(|e| e.value),
                &c.per_correct_answer_usd
                    .map_or("n/a".into(), |e| interval(e.value, Some((e.lo, e.hi))))
            ),
            if c.cost_quality_pareto { "front" } else { "" },
        );
    }
    h.push_str("</tbody></table></div>");

    let points: Vec<ScatterPoint> = priced
        .iter()
        .filter(|(_, c)| c.graded_calls > 0)
        .map(|(t, c)| ScatterPoint {
            label: t.target.clone(),
            x: c.per_call_usd.mean,
            y: c.correct_answers as f64 / c.graded_calls as f64,
            x_ci: c.per_call_usd.ci95.map(|[lo, hi]| (lo.max(0.0), hi)),
            front: c.cost_quality_pareto,
        })
        .collect();
    if !points.is_empty() {
        figure(
            h,
            "cost-quality",
            charts::scatter(
                "Cost against correct answers",
                "USD per call",
                "correct share of graded calls",
                &points,
            ),
            "One point per target: its mean cost a call (with the 95% interval) and the share of \
             its graded calls answered correctly. Filled points, joined by the dashed line, are \
             the Pareto front.",
        );
    }

    if spend.by_day.len() > 1 {
        let lines = vec![charts::Line {
            name: "all targets".into(),
            points: spend
                .by_day
                .iter()
                .filter_map(|(day, v)| {
                    let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
                    Some((d.and_hms_opt(12, 0, 0)?.and_utc(), *v))
                })
                .collect(),
        }];
        figure(
            h,
            "spend-per-day",
            charts::time_lines("Spend per day", "USD", &lines, false),
            "What every target's calls cost, per UTC day.",
        );
    }
    let campaigns: Vec<_> = spend
        .by_campaign
        .iter()
        .filter(|(c, _)| *c != "-")
        .collect();
    if !campaigns.is_empty() {
        h.push_str("<p>Spent per campaign: ");
        let parts: Vec<String> = campaigns
            .iter()
            .map(|(c, v)| format!("<code>{}</code> {}", escape(c), escape(&usd(**v))))
            .collect();
        h.push_str(&parts.join(", "));
        h.push_str(".</p>");
    }
    if spend.skipped_budget > 0 || !spend.budget_stopped.is_empty() {
        let _ = write!(
            h,
            "<p class=\"banner\">A budget kept {} calls from being made (<code>skipped_budget</code>); \
             they count in no figure.</p><ul>",
            spend.skipped_budget
        );
        for b in &spend.budget_stopped {
            let _ = write!(
                h,
                "<li>Run <code>{}</code>{}: {}</li>",
                escape(&b.run_id),
                b.campaign
                    .as_ref()
                    .map(|c| format!(
                        " (campaign <code>{}</code>{})",
                        escape(c),
                        b.slot.map(|s| format!(", slot {s}")).unwrap_or_default()
                    ))
                    .unwrap_or_default(),
                escape(&b.why)
            );
        }
        h.push_str("</ul>");
    }
}
