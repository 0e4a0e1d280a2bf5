//! Creativity: how varied an answer is within itself (distinct-n), and how different one
//! question's answers are from each other across repetitions and temperatures (self-BLEU).
//!
//! - **distinct-n** is the number of distinct word n-grams ÷ the number of n-grams, over the
//!   answer lower-cased and tokenised as sacreBLEU's `13a` does; 0 for an answer with no n-gram.
//! - **self-BLEU** of a set of answers is the mean, over each answer, of its sentence BLEU
//!   ([`crate::bleu::sentence_bleu`]) against all the others as references, divided by 100 so
//!   it lies in [0, 1]. Lower means more diverse answers. It needs at least two answers.

use std::collections::HashSet;

use crate::bleu;

pub fn distinct_n(text: &str, n: usize) -> f64 {
    let tokenised = bleu::tokenize_13a(&text.to_lowercase());
    let tokens: Vec<&str> = tokenised.split(' ').filter(|t| !t.is_empty()).collect();
    if n == 0 || tokens.len() < n {
        return 0.0;
    }
    let grams: Vec<&[&str]> = tokens.windows(n).collect();
    let distinct: HashSet<&[&str]> = grams.iter().copied().collect();
    distinct.len() as f64 / grams.len() as f64
}

pub fn self_bleu(answers: &[&str]) -> Option<f64> {
    if answers.len() < 2 {
        return None;
    }
    let total: f64 = (0..answers.len())
        .map(|i| {
            let others: Vec<&str> = answers
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, a)| *a)
                .collect();
            bleu::sentence_bleu(answers[i], &others)
        })
        .sum();
    Some(total / answers.len() as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_n_counts_repeated_ngrams_once() {
        assert_eq!(distinct_n("the cat the cat", 1), 0.5);
        // Bigrams: "the cat", "cat the", "the cat": 2 of 3.
        assert!((distinct_n("The cat the cat", 2) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(distinct_n("a b c d", 2), 1.0);
        assert_eq!(distinct_n("", 1), 0.0);
        assert_eq!(distinct_n("one", 2), 0.0);
    }

    #[test]
    fn self_bleu_is_high_for_copies_and_low_for_different_answers() {
        let same = ["the moon rose over the quiet harbour"; 3];
        assert!((self_bleu(&same).unwrap() - 1.0).abs() < 1e-9);
        let varied = [
            "the moon rose over the quiet harbour",
            "a fox ran through frozen fields at dawn",
            "rain hammered tin roofs all night long",
        ];
        assert!(self_bleu(&varied).unwrap() < 0.1);
        assert_eq!(self_bleu(&["alone"]), None);
    }
}
