//! What a simulated model says: a tokenizer, the answer text (repeating a share of the
//! prompt's context), and jittered delays.

use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Splits text into simulated tokens: a word with its leading space, long words in pieces of
/// six characters. Concatenating the tokens gives the text back.
pub fn tokenize(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    let mut word_chars = 0;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                out.push(&text[start..i]);
                start = i;
                in_word = false;
            }
        } else {
            if in_word && word_chars == 6 {
                out.push(&text[start..i]);
                start = i;
                word_chars = 0;
            }
            if !in_word {
                in_word = true;
                word_chars = 0;
            }
            word_chars += 1;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

pub(crate) const FILLER: &str = "These figures come from the provided context and describe the period it covers. \
Taken together they show where the business stands and which trends matter most for the next quarter. ";

pub(crate) const REASONING: &str = "Let me read the context carefully and find the figures the question asks about, \
then check each one against the passages before I write the answer. ";

/// The answer text: context sentences kept with probability `recall`, then filler.
pub(crate) fn answer_text(prompt: &str, recall: f64, rng: &mut ChaCha8Rng) -> String {
    let mut answer = String::new();
    for line in prompt.lines() {
        let line = line.trim();
        let line = match line.strip_prefix('[') {
            Some(rest) => rest.split_once("] ").map_or(line, |(_, s)| s),
            None => line,
        };
        if line.is_empty()
            || line.ends_with(':')
            || line.starts_with("Question:")
            || line.starts_with("Use only")
        {
            continue;
        }
        for sentence in line.split_inclusive(". ") {
            if rng.random::<f64>() < recall {
                answer.push_str(sentence.trim());
                answer.push(' ');
            }
        }
    }
    if answer.is_empty() {
        answer.push_str("The context does not contain enough information to answer that. ");
    }
    answer
}

pub(crate) fn jittered(ms: f64, jitter: f64, rng: &mut ChaCha8Rng) -> Duration {
    let factor = if jitter > 0.0 {
        1.0 + rng.random_range(-jitter..=jitter)
    } else {
        1.0
    };
    Duration::from_secs_f64((ms * factor).max(0.0) / 1000.0)
}
