//! Structured output: the JSON an answer holds, JSON Schema verdicts, field accuracy against a
//! golden object, and structural consistency of one question's answers.
//!
//! - The **answer's JSON** is the whole answer, trimmed, when it parses; else the body of its
//!   first fenced block (```` ```json ```` or ```` ``` ````) when that parses. Models often fence
//!   JSON they were asked for; `json_valid` (strict: the whole answer) says whether they did.
//! - **Schema verdicts** follow the schema's `$schema` (draft 4, 6, 7, 2019-09, 2020-12; 2020-12
//!   when it names none), with `format` as an annotation, not an assertion: exactly what
//!   Python's `jsonschema.validators.validator_for(schema)(schema).is_valid(x)` says without a
//!   format checker.
//! - **Field accuracy** is the share of the golden object's leaves (values that are not a
//!   non-empty object or array; array items by position) that the answer has at the same path
//!   with an alike value: numbers within the tolerance (absolute when the question gives one,
//!   else 1e-6 relative), strings equal once trimmed, lower-cased, inner whitespace collapsed
//!   and a final `.` removed, anything else equal.
//! - **Structural consistency** of several answers to one question is the share of them whose
//!   shape (every key path with its JSON type) is the most common shape; an answer without JSON
//!   has no shape and never counts as consistent.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// A compiled JSON Schema; compiled once per question, used for every answer.
#[derive(Clone)]
pub struct Schema {
    value: Value,
    validator: Arc<jsonschema::Validator>,
}

impl Schema {
    /// Compiles `value`; an error says why the schema itself is invalid.
    pub fn new(value: Value) -> Result<Schema, String> {
        let validator = jsonschema::options()
            .should_validate_formats(false)
            .build(&value)
            .map_err(|e| e.to_string())?;
        Ok(Schema {
            value,
            validator: Arc::new(validator),
        })
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    pub fn is_valid(&self, instance: &Value) -> bool {
        self.validator.is_valid(instance)
    }
}

impl PartialEq for Schema {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schema").field(&self.value).finish()
    }
}

/// The JSON an answer holds: the whole answer, else its first fenced block.
pub fn answer_json(text: &str) -> Option<Value> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str(t) {
        return Some(v);
    }
    let start = t.find("```")?;
    let rest = &t[start + 3..];
    let body_start = rest.find('\n')? + 1;
    let body = &rest[body_start..];
    let end = body.find("```")?;
    serde_json::from_str(body[..end].trim()).ok()
}

/// The share of `golden`'s leaves that `got` has alike at the same path (see the module doc).
pub fn field_accuracy(golden: &Value, got: &Value, tolerance: Option<f64>) -> f64 {
    let mut leaves = Vec::new();
    collect_leaves(golden, &mut Vec::new(), &mut leaves);
    let hits = leaves
        .iter()
        .filter(|(path, want)| at(got, path).is_some_and(|g| alike(want, g, tolerance)))
        .count();
    hits as f64 / leaves.len() as f64
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn collect_leaves<'a>(v: &'a Value, path: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, &'a Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                path.push(Step::Key(k.clone()));
                collect_leaves(x, path, out);
                path.pop();
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                path.push(Step::Index(i));
                collect_leaves(x, path, out);
                path.pop();
            }
        }
        _ => out.push((path.clone(), v)),
    }
}

fn at<'a>(v: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, step| match step {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(i),
    })
}

fn normalise(s: &str) -> String {
    let joined = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    joined.strip_suffix('.').unwrap_or(&joined).to_string()
}

fn alike(want: &Value, got: &Value, tolerance: Option<f64>) -> bool {
    match (want, got) {
        (Value::Number(w), Value::Number(g)) => match (w.as_f64(), g.as_f64()) {
            (Some(w), Some(g)) => {
                let limit = tolerance.unwrap_or(1e-6 * w.abs().max(g.abs()).max(1.0));
                (w - g).abs() <= limit
            }
            _ => w == g,
        },
        (Value::String(w), Value::String(g)) => normalise(w) == normalise(g),
        _ => want == got,
    }
}

