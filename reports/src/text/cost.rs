//! The cost tables of `summary.md`: what each target's calls cost, spend per day and
//! campaign, and the runs a budget stopped.

use std::fmt::Write;

use comfy_table::Table;
use comfy_table::presets::ASCII_MARKDOWN;

use super::right;
use crate::figures::Report;

/// `$0.000123` — six decimals for fractions of a cent, two for dollars and more.
pub fn usd(v: f64) -> String {
    if v.abs() >= 1.0 {
        format!("${v:.2}")
    } else {
        format!("${v:.6}")
    }
}

/// What each target's calls cost (per call, per 1,000, per million output tokens, per correct
/// answer), the spend per day and per campaign, and the runs a budget stopped. Left out when no
/// record has a cost and no budget refused a call.
pub(super) fn cost_tables(s: &mut String, r: &Report) {
    let Some(spend) = &r.spend else { return };
    let mut t = Table::new();
    t.load_preset(ASCII_MARKDOWN).set_header(vec![
        "target",
        "priced calls",
        "spent",
        "per call [CI]",
        "per 1k calls",
        "per 1M out tok",
        "correct / graded",
        "per correct answer [CI]",
        "front",
    ]);
    for (name, c) in r
        .targets
        .iter()
        .filter_map(|t| Some((&t.target, t.cost.as_ref()?)))
    {
        let per_call = &c.per_call_usd;
        t.add_row(vec![
            name.clone(),
            c.priced_calls.to_string(),
            usd(c.spent_usd),
            match per_call.ci95 {
                // Every call the same price: no interval to show.
                Some([lo, hi]) if usd(lo) != usd(hi) => {
                    format!("{} [{}–{}]", usd(per_call.mean), usd(lo), usd(hi))
                }
                _ => usd(per_call.mean),
            },
            usd(c.per_1k_calls_usd),
            c.per_1m_output_tokens_usd.map_or("n/a".into(), usd),
            format!("{} / {}", c.correct_answers, c.graded_calls),
            c.per_correct_answer_usd.map_or("n/a".into(), |e| {
                format!("{} [{}–{}]", usd(e.value), usd(e.lo), usd(e.hi))
            }),
            if c.cost_quality_pareto { "yes" } else { "" }.into(),
        ]);
    }
    right(&mut t, 1);
    let _ = writeln!(
        s,
        "## Cost

{} spent in all. A call's cost is the provider's own figure where it gives \
         one, else its tokens at the target's price (billed failures included). Per correct \
         answer: what the graded calls cost over their correct answers (the right answer, a \
         quality score of {} or more, or every key fact covered); its interval is the correct \
         share's Wilson interval. **front**: no other target is both cheaper a call and correct \
         at least as often.\n\n{t}\n",
        usd(spend.total_usd),
        crate::aggregate::spend::QUALITY_CORRECT
    );
    if spend.by_day.len() > 1 || spend.by_campaign.keys().any(|c| c != "-") {
        let mut d = Table::new();
        d.load_preset(ASCII_MARKDOWN)
            .set_header(vec!["day or campaign", "spent"]);
        for (day, v) in &spend.by_day {
            d.add_row(vec![day.clone(), usd(*v)]);
        }
        for (c, v) in spend.by_campaign.iter().filter(|(c, _)| *c != "-") {
            d.add_row(vec![format!("campaign {c}"), usd(*v)]);
        }
        right(&mut d, 1);
        let _ = writeln!(s, "Spend per UTC day and per campaign:\n\n{d}\n");
    }
    if spend.skipped_budget > 0 {
        let _ = writeln!(
            s,
            "A budget kept {} calls from being made (`skipped_budget`); they count in no figure \
             above.\n",
            spend.skipped_budget
        );
    }
    for b in &spend.budget_stopped {
        let _ = writeln!(
            s,
            "- Run `{}`{}{} stopped for budget: {}",
            b.run_id,
            b.campaign
                .as_ref()
                .map(|c| format!(" (campaign `{c}`"))
                .unwrap_or_default(),
            match (&b.campaign, b.slot) {
                (Some(_), Some(slot)) => format!(", slot {slot})"),
                (Some(_), None) => ")".into(),
                _ => String::new(),
            },
            b.why
        );
    }
    if !spend.budget_stopped.is_empty() {
        let _ = writeln!(s);
    }
}
