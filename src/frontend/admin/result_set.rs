//! A console answer: columns with their PostgreSQL types, text rows, and the messages that
//! carry them (RowDescription, DataRow..., CommandComplete).

use crate::protocol::messages::{command_complete, write_message};
use bytes::{BufMut, BytesMut};

/// A column's type, as PgBouncer reports the same column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Text,
    Int4,
    Int8,
    Numeric,
    Bool,
}

impl Type {
    fn oid(self) -> u32 {
        match self {
            Type::Text => 25,
            Type::Int4 => 23,
            Type::Int8 => 20,
            Type::Numeric => 1700,
            Type::Bool => 16,
        }
    }

    fn size(self) -> i16 {
        match self {
            Type::Int4 => 4,
            Type::Int8 => 8,
            Type::Bool => 1,
            Type::Text | Type::Numeric => -1,
        }
    }
}

/// One value: text, or NULL.
pub type Cell = Option<String>;

/// A value written as text.
pub fn cell(v: impl ToString) -> Cell {
    Some(v.to_string())
}

/// A boolean as PostgreSQL writes it in text (`t` / `f`).
pub fn bool_cell(v: bool) -> Cell {
    cell(if v { "t" } else { "f" })
}

pub struct ResultSet {
    columns: Vec<(&'static str, Type)>,
    rows: Vec<Vec<Cell>>,
}

impl ResultSet {
    pub fn new(columns: &[(&'static str, Type)]) -> ResultSet {
        ResultSet {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as columns; missing ones are NULL, extra ones dropped).
    pub fn row(&mut self, mut cells: Vec<Cell>) {
        cells.resize(self.columns.len(), None);
        self.rows.push(cells);
    }

    /// RowDescription, the rows, and CommandComplete with `tag`.
    pub fn write(&self, out: &mut BytesMut, tag: &str) {
        write_message(out, b'T', |b| {
            b.put_i16(self.columns.len() as i16);
            for (name, ty) in &self.columns {
                b.extend_from_slice(name.as_bytes());
                b.put_u8(0);
                b.put_u32(0); // table oid
                b.put_i16(0); // column number
                b.put_u32(ty.oid());
                b.put_i16(ty.size());
                b.put_i32(-1); // type modifier
                b.put_i16(0); // text format
            }
        });
        for row in &self.rows {
            write_message(out, b'D', |b| {
                b.put_i16(row.len() as i16);
                for cell in row {
                    match cell {
                        Some(v) => {
                            b.put_i32(v.len() as i32);
                            b.extend_from_slice(v.as_bytes());
                        }
                        None => b.put_i32(-1),
                    }
                }
            });
        }
        command_complete(out, tag);
    }
}
