//! A collection: its identity, fields, indexes, access rules and (for auth
//! collections) auth options. Parsing of the API's collection JSON lives here;
//! persistence lives in `store`.

use super::field::{Field, FieldInputError, FieldKind};
use super::index::IndexDef;
use super::names::{CollectionName, FieldName};
use crate::validation::{FieldError, ValidationErrors};
use serde_json::{Map, Value, json};

/// The id PocketBase (and its JS SDK) use for `_superusers`.
pub const SUPERUSERS_ID: &str = "pbc_3142635823";
/// The name of the superusers collection.
pub const SUPERUSERS_NAME: &str = "_superusers";

/// Base (plain records), auth (accounts) or view (read-only records from a
/// stored `SELECT`, see `schema::view`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionType {
    Base,
    Auth,
    View,
}

impl CollectionType {
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionType::Base => "base",
            CollectionType::Auth => "auth",
            CollectionType::View => "view",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "base" => Some(CollectionType::Base),
            "auth" => Some(CollectionType::Auth),
            "view" => Some(CollectionType::View),
            _ => None,
        }
    }
}

/// The five access rules. `None`: superusers only. `Some("")`: everyone.
/// `Some(expr)`: whoever the filter expression admits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub list: Option<String>,
    pub view: Option<String>,
    pub create: Option<String>,
    pub update: Option<String>,
    pub delete: Option<String>,
}

/// The collection-level list of searchable fields (see `search_fields`).
pub const SEARCH_FIELDS_KEY: &str = "searchFields";

/// The JSON key of each rule, in order.
pub const RULE_KEYS: [&str; 5] = [
    "listRule",
    "viewRule",
    "createRule",
    "updateRule",
    "deleteRule",
];

impl Rules {
    fn slot(&mut self, key: &str) -> Option<&mut Option<String>> {
        match key {
            "listRule" => Some(&mut self.list),
            "viewRule" => Some(&mut self.view),
            "createRule" => Some(&mut self.create),
            "updateRule" => Some(&mut self.update),
            "deleteRule" => Some(&mut self.delete),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> &Option<String> {
        match key {
            "listRule" => &self.list,
            "viewRule" => &self.view,
            "createRule" => &self.create,
            "updateRule" => &self.update,
            _ => &self.delete,
        }
    }
}

/// A collection definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    pub id: String,
    pub name: CollectionName,
    pub kind: CollectionType,
    pub system: bool,
    pub fields: Vec<Field>,
    pub indexes: Vec<IndexDef>,
    pub rules: Rules,
    /// Auth options (token durations and secrets, identity fields, …); empty for base.
    pub options: Map<String, Value>,
    pub created: String,
    pub updated: String,
}

/// Why collection JSON was refused.
#[derive(Debug)]
pub enum CollectionInputError {
    Format(String),
    Invalid(ValidationErrors),
}

impl From<ValidationErrors> for CollectionInputError {
    fn from(e: ValidationErrors) -> Self {
        CollectionInputError::Invalid(e)
    }
}

impl Collection {
    /// PocketBase's deterministic collection id: `pbc_` + crc32(type + name).
    pub fn default_id(kind: CollectionType, name: &str) -> String {
        format!(
            "pbc_{}",
            crc32fast::hash(format!("{}{name}", kind.as_str()).as_bytes())
        )
    }

    /// Looks up a field by name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name.as_str() == name)
    }

    /// Whether this is the `_superusers` collection.
    pub fn is_superusers(&self) -> bool {
        self.id == SUPERUSERS_ID
    }

