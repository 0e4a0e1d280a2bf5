//! Tool calls in an answer: the native ones (the API's `tool_calls`) and those a model wrote in
//! its text instead, as small local models often do (seed 002). Textual formats, tried in this
//! order:
//!
//! - `hermes`: `<tool_call>{"name": …, "arguments": {…}}</tool_call>` (Hermes, Qwen);
//! - `fenced_json`: a fenced code block holding such an object;
//! - `json`: such an object anywhere in the text;
//! - `call_syntax`: `name(key=value, …)` for the name of an offered tool.
//!
//! An object is a call when it has a `name` (or `function.name`, or `tool`) and its arguments
//! under `arguments`, `parameters`, `args` or `input` (an object, or a string holding one).
//! Only the first 64 KiB of an answer are searched, and at most 64 candidate objects.

use serde::Serialize;
use serde_json::{Map, Value};

/// How a call was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Native,
    Hermes,
    FencedJson,
    Json,
    CallSyntax,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Hermes => "hermes",
            Format::FencedJson => "fenced_json",
            Format::Json => "json",
            Format::CallSyntax => "call_syntax",
        }
    }
}

/// One call: the tool's name and its arguments (an object when they parse as one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    pub name: String,
    pub arguments: Value,
}

impl Call {
    /// Whether the arguments are a JSON object, as every tool's parameters are.
    pub fn has_object_arguments(&self) -> bool {
        self.arguments.is_object()
    }
}

/// The calls found, and the format they were written in (`None`: no call).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Detected {
    pub format: Option<Format>,
    pub calls: Vec<Call>,
}

const SEARCHED: usize = 64 * 1024;
const CANDIDATES: usize = 64;

/// The calls of one answer: `native` as `(name, arguments JSON text)` from the API, else those
/// written in `text`; `offered` names the tools the question offered (for `call_syntax`).
pub fn detect(native: &[(String, String)], text: &str, offered: &[&str]) -> Detected {
    if !native.is_empty() {
        return Detected {
            format: Some(Format::Native),
            calls: native
                .iter()
                .map(|(name, args)| Call {
                    name: name.clone(),
                    arguments: parse_arguments(&Value::String(args.clone())),
                })
                .collect(),
        };
    }
    let text = head(text, SEARCHED);
    for (format, calls) in [
        (Format::Hermes, hermes(text)),
        (Format::FencedJson, fenced(text)),
        (Format::Json, objects(text)),
        (Format::CallSyntax, call_syntax(text, offered)),
    ] {
        if !calls.is_empty() {
            return Detected {
                format: Some(format),
                calls,
            };
        }
    }
    Detected::default()
}

/// The longest prefix of `s` of at most `n` bytes that ends on a character boundary.
fn head(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Arguments as written: an object, or a string that holds one, else kept as they are.
fn parse_arguments(v: &Value) -> Value {
    match v {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(o @ Value::Object(_)) => o,
            _ => v.clone(),
        },
        other => other.clone(),
    }
}

/// The call an object describes, if it describes one.
fn as_call(v: &Value) -> Option<Call> {
    let o = v.as_object()?;
    let f = o.get("function").and_then(Value::as_object);
    let name = o
        .get("name")
        .or_else(|| f.and_then(|f| f.get("name")))
        .or_else(|| o.get("tool"))
        .and_then(Value::as_str)?
        .trim();
    if name.is_empty() {
        return None;
    }
    let args = ["arguments", "parameters", "args", "input"]
        .iter()
        .find_map(|k| o.get(*k).or_else(|| f.and_then(|f| f.get(*k))))
        .map(parse_arguments)
        .unwrap_or(Value::Object(Map::new()));
    Some(Call {
        name: name.to_string(),
        arguments: args,
    })
}

/// Calls in one JSON value: an object, or a list of them.
fn calls_in(v: &Value) -> Vec<Call> {
    match v {
        Value::Array(items) => items.iter().filter_map(as_call).collect(),
        other => as_call(other).into_iter().collect(),
    }
}

fn hermes(text: &str) -> Vec<Call> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("<tool_call>") {
        let after = &rest[i + "<tool_call>".len()..];
        let end = after.find("</tool_call>").unwrap_or(after.len());
        if let Ok(v) = serde_json::from_str::<Value>(after[..end].trim()) {
            out.extend(calls_in(&v));
        }
        rest = &after[end..];
        if out.len() >= CANDIDATES {
            break;
        }
    }
    out
}

