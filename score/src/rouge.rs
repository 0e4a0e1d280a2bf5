//! ROUGE-1, ROUGE-2 and ROUGE-L F-measures as Google's `rouge-score` 0.1.2 computes them, with
//! or without stemming: text lowercased, tokens are the runs of ASCII letters and digits (with
//! stemming, tokens longer than 3 characters go through NLTK's Porter stemmer, [`crate::porter`]),
//! n-gram overlap (clipped counts) or the longest common subsequence gives precision and recall,
//! and the F-measure is their harmonic mean. One reference (the target) per pair.

use std::collections::HashMap;

/// rouge-score's default tokenizer (no stemmer).
pub fn tokenize(text: &str) -> Vec<String> {
    tokenize_with(text, false)
}

/// rouge-score's default tokenizer, with its Porter stemmer when `stem`.
pub fn tokenize_with(text: &str, stem: bool) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|t| !t.is_empty())
        .map(|t| {
            if stem && t.len() > 3 {
                crate::porter::stem(t)
            } else {
                t.to_string()
            }
        })
        .collect()
}

fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

fn ngrams(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut m = HashMap::new();
    if n > 0 {
        for w in tokens.windows(n) {
            *m.entry(w).or_insert(0) += 1;
        }
    }
    m
}

/// ROUGE-N F-measure of `prediction` against `target`.
pub fn rouge_n(target: &str, prediction: &str, n: usize) -> f64 {
    rouge_n_with(target, prediction, n, false)
}

/// ROUGE-N, with stemming when `stem` (`use_stemmer=True`).
pub fn rouge_n_with(target: &str, prediction: &str, n: usize, stem: bool) -> f64 {
    let (t, p) = (tokenize_with(target, stem), tokenize_with(prediction, stem));
    let (tn, pn) = (ngrams(&t, n), ngrams(&p, n));
    let overlap: usize = tn
        .iter()
        .map(|(g, c)| (*c).min(pn.get(g).copied().unwrap_or(0)))
        .sum();
    let t_count: usize = tn.values().sum();
    let p_count: usize = pn.values().sum();
    let precision = overlap as f64 / p_count.max(1) as f64;
    let recall = overlap as f64 / t_count.max(1) as f64;
    fmeasure(precision, recall)
}

/// ROUGE-L F-measure (longest common subsequence of tokens).
pub fn rouge_l(target: &str, prediction: &str) -> f64 {
    rouge_l_with(target, prediction, false)
}

/// ROUGE-L, with stemming when `stem`.
pub fn rouge_l_with(target: &str, prediction: &str, stem: bool) -> f64 {
    let (t, p) = (tokenize_with(target, stem), tokenize_with(prediction, stem));
    if t.is_empty() || p.is_empty() {
        return 0.0;
    }
    let mut prev = vec![0usize; p.len() + 1];
    let mut cur = vec![0usize; p.len() + 1];
    for a in &t {
        for (j, b) in p.iter().enumerate() {
            cur[j + 1] = if a == b {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let lcs = prev[p.len()] as f64;
    fmeasure(lcs / p.len() as f64, lcs / t.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_lowercase_ascii_alphanumeric_runs() {
        assert_eq!(
            tokenize("The Cat's 3.5-km café!"),
            ["the", "cat", "s", "3", "5", "km", "caf"]
        );
    }

    #[test]
    fn scores_as_rouge_score_gives_them() {
        // rouge-score's own test: "testRouge1" and "testRougeL" examples.
        let (t, p) = ("testing one two", "testing");
        assert!((rouge_n(t, p, 1) - 0.5).abs() < 1e-12);
        assert!((rouge_l("testing one two", "testing two") - 0.8).abs() < 1e-12);
        assert_eq!(rouge_n("", "", 1), 0.0);
    }
}
