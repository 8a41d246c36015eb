//! Who is calling, as far as records care, and what a collection rule means
//! for them: `None` admits superusers only, `""` everyone, and an expression
//! whoever it matches (compiled to SQL by `rules` through a `FieldScope`).
//! An auth collection's `manageRule` is compiled the same way; who matches
//! it may change other records' email, verified state and password.

use super::RecordError;
use crate::rules::{self, Dialect, SqlFragment};
use crate::schema::{Collection, CollectionType, CompiledCollection, FieldScope, Snapshot, Trust};
use serde_json::{Map, Value};
use std::cell::Cell;
use std::collections::HashMap;

/// The requester and the request, reduced to what rules and serialisation need.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub superuser: bool,
    /// (collection id, collection name, record id) of the authenticated record.
    pub auth: Option<(String, String, String)>,
    /// The authenticated record's fields, for `@request.auth.<field>`.
    pub auth_fields: Map<String, Value>,
    /// HTTP method, for `@request.method`.
    pub method: String,
    /// `@request.context`: "default" for plain API requests.
    pub context: &'static str,
    /// Query parameters, for `@request.query.*`.
    pub query: HashMap<String, String>,
    /// Headers (lowercased, `-` → `_`), for `@request.headers.*`.
    pub headers: HashMap<String, String>,
    /// The submitted body on create/update, for `@request.body.*`.
    pub body: Option<Map<String, Value>>,
}

impl Caller {
    /// A superuser caller (CLI and internal use).
    pub fn superuser() -> Self {
        Self {
            superuser: true,
            method: "GET".into(),
            context: "default",
            ..Self::default()
        }
    }

    /// Whether the caller is the record `id` of `collection_id`.
    pub fn is_record(&self, collection_id: &str, id: &str) -> bool {
        self.auth
            .as_ref()
            .is_some_and(|(cid, _, rid)| cid == collection_id && rid == id)
    }
}

/// What a rule lets the caller do.
pub enum Access {
    /// No restriction.
    All,
    /// Only rows matching this SQL condition.
    Filter(SqlFragment),
}

/// Resolves `rule` for `caller` on `collection` (whose table is referred to by its name).
pub fn resolve(
    snapshot: &Snapshot,
    rule: &Option<String>,
    caller: &Caller,
    collection: &Collection,
) -> Result<Access, RecordError> {
    resolve_in(snapshot, rule, caller, collection, Dialect::Sqlite)
}

/// [`resolve`] with the condition written in `dialect`'s SQL.
pub fn resolve_in(
    snapshot: &Snapshot,
    rule: &Option<String>,
    caller: &Caller,
    collection: &Collection,
    dialect: Dialect,
) -> Result<Access, RecordError> {
    if caller.superuser {
        return Ok(Access::All);
    }
    let Some(rule) = rule else {
        return Err(RecordError::SuperusersOnly);
    };
    if rule.trim().is_empty() {
        return Ok(Access::All);
    }
    let expr = rules::parse_filter_cached(rule)?;
    let aliases = Cell::new(0);
    // Rules were written by superusers: evaluated as written (hidden fields,
    // emails and related rows whatever the related collection's own rules).
    let scope =
        FieldScope::new(snapshot, collection, Trust::Full, caller, &aliases).in_dialect(dialect);
    Ok(Access::Filter(rules::compile(&expr, &scope)?))
}

/// The `manageRule` of an auth collection as a condition on its rows, for a
/// caller who is signed in; `None` when nobody but superusers manages it
/// (base collection, `null` rule, guest caller, or a rule that no longer
/// compiles: closed rather than open).
pub(super) fn manage_filter(
    snapshot: &Snapshot,
    caller: &Caller,
    collection: &CompiledCollection,
    dialect: Dialect,
) -> Option<SqlFragment> {
    if collection.kind != CollectionType::Auth || caller.auth.is_none() {
        return None;
    }
    let rule = collection
        .auth
        .manage_rule
        .as_deref()
        .filter(|r| !r.trim().is_empty())?;
    let compiled = rules::parse_filter_cached(rule).and_then(|expr| {
        let aliases = Cell::new(0);
        let scope = FieldScope::new(snapshot, collection, Trust::Full, caller, &aliases)
            .in_dialect(dialect);
        rules::compile(&expr, &scope)
    });
    match compiled {
        Ok(fragment) => Some(fragment),
        Err(e) => {
            tracing::warn!(collection = %collection.name, error = %e, "manageRule does not compile");
            None
        }
    }
}
