//! Final answers of reasoning and knowledge questions, and whether they are right.
//!
//! The final answer is, in this order: the last `\boxed{…}`; else the last line that starts with
//! `Answer:` or `Final answer:` (any case, Markdown emphasis allowed); else the whole answer.
//! It is then compared with the expected answer:
//!
//! - a **number**: the last number in the final answer (`1,200`, `-3.5`, `12%` = 12) within the
//!   tolerance (absolute; default 1e-6 × max(1, |expected|));
//! - a **choice** (`A`–`E`): the first standalone letter of a marked final answer, else the last
//!   `(B)`, `B)` or `option B` in the text;
//! - **text**: the final answer equals the expected text or an alias once lower-cased, stripped
//!   of punctuation and of a leading "the", "a" or "an"; when the answer marks no final answer,
//!   an alias found as whole words anywhere in it counts.

use std::sync::OnceLock;

use regex::Regex;

/// What a question expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    Number { value: f64, tolerance: f64 },
    Choice(char),
    Text(Vec<String>),
}

impl Expected {
    /// The expected answer as a suite writes it: a number when `answer` is one, a choice when
    /// it is one letter A–E, else text with its `aliases`.
    pub fn infer(answer: &str, aliases: &[String], tolerance: Option<f64>) -> Expected {
        let a = answer.trim();
        if let Some(value) = parse_number(a) {
            return Expected::Number {
                value,
                tolerance: tolerance.unwrap_or(1e-6 * value.abs().max(1.0)),
            };
        }
        let mut chars = a.chars();
        if let (Some(c @ 'A'..='E'), None) = (chars.next(), chars.next()) {
            return Expected::Choice(c);
        }
        let mut texts = vec![a.to_string()];
        texts.extend(aliases.iter().cloned());
        Expected::Text(texts)
    }
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("a valid pattern"))
}

/// The marked final answer, when the text marks one.
pub fn final_answer(text: &str) -> Option<String> {
    static LINE: OnceLock<Regex> = OnceLock::new();
    if let Some(i) = text.rfind("\\boxed{") {
        let rest = &text[i + "\\boxed{".len()..];
        let mut depth = 1;
        for (j, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(rest[..j].trim().to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let line = re(
        &LINE,
        r"(?im)^[\s>*_#-]*(?:final\s+answer|answer)\s*[*_]*\s*[:：]\s*[*_]*\s*(.+?)\s*$",
    );
    line.captures_iter(text)
        .last()
        .map(|c| c[1].trim_end_matches(['*', '_']).trim().to_string())
}

/// `1,200` → 1200, `-3.5`, `12%` → 12, `$4.50` → 4.5; `None` for anything else.
fn parse_number(s: &str) -> Option<f64> {
    let t = s
        .trim()
        .trim_start_matches(['$', '€', '£'])
        .trim_end_matches(['%', '.']);
    let t = t.replace(',', "");
    if t.is_empty() || !t.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The last number written in `text`.
pub fn last_number(text: &str) -> Option<f64> {
    static NUMBER: OnceLock<Regex> = OnceLock::new();
    let n = re(&NUMBER, r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?");
    n.find_iter(text)
        .last()
        .and_then(|m| parse_number(m.as_str()))
}

fn normalise(s: &str) -> String {
    let lower = s.to_lowercase();
    let cleaned: String = lower
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let words = match words.first() {
        Some(&("the" | "a" | "an")) => &words[1..],
        _ => &words[..],
    };
    words.join(" ")
}

/// The choice letter of `text`.
pub fn choice(text: &str) -> Option<char> {
    static LETTER: OnceLock<Regex> = OnceLock::new();
    static MARKED: OnceLock<Regex> = OnceLock::new();
    if let Some(f) = final_answer(text) {
        let letter = re(&LETTER, r"\b([A-E])\b");
        if let Some(c) = letter.captures(&f) {
            return c[1].chars().next();
        }
    }
    let marked = re(&MARKED, r"\(([A-E])\)|\b([A-E])\)|(?i:option)\s+([A-E])\b");
    marked.captures_iter(text).last().and_then(|c| {
        c.get(1)
            .or_else(|| c.get(2))
            .or_else(|| c.get(3))
            .and_then(|m| m.as_str().chars().next())
    })
}

/// Whether `answer` gives the expected answer.
pub fn is_correct(answer: &str, expected: &Expected) -> bool {
    let marked = final_answer(answer);
    match expected {
        Expected::Number { value, tolerance } => marked
            .as_deref()
            .and_then(last_number)
            .or_else(|| last_number(answer))
            .is_some_and(|got| (got - value).abs() <= *tolerance),
        Expected::Choice(c) => choice(answer) == Some(*c),
        Expected::Text(texts) => {
            let wanted: Vec<String> = texts.iter().map(|t| normalise(t)).collect();
            match marked {
                Some(m) => wanted.contains(&normalise(&m)),
                None => {
                    let padded = format!(" {} ", normalise(answer));
                    wanted
                        .iter()
                        .any(|w| !w.is_empty() && padded.contains(&format!(" {w} ")))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(v: f64) -> Expected {
        Expected::infer(&v.to_string(), &[], None)
    }

    #[test]
    fn the_marked_answer_wins_over_numbers_on_the_way() {
        let a = "First 12 * 3 = 36, then 36 + 6 = 42.\n\n**Final answer:** 42";
        assert_eq!(final_answer(a).as_deref(), Some("42"));
        assert!(is_correct(a, &number(42.0)));
        assert!(!is_correct(a, &number(36.0)));
        let boxed = "We get $x = \\boxed{\\frac{1}{2}}$ and then 7 more steps: 99";
        assert_eq!(final_answer(boxed).as_deref(), Some("\\frac{1}{2}"));
        assert!(is_correct("The result is \\boxed{1,200}.", &number(1200.0)));
    }

    #[test]
    fn numbers_are_read_as_written() {
        assert!(is_correct("It costs $4.50.", &number(4.5)));
        assert!(is_correct("About 12% of them.", &number(12.0)));
        assert!(is_correct("The change is -3.", &number(-3.0)));
        assert!(!is_correct("No figure here.", &number(3.0)));
        let loose = Expected::infer("3.14", &[], Some(0.01));
        assert!(is_correct("pi is roughly 3.1416", &loose));
        assert!(!is_correct("pi is roughly 3.2", &loose));
    }

    #[test]
    fn choices_and_text_answers() {
        assert_eq!(Expected::infer("B", &[], None), Expected::Choice('B'));
        assert!(is_correct(
            "Answer: (B) because ...",
            &Expected::Choice('B')
        ));
        assert!(is_correct("I would pick option C.", &Expected::Choice('C')));
        assert!(!is_correct(
            "A is wrong, and so is (D)",
            &Expected::Choice('A')
        ));
        let paris = Expected::infer("Paris", &["City of Light".into()], None);
        assert!(is_correct("Answer: the city of light!", &paris));
        assert!(is_correct("It is Paris, of course.", &paris));
        assert!(!is_correct("Answer: Lyon (not Paris)", &paris));
        assert!(!is_correct("Comparison shows...", &paris));
    }
}
