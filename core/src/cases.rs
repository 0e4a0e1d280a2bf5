//! Test cases written by a model (`llmpulse generate`, seed 001): the generator's and the
//! validator's tools, reading their calls into cases and scores, the deterministic checks a case
//! must pass before any model validates it, near-duplicates, and the suite the kept cases make.

use serde::Serialize;
use serde_json::{Value, json};

/// What kind of case: a JSON answer with a golden object, or a reply with a golden text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Json,
    Conversation,
}

impl Kind {
    pub fn tool(self) -> &'static str {
        match self {
            Kind::Json => "generate_json_test",
            Kind::Conversation => "generate_conversation_test",
        }
    }
}

/// One generated case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Case {
    pub id: String,
    pub kind: Kind,
    pub topic: String,
    pub prompt: String,
    /// An object for a JSON case, a string for a conversation case.
    pub golden: Value,
    pub test_case: String,
}

/// The generator's tool for `kind`, in OpenAI's format.
pub fn generator_tool(kind: Kind) -> Value {
    let golden = match kind {
        Kind::Json => {
            json!({"type": "object", "description": "the exact JSON object a right answer gives"})
        }
        Kind::Conversation => json!({"type": "string", "description": "the ideal reply"}),
    };
    json!({"type": "function", "function": {
        "name": kind.tool(),
        "description": "Record one test case for benchmarking language models.",
        "parameters": {"type": "object", "properties": {
            "id": {"type": "string"},
            "prompt": {"type": "string", "description": "what the model under test is asked"},
            "golden_response": golden,
            "test_case": {"type": "string", "description": "what the case tests"}
        }, "required": ["id", "prompt", "golden_response"]}
    }})
}

/// The validator's tool.
pub fn validator_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "validate_test_case",
        "description": "Score a test case before it is used to benchmark models.",
        "parameters": {"type": "object", "properties": {
            "id": {"type": "string"},
            "prompt_quality_score": {"type": "integer", "minimum": 0, "maximum": 5},
            "response_quality_score": {"type": "integer", "minimum": 0, "maximum": 5},
            "reasons": {"type": "string"}
        }, "required": ["prompt_quality_score", "response_quality_score"]}
    }})
}

/// Reads a generator's tool-call arguments into a case; an error says what was wrong.
pub fn parse_case(
    arguments: &str,
    kind: Kind,
    topic: &str,
    fallback_id: &str,
) -> Result<Case, String> {
    let v: Value = serde_json::from_str(arguments.trim())
        .map_err(|e| format!("the arguments are not JSON: {e}"))?;
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let mut golden = v.get("golden_response").cloned().unwrap_or(Value::Null);
    // A JSON case's golden object written as JSON text is still that object.
    if kind == Kind::Json
        && let Value::String(s) = &golden
        && let Ok(parsed @ Value::Object(_)) = serde_json::from_str::<Value>(s)
    {
        golden = parsed;
    }
    let id = match text("id") {
        id if id.is_empty() => fallback_id.to_string(),
        id => id,
    };
    Ok(Case {
        id,
        kind,
        topic: topic.to_string(),
        prompt: text("prompt"),
        golden,
        test_case: text("test_case"),
    })
}

/// The deterministic checks: what is wrong with `case`, empty when nothing is.
pub fn check(case: &Case) -> Vec<String> {
    let mut wrong = Vec::new();
    if case.prompt.is_empty() {
        wrong.push("the prompt is empty".to_string());
    }
    match (case.kind, &case.golden) {
        (Kind::Json, Value::Object(m)) if !m.is_empty() => {
            if case.prompt.contains(&case.golden.to_string()) {
                wrong.push("the prompt contains its own golden object".into());
            }
        }
        (Kind::Json, _) => wrong.push("the golden response is not a non-empty JSON object".into()),
        (Kind::Conversation, Value::String(s)) if !s.trim().is_empty() => {
            if s.trim().len() > 20 && case.prompt.contains(s.trim()) {
                wrong.push("the prompt contains its own golden reply".into());
            }
        }
        (Kind::Conversation, _) => wrong.push("the golden reply is empty or not text".into()),
    }
    wrong
}

/// Whether `case` nearly repeats one of `kept`: content-term Jaccard of the prompts ≥ 0.8.
pub fn near_duplicate(case: &Case, kept: &[Case]) -> Option<String> {
    kept.iter()
        .find(|k| llmpulse_score::jaccard(&k.prompt, &case.prompt) >= 0.8)
        .map(|k| k.id.clone())
}