fn fenced(text: &str) -> Vec<Call> {
    let mut out = Vec::new();
    let mut parts = text.split("```");
    // Odd parts are inside fences.
    parts.next();
    for (i, block) in parts.enumerate() {
        if i % 2 == 1 {
            continue;
        }
        // The info string (`json`, `tool_call`, …) is the rest of the fence's line.
        let body = block.split_once('\n').map_or(block, |(_, b)| b);
        if let Ok(v) = serde_json::from_str::<Value>(body.trim()) {
            out.extend(calls_in(&v));
        }
        if out.len() >= CANDIDATES {
            break;
        }
    }
    out
}

/// Every top-level JSON object or array in `text` that describes calls.
fn objects(text: &str) -> Vec<Call> {
    let mut out = Vec::new();
    let mut tried = 0;
    let mut i = 0;
    while let Some(off) = text[i..].find(['{', '[']) {
        let start = i + off;
        tried += 1;
        if tried > CANDIDATES {
            break;
        }
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(v)) => {
                let calls = calls_in(&v);
                let used = stream.byte_offset();
                out.extend(calls);
                i = start + used.max(1);
            }
            _ => i = start + 1,
        }
        while i < text.len() && !text.is_char_boundary(i) {
            i += 1;
        }
        if i >= text.len() {
            break;
        }
    }
    out
}

/// `name(key=value, key2="text")` or `name({"key": …})` for an offered tool's name.
fn call_syntax(text: &str, offered: &[&str]) -> Vec<Call> {
    let mut out = Vec::new();
    for name in offered {
        let mut rest = text;
        while let Some(i) = rest.find(name) {
            let before_ok = rest[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            let after = &rest[i + name.len()..];
            rest = after;
            if !before_ok || !after.starts_with('(') {
                continue;
            }
            let Some(end) = closing_paren(after) else {
                continue;
            };
            let inner = after[1..end].trim();
            let arguments = if inner.starts_with('{') {
                serde_json::from_str(inner).unwrap_or(Value::String(inner.to_string()))
            } else {
                keyword_arguments(inner).map_or(Value::String(inner.to_string()), Value::Object)
            };
            out.push(Call {
                name: name.to_string(),
                arguments,
            });
            if out.len() >= CANDIDATES {
                return out;
            }
        }
    }
    out
}

/// The index in `s` (which starts with `(`) of the matching `)`, quotes respected.
fn closing_paren(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 && c == ')' {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `key=value, key2="text"` (or `key: value`) as an object; `None` when it is not that shape.
fn keyword_arguments(s: &str) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    if s.is_empty() {
        return Some(out);
    }
    for part in split_top_level(s) {
        let (k, v) = part.split_once('=').or_else(|| part.split_once(':'))?;
        let k = k.trim().trim_matches(|c| c == '"' || c == '\'');
        if k.is_empty() || !k.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        out.insert(k.to_string(), literal(v.trim()));
    }
    Some(out)
}

fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A value as written in call syntax: a quoted string, a number, a boolean, JSON, else text.
fn literal(v: &str) -> Value {
    let quoted = v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')));
    if quoted {
        return Value::String(v[1..v.len() - 1].to_string());
    }
    match v {
        "true" | "True" => return Value::Bool(true),
        "false" | "False" => return Value::Bool(false),
        "null" | "None" => return Value::Null,
        _ => {}
    }
    serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()))
}

/// An expected call: the tool, and the arguments that must match (others are not checked).
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub name: String,
    pub arguments: Map<String, Value>,
}

/// Two argument values alike: numbers within 1e-6 (relative), strings equal once trimmed and
/// lower-cased, arrays item by item, anything else equal.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (Value::String(x), Value::String(y)) => x.trim().to_lowercase() == y.trim().to_lowercase(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        // A number written as text matches the number.
        (Value::Number(_), Value::String(s)) | (Value::String(s), Value::Number(_)) => {
            serde_json::from_str::<Value>(s.trim())
                .is_ok_and(|v| same(&v, if a.is_number() { a } else { b }))
        }
        _ => a == b,
    }
}

/// The share of `expected`'s arguments that `got` has with the same value (1 when none are
/// expected).
pub fn argument_match(expected: &Map<String, Value>, got: &Value) -> f64 {
    if expected.is_empty() {
        return 1.0;
    }
    let Some(got) = got.as_object() else {
        return 0.0;
    };
    let hits = expected
        .iter()
        .filter(|(k, v)| got.get(*k).is_some_and(|g| same(v, g)))
        .count();
    hits as f64 / expected.len() as f64
}

