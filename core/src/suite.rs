//! Question suites: the questions, their retrieved context, the key facts an answer should
//! contain, and how they become chat messages.
//!
//! A suite is a TOML file (see `suites/rag-retail-finance.toml`) or the built-in copy of a
//! bundled one, named `builtin:NAME` (every file of `suites/`). Suites merge into one
//! ([`Suite::merge`]): each question keeps its own suite's system prompt and template.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::Digest;

use llmpulse_score as score;

/// The bundled suite, compiled in so the quickstart and the cloud functions need no file.
pub const BUILTIN_RAG_RETAIL_FINANCE: &str = include_str!("../suites/rag-retail-finance.toml");

/// Every bundled suite by name, compiled in: `builtin:NAME`.
pub const BUILTINS: [(&str, &str); 10] = [
    ("rag-retail-finance", BUILTIN_RAG_RETAIL_FINANCE),
    ("capabilities", include_str!("../suites/capabilities.toml")),
    ("conversation", include_str!("../suites/conversation.toml")),
    ("creativity", include_str!("../suites/creativity.toml")),
    ("instruction", include_str!("../suites/instruction.toml")),
    ("knowledge", include_str!("../suites/knowledge.toml")),
    ("reasoning", include_str!("../suites/reasoning.toml")),
    ("structured", include_str!("../suites/structured.toml")),
    (
        "tool-explicit",
        include_str!("../suites/tool-explicit.toml"),
    ),
    (
        "tool-implicit",
        include_str!("../suites/tool-implicit.toml"),
    ),
];

/// The default prompt template: `{context}` and `{question}` are replaced.
pub const DEFAULT_TEMPLATE: &str = "Use only the context below to answer the question.\n\nContext:\n{context}\n\nQuestion: {question}";

/// A validated suite.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub description: String,
    pub system: Option<String>,
    pub template: String,
    pub questions: Vec<Question>,
    /// sha256 of the suite text, part of every record's `config_hash`.
    pub sha256: String,
}

/// One question of a suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub id: String,
    pub industry: String,
    pub task: String,
    pub question: String,
    pub context: Vec<String>,
    pub key_facts: Vec<String>,
    /// JSON Schema the answer must follow (structured-output questions).
    pub schema: Option<serde_json::Value>,
    /// OpenAI-style tool definitions offered to the model (tool-use questions).
    pub tools: Vec<serde_json::Value>,
    /// `tool_choice` to send with the tools (`"auto"`, `"required"`, or a named function).
    pub tool_choice: Option<serde_json::Value>,
    /// How the question's answers are graded: its scorers and what they compare against.
    pub grading: score::grade::Spec,
    /// For tool questions: whether the prompt names the tool (`explicit`) or only implies
    /// it (`implicit`), as seed 002 separates them.
    pub tool_prompt: Option<String>,
    /// This question's own system prompt and template, when it came from another suite than
    /// the one it is asked in (a merge); else the suite's apply.
    pub system: Option<String>,
    pub template: Option<String>,
}

impl Question {
    /// A question with only its text and labels: no context, schema, tools or grading (the
    /// questions a soak, a judge or a case generator asks, which no suite file holds).
    pub fn bare(id: &str, industry: &str, task: &str, question: &str) -> Question {
        Question {
            id: id.to_string(),
            industry: industry.to_string(),
            task: task.to_string(),
            question: question.to_string(),
            context: Vec::new(),
            key_facts: Vec::new(),
            schema: None,
            tools: Vec::new(),
            tool_choice: None,
            grading: Default::default(),
            tool_prompt: None,
            system: None,
            template: None,
        }
    }
}

/// What is sent for one question: the messages, and any schema or tools.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub messages: Vec<Message>,
    pub schema: Option<serde_json::Value>,
    pub tools: Vec<serde_json::Value>,
    pub tool_choice: Option<serde_json::Value>,
}