/// A validator's scores: (prompt, response, reasons); an error for a malformed reply.
pub fn parse_scores(arguments: &str) -> Result<(i64, i64, String), String> {
    let v: Value = serde_json::from_str(arguments.trim())
        .map_err(|e| format!("the validator's arguments are not JSON: {e}"))?;
    let score = |k: &str| {
        v.get(k)
            .and_then(|x| {
                x.as_i64()
                    .or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()))
            })
            .filter(|s| (0..=5).contains(s))
            .ok_or_else(|| format!("the validator gave no {k} from 0 to 5"))
    };
    Ok((
        score("prompt_quality_score")?,
        score("response_quality_score")?,
        v.get("reasons")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    ))
}

/// A JSON Schema that the golden object satisfies: its keys required, each with its type.
fn schema_of(golden: &Value) -> Value {
    let kind = |v: &Value| match v {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    };
    let m = golden.as_object().cloned().unwrap_or_default();
    json!({
        "type": "object",
        "properties": m.iter().map(|(k, v)| (k.clone(), json!({"type": kind(v)}))).collect::<serde_json::Map<_, _>>(),
        "required": m.keys().collect::<Vec<_>>(),
    })
}

/// The suite the kept cases make, as TOML `llmpulse run` accepts: JSON cases graded on schema
/// compliance and field accuracy, conversation cases on BLEU, WER, relevance, clarity and task
/// completion.
pub fn suite_toml(name: &str, cases: &[Case]) -> Result<String, toml::ser::Error> {
    #[derive(Serialize)]
    struct Q<'a> {
        id: &'a str,
        industry: &'a str,
        task: &'a str,
        question: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        schema: Option<Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        golden: Option<&'a Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
        scorers: Vec<&'a str>,
    }
    #[derive(Serialize)]
    struct S<'a> {
        name: &'a str,
        description: &'a str,
        questions: Vec<Q<'a>>,
    }
    let questions = cases
        .iter()
        .map(|c| match c.kind {
            Kind::Json => Q {
                id: &c.id,
                industry: &c.topic,
                task: "structured_output",
                question: &c.prompt,
                schema: Some(schema_of(&c.golden)),
                golden: Some(&c.golden),
                reference: None,
                scorers: vec!["json_valid", "schema_valid", "field_accuracy"],
            },
            Kind::Conversation => Q {
                id: &c.id,
                industry: &c.topic,
                task: "conversation",
                question: &c.prompt,
                schema: None,
                golden: None,
                reference: c.golden.as_str(),
                scorers: vec!["bleu", "wer", "relevance", "clarity", "task_completion"],
            },
        })
        .collect();
    toml::to_string(&S {
        name,
        description: "Test cases written by a generator model and kept by its validators.",
        questions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_read_checked_and_made_into_a_suite_that_loads() {
        let a = parse_case(
            r#"{"id": "j1", "prompt": "Extract the order: order 7 by Ann for 12.5 EUR.", "golden_response": "{\"order\": 7, \"customer\": \"Ann\", \"total\": 12.5}"}"#,
            Kind::Json, "retail", "x",
        ).unwrap();
        assert_eq!(
            a.golden["order"], 7,
            "a golden object written as text is parsed"
        );
        assert!(check(&a).is_empty());
        let b = parse_case(
            r#"{"prompt": "My parcel is late.", "golden_response": "Sorry, it ships today."}"#,
            Kind::Conversation,
            "support",
            "c2",
        )
        .unwrap();
        assert_eq!(b.id, "c2");
        assert!(check(&b).is_empty());
        assert!(
            parse_case("{not json", Kind::Json, "t", "x")
                .unwrap_err()
                .contains("not JSON")
        );
        let empty = parse_case(
            r#"{"prompt": "", "golden_response": 3}"#,
            Kind::Json,
            "t",
            "x",
        )
        .unwrap();
        assert_eq!(check(&empty).len(), 2);
        let dup = Case {
            id: "d".into(),
            ..b.clone()
        };
        assert_eq!(
            near_duplicate(&dup, &[a.clone(), b.clone()]),
            Some("c2".into())
        );
        let text = suite_toml("generated", &[a, b]).unwrap();
        let suite = crate::suite::Suite::parse(&text, "generated.toml").unwrap();
        assert_eq!(suite.questions.len(), 2);
        assert_eq!(suite.questions[0].grading.scorers.len(), 3);
        assert_eq!(suite.questions[1].grading.scorers.len(), 5);
    }

    #[test]
    fn validator_scores_must_be_0_to_5() {
        assert_eq!(
            parse_scores(
                r#"{"prompt_quality_score": 5, "response_quality_score": "4", "reasons": "ok"}"#
            )
            .unwrap(),
            (5, 4, "ok".into())
        );
        assert!(
            parse_scores(r#"{"prompt_quality_score": 9, "response_quality_score": 4}"#).is_err()
        );
        assert!(parse_scores("nope").is_err());
    }
}
