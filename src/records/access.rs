//! Who is calling, as far as records care, and what a collection rule means
//! for them: `None` admits superusers only, `""` everyone, and an expression
//! whoever it matches (compiled to SQL by `rules` through [`TableScope`]).

use super::RecordError;
use super::scope::TableScope;
use crate::rules::{self, SqlFragment};
use crate::schema::Collection;

/// The requester, reduced to what rules and serialisation need.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub superuser: bool,
    /// Id and collection of the authenticated record, if any.
    pub auth: Option<(String, String, String)>,
    /// HTTP method, for `@request.method`.
    pub method: String,
}

impl Caller {
    /// A superuser caller (CLI and internal use).
    pub fn superuser() -> Self {
        Self {
            superuser: true,
            auth: None,
            method: "GET".into(),
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

/// Resolves `rule` for `caller` on `collection` (whose table is aliased as its own name).
pub fn resolve(
    rule: &Option<String>,
    caller: &Caller,
    collection: &Collection,
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
    let expr = rules::parse_filter(rule)?;
    let scope = TableScope::rules(collection, caller);
    Ok(Access::Filter(rules::compile(&expr, &scope)?))
}
