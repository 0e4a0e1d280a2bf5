//! Answer scores that need no judge model: RAG coverage and grounding (DESIGN.md, "Coverage"),
//! and reference-based text metrics that match their reference implementations: [`bleu`] and
//! [`chrf`] (sacreBLEU), [`wer`] (jiwer's WER and CER), [`rouge`] (rouge-score), and [`jaccard`]
//! over content terms.
//! Pure functions: no IO, no state but a per-thread memo of word stems.
//!
//! Text is reduced to *content terms*: lower case, punctuation and stop words removed, words
//! stemmed (Snowball English, so "margins" = "margin"), numbers normalised (`1,200` = `1200`,
//! `12%` = `12 percent`, `4.50` = `4.5`, `$4.2M` = `4.2 million`).

pub mod bleu;
pub mod chrf;
pub mod conversation;
pub mod creativity;
pub mod extract;
pub mod grade;
pub mod ifeval;
pub mod judge;
pub mod porter;
pub mod pytext;
pub mod rouge;
pub mod structured;
pub mod toolcall;
pub mod wer;

use std::collections::HashSet;
use std::sync::OnceLock;

use rust_stemmers::{Algorithm, Stemmer};

/// Share of a key fact's terms that must occur in the answer for the fact to count as found.
/// Every number in the fact must occur as well: a fact with the wrong figure is not covered.
pub const FACT_THRESHOLD: f64 = 0.7;

/// The content terms of `text`, in order, duplicates kept.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = text.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let (number, next) = read_number(&chars, i);
            out.push(Term::number(&number));
            i = next;
            // A unit written straight after the number: 12%, 4.2m, 3bn, 15k.
            let (unit, after) = read_word(&chars, i);
            match unit.as_str() {
                "" => {}
                "m" | "mn" => out.push("million".into()),
                "bn" | "b" => out.push("billion".into()),
                "k" => out.push("thousand".into()),
                _ => {}
            }
            if matches!(unit.as_str(), "m" | "mn" | "bn" | "b" | "k") {
                i = after;
            }
            if chars.get(i) == Some(&'%') {
                out.push("percent".into());
                i += 1;
            }
        } else if c.is_alphabetic() {
            let (word, next) = read_word(&chars, i);
            i = next;
            if let Some(term) = Term::word(&word) {
                out.push(term);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The set of content terms of `text`.
pub fn term_set(text: &str) -> HashSet<String> {
    terms(text).into_iter().collect()
}

struct Term;

impl Term {
    fn number(raw: &str) -> String {
        let plain: String = raw.chars().filter(|c| *c != ',').collect();
        match plain.parse::<f64>() {
            Ok(v) => {
                let mut s = format!("{v}");
                if s.contains('.') {
                    s = s.trim_end_matches('0').trim_end_matches('.').to_string();
                }
                s
            }
            Err(_) => plain,
        }
    }

    /// The term of a lower-case word: its stem, or `None` for a stop word. Remembered per
    /// thread: a run scores thousands of answers drawn from one vocabulary, and a stem costs
    /// several times the lookup.
    fn word(word: &str) -> Option<String> {
        let word = word.trim_matches('\'');
        if word.is_empty() {
            return None;
        }
        // A long "word" (a hostile answer can be one) is not kept: the memo's size stays bound.
        if word.len() > WORD_KEPT {
            return Term::reduce(word);
        }
        STEMS.with_borrow_mut(|stems| {
            if let Some(term) = stems.get(word) {
                return term.as_deref().map(str::to_owned);
            }
            let term = Term::reduce(word);
            if stems.len() >= STEMS_KEPT {
                stems.clear();
            }
            stems.insert(word.into(), term.as_deref().map(Box::from));
            term
        })
    }

    fn reduce(word: &str) -> Option<String> {
        if is_stop_word(word) {
            return None;
        }
        if matches!(word, "pct" | "per-cent") {
            return Some("percent".into());
        }
        Some(stemmer().stem(word).into_owned())
    }
}

/// Words remembered per thread with their terms; past this many the memo starts again. With
/// words of at most [`WORD_KEPT`] bytes, a thread holds at most about two megabytes of it.
const STEMS_KEPT: usize = 16 * 1024;

/// The longest word remembered, in bytes (English words are rarely half as long).
const WORD_KEPT: usize = 32;

thread_local! {
    static STEMS: std::cell::RefCell<std::collections::HashMap<Box<str>, Option<Box<str>>>> =
        std::cell::RefCell::default();
}

/// Reads digits with `,` thousands separators and one decimal point from `start`.
fn read_number(chars: &[char], start: usize) -> (String, usize) {
    let mut s = String::new();
    let mut i = start;
    let mut seen_dot = false;
    while i < chars.len() {
        let c = chars[i];
        let next_is_digit = chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if c.is_ascii_digit() {
            s.push(c);
        } else if c == ',' && next_is_digit && !seen_dot {
            // thousands separator: 1,200
        } else if c == '.' && next_is_digit && !seen_dot {
            seen_dot = true;
            s.push(c);
        } else {
            break;
        }
        i += 1;
    }
    (s, i)
}

/// Reads letters (and inner apostrophes or hyphens) from `start`.
fn read_word(chars: &[char], start: usize) -> (String, usize) {
    let mut s = String::new();
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        let inner = (c == '\'' || c == '-')
            && !s.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
        if c.is_alphabetic() || inner {
            if c != '\'' {
                s.push(c);
            }
        } else {
            break;
        }
        i += 1;
    }
    (s, i)
}

fn stemmer() -> &'static Stemmer {
    static STEMMER: OnceLock<Stemmer> = OnceLock::new();
    STEMMER.get_or_init(|| Stemmer::create(Algorithm::English))
}

