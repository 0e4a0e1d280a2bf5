//! Instruction following: constraints a program can verify, in the manner of IFEval, each pass
//! or fail. Definitions (so a user can recompute them):
//!
//! - a **word** is a maximal run of non-whitespace characters;
//! - a **sentence** ends at `.`, `!` or `?` followed by whitespace or the end (a text without
//!   one is one sentence);
//! - **paragraphs** are separated by one or more blank lines;
//! - a **bullet** is a line starting with `* `, `- ` or `• ` (after indentation);
//! - `include` and `exclude` match case-insensitively as substrings;
//! - `json` means the whole answer, trimmed (and without a surrounding fenced block), parses as
//!   JSON;
//! - `starts_with` and `ends_with` compare case-insensitively after trimming whitespace (and, for
//!   `ends_with`, closing quotes).

use serde::{Deserialize, Serialize};

/// A question's verifiable instructions (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Constraints {
    pub min_words: Option<u32>,
    pub max_words: Option<u32>,
    pub min_sentences: Option<u32>,
    pub max_sentences: Option<u32>,
    pub paragraphs: Option<u32>,
    pub bullets: Option<u32>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub no_commas: bool,
    pub lowercase: bool,
    pub uppercase: bool,
    pub json: bool,
    pub starts_with: Option<String>,
    pub ends_with: Option<String>,
}

impl Constraints {
    pub fn is_empty(&self) -> bool {
        *self == Constraints::default()
    }
}

pub fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

pub fn sentences(text: &str) -> usize {
    let chars: Vec<char> = text.trim().chars().collect();
    if chars.is_empty() {
        return 0;
    }
    let mut n = 0;
    for (i, c) in chars.iter().enumerate() {
        if matches!(c, '.' | '!' | '?') && chars.get(i + 1).is_none_or(|n| n.is_whitespace()) {
            n += 1;
        }
    }
    // A last sentence without its full stop still counts.
    let ends_closed = chars
        .iter()
        .rev()
        .find(|c| !c.is_whitespace())
        .is_some_and(|c| matches!(c, '.' | '!' | '?'));
    n + usize::from(!ends_closed)
}

pub fn paragraphs(text: &str) -> usize {
    let mut n = 0;
    let mut in_paragraph = false;
    for line in text.lines() {
        if line.trim().is_empty() {
            in_paragraph = false;
        } else if !in_paragraph {
            n += 1;
            in_paragraph = true;
        }
    }
    n
}

pub fn bullets(text: &str) -> usize {
    text.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("* ") || l.starts_with("- ") || l.starts_with("• "))
        .count()
}

fn unfenced(text: &str) -> &str {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("```")
        && let Some(body) = rest.strip_suffix("```")
    {
        return body.split_once('\n').map_or(body, |(_, b)| b).trim();
    }
    t
}

/// Each constraint of `c` that applies, with whether `answer` meets it, in a fixed order.
pub fn check(answer: &str, c: &Constraints) -> Vec<(&'static str, bool)> {
    let mut out = Vec::new();
    let lower = answer.to_lowercase();
    let w = words(answer) as u32;
    let s = sentences(answer) as u32;
    if let Some(m) = c.min_words {
        out.push(("min_words", w >= m));
    }
    if let Some(m) = c.max_words {
        out.push(("max_words", w <= m));
    }
    if let Some(m) = c.min_sentences {
        out.push(("min_sentences", s >= m));
    }
    if let Some(m) = c.max_sentences {
        out.push(("max_sentences", s <= m));
    }
    if let Some(p) = c.paragraphs {
        out.push(("paragraphs", paragraphs(answer) as u32 == p));
    }
    if let Some(b) = c.bullets {
        out.push(("bullets", bullets(answer) as u32 == b));
    }
    if !c.include.is_empty() {
        out.push((
            "include",
            c.include.iter().all(|k| lower.contains(&k.to_lowercase())),
        ));
    }
    if !c.exclude.is_empty() {
        out.push((
            "exclude",
            !c.exclude.iter().any(|k| lower.contains(&k.to_lowercase())),
        ));
    }
    if c.no_commas {
        out.push(("no_commas", !answer.contains(',')));
    }
    if c.lowercase {
        out.push(("lowercase", !answer.chars().any(char::is_uppercase)));
    }
    if c.uppercase {
        out.push(("uppercase", !answer.chars().any(char::is_lowercase)));
    }
    if c.json {
        out.push((
            "json",
            serde_json::from_str::<serde_json::Value>(unfenced(answer)).is_ok(),
        ));
    }
    if let Some(p) = &c.starts_with {
        out.push((
            "starts_with",
            lower.trim_start().starts_with(&p.to_lowercase()),
        ));
    }
    if let Some(p) = &c.ends_with {
        let end = lower.trim_end().trim_end_matches(['"', '\'', '”']);
        out.push(("ends_with", end.ends_with(&p.to_lowercase())));
    }
    out
}

/// The share of `c`'s constraints that `answer` meets (`None` when there are none).
pub fn share(answer: &str, c: &Constraints) -> Option<f64> {
    let checks = check(answer, c);
    (!checks.is_empty())
        .then(|| checks.iter().filter(|(_, ok)| *ok).count() as f64 / checks.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_documented_definitions() {
        let t = "One two three. Four five!\n\nSix seven? eight";
        assert_eq!(words(t), 8);
        assert_eq!(sentences(t), 4);
        assert_eq!(paragraphs(t), 2);
        assert_eq!(sentences("Version 2.5 is out."), 1);
        assert_eq!(sentences(""), 0);
        assert_eq!(bullets("Intro\n- a\n  * b\n• c\n-d"), 3);
    }

    #[test]
    fn each_constraint_passes_or_fails_as_a_reader_would_judge() {
        let c = Constraints {
            max_words: Some(12),
            include: vec!["Latency".into()],
            exclude: vec!["sorry".into()],
            no_commas: true,
            lowercase: true,
            ends_with: Some("done.".into()),
            ..Constraints::default()
        };
        let good = "latency fell by half after the cache change. done.";
        assert!(
            check(good, &c).iter().all(|(_, ok)| *ok),
            "{:?}",
            check(good, &c)
        );
        assert_eq!(share(good, &c), Some(1.0));
        let bad = "Sorry, Latency fell by half after the cache change and then it rose";
        let verdicts = check(bad, &c);
        let failed: Vec<&str> = verdicts
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(
            failed,
            [
                "max_words",
                "exclude",
                "no_commas",
                "lowercase",
                "ends_with"
            ]
        );
        assert_eq!(share(bad, &c), Some(1.0 / 6.0));
        assert_eq!(share("anything", &Constraints::default()), None);
    }

    #[test]
    fn json_bullets_and_paragraphs() {
        let c = Constraints {
            json: true,
            ..Constraints::default()
        };
        assert_eq!(share("```json\n{\"a\": 1}\n```", &c), Some(1.0));
        assert_eq!(share("Here: {\"a\": 1}", &c), Some(0.0));
        let c = Constraints {
            bullets: Some(3),
            paragraphs: Some(2),
            starts_with: Some("Summary".into()),
            uppercase: false,
            ..Constraints::default()
        };
        assert_eq!(
            share("summary:\n- a\n- b\n- c\n\nThat is all.", &c),
            Some(1.0)
        );
        assert_eq!(share("Summary:\n- a\n- b", &c), Some(1.0 / 3.0));
    }
}
