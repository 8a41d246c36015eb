//! The rules `Scope` of one request against a collection's table: fields
//! resolve through `Collection::rule_column` (hidden fields only for
//! superusers), `@request.auth.*` and `@request.method` to the caller.

use super::access::Caller;
use crate::rules::{ColumnRef, Path, RuleError, Scope, SqlValue};
use crate::schema::Collection;

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
        Self {
            collection,
            caller,
            allow_hidden: caller.superuser,
        }
    }

    /// For collection rules, which superusers wrote: every field is usable.
    pub fn rules(collection: &'a Collection, caller: &'a Caller) -> Self {
        Self {
            collection,
            caller,
            allow_hidden: true,
        }
    }
}

impl Scope for TableScope<'_> {
    fn column(&self, path: &Path) -> Result<ColumnRef, RuleError> {
        self.collection.rule_column(path, self.allow_hidden)
    }

    fn request_value(&self, path: &Path) -> Result<Option<SqlValue>, RuleError> {
        let key: Vec<&str> = path.segments.iter().skip(1).map(String::as_str).collect();
        let auth = self.caller.auth.as_ref();
        let value = match key.as_slice() {
            ["auth", "id"] => Some(SqlValue::Text(
                auth.map(|a| a.2.clone()).unwrap_or_default(),
            )),
            ["auth", "collectionId"] => auth.map(|a| SqlValue::Text(a.0.clone())),
            ["auth", "collectionName"] => auth.map(|a| SqlValue::Text(a.1.clone())),
            ["method"] => Some(SqlValue::Text(self.caller.method.clone())),
            ["context"] => Some(SqlValue::Text("default".into())),
            _ => None,
        };
        Ok(value)
    }
}
