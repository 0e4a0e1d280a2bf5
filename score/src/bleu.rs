//! BLEU as sacreBLEU 2.5 computes it with its defaults: the `13a` tokenizer (mteval-v13a, as
//! WMT uses it), case kept, n-grams up to 4, clipped counts against every reference, the
//! closest reference length (the shorter on a tie) for the brevity penalty, and the `exp`
//! smoothing (mteval's: the k-th order without a match counts as 1 ÷ (2^k × total)). Sentence
//! BLEU uses the effective order (orders the hypothesis has no n-gram of are left out), corpus
//! BLEU does not. Scores are in [0, 100].

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;

use crate::pytext;

const MAX_ORDER: usize = 4;

fn rules() -> &'static [(Regex, &'static str); 4] {
    static RULES: OnceLock<[(Regex, &'static str); 4]> = OnceLock::new();
    RULES.get_or_init(|| {
        let re = |p: &str| Regex::new(p).expect("a valid pattern");
        [
            // Punctuation and symbols become tokens.
            (re(r"([\{-\~\[-` -\&\(-\+:-@/])"), " ${1} "),
            // Period and comma, unless preceded by a digit.
            (re(r"([^0-9])([\.,])"), "${1} ${2} "),
            // Period and comma, unless followed by a digit.
            (re(r"([\.,])([^0-9])"), " ${1} ${2}"),
            // A dash preceded by a digit.
            (re(r"([0-9])(-)"), "${1} ${2} "),
        ]
    })
}

/// sacreBLEU's `13a` tokenization of one segment (after its trailing whitespace is removed).
pub fn tokenize_13a(segment: &str) -> String {
    let mut line = pytext::rstrip(segment)
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let mut line = format!(" {line} ");
    for (re, with) in rules() {
        line = re.replace_all(&line, *with).into_owned();
    }
    pytext::split(&line).collect::<Vec<_>>().join(" ")
}

/// The sufficient statistics of one segment (or, summed, of a corpus).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BleuStats {
    pub hyp_len: usize,
    pub ref_len: usize,
    pub correct: [usize; MAX_ORDER],
    pub total: [usize; MAX_ORDER],
}

impl std::ops::AddAssign for BleuStats {
    fn add_assign(&mut self, o: BleuStats) {
        self.hyp_len += o.hyp_len;
        self.ref_len += o.ref_len;
        for n in 0..MAX_ORDER {
            self.correct[n] += o.correct[n];
            self.total[n] += o.total[n];
        }
    }
}

fn ngrams(tokens: &[&str]) -> HashMap<Vec<String>, usize> {
    let mut counts = HashMap::new();
    for n in 1..=MAX_ORDER {
        for w in tokens.windows(n) {
            *counts
                .entry(w.iter().map(|t| t.to_string()).collect())
                .or_insert(0) += 1;
        }
    }
    counts
}

/// The statistics of `hypothesis` against `references` (one or more).
pub fn stats(hypothesis: &str, references: &[&str]) -> BleuStats {
    let mut ref_counts: HashMap<Vec<String>, usize> = HashMap::new();
    let mut ref_lens = Vec::with_capacity(references.len());
    for r in references {
        let tokenized = tokenize_13a(r);
        let tokens: Vec<&str> = tokenized.split(' ').filter(|t| !t.is_empty()).collect();
        ref_lens.push(tokens.len());
        for (gram, c) in ngrams(&tokens) {
            let e = ref_counts.entry(gram).or_insert(0);
            *e = (*e).max(c);
        }
    }
    let tokenized = tokenize_13a(hypothesis);
    let tokens: Vec<&str> = tokenized.split(' ').filter(|t| !t.is_empty()).collect();
    let mut s = BleuStats {
        hyp_len: tokens.len(),
        ..BleuStats::default()
    };
    // The closest reference length; the shorter one on a tie.
    let mut best: Option<(usize, usize)> = None;
    for &len in &ref_lens {
        let diff = s.hyp_len.abs_diff(len);
        if best.is_none_or(|(d, l)| diff < d || (diff == d && len < l)) {
            best = Some((diff, len));
        }
    }
    s.ref_len = best.map_or(0, |(_, l)| l);
    for (gram, c) in ngrams(&tokens) {
        let n = gram.len() - 1;
        s.total[n] += c;
        if let Some(r) = ref_counts.get(&gram) {
            s.correct[n] += c.min(*r);
        }
    }
    s
}

/// The score of (summed) statistics, with the `exp` smoothing.
pub fn score(s: &BleuStats, effective_order: bool) -> f64 {
    let bp = if s.hyp_len < s.ref_len {
        if s.hyp_len > 0 {
            (1.0 - s.ref_len as f64 / s.hyp_len as f64).exp()
        } else {
            0.0
        }
    } else {
        1.0
    };
    if s.correct.iter().all(|c| *c == 0) {
        return 0.0;
    }
    let mut precisions = [0.0f64; MAX_ORDER];
    let mut smooth = 1.0f64;
    let mut order = MAX_ORDER;
    for (n, (correct, total)) in s.correct.iter().zip(&s.total).enumerate() {
        if *total == 0 {
            break;
        }
        if effective_order {
            order = n + 1;
        }
        precisions[n] = if *correct == 0 {
            smooth *= 2.0;
            100.0 / (smooth * *total as f64)
        } else {
            100.0 * *correct as f64 / *total as f64
        };
    }
    // log(0) is taken as −9,999,999,999, as sacreBLEU does.
    let log = |p: f64| if p == 0.0 { -9_999_999_999.0 } else { p.ln() };
    bp * (precisions[..order].iter().map(|p| log(*p)).sum::<f64>() / order as f64).exp()
}

/// Sentence BLEU (`sacrebleu.sentence_bleu`).
pub fn sentence_bleu(hypothesis: &str, references: &[&str]) -> f64 {
    score(&stats(hypothesis, references), true)
}

/// Corpus BLEU (`sacrebleu.corpus_bleu`): statistics summed over segments, then scored.
pub fn corpus_bleu<'a>(segments: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>) -> f64 {
    let mut total = BleuStats::default();
    for (h, refs) in segments {
        total += stats(h, &refs);
    }
    score(&total, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_as_mteval_13a() {
        assert_eq!(
            tokenize_13a("Hello, world! It's 3.5-4.0 (approx.)&amp;more"),
            "Hello , world ! It's 3.5 - 4.0 ( approx . ) & more"
        );
        assert_eq!(tokenize_13a("1,000 people."), "1,000 people .");
    }

    #[test]
    fn scores_as_sacrebleu_gives_them() {
        assert_eq!(sentence_bleu("", &[""]), 0.0);
        assert_eq!(sentence_bleu("a", &[""]), 0.0);
        let same = sentence_bleu("the cat sat on the mat", &["the cat sat on the mat"]);
        assert!((same - 100.0).abs() < 1e-9);
    }
}
