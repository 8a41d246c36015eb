//! The rules `Scope` of a collection's table: field names resolve to quoted
//! columns of that table (JSON sub-paths through `json_extract` with a
//! validated path), `@request.auth.*` to the caller. Relation paths and
//! `@collection.*` are not resolved yet and are reported as errors.

use super::access::Caller;
use crate::db::ident;
use crate::rules::{ColumnRef, Path, RuleError, Scope, SqlValue};
use crate::schema::{Collection, FieldKind};

/// Resolves identifiers against one collection's table.
pub struct TableScope<'a> {
    collection: &'a Collection,
    caller: &'a Caller,
    /// Hidden fields may be used (superusers, and rules written by them).
    allow_hidden: bool,
}

impl<'a> TableScope<'a> {
    /// For a request's `filter`/`sort`: hidden fields only for superusers.
    pub fn request(collection: &'a Collection, caller: &'a Caller) -> Self {
        Self { collection, caller, allow_hidden: caller.superuser }
    }

    /// For collection rules, which superusers wrote: every field is usable.
    pub fn rules(collection: &'a Collection, caller: &'a Caller) -> Self {
        Self { collection, caller, allow_hidden: true }
    }
}

fn unresolved(path: &Path, reason: &str) -> RuleError {
    RuleError::Unresolved { name: path.segments.join("."), reason: reason.to_owned() }
}

impl Scope for TableScope<'_> {
    fn column(&self, path: &Path) -> Result<ColumnRef, RuleError> {
        let name = path.segments.first().map(String::as_str).unwrap_or_default();
        let Some(field) = self.collection.field(name) else {
            return Err(unresolved(path, "unknown field"));
        };
        if field.hidden && !self.allow_hidden {
            return Err(unresolved(path, "hidden field"));
        }
        let column = format!("{}.{}", ident(self.collection.name.as_str()), ident(field.name.as_str()));
        let rest = &path.segments[1..];
        if rest.is_empty() {
            return Ok(if field.is_multi() { ColumnRef::multi(column) } else { ColumnRef::single(column) });
        }
        if !matches!(field.kind, FieldKind::Json { .. } | FieldKind::GeoPoint) {
            return Err(unresolved(path, "relation paths are not supported yet"));
        }
        let mut json_path = String::from("$");
        for seg in rest {
            if !seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(unresolved(path, "bad JSON path segment"));
            }
            if seg.chars().all(|c| c.is_ascii_digit()) {
                json_path.push_str(&format!("[{seg}]"));
            } else {
                json_path.push('.');
                json_path.push_str(seg);
            }
        }
        Ok(ColumnRef::single(format!("json_extract({column}, '{json_path}')")))
    }

    fn request_value(&self, path: &Path) -> Result<Option<SqlValue>, RuleError> {
        let key: Vec<&str> = path.segments.iter().skip(1).map(String::as_str).collect();
        let auth = self.caller.auth.as_ref();
        let value = match key.as_slice() {
            ["auth", "id"] => Some(SqlValue::Text(auth.map(|a| a.2.clone()).unwrap_or_default())),
            ["auth", "collectionId"] => auth.map(|a| SqlValue::Text(a.0.clone())),
            ["auth", "collectionName"] => auth.map(|a| SqlValue::Text(a.1.clone())),
            ["method"] => Some(SqlValue::Text(self.caller.method.clone())),
            ["context"] => Some(SqlValue::Text("default".into())),
            _ => None,
        };
        Ok(value)
    }
}
