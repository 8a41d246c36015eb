//! A small in-memory [`Scope`] for the rules module's own tests: a `posts`
//! table with a few single and multi-valued columns and a map of
//! `@request.*` values. Everything else (relations, JSON paths,
//! `@collection.*`) is refused, as a first-version scope would.

use super::ast::Path;
use super::error::RuleError;
use super::scope::{ColumnRef, Scope, SqlValue};

/// Fields of the test table and whether each is multi-valued.
const FIELDS: [(&str, bool); 8] = [
    ("id", false),
    ("title", false),
    ("views", false),
    ("published", false),
    ("created", false),
    ("lon", false),
    ("cats", true),
    ("tags", true),
];

/// Test scope over table `posts`.
pub(crate) struct TestScope {
    extra_fields: Vec<&'static str>,
    request: Vec<(&'static str, SqlValue)>,
}

impl TestScope {
    pub(crate) fn new() -> Self {
        Self {
            extra_fields: Vec::new(),
            request: Vec::new(),
        }
    }

    /// Adds a single-valued field (e.g. one literally named `true`).
    pub(crate) fn with_field(mut self, name: &'static str) -> Self {
        self.extra_fields.push(name);
        self
    }

    /// Sets `@request.<key>` (key written with dots, e.g. `auth.id`).
    pub(crate) fn with_request(mut self, key: &'static str, value: SqlValue) -> Self {
        self.request.push((key, value));
        self
    }
}

impl Scope for TestScope {
    fn column(&self, path: &Path) -> Result<ColumnRef, RuleError> {
        let [name] = path.segments.as_slice() else {
            return Err(RuleError::unresolved(
                path,
                "only plain fields are supported",
            ));
        };
        let known = FIELDS.iter().find(|(field, _)| field == name);
        let multi = match known {
            Some((_, multi)) => *multi,
            None if self.extra_fields.contains(&name.as_str()) => false,
            None => return Err(RuleError::unresolved(path, "unknown field")),
        };
        let sql = format!("\"posts\".\"{name}\"");
        Ok(if multi {
            ColumnRef::multi(sql)
        } else {
            ColumnRef::single(sql)
        })
    }

    fn request_value(&self, path: &Path) -> Result<Option<SqlValue>, RuleError> {
        let key = path.request_key().unwrap_or_default().join(".");
        let found = self.request.iter().find(|(k, _)| *k == key);
        Ok(found.map(|(_, v)| v.clone()))
    }
}
