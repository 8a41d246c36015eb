//! From a submitted body to field values: the one place a write's input is
//! read. Plain keys are applied first, then modifiers (`f+` append/add, `+f`
//! prepend, `f-` subtract/remove), in PocketBase's order (shorter keys first),
//! against the record as it is stored (update) or its zero values (create);
//! file keys and uploads go through `files`. The same resolution produces the
//! body rules see as `@request.body.*`: every submitted field under its plain
//! name with the value it will be saved with, so no modifier form can show a
//! rule one value and store another. Protected auth fields (`email`,
//! `verified`) are guarded here too. Database checks are left to `write`.

use super::access::Caller;
use super::files::{self as record_files, NewFile};
use super::validate::check_password;
use super::value::{normalize, normalize_list, number_json};
use crate::schema::{Collection, CollectionType, Field, FieldKind};
use crate::validation::{FieldError, ValidationErrors};
use serde_json::{Map, Value, json};

/// A record being built from input, with plaintext passwords still to hash.
pub(super) struct Draft {
    pub(super) values: Map<String, Value>,
    pub(super) passwords: Vec<(String, String)>,
    pub(super) errors: ValidationErrors,
}

impl Draft {
    pub(super) fn new(values: Map<String, Value>) -> Self {
        Self {
            values,
            passwords: Vec::new(),
            errors: ValidationErrors::new(),
        }
    }
}

/// A key modifier, as PocketBase's field setters know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modifier {
    /// `f+`: add to a number, append to a list.
    Append,
    /// `+f`: prepend to a list.
    Prepend,
    /// `f-`: subtract from a number, remove from a list.
    Subtract,
}

/// How a body key sets its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setter {
    /// The plain key: the value as sent.
    Plain,
    /// A number or list modifier.
    Modify(Modifier),
    /// `f:autogenerate` (text): the value sent followed by one generated
    /// from the field's `autogeneratePattern`.
    Autogenerate,
}

/// The suffix of the text fields' autogenerate modifier.
const AUTOGENERATE_SUFFIX: &str = ":autogenerate";

/// The field a body key sets and how, or `None` for keys that set no field
/// (unknown names, other casings, modifiers the field type has no setter for).
fn parse_key<'a>(collection: &'a Collection, key: &str) -> Option<(&'a Field, Setter)> {
    if let Some(field) = collection.field(key) {
        return Some((field, Setter::Plain));
    }
    if let Some(name) = key.strip_suffix(AUTOGENERATE_SUFFIX) {
        let field = collection.field(name)?;
        return matches!(field.kind, FieldKind::Text { .. })
            .then_some((field, Setter::Autogenerate));
    }
    let (name, modifier) = if let Some(name) = key.strip_suffix('+') {
        (name, Modifier::Append)
    } else if let Some(name) = key.strip_suffix('-') {
        (name, Modifier::Subtract)
    } else if let Some(name) = key.strip_prefix('+') {
        (name, Modifier::Prepend)
    } else {
        return None;
    };
    let field = collection.field(name)?;
    let supported = match field.kind {
        FieldKind::Number { .. } => modifier != Modifier::Prepend,
        FieldKind::Select { .. } | FieldKind::Relation { .. } | FieldKind::File { .. } => true,
        _ => false,
    };
    supported.then_some((field, Setter::Modify(modifier)))
}

/// Whether the caller may write this field at all (others are silently ignored).
pub(super) fn writable(collection: &Collection, caller: &Caller, field: &Field) -> bool {
    let name = field.name.as_str();
    if matches!(field.kind, FieldKind::Autodate { .. }) || name == "tokenKey" {
        return false;
    }
    let auth_password = collection.kind == CollectionType::Auth && name == "password";
    !field.hidden || caller.superuser || auth_password
}

/// Checks the body's new passwords and keeps them (plaintext) for hashing.
pub(super) fn collect_passwords(
    collection: &Collection,
    caller: &Caller,
    body: &Map<String, Value>,
    draft: &mut Draft,
) {
    for field in &collection.fields {
        let name = field.name.as_str();
        if !matches!(field.kind, FieldKind::Password { .. }) || !writable(collection, caller, field)
        {
            continue;
        }
        match body.get(name) {
            Some(Value::String(plain)) if !plain.is_empty() => match check_password(field, plain) {
                Some(e) => draft.errors.add(name, e),
                None => draft.passwords.push((name.to_owned(), plain.clone())),
            },
            Some(Value::String(_)) | Some(Value::Null) | None => {}
            Some(_) => draft.errors.add(
                name,
                FieldError::new("validation_invalid_value", "Must be a string."),
            ),
        }
    }
}

