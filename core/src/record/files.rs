//! The record's file forms: JSON Lines and CSV (the same columns in the same order, a nested
//! value as its JSON text, the answer's cell written from the record so a row copies no answer),
//! and reading JSON Lines back.

use std::io::Write;

use serde::Deserialize;

use super::Record;

/// Writes records as JSON Lines.
pub fn write_jsonl<W: Write>(mut w: W, records: &[Record]) -> std::io::Result<()> {
    for r in records {
        serde_json::to_writer(&mut w, r)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Writes records as CSV with a header row, columns in record order. A nested value (`scores`)
/// is written as its JSON text; `null` is an empty cell.
pub fn write_csv<W: Write>(w: W, records: &[Record]) -> Result<(), csv::Error> {
    let mut writer = csv::Writer::from_writer(w);
    for (i, r) in records.iter().enumerate() {
        write_csv_row(&mut writer, r, i == 0)?;
    }
    writer.flush()?;
    Ok(())
}

/// Writes one record as a CSV row (after the header row when `header`), nested values as
/// JSON text.
pub fn write_csv_row<W: Write>(
    writer: &mut csv::Writer<W>,
    r: &Record,
    header: bool,
) -> Result<(), csv::Error> {
    let json = serde_json::to_vec(r).map_err(|e| csv::Error::from(std::io::Error::other(e)))?;
    write_csv_row_from(writer, r, &json, header)
}

/// One CSV row of `r` from `json`, the record as JSON (its JSONL line, already written): the
/// cells in the record's field order, parsed from `json`, except the answer, written from the
/// record itself. A row then costs no copy of an answer of any length.
pub fn write_csv_row_from<W: Write>(
    writer: &mut csv::Writer<W>,
    r: &Record,
    json: &[u8],
    header: bool,
) -> Result<(), csv::Error> {
    let fields = ordered_fields(json).map_err(|e| csv::Error::from(std::io::Error::other(e)))?;
    if header {
        writer.write_record(fields.iter().map(|(k, _)| k.as_str()))?;
    }
    for (k, v) in &fields {
        match k.as_str() {
            ANSWER => writer.write_field(r.answer.as_deref().unwrap_or_default())?,
            _ => writer.write_field(cell(v).as_bytes())?,
        }
    }
    writer.write_record(None::<&[u8]>)
}

/// The record field whose cell comes from the record, not from its JSON.
const ANSWER: &str = "answer";

/// A record's fields in declaration order, as JSON values; the answer's value is left out
/// (`Null`): skipped in the text, never copied.
fn ordered_fields(json: &[u8]) -> Result<Vec<(String, serde_json::Value)>, serde_json::Error> {
    struct Ordered(Vec<(String, serde_json::Value)>);
    impl<'de> Deserialize<'de> for Ordered {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Ordered;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a record object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Ordered, A::Error> {
                    let mut out = Vec::with_capacity(m.size_hint().unwrap_or(112));
                    while let Some(key) = m.next_key::<String>()? {
                        let value = if key == ANSWER {
                            m.next_value::<serde::de::IgnoredAny>()?;
                            serde_json::Value::Null
                        } else {
                            m.next_value()?
                        };
                        out.push((key, value));
                    }
                    Ok(Ordered(out))
                }
            }
            d.deserialize_map(Visit)
        }
    }
    Ok(serde_json::from_slice::<Ordered>(json)?.0)
}

fn cell(v: &serde_json::Value) -> std::borrow::Cow<'_, str> {
    match v {
        serde_json::Value::Null => std::borrow::Cow::Borrowed(""),
        serde_json::Value::String(s) => std::borrow::Cow::Borrowed(s),
        other => std::borrow::Cow::Owned(other.to_string()),
    }
}

/// Reads JSON Lines records; an error names the line.
pub fn read_jsonl(text: &str) -> Result<Vec<Record>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}
