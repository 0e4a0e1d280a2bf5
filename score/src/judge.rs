//! The judge's side of grading, pure: the prompt a judge model gets for one answer, the grade
//! read from its reply, and the cache key that lets one answer be judged once.
//!
//! The judge grades on a 1–5 scale against the question's rubric, at temperature 0. Its reply
//! must hold `Grade: N` (the system message gives that form; the user message never quotes it,
//! so a model that echoes its prompt gives no grade by accident); the last one counts. Failing
//! that, a lone digit 1–5 on the reply's last line is taken.
//! Anything else is no grade (the judge's record says so; the answer gets no `judge` score).

use sha2::{Digest, Sha256};

/// The judge prompt's version: part of the cache key, so a new prompt judges again.
pub const PROMPT_VERSION: &str = "1";

pub const SYSTEM: &str = "You are a strict, consistent grader. You grade one answer to one \
question against a rubric, on a scale of 1 (fails the rubric) to 5 (fully meets it). Reply \
with one short sentence of reasons, then a last line exactly of the form: Grade: N";

/// The user message for judging `answer` to `question` against `rubric`.
pub fn prompt(question: &str, rubric: &str, answer: &str) -> String {
    format!(
        "Question:\n{question}\n\nRubric:\n{rubric}\n\nAnswer to grade:\n<answer>\n{answer}\n</answer>\n\n\
         Grade the answer from 1 to 5 against the rubric, and end with the grade line."
    )
}

/// The grade in a judge's reply, 1–5.
pub fn parse_grade(reply: &str) -> Option<u8> {
    let lower = reply.to_lowercase();
    if let Some(i) = lower.rfind("grade:") {
        let rest = lower[i + "grade:".len()..].trim_start();
        let rest = rest.trim_start_matches(['*', '[', '(']);
        return rest
            .chars()
            .next()
            .and_then(|c| c.to_digit(10))
            .filter(|d| (1..=5).contains(d))
            .map(|d| d as u8);
    }
    let last = reply.lines().rev().find(|l| !l.trim().is_empty())?;
    let t = last
        .trim()
        .trim_end_matches(['.', '*'])
        .trim_start_matches('*');
    match t.parse::<u8>() {
        Ok(d @ 1..=5) => Some(d),
        _ => None,
    }
}

/// The cache key of one judgement: the judge, the prompt version, the rubric, the question
/// and the answer, hashed.
pub fn cache_key(judge: &str, question: &str, rubric: &str, answer: &str) -> String {
    let mut h = Sha256::new();
    for part in [judge, PROMPT_VERSION, question, rubric, answer] {
        h.update(part.len().to_le_bytes());
        h.update(part.as_bytes());
    }
    format!("{:x}", h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grade_is_read_from_the_last_grade_line_or_a_lone_digit() {
        assert_eq!(parse_grade("Clear and complete.\nGrade: 5"), Some(5));
        assert_eq!(
            parse_grade("Grade: 2 at first... on reflection\nGrade: **4**"),
            Some(4)
        );
        assert_eq!(parse_grade("Mostly right.\n3"), Some(3));
        assert_eq!(parse_grade("Grade: 7"), None);
        assert_eq!(parse_grade("I cannot grade this."), None);
        assert_eq!(parse_grade("Grade: none"), None);
    }

    #[test]
    fn one_answer_has_one_key_and_any_change_makes_another() {
        let k = cache_key("judge", "q", "r", "a");
        assert_eq!(k, cache_key("judge", "q", "r", "a"));
        assert_ne!(k, cache_key("judge", "q", "r", "a "));
        assert_ne!(k, cache_key("other", "q", "r", "a"));
        // Parts are length-prefixed: moving text between them changes the key.
        assert_ne!(
            cache_key("judge", "qr", "", "a"),
            cache_key("judge", "q", "r", "a")
        );
    }
}