/// Applies `body` and the accepted uploads to `draft.values` (which hold the
/// stored record on update, zero values on create) and returns the body as
/// rules see it.
pub(super) fn resolve(
    collection: &Collection,
    caller: &Caller,
    draft: &mut Draft,
    body: &Map<String, Value>,
    uploads: &[NewFile],
    creating: bool,
) -> Map<String, Value> {
    if creating {
        collect_passwords(collection, caller, body, draft);
        for (name, plain) in &draft.passwords {
            // Placeholder so blank checks see a value; replaced by the hash before storing.
            draft.values.insert(name.clone(), json!(plain));
        }
    }
    // PocketBase applies shorter keys first (a plain key before its
    // modifiers); ties are broken by the key itself so the result is stable.
    let mut keys: Vec<&String> = body.keys().collect();
    keys.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    for key in keys {
        let Some((field, modifier)) = parse_key(collection, key) else {
            continue;
        };
        if !writable(collection, caller, field)
            || field.name.as_str() == "id"
            || matches!(
                field.kind,
                // Passwords are hashed apart; file keys go with their uploads below.
                FieldKind::Password { .. } | FieldKind::File { .. }
            )
        {
            continue;
        }
        let raw = &body[key.as_str()];
        match modifier {
            Setter::Plain => match normalize(field, raw) {
                Ok(v) => {
                    draft.values.insert(field.name.to_string(), v);
                }
                Err(e) => draft.errors.add(field.name.as_str(), e),
            },
            Setter::Modify(modifier) => apply_modifier(field, modifier, raw, draft),
            Setter::Autogenerate => apply_autogenerate(field, raw, draft),
        }
    }
    if creating {
        fill_autogenerated(collection, draft);
    }
    let changes_id = body
        .get("id")
        .is_some_and(|id| Some(id) != draft.values.get("id"))
        || body.contains_key(&format!("id{AUTOGENERATE_SUFFIX}"));
    if !creating && changes_id {
        draft.errors.add(
            "id",
            FieldError::new(
                "validation_pk_change",
                "The record primary key cannot be changed.",
            ),
        );
    }
    record_files::apply(
        collection,
        caller,
        &mut draft.values,
        &mut draft.errors,
        body,
        uploads,
    );
    rule_body(collection, caller, body, uploads, &draft.values)
}

/// The id a create stores: with `id:autogenerate`, the sent prefix followed
/// by a value from the id field's pattern (which then overrides `id`, as in
/// PocketBase); else a non-empty `id` as sent; else a fresh one. A prefix that
/// is not text is refused where PocketBase drops it.
pub(super) fn create_id(
    collection: &Collection,
    body: &Map<String, Value>,
) -> Result<String, FieldError> {
    let generated = || {
        collection
            .field("id")
            .and_then(generated_value)
            .unwrap_or_else(crate::schema::autogen::record_id)
    };
    if let Some(prefix) = body.get(&format!("id{AUTOGENERATE_SUFFIX}")) {
        let prefix = match prefix {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(FieldError::new(
                    "validation_invalid_value",
                    "Must be a string.",
                ));
            }
        };
        return Ok(prefix + &generated());
    }
    Ok(match body.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None | Some(Value::Null) | Some(Value::String(_)) => generated(),
        Some(_) => String::new(),
    })
}

/// On create, a text field (other than `id`) with an `autogeneratePattern`
/// that is still empty gets a generated value, as in PocketBase.
fn fill_autogenerated(collection: &Collection, draft: &mut Draft) {
    for field in &collection.fields {
        let name = field.name.as_str();
        if name == "id" || draft.values.get(name).and_then(Value::as_str) != Some("") {
            continue;
        }
        if let Some(generated) = generated_value(field) {
            draft.values.insert(name.to_owned(), json!(generated));
        }
    }
}

