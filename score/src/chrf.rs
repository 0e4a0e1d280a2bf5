//! chrF as sacreBLEU 2.5 computes it with its defaults: character n-grams of orders 1 to 6 with
//! whitespace removed, no word n-grams, β = 2, case kept, and the effective-order average
//! (precision and recall are averaged over the orders that both sides have n-grams of, then
//! combined into one F-score). Against several references, the best one counts. Scores are in
//! [0, 100].

use std::collections::HashMap;

use crate::pytext;

const ORDER: usize = 6;
const BETA: f64 = 2.0;

/// Per order: (hypothesis n-grams, reference n-grams, matches).
pub type ChrfStats = [[usize; 3]; ORDER];

fn counts(text: &str) -> Vec<HashMap<String, usize>> {
    let chars: Vec<char> = pytext::split(text).flat_map(str::chars).collect();
    (1..=ORDER)
        .map(|n| {
            let mut m: HashMap<String, usize> = HashMap::new();
            for w in chars.windows(n) {
                *m.entry(w.iter().collect()).or_insert(0) += 1;
            }
            m
        })
        .collect()
}

fn match_stats(hyp: &[HashMap<String, usize>], reference: &[HashMap<String, usize>]) -> ChrfStats {
    let mut s = [[0usize; 3]; ORDER];
    for n in 0..ORDER {
        let (h, r) = (&hyp[n], &reference[n]);
        let hyp_count: usize = h.values().sum();
        let matches: usize = h
            .iter()
            .filter_map(|(g, c)| r.get(g).map(|rc| (*c).min(*rc)))
            .sum();
        // No hypothesis n-grams count where the reference has none of this order.
        s[n] = [
            if r.is_empty() { 0 } else { hyp_count },
            r.values().sum(),
            matches,
        ];
    }
    s
}

/// The F-score of (summed) statistics, averaged over the effective orders.
pub fn score(s: &ChrfStats) -> f64 {
    let factor = BETA * BETA;
    let (mut prec, mut rec, mut orders) = (0.0, 0.0, 0usize);
    for [n_hyp, n_ref, n_match] in s {
        if *n_hyp > 0 && *n_ref > 0 {
            prec += *n_match as f64 / *n_hyp as f64;
            rec += *n_match as f64 / *n_ref as f64;
            orders += 1;
        }
    }
    if orders == 0 {
        return 0.0;
    }
    let (p, r) = (prec / orders as f64, rec / orders as f64);
    if p + r == 0.0 {
        return 0.0;
    }
    100.0 * (1.0 + factor) * p * r / (factor * p + r)
}

/// The statistics of `hypothesis` against the best of `references` (by F-score).
pub fn stats(hypothesis: &str, references: &[&str]) -> ChrfStats {
    let hyp = counts(hypothesis);
    let mut best: Option<(f64, ChrfStats)> = None;
    for r in references {
        let s = match_stats(&hyp, &counts(r));
        let f = score(&s);
        if best.is_none_or(|(bf, _)| f > bf) {
            best = Some((f, s));
        }
    }
    best.map_or([[0; 3]; ORDER], |(_, s)| s)
}

/// Sentence chrF (`sacrebleu.sentence_chrf`).
pub fn sentence_chrf(hypothesis: &str, references: &[&str]) -> f64 {
    score(&stats(hypothesis, references))
}

/// Corpus chrF (`sacrebleu.corpus_chrf`): statistics summed over segments, then scored.
pub fn corpus_chrf<'a>(segments: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>) -> f64 {
    let mut total = [[0usize; 3]; ORDER];
    for (h, refs) in segments {
        let s = stats(h, &refs);
        for n in 0..ORDER {
            for k in 0..3 {
                total[n][k] += s[n][k];
            }
        }
    }
    score(&total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_as_sacrebleu_gives_them() {
        // Values printed by sacreBLEU 2.5.1.
        assert_eq!(sentence_chrf("", &[""]), 0.0);
        assert!((sentence_chrf("abc", &["abd"]) - 38.888888888888886).abs() < 1e-9);
    }
}
