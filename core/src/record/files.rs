//! The record's file forms: JSON Lines and CSV (the same columns in the same order, a nested
//! value as its JSON text; rows come from [`super::csv_row`]), and reading JSON Lines back.

use std::io::Write;

use super::Record;
use super::csv_row::RowWriter;

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
/// JSON text. A writer of many rows keeps a [`RowWriter`] instead.
pub fn write_csv_row<W: Write>(
    writer: &mut csv::Writer<W>,
    r: &Record,
    header: bool,
) -> Result<(), csv::Error> {
    RowWriter::default().write(writer, r, header)
}

/// Reads JSON Lines records; an error names the line.
pub fn read_jsonl(text: &str) -> Result<Vec<Record>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}
