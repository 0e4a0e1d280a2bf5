//! Seed 001's conversation metrics, defined so a user can recompute them by hand.
//!
//! - **Relevance**: Jaccard similarity of the answer's and the golden reply's content terms
//!   ([`crate::jaccard`]).
//! - **Clarity**: the mean, over the answer's sentences (as [`crate::ifeval::sentences`] splits
//!   them), of a sentence-length score: 1 for 5 to 25 words; `n ÷ 5` below 5 words; falling
//!   linearly from 1 at 25 words to 0 at 50 and beyond. It measures only whether sentences have
//!   a readable length: fragments and run-on sentences lower it, nothing else does. An empty
//!   answer scores 0.
//! - **Task completion**: the share of keywords the answer contains (a keyword counts when all
//!   its content terms are among the answer's), times a bonus of 1.2 when that share is at
//!   least 0.8, capped at 1. Keywords are the question's `keywords`, else each distinct content
//!   term of the golden reply.

use crate::term_set;

/// Words from which a sentence reads as a whole one, and up to which it stays easy to read.
const SHORT: f64 = 5.0;
const LONG: f64 = 25.0;
/// Where the bonus starts, and what it multiplies by.
const BONUS_FROM: f64 = 0.8;
const BONUS: f64 = 1.2;

pub fn relevance(answer: &str, golden: &str) -> f64 {
    crate::jaccard(answer, golden)
}

/// The sentences of `text`, split as [`crate::ifeval::sentences`] counts them.
fn sentences(text: &str) -> Vec<&str> {
    let t = text.trim();
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = t.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|(_, n)| n.is_whitespace()) {
            let end = i + c.len_utf8();
            out.push(&t[start..end]);
            start = end;
        }
    }
    if !t[start..].trim().is_empty() {
        out.push(&t[start..]);
    }
    out.retain(|s| !s.trim().is_empty());
    out
}

fn sentence_score(words: usize) -> f64 {
    let n = words as f64;
    if n < SHORT {
        n / SHORT
    } else if n <= LONG {
        1.0
    } else {
        (1.0 - (n - LONG) / LONG).max(0.0)
    }
}

pub fn clarity(answer: &str) -> f64 {
    let s = sentences(answer);
    if s.is_empty() {
        return 0.0;
    }
    s.iter()
        .map(|x| sentence_score(x.split_whitespace().count()))
        .sum::<f64>()
        / s.len() as f64
}

/// Task completion against `keywords`; `None` when there are none to look for.
pub fn task_completion(answer: &str, keywords: &[String]) -> Option<f64> {
    let wanted: Vec<_> = keywords
        .iter()
        .map(|k| term_set(k))
        .filter(|t| !t.is_empty())
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let got = term_set(answer);
    let found = wanted.iter().filter(|k| k.is_subset(&got)).count();
    let share = found as f64 / wanted.len() as f64;
    let bonus = if share >= BONUS_FROM { BONUS } else { 1.0 };
    Some((share * bonus).min(1.0))
}

/// The keywords of a golden reply: its distinct content terms, in order of first use.
pub fn keywords_of(golden: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    crate::terms(golden)
        .into_iter()
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clarity_rewards_readable_sentence_lengths() {
        let good = "The refund was issued today. You will see it within five working days.";
        assert_eq!(clarity(good), 1.0);
        // Two words: 2/5.
        assert!((clarity("Refund issued.") - 0.4).abs() < 1e-12);
        // 40 words in one sentence: 1 − 15/25 = 0.4.
        let run_on = vec!["word"; 40].join(" ");
        assert!((clarity(&run_on) - 0.4).abs() < 1e-12);
        assert_eq!(clarity("   "), 0.0);
        // Mixed: (1 + 0.2) / 2.
        let mixed = "This sentence has exactly five words. Ok.";
        assert!((clarity(mixed) - 0.6).abs() < 1e-12);
    }

    #[test]
    fn task_completion_counts_keywords_with_a_bonus_near_full_coverage() {
        let k = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let kw = k(&["refund", "order number", "five days", "apology", "email"]);
        // 2 of 5: no bonus.
        assert!((task_completion("Your refund went by email.", &kw).unwrap() - 0.4).abs() < 1e-12);
        // 4 of 5 = 0.8, times 1.2 = 0.96.
        let four = "Apologies: the refund for your order number arrives in five days.";
        assert!((task_completion(four, &kw).unwrap() - 0.96).abs() < 1e-12);
        assert_eq!(task_completion("x", &k(&["the", "a"])), None);
        assert_eq!(
            keywords_of("Refunds, refunds and more refunds!"),
            k(&["refund"])
        );
    }

    #[test]
    fn relevance_is_content_term_jaccard() {
        assert_eq!(relevance("The cat sat.", "the cats sat"), 1.0);
        assert!((relevance("cat dog", "cat bird") - 1.0 / 3.0).abs() < 1e-12);
    }
}
