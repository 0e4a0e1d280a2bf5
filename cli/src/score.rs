//! `llmpulse score`: reference-based metrics over arbitrary texts, offline. Each input line is
//! `{"hypothesis": …, "reference": …}` (or `"references": […]`); each output line is the same
//! object with one number per metric, in the same order. WER, CER and ROUGE use the first
//! reference.

use std::io::{BufRead, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use llmpulse_score::{bleu, chrf, jaccard, rouge, wer};
use serde_json::{Map, Value};

use crate::args::ScoreArgs;

const METRICS: [&str; 8] = [
    "bleu", "chrf", "wer", "cer", "rouge1", "rouge2", "rougeL", "jaccard",
];

/// One input pair.
struct Pair {
    fields: Map<String, Value>,
    hypothesis: String,
    references: Vec<String>,
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
    let hypothesis = text(
        fields
            .get("hypothesis")
            .with_context(|| format!("{at}: no `hypothesis`"))?,
        "hypothesis",
    )?;
    let references = match (fields.get("reference"), fields.get("references")) {
        (Some(r), None) => vec![text(r, "reference")?],
        (None, Some(Value::Array(rs))) if !rs.is_empty() => rs
            .iter()
            .map(|r| text(r, "references[]"))
            .collect::<anyhow::Result<_>>()?,
        _ => bail!("{at}: give `reference` (a string) or `references` (a non-empty list)"),
    };
    Ok(Pair {
        fields,
        hypothesis,
        references,
    })
}

pub fn score(a: ScoreArgs) -> anyhow::Result<ExitCode> {
    for m in &a.metrics {
        if !METRICS.contains(&m.as_str()) {
            bail!(
                "--metrics: '{m}' is not a metric here (known: {})",
                METRICS.join(", ")
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
        let line = line.with_context(|| format!("{name}:{}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let mut pair = parse_line(&line, &format!("{name}:{}", i + 1))?;
        let refs: Vec<&str> = pair.references.iter().map(String::as_str).collect();
        let h = pair.hypothesis.as_str();
        if a.corpus {
            bleu_total += bleu::stats(h, &refs);
            let s = chrf::stats(h, &refs);
            for (t, x) in chrf_total.iter_mut().zip(s) {
                for k in 0..3 {
                    t[k] += x[k];
                }
            }
        }
        for m in &a.metrics {
            let v = match m.as_str() {
                "bleu" => bleu::sentence_bleu(h, &refs),
                "chrf" => chrf::sentence_chrf(h, &refs),
                "wer" => wer::wer(refs[0], h),
                "cer" => wer::cer(refs[0], h),
                "rouge1" => rouge::rouge_n(refs[0], h, 1),
                "rouge2" => rouge::rouge_n(refs[0], h, 2),
                "rougeL" => rouge::rouge_l(refs[0], h),
                _ => jaccard(h, refs[0]),
            };
            pair.fields.insert(m.clone(), Value::from(v));
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