    /// The collection as API JSON (secrets removed).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name.as_str()));
        m.insert("type".into(), json!(self.kind.as_str()));
        m.insert("system".into(), json!(self.system));
        m.insert(
            "fields".into(),
            Value::Array(self.fields.iter().map(Field::to_json).collect()),
        );
        m.insert(
            "indexes".into(),
            Value::Array(
                self.indexes
                    .iter()
                    .map(|i| json!(i.to_pb_sql(&self.name)))
                    .collect(),
            ),
        );
        for key in RULE_KEYS {
            m.insert(key.into(), json!(self.rules.get(key)));
        }
        m.insert("created".into(), json!(self.created));
        m.insert("updated".into(), json!(self.updated));
        // Derived from the fields' `searchable` option (the one store); only
        // written when set, so other collections keep PocketBase's shape.
        let searchable = self.search_fields();
        if !searchable.is_empty() {
            m.insert(SEARCH_FIELDS_KEY.into(), json!(searchable));
        }
        if self.kind != CollectionType::Base {
            for (key, value) in &self.options {
                m.insert(key.clone(), without_secrets(value));
            }
        }
        Value::Object(m)
    }

    /// Builds a new collection from create-request JSON.
    pub fn from_create(input: &Value) -> Result<Collection, CollectionInputError> {
        let obj = input
            .as_object()
            .ok_or_else(|| CollectionInputError::Format("expected an object".into()))?;
        let mut errors = ValidationErrors::new();
        let raw_type = match obj.get("type") {
            None | Some(Value::Null) => "base",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => {
                return Err(CollectionInputError::Format(
                    "`type` must be a string".into(),
                ));
            }
        };
        let kind = CollectionType::parse(raw_type).unwrap_or_else(|| {
            errors.add(
                "type",
                FieldError::new("validation_in_invalid", "Must be a valid value."),
            );
            CollectionType::Base
        });
        let raw_name = obj.get("name").and_then(Value::as_str).unwrap_or_default();
        let name = parse_name(raw_name, &mut errors);
        let id = match obj
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            Some(id) if is_valid_id(id) => id.to_owned(),
            Some(_) => {
                errors.add(
                    "id",
                    FieldError::new(
                        "validation_match_invalid",
                        "Must be letters, digits and underscores.",
                    ),
                );
                String::new()
            }
            None => Collection::default_id(kind, raw_name),
        };
        let mut collection = Collection {
            id,
            name: name.unwrap_or_else(|| CollectionName::trusted(raw_name.to_owned())),
            kind,
            system: false,
            // A view's fields are inferred from its query (`schema::view`).
            fields: if kind == CollectionType::View {
                Vec::new()
            } else {
                vec![Field::primary_key()]
            },
            indexes: Vec::new(),
            rules: Rules::default(),
            options: if kind == CollectionType::Auth {
                super::auth_defaults::options()
            } else {
                Map::new()
            },
            created: String::new(),
            updated: String::new(),
        };
        if kind == CollectionType::Auth {
            collection.fields.extend(super::auth_defaults::fields());
            collection
                .indexes
                .extend(super::auth_defaults::indexes(&collection.id));
        }
        // As PocketBase: data that cannot be loaded (an unknown field type, a
        // rule that is not a string) is refused before any validation error.
        match collection.apply(obj) {
            Ok(()) => {}
            Err(CollectionInputError::Invalid(e)) => errors.absorb(e),
            Err(format) => return Err(format),
        }
        errors.into_result()?;
        Ok(collection)
    }

    /// Applies update-request JSON (partial; a given `fields` list replaces the fields).
    pub fn apply(&mut self, obj: &Map<String, Value>) -> Result<(), CollectionInputError> {
        let mut errors = ValidationErrors::new();
        if let Some(raw) = obj.get("name") {
            let raw = raw.as_str().unwrap_or_default();
            if raw != self.name.as_str() {
                if self.system {
                    errors.add(
                        "name",
                        FieldError::new(
                            "validation_collection_system_name_change",
                            "System collection name cannot be changed.",
                        ),
                    );
                } else if let Some(name) = parse_name(raw, &mut errors) {
                    self.name = name;
                }
            }
        }
        if let Some(raw) = obj.get("type").and_then(Value::as_str)
            && raw != self.kind.as_str()
            && !self.created.is_empty()
        {
            errors.add(
                "type",
                FieldError::new(
                    "validation_collection_type_change",
                    "Collection type cannot be changed.",
                ),
            );
        }
        for key in RULE_KEYS {
            let Some(value) = obj.get(key) else { continue };
            let Some(slot) = self.rules.slot(key) else {
                continue;
            };
            match value {
                Value::Null => *slot = None,
                Value::String(rule) => *slot = Some(rule.clone()),
                _ => {
                    return Err(CollectionInputError::Format(format!(
                        "`{key}` must be a string or null"
                    )));
                }
            }
        }
        // A view's fields come from its query: submitted ones are ignored.
        if self.kind != CollectionType::View
            && let Some(fields) = obj.get("fields")
        {
            match self.replace_fields(fields) {
                Ok(()) => {}
                Err(CollectionInputError::Invalid(e)) => errors.nest("fields", e),
                Err(e) => return Err(e),
            }
        }
        if let Some(list) = obj.get(SEARCH_FIELDS_KEY) {
            let with_fields = obj.contains_key("fields");
            self.apply_search_fields(list, with_fields, &mut errors)?;
        }
        if let Some(indexes) = obj.get("indexes") {
            self.replace_indexes(indexes, &mut errors)?;
        }
        if self.kind == CollectionType::Auth {
            super::auth_defaults::apply_options(&mut self.options, obj, &mut errors);
        }
        if self.is_superusers() {
            self.force_superuser_sign_in();
        }
        if self.kind == CollectionType::View {
            self.apply_view_options(obj, &mut errors)?;
        } else {
            self.check_indexes(&mut errors);
        }
        errors.into_result().map_err(Into::into)
    }

    /// The names of the searchable fields, in field order: the collection-level
    /// view of the fields' `searchable` option.
    pub fn search_fields(&self) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|f| f.search.is_some())
            .map(|f| f.name.as_str())
            .collect()
    }

    /// `searchFields: [names]`: makes exactly the named fields searchable
    /// (keeping the options of those already searchable, weight 1 for the
    /// others) and the rest not, by writing the fields' option, the one
    /// store. Sent with `fields` (an export, a full edit) it must name every
    /// field marked `searchable` there, so the two never disagree.
    fn apply_search_fields(
        &mut self,
        list: &Value,
        with_fields: bool,
        errors: &mut ValidationErrors,
    ) -> Result<(), CollectionInputError> {
        let names: Vec<&str> = match list {
            Value::Null => Vec::new(),
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str())
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    CollectionInputError::Format(format!(
                        "`{SEARCH_FIELDS_KEY}` must be an array of field names"
                    ))
                })?,
            _ => {
                return Err(CollectionInputError::Format(format!(
                    "`{SEARCH_FIELDS_KEY}` must be an array of field names"
                )));
            }
        };
        if self.kind == CollectionType::View {
            if !names.is_empty() {
                errors.add(
                    SEARCH_FIELDS_KEY,
                    FieldError::new(
                        "validation_not_searchable",
                        "View collections have no search index.",
                    ),
                );
            }
            return Ok(());
        }
        let mut refused = false;
        for name in &names {
            let found = self.fields.iter().find(|f| f.name.as_str() == *name);
            refused |= !found.is_some_and(|f| f.kind.can_be_searchable());
            match found {
                None => errors.add(
                    SEARCH_FIELDS_KEY,
                    FieldError::new(
                        "validation_unknown_search_field",
                        format!("Unknown field {name:?}."),
                    ),
                ),
                Some(f) if !f.kind.can_be_searchable() => errors.add(
                    SEARCH_FIELDS_KEY,
                    FieldError::new(
                        "validation_not_searchable",
                        format!(
                            "{name:?}: only text, editor, email, url, select and json fields can be searchable."
                        ),
                    ),
                ),
                Some(_) => {}
            }
        }
        // With `fields`, a field marked searchable there must be listed (the
        // list may add unmarked ones): a stale list never drops a mark.
        if with_fields
            && !refused
            && self
                .search_fields()
                .iter()
                .any(|marked| !names.contains(marked))
        {
            errors.add(
                SEARCH_FIELDS_KEY,
                FieldError::new(
                    "validation_search_fields_mismatch",
                    "Must name every field marked searchable in fields.",
                ),
            );
            return Ok(());
        }
        for field in &mut self.fields {
            if names.contains(&field.name.as_str()) {
                if field.search.is_none() && field.kind.can_be_searchable() {
                    field.search = Some(super::field::SearchOptions {
                        weight: 1.0,
                        trigram: false,
                    });
                }
            } else {
                field.search = None;
            }
        }
        Ok(())
    }

    /// The view-only keys: `viewQuery` is kept (checked and run later, in
    /// `schema::view`); submitted `fields` are ignored because a view's
    /// fields always come from its query, as in PocketBase; only the list
    /// and view rules may be set, and indexes are refused.
    fn apply_view_options(
        &mut self,
        obj: &Map<String, Value>,
        errors: &mut ValidationErrors,
    ) -> Result<(), CollectionInputError> {
        match obj.get("viewQuery") {
            None => {}
            Some(Value::String(query)) => {
                self.options
                    .insert(super::view::QUERY_KEY.into(), json!(query));
            }
            Some(Value::Null) => {
                self.options.remove(super::view::QUERY_KEY);
            }
            Some(_) => {
                return Err(CollectionInputError::Format(
                    "`viewQuery` must be a string".into(),
                ));
            }
        }
        for (key, rule) in [
            ("createRule", &self.rules.create),
            ("updateRule", &self.rules.update),
            ("deleteRule", &self.rules.delete),
        ] {
            if rule.is_some() {
                errors.add(key, FieldError::new("validation_nil", "Must be blank."));
            }
        }
        if !self.indexes.is_empty() {
            errors.add(
                "indexes",
                FieldError::new(
                    "validation_indexes_not_supported",
                    "View collections don't support indexes.",
                ),
            );
        }
        Ok(())
    }

    /// As PocketBase: superusers always sign in with a password (so no save
    /// can lock every superuser out), never with OAuth2 (a sign-in must not
    /// create a superuser), and an OTP always comes with MFA.
    fn force_superuser_sign_in(&mut self) {
        let mut set = |section: &str, key: &str, value: Value| {
            if let Some(Value::Object(m)) = self.options.get_mut(section) {
                m.insert(key.into(), value);
            }
        };
        set("passwordAuth", "enabled", json!(true));
        set("oauth2", "enabled", json!(false));
        set("oauth2", "providers", json!([]));
        let otp = self
            .options
            .get("otp")
            .and_then(|o| o.get("enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if otp && let Some(Value::Object(m)) = self.options.get_mut("mfa") {
            m.insert("enabled".into(), json!(true));
        }
    }

    /// The stored query of a view collection (empty for other types).
    pub fn view_query(&self) -> &str {
        self.options
            .get(super::view::QUERY_KEY)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    fn replace_fields(&mut self, raw: &Value) -> Result<(), CollectionInputError> {
        let Value::Array(items) = raw else {
            return Err(CollectionInputError::Format(
                "`fields` must be an array".into(),
            ));
        };
        let mut errors = ValidationErrors::new();
        let mut fields: Vec<Field> = Vec::with_capacity(items.len() + 1);
        for (i, item) in items.iter().enumerate() {
            match Field::from_json(item) {
                Ok(mut field) => {
                    if let Some(old) = self.fields.iter().find(|f| f.id == field.id) {
                        field.system = old.system;
                        if old.kind.type_name() != field.kind.type_name() && old.system {
                            let mut e = ValidationErrors::new();
                            e.add(
                                "type",
                                FieldError::new(
                                    "validation_field_type_change",
                                    "System field type cannot be changed.",
                                ),
                            );
                            errors.nest(i.to_string(), e);
                        }
                    } else {
                        field.system = false;
                    }
                    if fields
                        .iter()
                        .any(|f| f.name.as_str().eq_ignore_ascii_case(field.name.as_str()))
                    {
                        let mut e = ValidationErrors::new();
                        e.add(
                            "name",
                            FieldError::new(
                                "validation_not_unique",
                                "Duplicated or invalid field name.",
                            ),
                        );
                        errors.nest(i.to_string(), e);
                    } else if fields.iter().any(|f| f.id == field.id) {
                        let mut e = ValidationErrors::new();
                        e.add(
                            "id",
                            FieldError::new("validation_not_unique", "Duplicated field id."),
                        );
                        errors.nest(i.to_string(), e);
                    }
                    fields.push(field);
                }
                Err(FieldInputError::Invalid(e)) => errors.nest(i.to_string(), e),
                Err(FieldInputError::Format(msg)) => return Err(CollectionInputError::Format(msg)),
            }
        }
        // System fields cannot be dropped: re-add the ones the request left out.
        for old in self.fields.iter().filter(|f| f.system) {
            if !fields.iter().any(|f| f.id == old.id) {
                let pos = if old.name.as_str() == "id" {
                    0
                } else {
                    fields.len()
                };
                fields.insert(pos, old.clone());
            }
        }
        for (i, field) in fields.iter().enumerate() {
            if fields[..i]
                .iter()
                .any(|f| f.name.as_str().eq_ignore_ascii_case(field.name.as_str()))
                && !errors.contains(&i.to_string())
            {
                let mut e = ValidationErrors::new();
                e.add(
                    "name",
                    FieldError::new("validation_not_unique", "Duplicated or invalid field name."),
                );
                errors.nest(i.to_string(), e);
            }
        }
        if let Some(pos) = fields.iter().position(|f| f.name.as_str() == "id")
            && !matches!(
                fields[pos].kind,
                FieldKind::Text {
                    primary_key: true,
                    ..
                }
            )
        {
            let mut e = ValidationErrors::new();
            e.add(
                "name",
                FieldError::new(
                    "validation_not_unique",
                    "`id` is reserved for the primary key.",
                ),
            );
            errors.nest(pos.to_string(), e);
        }
        errors.into_result()?;
        self.fields = fields;
        Ok(())
    }

    fn replace_indexes(
        &mut self,
        raw: &Value,
        errors: &mut ValidationErrors,
    ) -> Result<(), CollectionInputError> {
        let Value::Array(items) = raw else {
            return Err(CollectionInputError::Format(
                "`indexes` must be an array".into(),
            ));
        };
        let mut parsed = Vec::new();
        let mut index_errors = ValidationErrors::new();
        for (i, item) in items.iter().enumerate() {
            match item.as_str().map(IndexDef::parse) {
                Some(Ok(def)) => parsed.push(def),
                Some(Err(e)) => index_errors.add(
                    i.to_string(),
                    FieldError::new("validation_invalid_index_expression", e.to_string()),
                ),
                None => index_errors.add(
                    i.to_string(),
                    FieldError::new("validation_invalid_index_expression", "Must be a string."),
                ),
            }
        }
        errors.nest("indexes", index_errors);
        self.indexes = parsed;
        Ok(())
    }

    fn check_indexes(&self, errors: &mut ValidationErrors) {
        let mut index_errors = ValidationErrors::new();
        for (i, def) in self.indexes.iter().enumerate() {
            let missing = def
                .columns
                .iter()
                .map(|c| &c.field)
                .chain(def.where_not_empty.iter())
                .find(|f| self.field(f.as_str()).is_none());
            if let Some(f) = missing {
                index_errors.add(
                    i.to_string(),
                    FieldError::new(
                        "validation_invalid_index_expression",
                        format!("Unknown column {f}."),
                    ),
                );
            } else if self.indexes[..i]
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&def.name))
            {
                index_errors.add(
                    i.to_string(),
                    FieldError::new("validation_duplicated_index_name", "Duplicated index name."),
                );
            }
        }
        errors.nest("indexes", index_errors);
    }

    /// Names of the fields, for building SQL column lists.
    pub fn column_names(&self) -> impl Iterator<Item = &FieldName> {
        self.fields.iter().map(|f| &f.name)
    }
}

