//! Grading one answer: which scorers a question uses, what each needs, and the `scores` and
//! `quality_score` of a record.
//!
//! A question names its scorers (`scorers = [...]` in a suite) or gets the defaults its fields
//! imply (see [`Spec::default_scorers`]). Each score keeps its scorer's own unit (BLEU and chrF
//! 0–100 as sacreBLEU gives them, WER and CER as error rates that can pass 1, the rest in
//! [0, 1]). `quality_score` is the mean of the scores after mapping each to [0, 1], higher
//! better: BLEU and chrF ÷ 100, WER and CER as 1 − min(rate, 1), the judge's 1–5 as
//! (grade − 1) ÷ 4, the rest as they are.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::extract::Expected;
use crate::ifeval::Constraints;
use crate::structured::Schema;
use crate::toolcall::{self, Detected};
use crate::{bleu, chrf, conversation, creativity, extract, ifeval, rouge, structured, wer};

/// The version of the scorer set: a record's scores compare with another's only when their
/// manifests give the same version. Raise it whenever a definition changes.
pub const SCORERS_VERSION: &str = "2";

/// Whether a question gives what a scorer needs.
type Has = fn(&Spec) -> bool;

/// Every scorer, by the name it has in suites and in a record's `scores`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scorer {
    AnswerCorrect,
    InstructionsFollowed,
    JsonValid,
    SchemaValid,
    FieldAccuracy,
    ToolCallValid,
    ToolCallF1,
    ToolArguments,
    Bleu,
    Chrf,
    Rouge1,
    Rouge2,
    RougeL,
    Wer,
    Cer,
    Relevance,
    Clarity,
    TaskCompletion,
    Distinct1,
    Distinct2,
    Judge,
}

impl Scorer {
    pub const ALL: [Scorer; 21] = [
        Scorer::AnswerCorrect,
        Scorer::InstructionsFollowed,
        Scorer::JsonValid,
        Scorer::SchemaValid,
        Scorer::FieldAccuracy,
        Scorer::ToolCallValid,
        Scorer::ToolCallF1,
        Scorer::ToolArguments,
        Scorer::Bleu,
        Scorer::Chrf,
        Scorer::Rouge1,
        Scorer::Rouge2,
        Scorer::RougeL,
        Scorer::Wer,
        Scorer::Cer,
        Scorer::Relevance,
        Scorer::Clarity,
        Scorer::TaskCompletion,
        Scorer::Distinct1,
        Scorer::Distinct2,
        Scorer::Judge,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scorer::AnswerCorrect => "answer_correct",
            Scorer::InstructionsFollowed => "instructions_followed",
            Scorer::JsonValid => "json_valid",
            Scorer::SchemaValid => "schema_valid",
            Scorer::FieldAccuracy => "field_accuracy",
            Scorer::ToolCallValid => "tool_call_valid",
            Scorer::ToolCallF1 => "tool_call_f1",
            Scorer::ToolArguments => "tool_arguments",
            Scorer::Bleu => "bleu",
            Scorer::Chrf => "chrf",
            Scorer::Rouge1 => "rouge1",
            Scorer::Rouge2 => "rouge2",
            Scorer::RougeL => "rougeL",
            Scorer::Wer => "wer",
            Scorer::Cer => "cer",
            Scorer::Relevance => "relevance",
            Scorer::Clarity => "clarity",
            Scorer::TaskCompletion => "task_completion",
            Scorer::Distinct1 => "distinct1",
            Scorer::Distinct2 => "distinct2",
            Scorer::Judge => "judge",
        }
    }

    pub fn parse(name: &str) -> Option<Scorer> {
        Scorer::ALL.into_iter().find(|s| s.name() == name)
    }

    /// What a question must give for this scorer, when it needs anything.
    fn needs(self) -> Option<(&'static str, Has)> {
        use Scorer::*;
        Some(match self {
            AnswerCorrect => ("`answer`", |s| s.expected.is_some()),
            InstructionsFollowed => ("`constraints`", |s| s.constraints.is_some()),
            JsonValid | SchemaValid => ("`schema`", |s| s.schema.is_some()),
            FieldAccuracy => ("`golden`", |s| s.golden.is_some()),
            ToolCallValid => ("`tools`", |s| !s.offered.is_empty()),
            ToolCallF1 | ToolArguments => ("`expected_calls`", |s| !s.expected_calls.is_empty()),
            Bleu | Chrf | Rouge1 | Rouge2 | RougeL | Wer | Cer | Relevance => {
                ("`reference`", |s| !s.references.is_empty())
            }
            TaskCompletion => ("`keywords` or `reference`", |s| {
                !s.keywords.is_empty() || !s.references.is_empty()
            }),
            Judge => ("`rubric`", |s| s.rubric.is_some()),
            Clarity | Distinct1 | Distinct2 => return None,
        })
    }

    /// The score mapped to [0, 1], higher better (see the module doc).
    pub fn normalised(self, value: f64) -> f64 {
        match self {
            Scorer::Bleu | Scorer::Chrf => value / 100.0,
            Scorer::Wer | Scorer::Cer => 1.0 - value.min(1.0),
            Scorer::Judge => (value - 1.0) / 4.0,
            _ => value,
        }
    }
}

