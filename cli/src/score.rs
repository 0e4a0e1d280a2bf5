//! `llmpulse score`: the deterministic scorers over arbitrary texts, offline. Each input line is
//! `{"hypothesis": …, "reference": …}` (or `"references": […]`), with `"schema"`, `"golden"`
//! and `"keywords"` where a metric needs them; each output line is the same object with one
//! value per metric, in the same order. WER, CER and ROUGE use the first reference.

use std::io::{BufRead, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use llmpulse_score::structured::{self, Schema};
use llmpulse_score::{bleu, chrf, conversation, creativity, jaccard, rouge, wer};
use serde_json::{Map, Value};

use crate::args::ScoreArgs;

/// Each metric, and the input field it needs beyond `hypothesis`.
const METRICS: [(&str, Option<&str>); 15] = [
    ("bleu", Some("reference")),
    ("chrf", Some("reference")),
    ("wer", Some("reference")),
    ("cer", Some("reference")),
    ("rouge1", Some("reference")),
    ("rouge2", Some("reference")),
    ("rougeL", Some("reference")),
    ("jaccard", Some("reference")),
    ("relevance", Some("reference")),
    ("clarity", None),
    ("task_completion", Some("keywords")),
    ("distinct1", None),
    ("distinct2", None),
    ("schema_valid", Some("schema")),
    ("field_accuracy", Some("golden")),
];

/// One input line.
struct Pair {
    fields: Map<String, Value>,
    hypothesis: String,
    references: Vec<String>,
    keywords: Vec<String>,
    schema: Option<Schema>,
    golden: Option<Value>,
}

fn parse_line(line: &str, at: &str) -> anyhow::Result<Pair> {
    let Value::Object(fields) =
        serde_json::from_str::<Value>(line).with_context(|| format!("{at}: not a JSON object"))?
    else {
        bail!("{at}: not a JSON object");
    };
    let text = |v: &Value, what: &str| -> anyhow::Result<String> {
        v.as_str()
            .map(str::to_string)
            .with_context(|| format!("{at}: `{what}` must be a string"))
    };
    let texts = |v: Option<&Value>, what: &str| -> anyhow::Result<Vec<String>> {
        match v {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) if !a.is_empty() => a.iter().map(|x| text(x, what)).collect(),
            Some(_) => bail!("{at}: `{what}` must be a non-empty list of strings"),
        }
    };
    let hypothesis = text(
        fields
            .get("hypothesis")
            .with_context(|| format!("{at}: no `hypothesis`"))?,
        "hypothesis",
    )?;
    let mut references = texts(fields.get("references"), "references")?;
    if let Some(r) = fields.get("reference") {
        if !references.is_empty() {
            bail!("{at}: give `reference` or `references`, not both");
        }
        references.push(text(r, "reference")?);
    }
    let keywords = texts(fields.get("keywords"), "keywords")?;
    let schema = fields
        .get("schema")
        .map(|s| Schema::new(s.clone()))
        .transpose()
        .map_err(|e| anyhow::anyhow!("{at}: `schema` is not a valid JSON Schema: {e}"))?;
    let golden = fields.get("golden").cloned();
    Ok(Pair {
        fields,
        hypothesis,
        references,
        keywords,
        schema,
        golden,
    })
}

pub fn score(a: ScoreArgs) -> anyhow::Result<ExitCode> {
    for m in &a.metrics {
        if !METRICS.iter().any(|(k, _)| k == m) {
            let known: Vec<_> = METRICS.iter().map(|(k, _)| *k).collect();
            bail!(
                "--metrics: '{m}' is not a metric here (known: {})",
                known.join(", ")
            );
        }
    }
    let name = a.input.display().to_string();
    let reader: Box<dyn BufRead> = if name == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(&a.input).with_context(|| format!("cannot read {name}"))?,
        ))
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let (mut bleu_total, mut chrf_total) = (bleu::BleuStats::default(), [[0usize; 3]; 6]);
    for (i, line) in reader.lines().enumerate() {
        let at = format!("{name}:{}", i + 1);
        let line = line.with_context(|| at.clone())?;
        if line.trim().is_empty() {
            continue;
        }
        let mut pair = parse_line(&line, &at)?;
        let refs: Vec<&str> = pair.references.iter().map(String::as_str).collect();
        let h = pair.hypothesis.as_str();
        if a.corpus {
            if refs.is_empty() {
                bail!("{at}: --corpus needs `reference` or `references` on every line");
            }
            bleu_total += bleu::stats(h, &refs);
            let s = chrf::stats(h, &refs);
            for (t, x) in chrf_total.iter_mut().zip(s) {
                for k in 0..3 {
                    t[k] += x[k];
                }
            }
        }
        let parsed = structured::answer_json(h);
        for m in &a.metrics {
            let need = METRICS.iter().find(|(k, _)| k == m).and_then(|(_, n)| *n);
            let missing = match need {
                Some("reference") => refs.is_empty(),
                Some("keywords") => pair.keywords.is_empty() && refs.is_empty(),
                Some("schema") => pair.schema.is_none(),
                Some("golden") => pair.golden.is_none(),
                _ => false,
            };
            if missing {
                bail!("{at}: metric '{m}' needs `{}`", need.unwrap_or_default());
            }
            let first = refs.first().copied().unwrap_or("");
            let v = match m.as_str() {
                "bleu" => Value::from(bleu::sentence_bleu(h, &refs)),
                "chrf" => Value::from(chrf::sentence_chrf(h, &refs)),
                "wer" => Value::from(wer::wer(first, h)),
                "cer" => Value::from(wer::cer(first, h)),
                "rouge1" => Value::from(rouge::rouge_n_with(first, h, 1, a.stem)),
                "rouge2" => Value::from(rouge::rouge_n_with(first, h, 2, a.stem)),
                "rougeL" => Value::from(rouge::rouge_l_with(first, h, a.stem)),
                "jaccard" => Value::from(jaccard(h, first)),
                "relevance" => Value::from(conversation::relevance(h, first)),
                "clarity" => Value::from(conversation::clarity(h)),
                "task_completion" => {
                    let keywords = if pair.keywords.is_empty() {
                        conversation::keywords_of(&refs.join("\n"))
                    } else {
                        pair.keywords.clone()
                    };
                    conversation::task_completion(h, &keywords).map_or(Value::Null, Value::from)
                }
                "distinct1" => Value::from(creativity::distinct_n(h, 1)),
                "distinct2" => Value::from(creativity::distinct_n(h, 2)),
                "schema_valid" => Value::from(
                    pair.schema
                        .as_ref()
                        .is_some_and(|s| parsed.as_ref().is_some_and(|v| s.is_valid(v))),
                ),
                _ => Value::from(pair.golden.as_ref().map_or(0.0, |g| {
                    parsed
                        .as_ref()
                        .map_or(0.0, |v| structured::field_accuracy(g, v, None))
                })),
            };
            pair.fields.insert(m.clone(), v);
        }
        serde_json::to_writer(&mut out, &pair.fields)?;
        out.write_all(b"\n")?;
    }
    if a.corpus {
        let last = serde_json::json!({
            "corpus": true,
            "bleu": bleu::score(&bleu_total, false),
            "chrf": chrf::score(&chrf_total),
        });
        serde_json::to_writer(&mut out, &last)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
