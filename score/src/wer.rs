//! Word and character error rates, as jiwer 4 computes them by default. For words, runs of two
//! or more whitespace characters become one space, the ends are stripped, and words are split
//! on single spaces (so a lone tab does not separate words). For characters, only the ends are
//! stripped, and every character counts, spaces included. The rate is (substitutions + deletions + insertions) ÷ the reference's length,
//! from a minimal (Levenshtein) alignment. With an empty reference, jiwer gives the number of
//! insertions itself, and so does this.

use crate::pytext;

/// jiwer's `RemoveMultipleSpaces` then `Strip`.
fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    for c in s.chars() {
        if pytext::is_space(c) {
            run.push(c);
            continue;
        }
        flush(&mut out, &mut run);
        out.push(c);
    }
    flush(&mut out, &mut run);
    pytext::strip(&out).to_string()
}

/// A run of one whitespace character is kept as it is; a longer run becomes one space.
fn flush(out: &mut String, run: &mut String) {
    if run.chars().count() >= 2 {
        out.push(' ');
    } else {
        out.push_str(run);
    }
    run.clear();
}

/// The fewest substitutions, deletions and insertions that turn `a` into `b`.
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(x != y);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn rate<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> f64 {
    let edits = edit_distance(reference, hypothesis);
    if reference.is_empty() {
        // Every hypothesis token is an insertion.
        hypothesis.len() as f64
    } else {
        edits as f64 / reference.len() as f64
    }
}

/// Word error rate of `hypothesis` against `reference`.
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (normalise(reference), normalise(hypothesis));
    let words = |s: &str| -> Vec<String> {
        s.split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    rate(&words(&r), &words(&h))
}

/// Character error rate of `hypothesis` against `reference` (spaces count as characters).
pub fn cer(reference: &str, hypothesis: &str) -> f64 {
    let chars = |s: &str| -> Vec<char> { pytext::strip(s).chars().collect() };
    rate(&chars(reference), &chars(hypothesis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_as_jiwer_gives_them() {
        // Values printed by jiwer 4.0.0.
        assert_eq!(wer("", ""), 0.0);
        assert_eq!(wer("", "a b"), 2.0);
        assert_eq!(cer("", "a b"), 3.0);
        assert_eq!(wer("a b", ""), 1.0);
        assert_eq!(wer("  a  b ", "a\tb"), 1.0);
        assert_eq!(cer("  a  b ", "a\tb"), 0.5);
        assert_eq!(wer("a\tb", "a b"), 2.0);
        assert!((cer("a\tb", "a b") - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(wer("the cat sat", "the cat sat"), 0.0);
        assert!((wer("the cat sat down", "the bat sat") - 0.5).abs() < 1e-12);
    }
}
