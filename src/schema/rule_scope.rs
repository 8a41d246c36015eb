//! How a collection's fields appear to the rules engine: a field name is a
//! quoted column of the collection's table, a JSON or geoPoint sub-path goes
//! through `json_extract` with a validated path. Used by `records` to compile
//! requests' filters and by collection saves to check rules against the
//! fields they name.

use super::collection::Collection;
use super::field::FieldKind;
use crate::db::ident;
use crate::rules::{self, ColumnRef, Path, RuleError, Scope, SqlValue};

fn unresolved(path: &Path, reason: &str) -> RuleError {
    RuleError::Unresolved {
        name: path.segments.join("."),
        reason: reason.to_owned(),
    }
}

impl Collection {
    /// The SQL for a field path of this collection, or why it cannot be used.
    pub fn rule_column(&self, path: &Path, allow_hidden: bool) -> Result<ColumnRef, RuleError> {
        let name = path
            .segments
            .first()
            .map(String::as_str)
            .unwrap_or_default();
        let Some(field) = self.field(name) else {
            return Err(unresolved(path, "unknown field"));
        };
        if field.hidden && !allow_hidden {
            return Err(unresolved(path, "hidden field"));
        }
        let column = format!(
            "{}.{}",
            ident(self.name.as_str()),
            ident(field.name.as_str())
        );
        let rest = &path.segments[1..];
        if rest.is_empty() {
            return Ok(if field.is_multi() {
                ColumnRef::multi(column)
            } else {
                ColumnRef::single(column)
            });
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
        Ok(ColumnRef::single(format!(
            "json_extract({column}, '{json_path}')"
        )))
    }
}

/// Checks a rule at save time: it must parse, and every field it names must exist.
pub(super) fn check_rule(collection: &Collection, rule: &str) -> Result<(), RuleError> {
    struct SaveScope<'a>(&'a Collection);
    impl Scope for SaveScope<'_> {
        fn column(&self, path: &Path) -> Result<ColumnRef, RuleError> {
            self.0.rule_column(path, true)
        }
        fn request_value(&self, _path: &Path) -> Result<Option<SqlValue>, RuleError> {
            Ok(None)
        }
    }
    rules::compile(&rules::parse_filter(rule)?, &SaveScope(collection)).map(|_| ())
}
