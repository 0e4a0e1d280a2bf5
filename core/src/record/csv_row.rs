//! A record's CSV row straight from its `Serialize`: each field's cell is what its JSON value
//! says (`null` empty, a string as itself, a number or boolean as its JSON text, a nested value
//! as its JSON), without writing the JSON and parsing it back. The answer's cell is written from
//! the record, so a row copies no answer of any length.

use std::fmt::Display;
use std::io::Write;
use std::ops::Range;

use serde::ser::{self, Impossible, Serialize, SerializeStruct, Serializer};

use super::Record;

/// The record field whose cell comes from the record itself.
const ANSWER: &str = "answer";

/// Builds rows; its buffers are kept from one row to the next.
#[derive(Default)]
pub struct RowWriter {
    /// The cells' bytes, one after the other.
    text: Vec<u8>,
    cells: Vec<(&'static str, Cell)>,
}

#[derive(Clone)]
enum Cell {
    Text(Range<usize>),
    Answer,
}

impl RowWriter {
    /// Writes `r` as one row of `writer`, after the header row (the field names) when `header`.
    pub fn write<W: Write>(
        &mut self,
        writer: &mut csv::Writer<W>,
        r: &Record,
        header: bool,
    ) -> Result<(), csv::Error> {
        self.text.clear();
        self.cells.clear();
        r.serialize(Fields(self))
            .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))?;
        if header {
            writer.write_record(self.cells.iter().map(|(k, _)| k.as_bytes()))?;
        }
        for (_, cell) in &self.cells {
            match cell {
                Cell::Text(at) => writer.write_field(&self.text[at.clone()])?,
                Cell::Answer => writer.write_field(r.answer.as_deref().unwrap_or_default())?,
            }
        }
        writer.write_record(None::<&[u8]>)?;
        // A row as long as a huge error message is not kept for the next one.
        if self.text.capacity() > TEXT_KEPT {
            self.text = Vec::new();
        }
        Ok(())
    }
}

/// The room kept for the next row's cells.
const TEXT_KEPT: usize = 64 * 1024;

/// Why a value could not be written as a cell.
#[derive(Debug)]
enum CellError {
    /// A nested value: written as its JSON text instead.
    Nested,
    Other(String),
}

impl Display for CellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CellError::Nested => f.write_str("a nested value"),
            CellError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CellError {}

impl ser::Error for CellError {
    fn custom<T: Display>(msg: T) -> Self {
        CellError::Other(msg.to_string())
    }
}

/// The record itself: a struct, each field a cell.
struct Fields<'a>(&'a mut RowWriter);

impl SerializeStruct for Fields<'_> {
    type Ok = ();
    type Error = CellError;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        let row = &mut *self.0;
        if key == ANSWER {
            row.cells.push((key, Cell::Answer));
            return Ok(());
        }
        let start = row.text.len();
        match value.serialize(Text(&mut row.text)) {
            Ok(()) => {}
            Err(CellError::Nested) => {
                row.text.truncate(start);
                serde_json::to_writer(&mut row.text, value)
                    .map_err(|e| CellError::Other(format!("{key}: {e}")))?;
            }
            Err(e) => return Err(e),
        }
        row.cells.push((key, Cell::Text(start..row.text.len())));
        Ok(())
    }

    fn end(self) -> Result<(), CellError> {
        Ok(())
    }
}

/// Serializer methods that refuse: what a record (`Fields`) or a cell (`Text`) is not.
macro_rules! refuse {
    ($err:expr; $($name:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<$ok, CellError> { Err($err) })*
    };
}

impl<'a> Serializer for Fields<'a> {
    type Ok = ();
    type Error = CellError;
    type SerializeSeq = Impossible<(), CellError>;
    type SerializeTuple = Impossible<(), CellError>;
    type SerializeTupleStruct = Impossible<(), CellError>;
    type SerializeTupleVariant = Impossible<(), CellError>;
    type SerializeMap = Impossible<(), CellError>;
    type SerializeStruct = Fields<'a>;
    type SerializeStructVariant = Impossible<(), CellError>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields<'a>, CellError> {
        Ok(self)
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), CellError> {
        Err(not_a_record())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), CellError> {
        Err(not_a_record())
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), CellError> {
        Err(not_a_record())
    }

    refuse! { not_a_record();
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> (); serialize_i16(i16) -> (); serialize_i32(i32) -> ();
        serialize_i64(i64) -> (); serialize_u8(u8) -> (); serialize_u16(u16) -> ();
        serialize_u32(u32) -> (); serialize_u64(u64) -> ();
        serialize_f32(f32) -> (); serialize_f64(f64) -> ();
        serialize_char(char) -> (); serialize_str(&str) -> (); serialize_bytes(&[u8]) -> ();
        serialize_none() -> (); serialize_unit() -> (); serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

fn not_a_record() -> CellError {
    CellError::Other("a record serializes as a struct".into())
}

/// Serializer methods that write the value as its JSON text (numbers and booleans).
macro_rules! as_json {
    ($($name:ident($t:ty);)*) => {
        $(fn $name(self, v: $t) -> Result<(), CellError> { self.json(v) })*
    };
}

/// One field's value as its cell's text; a nested value refuses (`CellError::Nested`) and is
/// written as JSON by the caller.
struct Text<'a>(&'a mut Vec<u8>);

impl Text<'_> {
    /// A number or boolean: its JSON text, as the JSON line has it.
    fn json<T: Serialize>(self, v: T) -> Result<(), CellError> {
        serde_json::to_writer(self.0, &v).map_err(|e| CellError::Other(e.to_string()))
    }
}

impl Serializer for Text<'_> {
    type Ok = ();
    type Error = CellError;
    type SerializeSeq = Impossible<(), CellError>;
    type SerializeTuple = Impossible<(), CellError>;
    type SerializeTupleStruct = Impossible<(), CellError>;
    type SerializeTupleVariant = Impossible<(), CellError>;
    type SerializeMap = Impossible<(), CellError>;
    type SerializeStruct = Impossible<(), CellError>;
    type SerializeStructVariant = Impossible<(), CellError>;

    as_json! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_u8(u8); serialize_u16(u16); serialize_u32(u32);
        serialize_u64(u64);
    }
    // JSON has no NaN or infinity: the line says `null`, so the cell is empty.
    fn serialize_f32(self, v: f32) -> Result<(), CellError> {
        if v.is_finite() { self.json(v) } else { Ok(()) }
    }
    fn serialize_f64(self, v: f64) -> Result<(), CellError> {
        if v.is_finite() { self.json(v) } else { Ok(()) }
    }
    fn serialize_char(self, v: char) -> Result<(), CellError> {
        self.0
            .extend_from_slice(v.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), CellError> {
        self.0.extend_from_slice(v.as_bytes());
        Ok(())
    }
    fn serialize_none(self) -> Result<(), CellError> {
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<(), CellError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CellError> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CellError> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), CellError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), CellError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), CellError> {
        Err(CellError::Nested)
    }

    refuse! { CellError::Nested;
        serialize_bytes(&[u8]) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}