/// A fresh value from a text field's `autogeneratePattern` (None without one).
fn generated_value(field: &Field) -> Option<String> {
    let FieldKind::Text {
        autogenerate_pattern,
        ..
    } = &field.kind
    else {
        return None;
    };
    crate::schema::autogen::Generator::parse(autogenerate_pattern).map(|g| g.generate())
}

fn apply_autogenerate(field: &Field, raw: &Value, draft: &mut Draft) {
    let name = field.name.as_str();
    // PocketBase casts the sent value to text (a number keeps its digits).
    let sent = match raw {
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => match normalize(field, other) {
            Ok(v) => v.as_str().unwrap_or_default().to_owned(),
            Err(e) => return draft.errors.add(name, e),
        },
    };
    let value = sent + &generated_value(field).unwrap_or_default();
    draft.values.insert(name.to_owned(), json!(value));
}

fn apply_modifier(field: &Field, modifier: Modifier, raw: &Value, draft: &mut Draft) {
    let name = field.name.as_str();
    let current = draft
        .values
        .get(name)
        .cloned()
        .unwrap_or_else(|| field.zero_value());
    let updated = if let FieldKind::Number { .. } = field.kind {
        let delta = match normalize(field, raw) {
            Ok(delta) => delta.as_f64().unwrap_or(0.0),
            Err(e) => return draft.errors.add(name, e),
        };
        let base = current.as_f64().unwrap_or(0.0);
        number_json(match modifier {
            Modifier::Subtract => base - delta,
            Modifier::Append | Modifier::Prepend => base + delta,
        })
    } else {
        let given = match normalize_list(raw) {
            Ok(given) => given,
            Err(e) => return draft.errors.add(name, e),
        };
        let stored = record_files::names_of(Some(&current));
        let list: Vec<String> = match modifier {
            Modifier::Append => unique(stored.into_iter().chain(given)),
            Modifier::Prepend => unique(given.into_iter().chain(stored)),
            Modifier::Subtract => stored.into_iter().filter(|v| !given.contains(v)).collect(),
        };
        if field.is_multi() {
            json!(list)
        } else {
            // A single value keeps the last one (PocketBase): `owner+` replaces.
            json!(list.last().cloned().unwrap_or_default())
        }
    };
    draft.values.insert(name.to_owned(), updated);
}

