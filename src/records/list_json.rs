//! How a list turns its rows into items: as `Value`s (for expansion, field
//! selection, search marks and hooks to reshape), or written straight from
//! SQLite's column values into JSON bytes when nothing reshapes them.
//!
//! The bytes are exactly what serialising the `Value` path gives: object
//! keys in the order of serde_json's (sorted) map, numbers and strings
//! formatted by serde_json. What the caller may see is decided once per
//! page (the caller is the same for every row), not once per row.

use super::access::Caller;
use super::json_escape::write_str;
use super::read::row_record;
use super::value::from_sql;
use crate::schema::{CollectionType, CompiledCollection, Field, FieldKind};
use rusqlite::Row;
use rusqlite::types::ValueRef;
use serde_json::Value;
use std::collections::BTreeMap;

/// Collects a page's items, one row at a time.
pub(crate) trait ItemSink: Send + 'static {
    /// Prepares for the rows of `collection` as `caller` sees them.
    fn start(collection: &CompiledCollection, caller: &Caller) -> Self;
    /// Adds one row selected with the collection's `select_sql`.
    fn push(
        &mut self,
        collection: &CompiledCollection,
        caller: &Caller,
        row: &Row<'_>,
    ) -> rusqlite::Result<()>;
}

impl ItemSink for Vec<Value> {
    fn start(_: &CompiledCollection, _: &Caller) -> Self {
        Vec::new()
    }

    fn push(
        &mut self,
        collection: &CompiledCollection,
        caller: &Caller,
        row: &Row<'_>,
    ) -> rusqlite::Result<()> {
        self.push(row_record(collection, row, caller)?);
        Ok(())
    }
}

/// A page's items as one JSON array, already serialised, and written
/// where the page's bytes will be (so the array is never copied): the
/// buffer starts with the page's first key, `{"items":[`.
pub struct JsonItems {
    /// `{"items":[` and the comma-separated items so far.
    buf: Vec<u8>,
    rows: usize,
    /// The record's keys in output order with where each value comes from;
    /// empty for an auth collection, whose rows take the `Value` path
    /// (whether `email` shows depends on the row).
    layout: Vec<(Vec<u8>, Source)>,
    auth: bool,
}

/// Where one key's value comes from.
enum Source {
    /// A value that is the same on every row, already serialised.
    Fixed(Vec<u8>),
    /// Column `index` of the row, converted as `from_sql` does for the field.
    Column(usize),
}

/// What the buffer of [`JsonItems`] opens with.
const OPENING: &[u8] = b"{\"items\":[";

impl JsonItems {
    /// `{"items":[…]`: the page object up to and including its items, for
    /// the page's other keys (which sort after `items`) to follow.
    pub fn into_opened_page(mut self) -> Vec<u8> {
        self.buf.push(b']');
        self.buf
    }

    /// Items already read as values (PostgreSQL's path), serialised as the
    /// rows would have been.
    pub(crate) fn from_values(items: &[Value]) -> Self {
        let mut buf = OPENING.to_vec();
        for (n, item) in items.iter().enumerate() {
            if n > 0 {
                buf.push(b',');
            }
            write_json(&mut buf, item);
        }
        Self {
            buf,
            rows: items.len(),
            layout: Vec::new(),
            auth: false,
        }
    }

    fn write_row(
        &mut self,
        collection: &CompiledCollection,
        row: &Row<'_>,
    ) -> rusqlite::Result<()> {
        self.buf.push(b'{');
        for (n, (key, source)) in self.layout.iter().enumerate() {
            if n > 0 {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(key);
            match source {
                Source::Fixed(bytes) => self.buf.extend_from_slice(bytes),
                // The layout was made from this collection's fields, so the
                // field is there; `null` rather than a panic if it ever is not.
                Source::Column(i) => match collection.fields.get(*i) {
                    Some(field) => write_column(&mut self.buf, field, row.get_ref(*i)?),
                    None => self.buf.extend_from_slice(b"null"),
                },
            }
        }
        self.buf.push(b'}');
        Ok(())
    }
}

impl ItemSink for JsonItems {
    fn start(collection: &CompiledCollection, caller: &Caller) -> Self {
        let auth = collection.kind == CollectionType::Auth;
        Self {
            buf: {
                let mut buf = Vec::with_capacity(4096);
                buf.extend_from_slice(OPENING);
                buf
            },
            rows: 0,
            layout: if auth {
                Vec::new()
            } else {
                layout(collection, caller)
            },
            auth,
        }
    }

    fn push(
        &mut self,
        collection: &CompiledCollection,
        caller: &Caller,
        row: &Row<'_>,
    ) -> rusqlite::Result<()> {
        if self.rows > 0 {
            self.buf.push(b',');
        }
        self.rows += 1;
        if self.auth {
            let record = row_record(collection, row, caller)?;
            write_json(&mut self.buf, &record);
            Ok(())
        } else {
            self.write_row(collection, row)
        }
    }
}

/// The keys `row_record` gives a (non-auth) record for `caller`, in the
/// order its map serialises them, each with the source of its value.
fn layout(collection: &CompiledCollection, caller: &Caller) -> Vec<(Vec<u8>, Source)> {
    let mut keys: BTreeMap<String, Source> = BTreeMap::new();
    let fixed = |v: Value| Source::Fixed(serde_json::to_vec(&v).unwrap_or_default());
    keys.insert(
        "collectionId".into(),
        fixed(Value::from(collection.id.as_str())),
    );
    keys.insert(
        "collectionName".into(),
        fixed(Value::from(collection.name.as_str())),
    );
    for (i, field) in collection.fields.iter().enumerate() {
        if field.hidden && !caller.superuser {
            continue;
        }
        let source = match field.kind {
            FieldKind::Password { .. } => fixed(Value::from("")),
            _ => Source::Column(i),
        };
        keys.insert(field.name.as_str().to_owned(), source);
    }
    keys.into_iter()
        .map(|(key, source)| {
            let mut k = serde_json::to_vec(&key).unwrap_or_default();
            k.push(b':');
            (k, source)
        })
        .collect()
}

/// Writes what `from_sql(field, raw)` serialises to; the common cases
/// without building the `Value`.
fn write_column(out: &mut Vec<u8>, field: &Field, raw: ValueRef<'_>) {
    if !field.is_multi() {
        match (&field.kind, raw) {
            (FieldKind::Number { .. }, ValueRef::Integer(i)) => {
                write_json(out, &i);
                return;
            }
            (FieldKind::Bool, ValueRef::Integer(i)) => {
                out.extend_from_slice(if i != 0 { b"true" } else { b"false" });
                return;
            }
            (kind, ValueRef::Text(t)) if is_plain_text(kind) => {
                match std::str::from_utf8(t) {
                    Ok(s) => write_str(out, s),
                    Err(_) => write_str(out, &String::from_utf8_lossy(t)),
                }
                return;
            }
            _ => {}
        }
    }
    write_json(out, &from_sql(field, raw));
}

/// Kinds whose text column `from_sql` returns as the same string.
fn is_plain_text(kind: &FieldKind) -> bool {
    !matches!(
        kind,
        FieldKind::Number { .. } | FieldKind::Bool | FieldKind::Json { .. } | FieldKind::GeoPoint
    )
}

/// Serialises `value` onto `out` (writing to a `Vec` cannot fail, and
/// neither can serialising a `str` or a `Value`, whose keys are strings).
fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(out, value);
}