fn is_stop_word(word: &str) -> bool {
    static STOP: OnceLock<HashSet<&'static str>> = OnceLock::new();
    STOP.get_or_init(|| STOP_WORDS.iter().copied().collect())
        .contains(word)
}

/// A compact English stop-word list (function words only; no domain words).
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "me",
    "more",
    "most",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "s",
    "t",
    "don",
    "doesn",
    "isn",
    "wasn",
    "according",
    "based",
    "context",
    "provided",
    "answer",
];

/// Whether `fact` counts as found in an answer with terms `answer`: at least
/// [`FACT_THRESHOLD`] of the fact's terms occur, and every number of the fact occurs.
/// `None` when the fact has no content terms (it is then not counted at all).
pub fn fact_found(fact: &str, answer: &HashSet<String>) -> Option<bool> {
    let fact_terms = term_set(fact);
    (!fact_terms.is_empty()).then(|| fact_terms_found(&fact_terms, answer))
}

/// [`fact_found`] for a fact already reduced to its (non-empty) terms.
fn fact_terms_found(fact_terms: &HashSet<String>, answer: &HashSet<String>) -> bool {
    let present = fact_terms.iter().filter(|t| answer.contains(*t)).count();
    let numbers_ok = fact_terms
        .iter()
        .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()))
        .all(|t| answer.contains(t));
    numbers_ok && present as f64 / fact_terms.len() as f64 >= FACT_THRESHOLD
}

/// `coverage_score`: the share of key facts found in the answer. Without key facts, the share of
/// the context's distinct terms that the answer uses, out of at most as many as the answer has
/// (a short answer is not expected to repeat a long context). `None` when there is nothing to
/// cover (no facts and no context) or the answer is empty.
pub fn coverage(answer: &str, context: &[String], key_facts: &[String]) -> Option<f64> {
    Sources::new(context, key_facts, "").coverage(&term_set(answer))
}

/// `grounding_score`: the share of the answer's distinct terms that occur in the context or the
/// question. `None` without context or with an empty answer.
pub fn grounding(answer: &str, context: &[String], question: &str) -> Option<f64> {
    if context.is_empty() {
        return None;
    }
    Sources::new(context, &[], question).grounding(&term_set(answer))
}

/// A RAG question's sources reduced to content terms once, so that scoring each of its answers
/// reduces only the answer: [`coverage`] and [`grounding`] in two steps, for a run that scores
/// many answers to the same question.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sources {
    /// Whether the question has context passages and key facts at all (their terms aside).
    has_context: bool,
    has_facts: bool,
    /// The distinct terms of the context.
    context: HashSet<String>,
    /// The context's terms and the question's: what grounds an answer's terms.
    grounds: HashSet<String>,
    /// Each key fact's terms, facts without content terms left out (they are not counted).
    facts: Vec<HashSet<String>>,
}