fn unique(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// `@request.body` for rules: each submitted field (plain, modifier or
/// upload key) under its plain name with its resolved value; keys that set
/// no field stay as sent; fields the caller may not write are left out.
fn rule_body(
    collection: &Collection,
    caller: &Caller,
    body: &Map<String, Value>,
    uploads: &[NewFile],
    values: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    let resolved = |field: &Field, raw: &Value| match field.kind {
        // The plaintext, never the hash (rules may test `:isset` or a length).
        FieldKind::Password { .. } => raw.clone(),
        _ => values
            .get(field.name.as_str())
            .cloned()
            .unwrap_or(Value::Null),
    };
    for (key, raw) in body {
        match parse_key(collection, key) {
            Some((field, _)) if writable(collection, caller, field) => {
                out.insert(field.name.to_string(), resolved(field, raw));
            }
            Some(_) => {}
            None => {
                out.insert(key.clone(), raw.clone());
            }
        }
    }
    for upload in uploads {
        if let Some(field) = collection.field(upload.field()) {
            out.insert(field.name.to_string(), resolved(field, &Value::Null));
        }
    }
    out
}

/// Refuses changes to `email` (on update) and `verified` from callers who
/// neither are superusers nor match the collection's `manageRule`; when one
/// who may changes the email without giving `verified`, the new address is
/// not verified yet.
pub(super) fn guard_auth_fields(
    collection: &Collection,
    original: &Map<String, Value>,
    body: &Map<String, Value>,
    draft: &mut Draft,
    may_manage: bool,
    creating: bool,
) {
    if collection.kind != CollectionType::Auth {
        return;
    }
    let changed = |name: &str, draft: &Draft| draft.values.get(name) != original.get(name);
    let email_changed = !creating && changed("email", draft);
    if may_manage {
        if email_changed && !body.contains_key("verified") {
            draft.values.insert("verified".into(), json!(false));
        }
        return;
    }
    if email_changed {
        draft.errors.add(
            "email",
            FieldError::new(
                "validation_values_mismatch",
                "Only superusers and managers can change the email; use the email change request.",
            ),
        );
    }
    if changed("verified", draft) {
        draft.errors.add(
            "verified",
            FieldError::new(
                "validation_values_mismatch",
                "Only superusers and managers can change the verified state.",
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, kind: FieldKind) -> Field {
        Field::test_named(name, kind)
    }

    fn collection() -> Collection {
        Collection {
            id: "things".into(),
            name: crate::schema::CollectionName::trusted("things".into()),
            kind: CollectionType::Base,
            system: false,
            indexes: Vec::new(),
            rules: Default::default(),
            options: Map::new(),
            created: String::new(),
            updated: String::new(),
            fields: vec![
                field(
                    "n",
                    FieldKind::Number {
                        min: None,
                        max: None,
                        only_int: false,
                    },
                ),
                field(
                    "tags",
                    FieldKind::Select {
                        values: vec!["a".into(), "b".into(), "c".into()],
                        max_select: 3,
                    },
                ),
                field(
                    "one",
                    FieldKind::Select {
                        values: vec!["a".into(), "b".into()],
                        max_select: 1,
                    },
                ),
                field(
                    "title",
                    FieldKind::Text {
                        min: 0,
                        max: 0,
                        pattern: String::new(),
                        autogenerate_pattern: String::new(),
                        primary_key: false,
                    },
                ),
            ],
        }
    }

    fn resolved(stored: Value, body: Value) -> (Map<String, Value>, Map<String, Value>) {
        let c = collection();
        let Value::Object(stored) = stored else {
            panic!("object")
        };
        let Value::Object(body) = body else {
            panic!("object")
        };
        let mut draft = Draft::new(stored);
        let rules = resolve(&c, &Caller::default(), &mut draft, &body, &[], false);
        assert!(draft.errors.is_empty(), "{}", draft.errors);
        (draft.values, rules)
    }

    #[test]
    fn rules_see_modifiers_resolved_under_the_plain_name() {
        let stored = json!({"n": 10, "tags": ["a"], "one": "a", "title": "t"});
        for (body, key, expected, why) in [
            (json!({"n+": 5}), "n", json!(15), "add"),
            (json!({"n-": 5}), "n", json!(5), "subtract"),
            (json!({"n": 1, "n+": 5}), "n", json!(6), "plain then add"),
            (json!({"tags+": "b"}), "tags", json!(["a", "b"]), "append"),
            (
                json!({"+tags": ["b"]}),
                "tags",
                json!(["b", "a"]),
                "prepend",
            ),
            (json!({"tags-": "a"}), "tags", json!([]), "remove"),
            (
                json!({"tags": ["c"], "tags+": ["a"]}),
                "tags",
                json!(["c", "a"]),
                "plain then append",
            ),
            (
                json!({"one+": "b"}),
                "one",
                json!("b"),
                "single: appended wins",
            ),
            (
                json!({"+one": "b"}),
                "one",
                json!("a"),
                "single: stored stays last",
            ),
            (json!({"one-": "a"}), "one", json!(""), "single: removed"),
        ] {
            let (values, rules) = resolved(stored.clone(), body.clone());
            assert_eq!(values[key], expected, "{why}: {body}");
            assert_eq!(rules.get(key), Some(&expected), "{why}: rules see {body}");
            assert!(
                rules
                    .keys()
                    .all(|k| !k.ends_with(['+', '-']) && !k.starts_with('+')),
                "{why}: no modifier keys left for rules: {rules:?}"
            );
        }
    }

    #[test]
    fn keys_without_a_setter_are_ignored_and_kept_as_sent_for_rules() {
        let stored = json!({"n": 10, "tags": [], "one": "", "title": "t"});
        for (body, key, why) in [
            (json!({"+n": 5}), "+n", "numbers have no prepend"),
            (json!({"title+": "x"}), "title+", "text has no append"),
            (json!({"Title": "x"}), "Title", "other casing"),
            (json!({"nope": 1}), "nope", "unknown field"),
        ] {
            let (values, rules) = resolved(stored.clone(), body.clone());
            assert_eq!(
                values,
                stored.as_object().cloned().unwrap_or_default(),
                "{why}"
            );
            assert_eq!(rules.get(key), body.get(key), "{why}");
        }
    }
}