impl Prompt {
    /// A prompt of plain messages.
    pub fn messages(messages: Vec<Message>) -> Self {
        Prompt {
            messages,
            schema: None,
            tools: Vec::new(),
            tool_choice: None,
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("cannot read suite {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{origin}:{line}:{column}: {message}")]
    Parse {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}:{line}: question {index} ({id}): {message}")]
    Invalid {
        origin: String,
        /// The line where the question's table starts.
        line: usize,
        index: usize,
        id: String,
        message: String,
    },
    #[error("unknown built-in suite '{0}' (built-in suites: builtin:rag-retail-finance)")]
    UnknownBuiltin(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    questions: Vec<toml::Spanned<RawQuestion>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    id: String,
    industry: String,
    #[serde(default = "default_task")]
    task: String,
    question: String,
    #[serde(default)]
    context: Vec<String>,
    #[serde(default)]
    key_facts: Vec<String>,
    #[serde(default)]
    schema: Option<toml::Value>,
    #[serde(default)]
    tools: Vec<toml::Value>,
    #[serde(default)]
    tool_choice: Option<toml::Value>,
    /// The expected final answer: a number, a choice letter A–E, or text.
    #[serde(default)]
    answer: Option<String>,
    /// Other accepted text answers.
    #[serde(default)]
    aliases: Vec<String>,
    /// Absolute tolerance for a numeric answer.
    #[serde(default)]
    tolerance: Option<f64>,
    #[serde(default)]
    constraints: Option<llmpulse_score::ifeval::Constraints>,
    /// The golden object of a structured question (`field_accuracy`).
    #[serde(default)]
    golden: Option<toml::Value>,
    /// A golden reply (conversation questions: BLEU, ROUGE, WER, relevance, task completion).
    #[serde(default)]
    reference: Option<String>,
    /// More golden replies.
    #[serde(default)]
    references: Vec<String>,
    /// What a complete reply must mention (`task_completion`).
    #[serde(default)]
    keywords: Vec<String>,
    /// The tool calls a right answer makes: `{ name = "…", arguments = { … } }`.
    #[serde(default)]
    expected_calls: Vec<RawCall>,
    /// `explicit` or `implicit`.
    #[serde(default)]
    tool_prompt: Option<String>,
    /// The scorers to run; by default those the question's fields imply.
    #[serde(default)]
    scorers: Vec<String>,
    /// What a judge target grades the answer against (1–5).
    #[serde(default)]
    rubric: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCall {
    name: String,
    #[serde(default)]
    arguments: toml::Table,
}

fn default_task() -> String {
    "rag".into()
}

impl Suite {
    /// Loads `builtin:NAME` or a file path (relative paths against `base_dir`).
    pub fn load(spec: &str, base_dir: &Path) -> Result<Suite, SuiteError> {
        if let Some(name) = spec.strip_prefix("builtin:") {
            return match BUILTINS.iter().find(|(n, _)| *n == name) {
                Some((_, text)) => Suite::parse(text, spec),
                None => Err(SuiteError::UnknownBuiltin(spec.to_string())),
            };
        }
        let path = base_dir.join(spec);
        let text = std::fs::read_to_string(&path).map_err(|cause| SuiteError::Io {
            path: path.clone(),
            cause,
        })?;
        Suite::parse(&text, &path.display().to_string())
    }

    /// Parses suite TOML; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Suite, SuiteError> {
        let raw: RawSuite = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            SuiteError::Parse {
                origin: origin.to_string(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        let template = raw.template.unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
        let mut seen = HashSet::new();
        let mut questions = Vec::with_capacity(raw.questions.len());
        for (i, spanned) in raw.questions.into_iter().enumerate() {
            let line = line_col(text, spanned.span().start).0;
            let q = spanned.into_inner();
            let invalid = |message: String| SuiteError::Invalid {
                origin: origin.to_string(),
                line,
                index: i + 1,
                id: q.id.clone(),
                message,
            };
            if q.id.trim().is_empty() {
                return Err(invalid("`id` is empty".into()));
            }
            if !seen.insert(q.id.clone()) {
                return Err(invalid(format!("duplicate id '{}'", q.id)));
            }
            if q.question.trim().is_empty() {
                return Err(invalid("`question` is empty".into()));
            }
            if q.industry.trim().is_empty() {
                return Err(invalid("`industry` is empty".into()));
            }
            if !q.key_facts.is_empty() && q.context.is_empty() {
                return Err(invalid(
                    "`key_facts` given without `context`: facts must come from the context".into(),
                ));
            }
            let json = |v: &toml::Value, what: &str| {
                serde_json::to_value(v)
                    .map_err(|e| invalid(format!("`{what}` cannot be expressed as JSON: {e}")))
            };
            let schema = q.schema.as_ref().map(|v| json(v, "schema")).transpose()?;
            let tools = q
                .tools
                .iter()
                .map(|v| json(v, "tools"))
                .collect::<Result<Vec<_>, _>>()?;
            for t in &tools {
                if t.pointer("/function/name")
                    .and_then(|n| n.as_str())
                    .is_none()
                {
                    return Err(invalid(
                        "each of `tools` needs function.name (OpenAI tool format)".into(),
                    ));
                }
            }
            let tool_choice = q
                .tool_choice
                .as_ref()
                .map(|v| json(v, "tool_choice"))
                .transpose()?;
            if q.answer.is_none() && !q.aliases.is_empty() {
                return Err(invalid("`aliases` need an `answer` to go with".into()));
            }
            if q.answer.is_none() && q.golden.is_none() && q.tolerance.is_some() {
                return Err(invalid(
                    "`tolerance` needs an `answer` or a `golden` object to go with".into(),
                ));
            }
            if q.tolerance.is_some_and(|t| !(t >= 0.0 && t.is_finite())) {
                return Err(invalid("`tolerance` must be a number ≥ 0".into()));
            }
            if q.answer.as_ref().is_some_and(|a| a.trim().is_empty()) {
                return Err(invalid("`answer` is empty".into()));
            }
            let expected = q
                .answer
                .as_ref()
                .map(|a| llmpulse_score::extract::Expected::infer(a, &q.aliases, q.tolerance));
            let grading = grading_spec(&q, expected, schema.as_ref(), &tools).map_err(invalid)?;
            let tool_prompt = q.tool_prompt.clone();
            questions.push(Question {
                grading,
                tool_prompt,
                system: None,
                template: None,
                schema,
                tools,
                tool_choice,
                id: q.id,
                industry: q.industry,
                task: q.task,
                question: q.question,
                context: q.context,
                key_facts: q.key_facts,
            });
        }
        if questions.is_empty() {
            return Err(SuiteError::Invalid {
                origin: origin.to_string(),
                line: 1,
                index: 0,
                id: String::new(),
                message: "the suite has no [[questions]]".into(),
            });
        }
        Ok(Suite {
            name: raw.name,
            description: raw.description,
            system: raw.system,
            template,
            questions,
            sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
        })
    }

    /// One suite asking every question of `suites`, in order: each question keeps its suite's
    /// system prompt and template; ids must stay unique.
    pub fn merge(name: &str, suites: Vec<Suite>) -> Result<Suite, SuiteError> {
        let mut seen = HashSet::new();
        let mut questions = Vec::new();
        let mut hash = sha2::Sha256::new();
        for s in suites {
            hash.update(s.sha256.as_bytes());
            for mut q in s.questions {
                if !seen.insert(q.id.clone()) {
                    return Err(SuiteError::Invalid {
                        origin: s.name.clone(),
                        line: 0,
                        index: 0,
                        id: q.id.clone(),
                        message: format!("duplicate id '{}' across the merged suites", q.id),
                    });
                }
                q.system = q.system.or_else(|| s.system.clone());
                q.template = q.template.or_else(|| Some(s.template.clone()));
                questions.push(q);
            }
        }
        Ok(Suite {
            name: name.to_string(),
            description: String::new(),
            system: None,
            template: DEFAULT_TEMPLATE.to_string(),
            questions,
            sha256: hex::encode(hash.finalize()),
        })
    }

    /// Everything sent for `question`.
    pub fn prompt(&self, question: &Question) -> Prompt {
        Prompt {
            messages: self.messages(question),
            schema: question.schema.clone(),
            tools: question.tools.clone(),
            tool_choice: question.tool_choice.clone(),
        }
    }

    /// The chat messages for `question`.
    pub fn messages(&self, question: &Question) -> Vec<Message> {
        let mut messages = Vec::with_capacity(2);
        if let Some(system) = question.system.as_ref().or(self.system.as_ref()) {
            messages.push(Message {
                role: "system",
                content: system.clone(),
            });
        }
        let content = if question.context.is_empty() {
            question.question.clone()
        } else {
            let context = question
                .context
                .iter()
                .enumerate()
                .map(|(i, c)| format!("[{}] {}", i + 1, c))
                .collect::<Vec<_>>()
                .join("\n");
            question
                .template
                .as_deref()
                .unwrap_or(&self.template)
                .replace("{context}", &context)
                .replace("{question}", &question.question)
        };
        messages.push(Message {
            role: "user",
            content,
        });
        messages
    }

    /// Warnings about the suite's content that do not stop a run: key facts whose terms are not
    /// in the question's context (a fact the model cannot take from the context measures recall
    /// of world knowledge, not RAG coverage). A `reasoning` question's facts are worked out from
    /// its context, not copied, so they are not checked.
    pub fn lint(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for q in self.questions.iter().filter(|q| q.task != "reasoning") {
            let context = score::term_set(&q.context.join("\n"));
            for fact in &q.key_facts {
                if score::fact_found(fact, &context) == Some(false) {
                    warnings.push(format!(
                        "{}: key fact not supported by its context: {fact}",
                        q.id
                    ));
                }
            }
        }
        warnings
    }

    /// The distinct industries, in first-seen order.
    pub fn industries(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for q in &self.questions {
            if !out.contains(&q.industry.as_str()) {
                out.push(&q.industry);
            }
        }
        out
    }
}

/// The grading of one question: its fields checked, its scorers named or implied.
fn grading_spec(
    q: &RawQuestion,
    expected: Option<llmpulse_score::extract::Expected>,
    schema: Option<&serde_json::Value>,
    tools: &[serde_json::Value],
) -> Result<score::grade::Spec, String> {
    let schema = schema
        .map(|s| score::structured::Schema::new(s.clone()))
        .transpose()
        .map_err(|e| format!("`schema` is not a valid JSON Schema: {e}"))?;
    let golden = q
        .golden
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| format!("`golden` cannot be expressed as JSON: {e}"))?;
    if let (Some(s), Some(g)) = (&schema, &golden)
        && !s.is_valid(g)
    {
        return Err("`golden` does not satisfy the question's own `schema`".into());
    }
    let mut references: Vec<String> = q.reference.iter().cloned().collect();
    references.extend(q.references.iter().cloned());
    if references.iter().any(|r| r.trim().is_empty()) {
        return Err("a `reference` is empty".into());
    }
    let offered: Vec<String> = tools
        .iter()
        .filter_map(|t| t.pointer("/function/name")?.as_str().map(str::to_string))
        .collect();
    let mut expected_calls = Vec::with_capacity(q.expected_calls.len());
    for c in &q.expected_calls {
        if !offered.contains(&c.name) {
            return Err(format!(
                "`expected_calls` names '{}', which is not one of the question's `tools`",
                c.name
            ));
        }
        let arguments = serde_json::to_value(&c.arguments)
            .map_err(|e| format!("`expected_calls` arguments cannot be expressed as JSON: {e}"))?;
        expected_calls.push(score::toolcall::Expected {
            name: c.name.clone(),
            arguments: arguments.as_object().cloned().unwrap_or_default(),
        });
    }
    match q.tool_prompt.as_deref() {
        None => {}
        Some("explicit" | "implicit") if !tools.is_empty() => {}
        Some("explicit" | "implicit") => return Err("`tool_prompt` needs `tools`".into()),
        Some(other) => {
            return Err(format!(
                "`tool_prompt` is '{other}'; it must be \"explicit\" or \"implicit\""
            ));
        }
    }
    if q.rubric.as_ref().is_some_and(|r| r.trim().is_empty()) {
        return Err("`rubric` is empty".into());
    }
    score::grade::Spec {
        expected,
        constraints: q.constraints.clone().filter(|c| !c.is_empty()),
        schema,
        golden,
        tolerance: q.tolerance,
        references,
        keywords: q.keywords.clone(),
        offered,
        expected_calls,
        rubric: q.rubric.clone(),
        scorers: Vec::new(),
    }
    .with_scorers(&q.scorers)
}

/// 1-based line and column of byte offset `pos` in `text`.
pub fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_suite_is_ten_retail_and_ten_finance() {
        let suite = Suite::load("builtin:rag-retail-finance", Path::new(".")).unwrap();
        let count = |ind: &str| suite.questions.iter().filter(|q| q.industry == ind).count();
        assert_eq!(count("retail"), 10);
        assert_eq!(count("finance"), 10);
        for q in &suite.questions {
            assert!((1..=3).contains(&q.context.len()), "{}: context", q.id);
            assert!((2..=5).contains(&q.key_facts.len()), "{}: key facts", q.id);
        }
    }

    #[test]
    fn bundled_suite_facts_come_from_their_context() {
        let suite = Suite::load("builtin:rag-retail-finance", Path::new(".")).unwrap();
        assert_eq!(suite.lint(), Vec::<String>::new());
    }

    #[test]
    fn builtin_and_file_are_the_same_suite() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let file = Suite::load("suites/rag-retail-finance.toml", &dir).unwrap();
        let builtin = Suite::load("builtin:rag-retail-finance", &dir).unwrap();
        assert_eq!(file.questions, builtin.questions);
    }

    #[test]
    fn every_bundled_suite_is_builtin_and_a_merge_keeps_each_questions_system_prompt() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (name, _) in BUILTINS {
            let file = Suite::load(&format!("suites/{name}.toml"), &dir).unwrap();
            let builtin = Suite::load(&format!("builtin:{name}"), &dir).unwrap();
            assert_eq!(file.questions, builtin.questions, "{name}");
        }
        let reasoning = Suite::load("builtin:reasoning", &dir).unwrap();
        let creativity = Suite::load("builtin:creativity", &dir).unwrap();
        let merged = Suite::merge("both", vec![reasoning.clone(), creativity.clone()]).unwrap();
        assert_eq!(
            merged.questions.len(),
            reasoning.questions.len() + creativity.questions.len()
        );
        // Asked as each suite alone would ask it: reasoning's system prompt, creativity's none.
        let first = merged.messages(&merged.questions[0]);
        assert_eq!(first, reasoning.messages(&reasoning.questions[0]));
        let last = merged.messages(merged.questions.last().unwrap());
        assert_eq!(
            last,
            creativity.messages(creativity.questions.last().unwrap())
        );
        let twice = Suite::merge("twice", vec![reasoning.clone(), reasoning]).unwrap_err();
        assert!(twice.to_string().contains("duplicate id"), "{twice}");
    }