/// A value's shape: every key path with its JSON type (array items share the path `[]`).
pub fn shape(v: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, path: &str, out: &mut BTreeSet<String>) {
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        out.insert(format!("{path}:{kind}"));
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    walk(x, &format!("{path}.{k}"), out);
                }
            }
            Value::Array(a) => {
                for x in a {
                    walk(x, &format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(v, "$", &mut out);
    out
}

/// The share of `answers` whose shape is the most common one; `None` for fewer than two.
pub fn structural_consistency<'a>(answers: impl IntoIterator<Item = &'a str>) -> Option<f64> {
    let shapes: Vec<Option<BTreeSet<String>>> = answers
        .into_iter()
        .map(|a| answer_json(a).map(|v| shape(&v)))
        .collect();
    if shapes.len() < 2 {
        return None;
    }
    let mut counts: BTreeMap<&BTreeSet<String>, usize> = BTreeMap::new();
    for s in shapes.iter().flatten() {
        *counts.entry(s).or_default() += 1;
    }
    let most = counts.values().copied().max().unwrap_or(0);
    Some(most as f64 / shapes.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_answers_json_may_be_fenced_but_not_buried_in_prose() {
        assert_eq!(answer_json(" {\"a\": 1} "), Some(json!({"a": 1})));
        assert_eq!(
            answer_json("Here it is:\n```json\n{\"a\": 1}\n```\nDone."),
            Some(json!({"a": 1}))
        );
        assert_eq!(answer_json("The answer is {\"a\": 1} I think"), None);
        assert_eq!(answer_json("```json\n{\"a\": \n```"), None);
    }

    #[test]
    fn schema_verdicts_follow_the_schemas_draft_and_ignore_formats() {
        let s = Schema::new(json!({
            "type": "object",
            "required": ["name", "age"],
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
                           "email": {"type": "string", "format": "email"}},
            "additionalProperties": false
        }))
        .unwrap();
        assert!(s.is_valid(&json!({"name": "Ada", "age": 36})));
        assert!(!s.is_valid(&json!({"name": "Ada"})));
        assert!(!s.is_valid(&json!({"name": "Ada", "age": -1})));
        assert!(!s.is_valid(&json!({"name": "Ada", "age": 3, "x": 1})));
        // `format` annotates: Python's jsonschema without a format checker says the same.
        assert!(s.is_valid(&json!({"name": "Ada", "age": 3, "email": "not an email"})));
        // Draft 7's `items` as an array is a tuple; in 2020-12 that is `prefixItems`.
        let tuple7 = Schema::new(json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "items": [{"type": "string"}], "additionalItems": false
        }))
        .unwrap();
        assert!(tuple7.is_valid(&json!(["a"])));
        assert!(!tuple7.is_valid(&json!(["a", 1])));
        assert!(Schema::new(json!({"type": 12})).is_err());
    }

    #[test]
    fn field_accuracy_counts_leaves_with_tolerant_numbers_and_normalised_strings() {
        let golden =
            json!({"city": "Oslo", "temp": {"value": 7.5, "unit": "C"}, "tags": ["a", "b"]});
        let got =
            json!({"city": " oslo. ", "temp": {"value": 7.5000001, "unit": "F"}, "tags": ["a"]});
        // city ✓, temp.value ✓, temp.unit ✗, tags[0] ✓, tags[1] ✗.
        assert!((field_accuracy(&golden, &got, None) - 3.0 / 5.0).abs() < 1e-12);
        assert_eq!(
            field_accuracy(&json!({"n": 10}), &json!({"n": 10.4}), Some(0.5)),
            1.0
        );
        assert_eq!(
            field_accuracy(&json!({"n": 10}), &json!({"n": 10.6}), Some(0.5)),
            0.0
        );
        assert_eq!(field_accuracy(&json!({"n": 10}), &json!([1]), None), 0.0);
        assert_eq!(field_accuracy(&json!({}), &json!({}), None), 1.0);
    }

    #[test]
    fn consistency_is_the_share_with_the_most_common_shape() {
        let answers = [
            r#"{"a": 1, "b": ["x"]}"#,
            r#"{"a": 2, "b": ["y", "z"]}"#,
            r#"{"a": "2", "b": []}"#,
            "not json",
        ];
        assert_eq!(structural_consistency(answers), Some(0.5));
        assert_eq!(structural_consistency([r#"{"a":1}"#]), None);
    }
}