fn parse_name(raw: &str, errors: &mut ValidationErrors) -> Option<CollectionName> {
    CollectionName::parse(raw)
        .map_err(|e| errors.add("name", FieldError::new(e.code(), e.to_string())))
        .ok()
}

fn is_valid_id(id: &str) -> bool {
    id.len() <= 100 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks every non-empty rule against the final field list and the other
/// collections (a rule may name a field added in the same request).
pub(super) fn check_rules(
    collection: &Collection,
    snapshot: &super::registry::Snapshot,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let invalid = |rule: &str| {
        if rule.trim().is_empty() {
            return None;
        }
        super::rule_scope::check_rule(snapshot, collection, rule)
            .err()
            .map(|e| {
                FieldError::new(
                    "validation_invalid_rule",
                    format!("Invalid rule. Raw error: {e}"),
                )
            })
    };
    for key in RULE_KEYS {
        if let Some(e) = collection
            .rules
            .get(key)
            .as_ref()
            .and_then(|rule| invalid(rule))
        {
            errors.add(key, e);
        }
    }
    // Auth collections: `authRule`, `manageRule` and `mfa.rule` are rules
    // over the same records, checked as PocketBase checks them.
    let options = &collection.options;
    for key in ["authRule", "manageRule"] {
        if let Some(e) = options.get(key).and_then(Value::as_str).and_then(invalid) {
            errors.add(key, e);
        }
    }
    let mfa_rule = options.get("mfa").and_then(|m| m.get("rule"));
    if let Some(e) = mfa_rule.and_then(Value::as_str).and_then(invalid) {
        let mut mfa = ValidationErrors::new();
        mfa.add("rule", e);
        errors.nest("mfa", mfa);
    }
    errors.into_result()
}

/// Removes `secret` / `clientSecret` keys at any depth.
fn without_secrets(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "secret" && k.as_str() != "clientSecret")
                .map(|(k, v)| (k.clone(), without_secrets(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_secrets).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_ids_match_pocketbase() {
        assert_eq!(
            Collection::default_id(CollectionType::Auth, "_superusers"),
            SUPERUSERS_ID
        );
        assert_eq!(
            Collection::default_id(CollectionType::Base, "tags"),
            "pbc_1219621782"
        );
    }

    #[test]
    fn a_name_only_create_gives_a_base_collection_with_just_the_id_field() {
        let c = Collection::from_create(&json!({"name": "posts"})).expect("valid");
        assert_eq!(c.kind, CollectionType::Base);
        assert_eq!(c.fields.len(), 1);
        assert_eq!(c.fields[0].name.as_str(), "id");
        assert_eq!(
            c.rules,
            Rules::default(),
            "rules default to superusers-only"
        );
    }

    #[test]
    fn secrets_never_appear_in_json() {
        let c =
            Collection::from_create(&json!({"name": "members", "type": "auth"})).expect("valid");
        let text = c.to_json().to_string();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("authToken"), "{text}");
    }

    #[test]
    fn bad_input_is_reported_per_key() {
        for (input, key) in [
            (json!({"name": "a b"}), "name"),
            (
                json!({"name": "x", "type": "view", "createRule": ""}),
                "createRule",
            ),
            (
                json!({"name": "x", "type": "view", "indexes": ["CREATE INDEX i ON x (id)"]}),
                "indexes",
            ),
            (json!({"name": "x", "type": "graph"}), "type"),
            (
                json!({"name": "x", "fields": [{"name": "t", "type": "text"}, {"name": "T", "type": "text"}]}),
                "fields",
            ),
            (
                json!({"name": "x", "indexes": ["CREATE INDEX i ON x (nope)"]}),
                "indexes",
            ),
        ] {
            match Collection::from_create(&input) {
                Err(CollectionInputError::Invalid(e)) => {
                    assert!(e.contains(key), "{input} should fail on {key}: {e}");
                }
                other => panic!(
                    "{input} should be invalid, got {:?}",
                    other.map(|c| c.to_json())
                ),
            }
        }
    }
}