    #[test]
    fn parse_error_names_origin_and_line() {
        let text = "name = \"x\"\n[[questions]]\nid = \"a\"\nindustry = 5\n";
        let err = Suite::parse(text, "my.toml").unwrap_err().to_string();
        assert!(err.starts_with("my.toml:4:"), "{err}");
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let text = r#"
name = "x"
[[questions]]
id = "a"
industry = "retail"
question = "q1"
[[questions]]
id = "a"
industry = "retail"
question = "q2"
"#;
        let err = Suite::parse(text, "s.toml").unwrap_err().to_string();
        assert!(err.contains("question 2 (a): duplicate id"), "{err}");
    }

    #[test]
    fn messages_fill_the_template() {
        let text = r#"
name = "x"
system = "Be brief."
[[questions]]
id = "a"
industry = "retail"
question = "How much?"
context = ["Sales were 5.", "Costs were 3."]
"#;
        let suite = Suite::parse(text, "s.toml").unwrap();
        let m = suite.messages(&suite.questions[0]);
        assert_eq!(m[0].role, "system");
        assert!(
            m[1].content
                .contains("[1] Sales were 5.\n[2] Costs were 3.")
        );
        assert!(m[1].content.ends_with("Question: How much?"));
    }

    #[test]
    fn expected_answers_and_constraints_are_read_and_checked() {
        let q = |extra: &str| {
            format!(
                "name = \"x\"\n[[questions]]\nid = \"a\"\nindustry = \"m\"\nquestion = \"q\"\n{extra}"
            )
        };
        let s = Suite::parse(&q("answer = \"42\"\ntolerance = 0.5\n"), "s.toml").unwrap();
        assert_eq!(
            s.questions[0].grading.expected,
            Some(llmpulse_score::extract::Expected::Number {
                value: 42.0,
                tolerance: 0.5
            })
        );
        let s = Suite::parse(
            &q("constraints = { max_words = 5, no_commas = true }\n"),
            "s.toml",
        )
        .unwrap();
        assert_eq!(
            s.questions[0]
                .grading
                .constraints
                .as_ref()
                .unwrap()
                .max_words,
            Some(5)
        );
        let err = Suite::parse(&q("aliases = [\"x\"]\n"), "s.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("question 1 (a)") && err.contains("need an `answer`"),
            "{err}"
        );
        let err = Suite::parse(&q("constraints = { max_word = 5 }\n"), "s.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.toml:6:") && err.contains("max_word"),
            "{err}"
        );
        for name in ["reasoning", "instruction"] {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../suites");
            let s = Suite::load(&format!("{name}.toml"), Path::new(path)).unwrap();
            assert!(s.questions.len() >= 20, "{name}");
        }
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
