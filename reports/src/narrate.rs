//! Narrated reports: a model writes `analysis_report.md` from the figures (`summary.json`, or an
//! A/B test's `metrics_report.json`), and every number in its text is checked against them.
//!
//! A standalone number in the text (not part of a word such as `llama3` or `Q3`, not a date)
//! counts as found when some figure, or that figure × 100 (a share written as a percentage) or
//! × 1,000 (seconds written as milliseconds), rounds to it at the text's own precision: `0.81`
//! matches 0.8134, `81%` and `81.3%` match 0.8134, `212 ms` matches 0.2123 s. A number not found
//! is marked inline as `N ⟨not in the figures⟩`, and the count is stated at the top. Nothing
//! else of the text is changed.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

/// The mark put after a number the figures do not hold.
pub const MARK: &str = "⟨not in the figures⟩";

/// The system message the narrator gets.
pub const SYSTEM: &str = "You write a short, plain analysis of LLM benchmark results for \
someone choosing a model. Use only numbers that appear in the data you are given, rounded as \
you like; never compute or invent new ones. Say which differences are uncertain.";

/// Every number in `figures`, depth first.
pub fn figures_numbers(figures: &Value) -> Vec<f64> {
    fn walk(v: &Value, out: &mut Vec<f64>) {
        match v {
            Value::Number(n) => out.extend(n.as_f64()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            // Numbers written inside strings count too (run ids aside, they are labels).
            Value::String(s) => out.extend(s.trim().parse::<f64>().ok()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(figures, &mut out);
    out
}

fn number_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"[-−]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[-−]?\d+(?:\.\d+)?")
            .expect("a valid pattern")
    })
}

/// Whether `written` (with `decimals` places) is some figure, as a share in percent, or as
/// milliseconds, rounded.
fn found(written: f64, decimals: usize, figures: &[f64]) -> bool {
    let half = 0.5 * 10f64.powi(-(decimals as i32)) + 1e-9;
    figures.iter().any(|f| {
        [*f, f * 100.0, f * 1000.0]
            .iter()
            .any(|x| (x - written).abs() <= half)
    })
}

/// The text with every number the figures do not hold marked, and how many numbers were
/// checked and not found.
pub fn check(text: &str, figures: &[f64]) -> (String, usize, usize) {
    let mut out = String::with_capacity(text.len() + 64);
    let (mut checked, mut missing) = (0, 0);
    let mut last = 0;
    let bytes = text.as_bytes();
    for m in number_re().find_iter(text) {
        let (s, e) = (m.start(), m.end());
        let before = text[..s].chars().next_back();
        let after = text[e..].chars().next();
        // Part of a word or an identifier (llama3, 70b, Q3, v1.2.3, 2026-11-27): not a figure.
        let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let dotted = after == Some('.') && bytes.get(e + 1).is_some_and(u8::is_ascii_digit);
        let dashed = (after == Some('-') && bytes.get(e + 1).is_some_and(u8::is_ascii_digit))
            || (before == Some('-') && s >= 2 && bytes[s - 2].is_ascii_digit());
        if glued(before) || glued(after) || dotted || dashed {
            continue;
        }
        let raw = m.as_str().replace(',', "").replace('−', "-");
        let Ok(value) = raw.parse::<f64>() else {
            continue;
        };
        let decimals = raw.split_once('.').map_or(0, |(_, d)| d.len());
        checked += 1;
        if !found(value, decimals, figures) {
            missing += 1;
            out.push_str(&text[last..e]);
            out.push(' ');
            out.push_str(MARK);
            last = e;
        }
    }
    out.push_str(&text[last..]);
    (out, checked, missing)
}

/// The analysis file: who wrote it, what was checked, then the checked text.
pub fn document(text: &str, figures: &Value, narrator: &str, source: &str) -> (String, usize) {
    let (marked, checked, missing) = check(text, &figures_numbers(figures));
    let verdict = if missing == 0 {
        format!("all {checked} numbers in it are there")
    } else {
        format!(
            "{missing} of the {checked} numbers in it {} not, and {} marked {MARK} where {} occur",
            if missing == 1 { "is" } else { "are" },
            if missing == 1 { "is" } else { "are" },
            if missing == 1 { "it" } else { "they" },
        )
    };
    let head = format!(
        "> Written by a model: {narrator}, from `{source}`. llmpulse checked its numbers \
         against those figures: {verdict}.\n\n"
    );
    (head + &marked, missing)
}

/// Figures above this size are cut to their per-target part before they go to the model.
const MAX_PROMPT_CHARS: usize = 60_000;

/// Asks `client` for the analysis of `figures` (read from `source`), checks its numbers, and
/// writes `analysis_report.md` into `out`. Returns the file and the count of numbers not found.
pub async fn narrate(
    client: &llmpulse_core::provider::Client,
    figures: &Value,
    source: &str,
    out: &std::path::Path,
) -> Result<(std::path::PathBuf, usize), String> {
    use llmpulse_core::suite::{Message, Prompt};
    let mut data = figures.to_string();
    if data.len() > MAX_PROMPT_CHARS
        && let Some(targets) = figures.get("targets")
    {
        data = targets.to_string();
    }
    data.truncate(MAX_PROMPT_CHARS);
    let prompt = Prompt::messages(vec![
        Message {
            role: "system",
            content: SYSTEM.to_string(),
        },
        Message {
            role: "user",
            content: format!(
                "Write the analysis in Markdown, in at most 250 words, from these figures (JSON):\n{data}"
            ),
        },
    ]);
    let (outcome, _) = client.call_with_retries(&prompt).await;
    if let Some(e) = &outcome.error {
        return Err(format!(
            "the narrator failed: {}: {}",
            e.kind.as_str(),
            e.message
        ));
    }
    let t = client.target();
    let narrator = format!("target {} ({} {})", t.name, t.provider, t.model);
    let (doc, missing) = document(&outcome.answer, figures, &narrator, source);
    let path = out.join("analysis_report.md");
    std::fs::write(&path, doc).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((path, missing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_from_the_figures_pass_in_any_rounding_and_invented_ones_are_marked() {
        let figures = json!({"success": 0.8134, "p50_latency_sec": 0.2123, "n": 1200,
                             "model": "llama3-70b-8192"});
        let f = figures_numbers(&figures);
        let text = "llama3-70b answered 81% of 1,200 calls (0.81) with a median of 212 ms, \
                    twice as fast as last week's 450 ms, on 2026-11-27.";
        let (marked, checked, missing) = check(text, &f);
        assert_eq!((checked, missing), (5, 1), "{marked}");
        assert!(marked.contains(&format!("450 {MARK} ms")), "{marked}");
        assert!(marked.contains("81% of 1,200 calls (0.81)"));
        // A wrong rounding is not the figure.
        let (_, _, missing) = check("success was 82%", &f);
        assert_eq!(missing, 1);
        let (doc, missing) = document(text, &figures, "sim (t)", "summary.json");
        assert_eq!(missing, 1);
        assert!(doc.starts_with("> Written by a model: sim (t)"), "{doc}");
        assert!(
            doc.contains("1 of the 5 numbers in it is not, and is marked"),
            "{doc}"
        );
        let (doc, _) = document("It answered 81% of calls.", &figures, "sim (t)", "s.json");
        assert!(doc.contains("all 1 numbers in it are there"), "{doc}");
    }
}