/// Tool-call F1: a call counts as right when it names an expected tool whose arguments all
/// match, each expected call matched at most once. 1 when nothing is expected and nothing was
/// called.
pub fn f1(expected: &[Expected], got: &[Call]) -> f64 {
    if expected.is_empty() && got.is_empty() {
        return 1.0;
    }
    let mut used = vec![false; expected.len()];
    let mut right = 0usize;
    for c in got {
        if let Some(j) = (0..expected.len()).find(|&j| {
            !used[j]
                && expected[j].name == c.name
                && argument_match(&expected[j].arguments, &c.arguments) == 1.0
        }) {
            used[j] = true;
            right += 1;
        }
    }
    if right == 0 {
        return 0.0;
    }
    let precision = right as f64 / got.len() as f64;
    let recall = right as f64 / expected.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOOLS: [&str; 2] = ["get_weather", "calculate"];

    fn found(text: &str) -> Detected {
        detect(&[], text, &TOOLS)
    }

    #[test]
    fn native_calls_come_first_and_their_arguments_are_parsed() {
        let d = detect(
            &[("get_weather".into(), r#"{"city":"Paris"}"#.into())],
            "<tool_call>{\"name\":\"calculate\",\"arguments\":{}}</tool_call>",
            &TOOLS,
        );
        assert_eq!(d.format, Some(Format::Native));
        assert_eq!(d.calls[0].arguments, json!({"city": "Paris"}));
        let bad = detect(&[("get_weather".into(), "{city".into())], "", &TOOLS);
        assert!(!bad.calls[0].has_object_arguments());
    }

    #[test]
    fn every_textual_format_is_found() {
        let cases = [
            (
                "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>",
                Format::Hermes,
            ),
            (
                "I'll call it:\n```json\n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}\n```",
                Format::FencedJson,
            ),
            (
                "Calling {\"function\": {\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Oslo\\\"}\"}} now.",
                Format::Json,
            ),
            (
                "Let me check: get_weather(city=\"Oslo\")",
                Format::CallSyntax,
            ),
            ("get_weather({\"city\": \"Oslo\"})", Format::CallSyntax),
        ];
        for (text, format) in cases {
            let d = found(text);
            assert_eq!(d.format, Some(format), "{text}");
            assert_eq!(d.calls.len(), 1, "{text}");
            assert_eq!(d.calls[0].name, "get_weather");
            assert_eq!(d.calls[0].arguments, json!({"city": "Oslo"}), "{text}");
        }
    }

    #[test]
    fn prose_and_unknown_names_are_not_calls() {
        for text in [
            "It is sunny in Oslo (about 12 degrees).",
            "The weather {is} nice",
            "Use my_get_weather(city=Oslo) later",
            "{\"city\": \"Oslo\"}",
            "",
        ] {
            assert_eq!(found(text), Detected::default(), "{text}");
        }
    }

    #[test]
    fn call_syntax_reads_literals() {
        let d = found("calculate(expression='2*(3+4)', exact=True, digits=3)");
        assert_eq!(
            d.calls[0].arguments,
            json!({"expression": "2*(3+4)", "exact": true, "digits": 3})
        );
    }

    #[test]
    fn arguments_and_f1_compare_as_a_user_would() {
        let expected = Expected {
            name: "get_weather".into(),
            arguments: json!({"city": "paris", "days": 3})
                .as_object()
                .unwrap()
                .clone(),
        };
        let exact = Call {
            name: "get_weather".into(),
            arguments: json!({"city": " Paris ", "days": "3", "units": "metric"}),
        };
        assert_eq!(argument_match(&expected.arguments, &exact.arguments), 1.0);
        let half = Call {
            name: "get_weather".into(),
            arguments: json!({"city": "Paris", "days": 4}),
        };
        assert_eq!(argument_match(&expected.arguments, &half.arguments), 0.5);
        let other = Call {
            name: "calculate".into(),
            arguments: json!({}),
        };
        assert_eq!(
            f1(
                std::slice::from_ref(&expected),
                std::slice::from_ref(&exact)
            ),
            1.0
        );
        assert_eq!(f1(std::slice::from_ref(&expected), &[half]), 0.0);
        // One right call of two made: precision 0.5, recall 1 → F1 2/3.
        let f = f1(std::slice::from_ref(&expected), &[exact, other]);
        assert!((f - 2.0 / 3.0).abs() < 1e-12, "{f}");
        assert_eq!(f1(&[], &[]), 1.0);
    }

    #[test]
    fn a_huge_answer_is_searched_in_bounded_time() {
        let text = "{".repeat(2_000_000);
        assert_eq!(found(&text), Detected::default());
    }
}