impl fmt::Display for Scorer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything one question gives for grading its answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec {
    pub expected: Option<Expected>,
    pub constraints: Option<Constraints>,
    pub schema: Option<Schema>,
    /// The golden object of a structured question.
    pub golden: Option<Value>,
    /// Absolute tolerance for numbers in the golden object.
    pub tolerance: Option<f64>,
    /// Golden replies (conversation questions).
    pub references: Vec<String>,
    pub keywords: Vec<String>,
    /// The names of the tools offered.
    pub offered: Vec<String>,
    pub expected_calls: Vec<toolcall::Expected>,
    /// What a judge grades against (the judge's score comes from a judge call, not from here).
    pub rubric: Option<String>,
    /// The scorers to run, in order.
    pub scorers: Vec<Scorer>,
}

impl Spec {
    /// The scorers a question's fields imply when it names none.
    pub fn default_scorers(&self) -> Vec<Scorer> {
        use Scorer::*;
        let mut out = Vec::new();
        if self.expected.is_some() {
            out.push(AnswerCorrect);
        }
        if self.constraints.is_some() {
            out.push(InstructionsFollowed);
        }
        if self.schema.is_some() {
            out.extend([JsonValid, SchemaValid]);
        }
        if self.golden.is_some() {
            out.push(FieldAccuracy);
        }
        if !self.offered.is_empty() {
            out.push(ToolCallValid);
        }
        if !self.expected_calls.is_empty() {
            out.extend([ToolCallF1, ToolArguments]);
        }
        if !self.references.is_empty() {
            out.extend([Bleu, RougeL, Relevance, Clarity]);
        }
        if !self.keywords.is_empty() || !self.references.is_empty() {
            out.push(TaskCompletion);
        }
        if self.rubric.is_some() {
            out.push(Judge);
        }
        out
    }

    /// Sets the scorers: `named` when given (each checked against what it needs), else the
    /// defaults. An error names the scorer and what is missing.
    pub fn with_scorers(mut self, named: &[String]) -> Result<Spec, String> {
        if named.is_empty() {
            self.scorers = self.default_scorers();
            return Ok(self);
        }
        let mut scorers = Vec::with_capacity(named.len());
        for n in named {
            let s = Scorer::parse(n).ok_or_else(|| {
                let all: Vec<_> = Scorer::ALL.iter().map(|s| s.name()).collect();
                format!("unknown scorer '{n}' (scorers: {})", all.join(", "))
            })?;
            if let Some((what, has)) = s.needs()
                && !has(&self)
            {
                return Err(format!("scorer '{n}' needs {what}"));
            }
            if !scorers.contains(&s) {
                scorers.push(s);
            }
        }
        self.scorers = scorers;
        Ok(self)
    }

    fn has(&self, s: Scorer) -> bool {
        self.scorers.contains(&s)
    }
}

/// An answer as it came back: the text and any native tool calls (name, arguments JSON).
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub text: &'a str,
    pub native_calls: &'a [(String, String)],
}

/// What grading one answer gives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grades {
    /// Scorer name → score, in the scorer's own unit.
    pub scores: BTreeMap<String, f64>,
    /// The tool calls found (when the question offers tools).
    pub tool_calls: Detected,
    pub json_valid: Option<bool>,
    pub tool_call_valid: Option<bool>,
    pub answer_correct: Option<bool>,
    pub instructions_followed: Option<f64>,
}

