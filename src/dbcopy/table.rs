//! What is copied: each table's columns with the kind of value they hold,
//! and the exact conversion of one SQLite value to its PostgreSQL column.
//! A value PostgreSQL could not hold as it is (a NUL in text, an integer
//! past 2^53 in a `double precision` column, text that is not JSON in a
//! `jsonb` one) stops the copy with the row and column named: never a
//! different value on the other side.

use postgres::types::ToSql;
use rusqlite::types::ValueRef;

use crate::db::ident;
use crate::rules::ValueType;
use crate::schema::{Collection, FieldKind, value_type};

/// The value a column holds, and so its PostgreSQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    NullableText,
    /// `double precision`: SQLite's integers and reals of a NUMERIC column.
    Number,
    /// `bigint`.
    Integer,
    /// `boolean` from SQLite's 0/1.
    Bool,
    Json,
    NullableJson,
}

impl Kind {
    /// The placeholder, cast so PostgreSQL never guesses a parameter's type.
    fn placeholder(self, n: usize) -> String {
        match self {
            Kind::Text | Kind::NullableText => format!("${n}::text"),
            Kind::Number => format!("${n}::float8"),
            Kind::Integer => format!("${n}::int8"),
            Kind::Bool => format!("${n}::boolean"),
            Kind::Json | Kind::NullableJson => format!("${n}::text::jsonb"),
        }
    }

    fn nullable(self) -> bool {
        matches!(self, Kind::NullableText | Kind::NullableJson)
    }
}

/// One column to copy.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

/// One table to copy, its rows read in rowid order (which the PostgreSQL
/// identity column then keeps).
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
}

fn columns(spec: &[(&str, Kind)]) -> Vec<Column> {
    spec.iter()
        .map(|(name, kind)| Column {
            name: (*name).to_owned(),
            kind: *kind,
        })
        .collect()
}

impl Table {
    /// The system tables of data.db.
    pub fn system() -> Vec<Table> {
        use Kind::*;
        vec![
            Table {
                name: "_migrations".into(),
                columns: columns(&[("file", Text), ("applied", Text)]),
            },
            Table {
                name: "_collections".into(),
                columns: columns(&[
                    ("id", Text),
                    ("name", Text),
                    ("type", Text),
                    ("system", Bool),
                    ("fields", Json),
                    ("indexes", Json),
                    ("listRule", NullableText),
                    ("viewRule", NullableText),
                    ("createRule", NullableText),
                    ("updateRule", NullableText),
                    ("deleteRule", NullableText),
                    ("options", Json),
                    ("created", Text),
                    ("updated", Text),
                ]),
            },
            Table {
                name: "_params".into(),
                columns: columns(&[
                    ("id", Text),
                    // Text: settings sealed with a key are base64, not JSON.
                    ("value", NullableText),
                    ("created", Text),
                    ("updated", Text),
                ]),
            },
        ]
    }

    /// The request log table of auxiliary.db.
    pub fn logs() -> Table {
        use Kind::*;
        Table {
            name: "_logs".into(),
            columns: columns(&[
                ("id", Text),
                ("level", Integer),
                ("message", Text),
                ("data", Json),
                ("created", Text),
            ]),
        }
    }

    /// A base or auth collection's table.
    pub fn collection(c: &Collection) -> Table {
        let columns = c
            .fields
            .iter()
            .map(|f| Column {
                name: f.name.as_str().to_owned(),
                kind: match value_type(f) {
                    ValueType::Number => Kind::Number,
                    ValueType::Bool => Kind::Bool,
                    ValueType::Document
                        if matches!(f.kind, FieldKind::Json { .. }) && !f.is_multi() =>
                    {
                        Kind::NullableJson
                    }
                    ValueType::Document => Kind::Json,
                    _ => Kind::Text,
                },
            })
            .collect();
        Table {
            name: c.name.as_str().to_owned(),
            columns,
        }
    }

    /// The SQLite query reading every row in insertion order.
    pub fn select_sql(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| ident(&c.name)).collect();
        format!(
            "SELECT {} FROM {} ORDER BY rowid",
            cols.join(", "),
            ident(&self.name)
        )
    }

    /// A PostgreSQL `INSERT` of `rows` rows.
    pub fn insert_sql(&self, rows: usize) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| ident(&c.name)).collect();
        let width = self.columns.len();
        let tuples: Vec<String> = (0..rows)
            .map(|r| {
                let values: Vec<String> = self
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| c.kind.placeholder(r * width + i + 1))
                    .collect();
                format!("({})", values.join(", "))
            })
            .collect();
        format!(
            "INSERT INTO {} ({}) VALUES {}",
            ident(&self.name),
            cols.join(", "),
            tuples.join(", ")
        )
    }
}

/// A value that cannot be carried over as it is.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct Unconvertible {
    pub reason: String,
}

fn refuse(reason: impl Into<String>) -> Unconvertible {
    Unconvertible {
        reason: reason.into(),
    }
}

/// A converted value, ready to bind.
pub type Bound = Box<dyn ToSql + Sync + Send>;

/// The largest integer a `double precision` holds exactly.
const EXACT_INTEGER: i64 = 1 << 53;

