//! Field-level validation errors in PocketBase's shape:
//! `{"field": {"code": "...", "message": "...", "params"?: {...}}}`, nested for
//! nested objects (array items keyed by their index). Shared by the schema,
//! records and settings modules; the API puts it under `data` of a 400.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// One failed check.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub code: &'static str,
    pub message: String,
    pub params: Option<Value>,
}

impl FieldError {
    /// An error with a code and a sentence for humans.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            params: None,
        }
    }

    /// Adds `params` (e.g. `{"max": 10}`).
    pub fn with_params(mut self, params: Value) -> Self {
        self.params = Some(params);
        self
    }

    /// `validation_required` / "Cannot be blank."
    pub fn required() -> Self {
        Self::new("validation_required", "Cannot be blank.")
    }
}

/// A node of the error tree.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Leaf(FieldError),
    Nested(ValidationErrors),
}

/// Errors keyed by field name; empty means valid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidationErrors(BTreeMap<String, Node>);

impl ValidationErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when nothing failed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records `error` for `key` unless the key already has one (the first check wins).
    pub fn add(&mut self, key: impl Into<String>, error: FieldError) {
        self.0.entry(key.into()).or_insert(Node::Leaf(error));
    }

    /// Records `error` for `key`, replacing an earlier one.
    pub fn replace(&mut self, key: impl Into<String>, error: FieldError) {
        self.0.insert(key.into(), Node::Leaf(error));
    }

    /// Nests `inner` under `key` (no-op when `inner` is empty).
    pub fn nest(&mut self, key: impl Into<String>, inner: ValidationErrors) {
        if !inner.is_empty() {
            self.0.insert(key.into(), Node::Nested(inner));
        }
    }

    /// Adds `other`'s errors for keys that have none yet.
    pub fn absorb(&mut self, other: ValidationErrors) {
        for (key, node) in other.0 {
            self.0.entry(key).or_insert(node);
        }
    }

    /// Keeps only the errors whose key `keep` admits.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.0.retain(|key, _| keep(key));
    }

    /// Moves the error of `from` to `to` (request fields named unlike the record's).
    pub fn rename(&mut self, from: &str, to: &str) {
        if let Some(node) = self.0.remove(from) {
            self.0.insert(to.to_owned(), node);
        }
    }

    /// Whether `key` already failed.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// The JSON shape used in the error envelope's `data`.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (key, node) in &self.0 {
            let value = match node {
                Node::Leaf(e) => {
                    let mut v = json!({"code": e.code, "message": e.message});
                    if let (Some(p), Some(obj)) = (&e.params, v.as_object_mut()) {
                        obj.insert("params".to_owned(), p.clone());
                    }
                    v
                }
                Node::Nested(inner) => inner.to_json(),
            };
            map.insert(key.clone(), value);
        }
        Value::Object(map)
    }
}

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialise_in_the_envelope_shape_with_nesting() {
        let mut inner = ValidationErrors::new();
        inner.add("collectionId", FieldError::required());
        let mut errors = ValidationErrors::new();
        errors.nest("1", inner);
        errors.add(
            "name",
            FieldError::new("validation_max_text_constraint", "Too long.")
                .with_params(json!({"max": 3})),
        );
        errors.add("name", FieldError::required());
        assert_eq!(
            errors.to_json(),
            json!({
                "1": {"collectionId": {"code": "validation_required", "message": "Cannot be blank."}},
                "name": {"code": "validation_max_text_constraint", "message": "Too long.", "params": {"max": 3}}
            }),
            "the first error per key is kept"
        );
    }
}