impl Sources {
    pub fn new(context: &[String], key_facts: &[String], question: &str) -> Sources {
        let context_terms = if context.is_empty() {
            HashSet::new()
        } else {
            term_set(&context.join("\n"))
        };
        let mut grounds = context_terms.clone();
        if !context.is_empty() {
            // Without context there is no grounding to compute.
            grounds.extend(terms(question));
        }
        Sources {
            has_context: !context.is_empty(),
            has_facts: !key_facts.is_empty(),
            context: context_terms,
            grounds,
            facts: key_facts
                .iter()
                .map(|f| term_set(f))
                .filter(|t| !t.is_empty())
                .collect(),
        }
    }

    /// (`coverage_score`, `grounding_score`) of `answer`, its terms taken once.
    pub fn score(&self, answer: &str) -> (Option<f64>, Option<f64>) {
        if !self.has_context && !self.has_facts {
            return (None, None);
        }
        let terms = term_set(answer);
        (self.coverage(&terms), self.grounding(&terms))
    }

    /// [`coverage`] of an answer with terms `answer`.
    pub fn coverage(&self, answer: &HashSet<String>) -> Option<f64> {
        if answer.is_empty() {
            return (self.has_facts || self.has_context).then_some(0.0);
        }
        if self.has_facts {
            if self.facts.is_empty() {
                return None;
            }
            let found = self
                .facts
                .iter()
                .filter(|f| fact_terms_found(f, answer))
                .count();
            return Some(found as f64 / self.facts.len() as f64);
        }
        if self.context.is_empty() {
            return None;
        }
        let used = self.context.intersection(answer).count();
        let cap = self.context.len().min(answer.len());
        Some(used as f64 / cap as f64)
    }

    /// [`grounding`] of an answer with terms `answer`.
    pub fn grounding(&self, answer: &HashSet<String>) -> Option<f64> {
        if !self.has_context || answer.is_empty() {
            return None;
        }
        let grounded = answer.iter().filter(|t| self.grounds.contains(*t)).count();
        Some(grounded as f64 / answer.len() as f64)
    }
}