impl Grades {
    /// The mean of the normalised scores; `None` when there are none.
    pub fn quality(&self) -> Option<f64> {
        quality(&self.scores)
    }
}

/// The mean of `scores` mapped to [0, 1] (unknown names are left out); `None` when empty.
pub fn quality(scores: &BTreeMap<String, f64>) -> Option<f64> {
    let mapped: Vec<f64> = scores
        .iter()
        .filter_map(|(k, v)| Scorer::parse(k).map(|s| s.normalised(*v)))
        .collect();
    (!mapped.is_empty()).then(|| mapped.iter().sum::<f64>() / mapped.len() as f64)
}

/// Grades one successful answer with every scorer of `spec` but the judge's.
pub fn grade(spec: &Spec, answer: &Answer<'_>) -> Grades {
    let text = answer.text;
    let mut g = Grades::default();
    let mut put = |s: Scorer, v: f64| {
        g.scores.insert(s.name().to_string(), v);
    };
    if !spec.offered.is_empty() || !spec.expected_calls.is_empty() {
        let offered: Vec<&str> = spec.offered.iter().map(String::as_str).collect();
        g.tool_calls = toolcall::detect(answer.native_calls, text, &offered);
    }
    if spec.schema.is_some() {
        g.json_valid = Some(serde_json::from_str::<Value>(text.trim()).is_ok());
    }
    if !spec.offered.is_empty() {
        g.tool_call_valid = Some(
            g.tool_calls
                .calls
                .iter()
                .any(|c| c.has_object_arguments() && spec.offered.contains(&c.name)),
        );
    }
    if let Some(e) = &spec.expected {
        g.answer_correct = Some(extract::is_correct(text, e));
    }
    if let Some(c) = &spec.constraints {
        g.instructions_followed = ifeval::share(text, c);
    }
    let parsed = (spec.has(Scorer::SchemaValid) || spec.has(Scorer::FieldAccuracy))
        .then(|| structured::answer_json(text))
        .flatten();
    let refs: Vec<&str> = spec.references.iter().map(String::as_str).collect();
    let first_ref = refs.first().copied().unwrap_or("");
    for &s in &spec.scorers {
        let v = match s {
            Scorer::AnswerCorrect => g.answer_correct.map(f64::from),
            Scorer::InstructionsFollowed => g.instructions_followed,
            Scorer::JsonValid => g.json_valid.map(f64::from),
            Scorer::SchemaValid => spec
                .schema
                .as_ref()
                .map(|sc| f64::from(parsed.as_ref().is_some_and(|v| sc.is_valid(v)))),
            Scorer::FieldAccuracy => spec.golden.as_ref().map(|gold| {
                parsed
                    .as_ref()
                    .map_or(0.0, |v| structured::field_accuracy(gold, v, spec.tolerance))
            }),
            Scorer::ToolCallValid => g.tool_call_valid.map(f64::from),
            Scorer::ToolCallF1 => Some(toolcall::f1(&spec.expected_calls, &g.tool_calls.calls)),
            Scorer::ToolArguments => Some(best_arguments(spec, &g.tool_calls)),
            Scorer::Bleu => Some(bleu::sentence_bleu(text, &refs)),
            Scorer::Chrf => Some(chrf::sentence_chrf(text, &refs)),
            Scorer::Rouge1 => Some(best(&refs, |r| rouge::rouge_n(r, text, 1))),
            Scorer::Rouge2 => Some(best(&refs, |r| rouge::rouge_n(r, text, 2))),
            Scorer::RougeL => Some(best(&refs, |r| rouge::rouge_l(r, text))),
            Scorer::Wer => Some(wer::wer(first_ref, text)),
            Scorer::Cer => Some(wer::cer(first_ref, text)),
            Scorer::Relevance => Some(best(&refs, |r| conversation::relevance(text, r))),
            Scorer::Clarity => Some(conversation::clarity(text)),
            Scorer::TaskCompletion => {
                let keywords = if spec.keywords.is_empty() {
                    conversation::keywords_of(&refs.join("\n"))
                } else {
                    spec.keywords.clone()
                };
                conversation::task_completion(text, &keywords)
            }
            Scorer::Distinct1 => Some(creativity::distinct_n(text, 1)),
            Scorer::Distinct2 => Some(creativity::distinct_n(text, 2)),
            Scorer::Judge => None,
        };
        if let Some(v) = v {
            put(s, v);
        }
    }
    g
}