/// Converts one SQLite value for a column of `kind`.
pub fn convert(kind: Kind, value: ValueRef<'_>) -> Result<Bound, Unconvertible> {
    match (kind, value) {
        (k, ValueRef::Null) if k.nullable() => Ok(Box::new(None::<String>)),
        (_, ValueRef::Null) => Err(refuse("NULL in a column that cannot hold it")),
        (_, ValueRef::Blob(_)) => Err(refuse("a binary value (BLOB)")),
        (Kind::Text | Kind::NullableText, ValueRef::Text(bytes)) => Ok(Box::new(text(bytes)?)),
        (Kind::Text | Kind::NullableText, _) => Err(refuse(
            "a number in a text column (written by raw SQL): store it as text first",
        )),
        (Kind::Number, ValueRef::Integer(i)) if (-EXACT_INTEGER..=EXACT_INTEGER).contains(&i) => {
            // Exact: every integer within ±2^53 is a double.
            Ok(Box::new(i as f64))
        }
        (Kind::Number, ValueRef::Integer(i)) => Err(refuse(format!(
            "the integer {i} is past 2^53, which PostgreSQL's double precision cannot hold exactly"
        ))),
        (Kind::Number, ValueRef::Real(f)) => Ok(Box::new(f)),
        (Kind::Integer, ValueRef::Integer(i)) => Ok(Box::new(i)),
        (Kind::Number | Kind::Integer, ValueRef::Text(_)) => {
            Err(refuse("text in a number column (written by raw SQL)"))
        }
        (Kind::Integer, ValueRef::Real(f)) => {
            Err(refuse(format!("the real {f} in an integer column")))
        }
        (Kind::Bool, ValueRef::Integer(i @ (0 | 1))) => Ok(Box::new(i == 1)),
        (Kind::Bool, _) => Err(refuse("a bool column holding something other than 0 or 1")),
        (Kind::Json | Kind::NullableJson, ValueRef::Text(bytes)) => {
            let text = text(bytes)?;
            let parsed: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| refuse(format!("not valid JSON ({e})")))?;
            if has_nul(&parsed) {
                return Err(refuse(
                    "JSON with a \\u0000 character, which PostgreSQL's jsonb cannot hold",
                ));
            }
            Ok(Box::new(text))
        }
        (Kind::Json | Kind::NullableJson, ValueRef::Integer(i)) => Ok(Box::new(i.to_string())),
        (Kind::Json | Kind::NullableJson, ValueRef::Real(f)) => serde_json::Number::from_f64(f)
            .map(|n| -> Bound { Box::new(n.to_string()) })
            .ok_or_else(|| refuse(format!("the real {f} is not a JSON number"))),
    }
}

/// UTF-8 text without NUL, which PostgreSQL's `text` cannot hold.
fn text(bytes: &[u8]) -> Result<String, Unconvertible> {
    let text = std::str::from_utf8(bytes).map_err(|_| refuse("text that is not valid UTF-8"))?;
    if text.contains('\0') {
        return Err(refuse(
            "text with a NUL character, which PostgreSQL's text cannot hold",
        ));
    }
    Ok(text.to_owned())
}

fn has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(has_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sql_numbers_placeholders_row_by_row_with_casts() {
        let t = Table {
            name: "posts".into(),
            columns: columns(&[
                ("id", Kind::Text),
                ("n", Kind::Number),
                ("j", Kind::NullableJson),
            ]),
        };
        assert_eq!(
            t.insert_sql(2),
            "INSERT INTO \"posts\" (\"id\", \"n\", \"j\") VALUES ($1::text, $2::float8, $3::text::jsonb), \
             ($4::text, $5::float8, $6::text::jsonb)"
        );
        assert_eq!(
            t.select_sql(),
            "SELECT \"id\", \"n\", \"j\" FROM \"posts\" ORDER BY rowid"
        );
    }

    #[test]
    fn what_postgres_cannot_hold_exactly_is_refused() {
        let refused = [
            (Kind::Text, ValueRef::Text(b"a\0b")),
            (Kind::Text, ValueRef::Text(&[0xff, 0xfe])),
            (Kind::Text, ValueRef::Integer(5)),
            (Kind::Text, ValueRef::Null),
            (Kind::Text, ValueRef::Blob(b"x")),
            (Kind::Number, ValueRef::Integer(EXACT_INTEGER + 1)),
            (Kind::Number, ValueRef::Integer(i64::MIN)),
            (Kind::Number, ValueRef::Text(b"12")),
            (Kind::Bool, ValueRef::Integer(2)),
            (Kind::Bool, ValueRef::Text(b"true")),
            (Kind::Json, ValueRef::Text(b"{not json")),
            (Kind::Json, ValueRef::Text(br#"{"a":"x\u0000y"}"#)),
            (Kind::Json, ValueRef::Null),
            (Kind::Integer, ValueRef::Real(1.5)),
        ];
        for (kind, value) in refused {
            assert!(convert(kind, value).is_err(), "{kind:?} {value:?}");
        }
    }

    #[test]
    fn what_postgres_holds_exactly_is_accepted() {
        let accepted = [
            (Kind::Text, ValueRef::Text("héllo ✓".as_bytes())),
            (Kind::NullableText, ValueRef::Null),
            (Kind::Number, ValueRef::Integer(EXACT_INTEGER)),
            (Kind::Number, ValueRef::Integer(-EXACT_INTEGER)),
            (Kind::Number, ValueRef::Real(0.1)),
            (Kind::Integer, ValueRef::Integer(i64::MAX)),
            (Kind::Bool, ValueRef::Integer(0)),
            (Kind::Bool, ValueRef::Integer(1)),
            (Kind::Json, ValueRef::Text(br#"{"b":[1,2.5,"x"],"a":null}"#)),
            (Kind::NullableJson, ValueRef::Null),
            (Kind::Json, ValueRef::Integer(7)),
        ];
        for (kind, value) in accepted {
            assert!(convert(kind, value).is_ok(), "{kind:?} {value:?}");
        }
    }
}