/// Jaccard similarity of two texts' content-term sets (as [`term_set`] makes them): shared
/// terms ÷ terms in either. 1 when both have no terms.
pub fn jaccard(a: &str, b: &str) -> f64 {
    let (a, b) = (term_set(a), term_set(b));
    let union = a.union(&b).count();
    if union == 0 {
        return 1.0;
    }
    a.intersection(&b).count() as f64 / union as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A word's term is the same whether the thread's memo knows it or not, stop words
    /// included, and after the memo filled up and started again.
    #[test]
    fn remembered_words_reduce_as_the_first_time() {
        let text = "The margins rose, and the 'margins' of the stores did too: Margins!";
        let want = ["margin", "rose", "margin", "store", "margin"];
        assert_eq!(terms(text), want, "cold");
        assert_eq!(terms(text), want, "remembered");
        let letters = |mut i: usize| {
            let mut w = String::new();
            loop {
                w.push(char::from(b'a' + (i % 26) as u8));
                i /= 26;
                if i == 0 {
                    return w;
                }
            }
        };
        for i in 0..STEMS_KEPT + 10 {
            Term::word(&format!("q{}ing", letters(i)));
        }
        assert_eq!(terms(text), want, "after the memo started again");
        let long = format!("{}ing", "walk".repeat(20));
        assert_eq!(
            terms(&long),
            [stemmer().stem(&long).into_owned()],
            "a word too long to keep"
        );
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn numbers_are_normalised() {
        assert_eq!(terms("1,200 units"), s(&["1200", "unit"]));
        assert_eq!(terms("grew 12%"), s(&["grew", "12", "percent"]));
        assert_eq!(terms("12 percent"), s(&["12", "percent"]));
        assert_eq!(terms("$4.50 and 4.5"), s(&["4.5", "4.5"]));
        assert_eq!(terms("$4.2M"), s(&["4.2", "million"]));
        assert_eq!(terms("3.0"), s(&["3"]));
        // A full stop after a number is punctuation, not a decimal point.
        assert_eq!(terms("was 18."), s(&["18"]));
    }

    #[test]
    fn stop_words_and_punctuation_go_stems_stay() {
        assert_eq!(
            terms("The margins of the Stores were rising!"),
            s(&["margin", "store", "rise"])
        );
    }

    #[test]
    fn fact_needs_its_number() {
        let answer = term_set("Electronics revenue was $4.1 million in Q3.");
        assert_eq!(
            fact_found("Electronics revenue was $4.2 million", &answer),
            Some(false)
        );
        let answer = term_set("In Q3, electronics brought in 4.2 million dollars of revenue.");
        assert_eq!(
            fact_found("Electronics revenue was $4.2 million", &answer),
            Some(true)
        );
    }

    #[test]
    fn partial_fact_below_threshold_is_not_found() {
        // fact terms: apparel, gross, margin, 38, percent -> answer has 38 percent, margin (3/5)
        let answer = term_set("The margin was 38 percent.");
        assert_eq!(
            fact_found("Apparel gross margin was 38%", &answer),
            Some(false)
        );
        // 4/5 = 0.8 >= 0.7
        let answer = term_set("Apparel margin reached 38%.");
        assert_eq!(
            fact_found("Apparel gross margin was 38%", &answer),
            Some(true)
        );
    }

    #[test]
    fn coverage_is_share_of_facts_found() {
        let facts = s(&[
            "Electronics revenue was $4.2 million",
            "Apparel gross margin was 38%",
            "Churn fell to 3.1 percent",
        ]);
        let answer = "Electronics revenue was 4,200,000? No: electronics revenue was $4.2M, \
                      and churn fell to 3.1%.";
        let cov = coverage(answer, &[], &facts).unwrap();
        assert!((cov - 2.0 / 3.0).abs() < 1e-9, "{cov}");
        assert_eq!(coverage("", &[], &facts), Some(0.0));
        assert_eq!(coverage("anything", &[], &[]), None);
    }

    #[test]
    fn coverage_without_facts_uses_context_capped_by_answer() {
        let ctx = s(&["Revenue grew in electronics, apparel, grocery and toys."]);
        // context terms: revenu, grew, electron, apparel, groceri, toy (6)
        // answer terms: electron, revenu, grew (3) -> all 3 used, cap 3 -> 1.0
        assert_eq!(coverage("Electronics revenue grew.", &ctx, &[]), Some(1.0));
        // answer terms: electron, weather (2) -> 1 used / cap 2
        assert_eq!(coverage("Electronics weather", &ctx, &[]), Some(0.5));
    }

    #[test]
    fn grounding_counts_answer_terms_found_in_sources() {
        let ctx = s(&["Loan defaults rose to 2.4% in 2025."]);
        let g = grounding(
            "Defaults rose to 2.4% because of unicorns.",
            &ctx,
            "What happened to loan defaults?",
        )
        .unwrap();
        // answer terms: default, rose, 2.4, percent, unicorn -> 4 of 5 grounded
        assert!((g - 0.8).abs() < 1e-9, "{g}");
        assert_eq!(grounding("x", &[], "q"), None);
    }

    #[test]
    fn sources_made_once_score_as_the_functions_do() {
        let ctx = s(&["Loan defaults rose to 2.4% in 2025.", "Margins were 18%."]);
        let facts = s(&["defaults rose to 2.4%", "margins 18%", "the"]);
        let q = "What happened to loan defaults?";
        let answers = [
            "Defaults rose to 2.4% because of unicorns; margins were 18%.",
            "Margins were 19%.",
            "",
            "!!!",
            "Loan loan loan",
        ];
        for (context, key_facts) in [
            (&ctx[..], &facts[..]),
            (&ctx[..], &[][..]),
            (&[][..], &facts[..]),
            (&[][..], &[][..]),
            (&ctx[..], &facts[2..]),
        ] {
            let sources = Sources::new(context, key_facts, q);
            for a in answers {
                assert_eq!(
                    sources.score(a),
                    (coverage(a, context, key_facts), grounding(a, context, q)),
                    "answer {a:?}, context {context:?}, facts {key_facts:?}"
                );
            }
        }
        let both = Sources::new(&ctx, &facts, q).score(answers[0]);
        assert_eq!(both.0, Some(1.0));
        assert!((both.1.unwrap() - 6.0 / 7.0).abs() < 1e-9, "{both:?}");
    }
}