/// The best of a per-reference score over the references (ROUGE's and Jaccard's way with
/// several references); 0 with none.
fn best(refs: &[&str], f: impl Fn(&str) -> f64) -> f64 {
    refs.iter().map(|r| f(r)).fold(0.0, f64::max)
}

/// For each expected call, the best argument match among calls of that tool; the mean.
fn best_arguments(spec: &Spec, found: &Detected) -> f64 {
    let n = spec.expected_calls.len().max(1) as f64;
    spec.expected_calls
        .iter()
        .map(|e| {
            found
                .calls
                .iter()
                .filter(|c| c.name == e.name)
                .map(|c| toolcall::argument_match(&e.arguments, &c.arguments))
                .fold(0.0, f64::max)
        })
        .sum::<f64>()
        / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Spec {
        Spec::default()
    }

    #[test]
    fn a_question_gets_the_scorers_its_fields_imply() {
        let s = Spec {
            references: vec!["The refund is on its way.".into()],
            ..spec()
        }
        .with_scorers(&[])
        .unwrap();
        let names: Vec<_> = s.scorers.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            ["bleu", "rougeL", "relevance", "clarity", "task_completion"]
        );
    }

    #[test]
    fn a_named_scorer_must_have_what_it_needs() {
        let err = spec().with_scorers(&["bleu".into()]).unwrap_err();
        assert_eq!(err, "scorer 'bleu' needs `reference`");
        let err = spec().with_scorers(&["blue".into()]).unwrap_err();
        assert!(err.starts_with("unknown scorer 'blue' (scorers: answer_correct,"));
        let ok = spec().with_scorers(&["distinct1".into(), "clarity".into()]);
        assert_eq!(ok.unwrap().scorers, [Scorer::Distinct1, Scorer::Clarity]);
    }

    #[test]
    fn a_structured_answer_is_graded_on_schema_and_fields() {
        let s = Spec {
            schema: Some(
                Schema::new(json!({"type": "object", "required": ["city", "temp"]})).unwrap(),
            ),
            golden: Some(json!({"city": "Oslo", "temp": 7})),
            ..spec()
        }
        .with_scorers(&[])
        .unwrap();
        let fenced = "```json\n{\"city\": \"oslo\", \"temp\": 9}\n```";
        let g = grade(
            &s,
            &Answer {
                text: fenced,
                native_calls: &[],
            },
        );
        assert_eq!(
            g.json_valid,
            Some(false),
            "strict: the whole answer is not JSON"
        );
        assert_eq!(g.scores["schema_valid"], 1.0);
        assert_eq!(g.scores["field_accuracy"], 0.5);
        // (0 + 1 + 0.5) / 3
        assert!((g.quality().unwrap() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn quality_maps_each_unit_to_zero_one_higher_better() {
        let scores: BTreeMap<String, f64> = [
            ("bleu".to_string(), 50.0),
            ("wer".to_string(), 1.5),
            ("judge".to_string(), 4.0),
            ("clarity".to_string(), 0.4),
        ]
        .into();
        // (0.5 + 0 + 0.75 + 0.4) / 4
        assert!((quality(&scores).unwrap() - 0.4125).abs() < 1e-12);
        assert_eq!(quality(&BTreeMap::new()), None);
    }

    #[test]
    fn tool_calls_are_scored_against_the_expected_ones() {
        let s = Spec {
            offered: vec!["get_weather".into(), "calculate".into()],
            expected_calls: vec![toolcall::Expected {
                name: "get_weather".into(),
                arguments: json!({"city": "Oslo", "unit": "celsius"})
                    .as_object()
                    .unwrap()
                    .clone(),
            }],
            ..spec()
        }
        .with_scorers(&[])
        .unwrap();
        let native = [(
            "get_weather".to_string(),
            r#"{"city": "oslo", "unit": "fahrenheit"}"#.to_string(),
        )];
        let g = grade(
            &s,
            &Answer {
                text: "",
                native_calls: &native,
            },
        );
        assert_eq!(g.tool_call_valid, Some(true));
        assert_eq!(g.scores["tool_call_f1"], 0.0, "one argument is wrong");
        assert_eq!(g.scores["tool_arguments"], 0.5);
    }
}
