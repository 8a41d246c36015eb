//! Field definitions: the fourteen field types with their options, read from
//! and written to PocketBase's collection JSON.

use super::names::FieldName;
use crate::validation::{FieldError, ValidationErrors};
use serde_json::{Map, Value, json};

/// A text field with `max: 0` holds at most this many characters.
pub const DEFAULT_TEXT_MAX_CHARS: u64 = 5_000;
/// An editor field with `maxSize: 0` holds at most this many bytes.
pub const DEFAULT_EDITOR_MAX_BYTES: u64 = 5 * 1024 * 1024;
/// A json field with `maxSize: 0` holds at most this many bytes.
pub const DEFAULT_JSON_MAX_BYTES: u64 = 1024 * 1024;

/// A field of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub id: String,
    pub name: FieldName,
    pub system: bool,
    pub hidden: bool,
    pub presentable: bool,
    pub required: bool,
    pub help: String,
    pub kind: FieldKind,
    /// Full-text search options (`None`: not searchable); see `crate::search`.
    pub search: Option<SearchOptions>,
}

/// A searchable field's options: `searchable: true` with an optional
/// `searchWeight` (BM25 column weight for `sort=@rank`, default 1) and
/// `searchTrigram` (substring matching; the collection's index uses the
/// trigram tokenizer when any of its searchable fields asks for it).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOptions {
    pub weight: f64,
    pub trigram: bool,
}

/// Largest accepted `searchWeight`.
pub const MAX_SEARCH_WEIGHT: f64 = 1000.0;

/// The type of a field with its type-specific options.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    Text {
        min: u64,
        max: u64,
        pattern: String,
        autogenerate_pattern: String,
        primary_key: bool,
    },
    Editor {
        max_size: u64,
        convert_urls: bool,
    },
    Number {
        min: Option<f64>,
        max: Option<f64>,
        only_int: bool,
    },
    Bool,
    Email {
        except_domains: Vec<String>,
        only_domains: Vec<String>,
    },
    Url {
        except_domains: Vec<String>,
        only_domains: Vec<String>,
    },
    Date {
        min: String,
        max: String,
    },
    Autodate {
        on_create: bool,
        on_update: bool,
    },
    Select {
        values: Vec<String>,
        max_select: u64,
    },
    File {
        max_select: u64,
        max_size: u64,
        mime_types: Vec<String>,
        thumbs: Vec<String>,
        protected: bool,
    },
    Relation {
        collection_id: String,
        cascade_delete: bool,
        min_select: u64,
        max_select: u64,
    },
    Json {
        max_size: u64,
    },
    Password {
        min: u64,
        max: u64,
        pattern: String,
        cost: u64,
    },
    GeoPoint,
}

/// A `thumbs` entry must read `WxH` with an optional `t`, `b` or `f`, and
/// not be zero on both sides (PocketBase's codes).
fn thumb_error(thumb: &str) -> Option<FieldError> {
    let dims = thumb.strip_suffix(['t', 'b', 'f']).unwrap_or(thumb);
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let Some((w, h)) = dims.split_once('x').filter(|(w, h)| number(w) && number(h)) else {
        return Some(FieldError::new(
            "validation_match_invalid",
            "Must be in a valid format.",
        ));
    };
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    (zero(w) && zero(h))
        .then(|| FieldError::new("validation_not_in_invalid", "Must not be in list."))
}

/// Why a field definition could not be read.
#[derive(Debug)]
pub enum FieldInputError {
    /// Not the right JSON shape at all (unknown type, wrong value types).
    Format(String),
    /// Well-formed, but some options are invalid.
    Invalid(ValidationErrors),
}

impl FieldKind {
    /// The `type` string of this kind.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldKind::Text { .. } => "text",
            FieldKind::Editor { .. } => "editor",
            FieldKind::Number { .. } => "number",
            FieldKind::Bool => "bool",
            FieldKind::Email { .. } => "email",
            FieldKind::Url { .. } => "url",
            FieldKind::Date { .. } => "date",
            FieldKind::Autodate { .. } => "autodate",
            FieldKind::Select { .. } => "select",
            FieldKind::File { .. } => "file",
            FieldKind::Relation { .. } => "relation",
            FieldKind::Json { .. } => "json",
            FieldKind::Password { .. } => "password",
            FieldKind::GeoPoint => "geoPoint",
        }
    }
}

impl Field {
    /// A plain field named `f` of `kind` (id `f`, no options): for unit tests.
    #[cfg(test)]
    pub(crate) fn test_of(kind: FieldKind) -> Field {
        Self::test_named("f", kind)
    }

    /// A plain field `name` of `kind` (id = name, no options): for unit tests.
    #[cfg(test)]
    pub(crate) fn test_named(name: &str, kind: FieldKind) -> Field {
        Field {
            id: name.into(),
            name: FieldName::parse(name).expect("valid name"),
            system: false,
            hidden: false,
            presentable: false,
            required: false,
            help: String::new(),
            kind,
            search: None,
        }
    }

    /// Whether values are stored as a JSON array (select/file/relation with `maxSelect > 1`).
    pub fn is_multi(&self) -> bool {
        match &self.kind {
            FieldKind::Select { max_select, .. }
            | FieldKind::File { max_select, .. }
            | FieldKind::Relation { max_select, .. } => *max_select > 1,
            _ => false,
        }
    }

    /// PocketBase's deterministic field id: type + crc32(name).
    pub fn default_id(type_name: &str, name: &str) -> String {
        format!("{type_name}{}", crc32fast::hash(name.as_bytes()))
    }

    /// The `id` primary-key field every collection has.
    pub fn primary_key() -> Field {
        Field {
            id: "text3208210256".to_owned(),
            name: FieldName::parse("id").expect("`id` is a valid field name"),
            system: true,
            hidden: false,
            presentable: false,
            required: true,
            help: String::new(),
            kind: FieldKind::Text {
                min: 15,
                max: 15,
                pattern: "^[a-z0-9]+$".to_owned(),
                autogenerate_pattern: "[a-z0-9]{15}".to_owned(),
                primary_key: true,
            },
            search: None,
        }
    }

    /// The value a record holds when this field is unset.
    pub fn zero_value(&self) -> Value {
        if self.is_multi() {
            return json!([]);
        }
        match &self.kind {
            FieldKind::Number { .. } => json!(0),
            FieldKind::Bool => json!(false),
            FieldKind::Json { .. } => Value::Null,
            FieldKind::GeoPoint => json!({"lon": 0, "lat": 0}),
            _ => json!(""),
        }
    }

    /// Reads a field definition from collection JSON.
    pub fn from_json(value: &Value) -> Result<Field, FieldInputError> {
        let Some(obj) = value.as_object() else {
            return Err(FieldInputError::Format(
                "a field must be an object".to_owned(),
            ));
        };
        let r = Reader(obj);
        let type_name = r.string("type")?;
        let raw_name = r.string("name")?;
        let mut errors = ValidationErrors::new();
        let name = match FieldName::parse(&raw_name) {
            Ok(n) => Some(n),
            Err(e) => {
                errors.add("name", FieldError::new(e.code(), e.to_string()));
                None
            }
        };
        let kind = read_kind(&type_name, &r, &mut errors)?;
        let search = read_search(&kind, &r, &mut errors)?;
        let id = r.string("id")?;
        let id = if id.is_empty() {
            Field::default_id(&type_name, &raw_name)
        } else {
            id
        };
        if id.len() > 100 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            errors.add(
                "id",
                FieldError::new("validation_match_invalid", "Invalid field id."),
            );
        }
        let (Some(name), true) = (name, errors.is_empty()) else {
            return Err(FieldInputError::Invalid(errors));
        };
        Ok(Field {
            id,
            name,
            system: r.bool("system")?,
            hidden: r.bool("hidden")?,
            presentable: r.bool("presentable")?,
            required: r.bool("required")? && !matches!(kind, FieldKind::Autodate { .. }),
            help: r.string("help")?,
            kind,
            search,
        })
    }

    /// The field as collection JSON.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name.as_str()));
        m.insert("type".into(), json!(self.kind.type_name()));
        m.insert("system".into(), json!(self.system));
        m.insert("hidden".into(), json!(self.hidden));
        m.insert("presentable".into(), json!(self.presentable));
        if !matches!(self.kind, FieldKind::Autodate { .. }) {
            m.insert("required".into(), json!(self.required));
            m.insert("help".into(), json!(self.help));
        }
        let extra = match &self.kind {
            FieldKind::Text {
                min,
                max,
                pattern,
                autogenerate_pattern,
                primary_key,
            } => json!({
                "min": min, "max": max, "pattern": pattern,
                "autogeneratePattern": autogenerate_pattern, "primaryKey": primary_key}),
            FieldKind::Editor {
                max_size,
                convert_urls,
            } => json!({"maxSize": max_size, "convertURLs": convert_urls}),
            FieldKind::Number { min, max, only_int } => {
                json!({"min": min.map(number_json), "max": max.map(number_json), "onlyInt": only_int})
            }
            FieldKind::Bool | FieldKind::GeoPoint => json!({}),
            FieldKind::Email {
                except_domains,
                only_domains,
            }
            | FieldKind::Url {
                except_domains,
                only_domains,
            } => {
                json!({"exceptDomains": except_domains, "onlyDomains": only_domains})
            }
            FieldKind::Date { min, max } => json!({"min": min, "max": max}),
            FieldKind::Autodate {
                on_create,
                on_update,
            } => json!({"onCreate": on_create, "onUpdate": on_update}),
            FieldKind::Select { values, max_select } => {
                json!({"values": values, "maxSelect": max_select})
            }
            FieldKind::File {
                max_select,
                max_size,
                mime_types,
                thumbs,
                protected,
            } => json!({
                "maxSelect": max_select, "maxSize": max_size, "mimeTypes": mime_types,
                "thumbs": thumbs, "protected": protected}),
            FieldKind::Relation {
                collection_id,
                cascade_delete,
                min_select,
                max_select,
            } => json!({
                "collectionId": collection_id, "cascadeDelete": cascade_delete,
                "minSelect": min_select, "maxSelect": max_select}),
            FieldKind::Json { max_size } => json!({"maxSize": max_size}),
            FieldKind::Password {
                min,
                max,
                pattern,
                cost,
            } => json!({"min": min, "max": max, "pattern": pattern, "cost": cost}),
        };
        if let Value::Object(extra) = extra {
            m.extend(extra);
        }
        // Only written when set, so non-searchable fields keep PocketBase's shape.
        if let Some(search) = &self.search {
            m.insert("searchable".into(), json!(true));
            m.insert("searchWeight".into(), number_json(search.weight));
            m.insert("searchTrigram".into(), json!(search.trigram));
        }
        Value::Object(m)
    }
}

impl FieldKind {
    /// Whether a field of this type may be searchable (text-like values).
    pub fn can_be_searchable(&self) -> bool {
        matches!(
            self,
            FieldKind::Text { .. }
                | FieldKind::Editor { .. }
                | FieldKind::Email { .. }
                | FieldKind::Url { .. }
                | FieldKind::Select { .. }
                | FieldKind::Json { .. }
        )
    }
}

/// Reads `searchable`, `searchWeight` and `searchTrigram`; only text-like
/// fields (text, editor, email, url, select, json) may be searchable.
fn read_search(
    kind: &FieldKind,
    r: &Reader,
    errors: &mut ValidationErrors,
) -> Result<Option<SearchOptions>, FieldInputError> {
    if !r.bool("searchable")? {
        return Ok(None);
    }
    if !kind.can_be_searchable() {
        errors.add(
            "searchable",
            FieldError::new(
                "validation_not_searchable",
                "Only text, editor, email, url, select and json fields can be searchable.",
            ),
        );
    }
    let weight = r.opt_f64("searchWeight")?.unwrap_or(1.0);
    if !(weight > 0.0 && weight <= MAX_SEARCH_WEIGHT) {
        errors.add(
            "searchWeight",
            FieldError::new(
                "validation_invalid_search_weight",
                "Must be greater than 0 and at most 1000.",
            ),
        );
    }
    Ok(Some(SearchOptions {
        weight,
        trigram: r.bool("searchTrigram")?,
    }))
}

fn read_kind(
    type_name: &str,
    r: &Reader,
    errors: &mut ValidationErrors,
) -> Result<FieldKind, FieldInputError> {
    let kind = match type_name {
        "text" => {
            let pattern = r.string("pattern")?;
            let autogenerate_pattern = r.string("autogeneratePattern")?;
            if !pattern.is_empty() && !is_valid_regex(&pattern) {
                errors.add(
                    "pattern",
                    FieldError::new("validation_invalid_regex", "Invalid regular expression."),
                );
            }
            if !autogenerate_pattern.is_empty()
                && super::autogen::Generator::parse(&autogenerate_pattern).is_none()
            {
                errors.add(
                    "autogeneratePattern",
                    FieldError::new(
                        "validation_invalid_regex",
                        "Supported form: a character class and a count, e.g. [a-z0-9]{15}.",
                    ),
                );
            }
            let (min, max) = (r.u64("min")?, r.u64("max")?);
            check_min_max(min, max, errors);
            FieldKind::Text {
                min,
                max,
                pattern,
                autogenerate_pattern,
                primary_key: r.bool("primaryKey")?,
            }
        }
        "editor" => FieldKind::Editor {
            max_size: r.u64("maxSize")?,
            convert_urls: r.bool("convertURLs")?,
        },
        "number" => {
            let (min, max) = (r.opt_f64("min")?, r.opt_f64("max")?);
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                errors.add(
                    "max",
                    FieldError::new(
                        "validation_min_greater_equal_than_required",
                        "Must be greater than or equal to min.",
                    ),
                );
            }
            FieldKind::Number {
                min,
                max,
                only_int: r.bool("onlyInt")?,
            }
        }
        "bool" => FieldKind::Bool,
        "email" => FieldKind::Email {
            except_domains: r.strings("exceptDomains")?,
            only_domains: r.strings("onlyDomains")?,
        },
        "url" => FieldKind::Url {
            except_domains: r.strings("exceptDomains")?,
            only_domains: r.strings("onlyDomains")?,
        },
        "date" => {
            let mut bound = |key: &'static str| -> Result<String, FieldInputError> {
                let raw = r.string(key)?;
                if raw.is_empty() {
                    return Ok(raw);
                }
                crate::clock::parse_date(&raw).ok_or_else(|| {
                    errors.add(
                        key,
                        FieldError::new("validation_invalid_date", "Must be a valid date."),
                    );
                    FieldInputError::Invalid(errors.clone())
                })
            };
            let min = bound("min")?;
            let max = bound("max")?;
            FieldKind::Date { min, max }
        }
        "autodate" => FieldKind::Autodate {
            on_create: r.bool("onCreate")?,
            on_update: r.bool("onUpdate")?,
        },
        "select" => {
            let values = r.strings("values")?;
            if values.is_empty() {
                errors.add("values", FieldError::required());
            }
            FieldKind::Select {
                values,
                max_select: r.u64("maxSelect")?.max(1),
            }
        }
        "file" => {
            let thumbs = r.strings("thumbs")?;
            let mut bad = ValidationErrors::new();
            for (i, thumb) in thumbs.iter().enumerate() {
                if let Some(e) = thumb_error(thumb) {
                    bad.add(i.to_string(), e);
                }
            }
            errors.nest("thumbs", bad);
            FieldKind::File {
                max_select: r.u64("maxSelect")?.max(1),
                max_size: r.u64("maxSize")?,
                mime_types: r.strings("mimeTypes")?,
                thumbs,
                protected: r.bool("protected")?,
            }
        }
        "relation" => {
            let collection_id = r.string("collectionId")?;
            if collection_id.is_empty() {
                errors.add("collectionId", FieldError::required());
            }
            let (min_select, max_select) = (r.u64("minSelect")?, r.u64("maxSelect")?.max(1));
            if min_select > max_select {
                errors.add(
                    "maxSelect",
                    FieldError::new(
                        "validation_min_greater_equal_than_required",
                        "Must be at least minSelect.",
                    ),
                );
            }
            FieldKind::Relation {
                collection_id,
                cascade_delete: r.bool("cascadeDelete")?,
                min_select,
                max_select,
            }
        }
        "json" => FieldKind::Json {
            max_size: r.u64("maxSize")?,
        },
        "password" => {
            let pattern = r.string("pattern")?;
            if !pattern.is_empty() && !is_valid_regex(&pattern) {
                errors.add(
                    "pattern",
                    FieldError::new("validation_invalid_regex", "Invalid regular expression."),
                );
            }
            let (min, max) = (r.u64("min")?, r.u64("max")?);
            check_min_max(min, max, errors);
            FieldKind::Password {
                min,
                max,
                pattern,
                cost: r.u64("cost")?,
            }
        }
        "geoPoint" => FieldKind::GeoPoint,
        other => {
            return Err(FieldInputError::Format(format!(
                "unknown field type {other:?}"
            )));
        }
    };
    Ok(kind)
}

/// A JSON number, integral when the value is a whole number within 2^53
/// (so `9` stays `9`, not `9.0`).
pub fn number_json(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

fn check_min_max(min: u64, max: u64, errors: &mut ValidationErrors) {
    if max != 0 && min > max {
        errors.add(
            "max",
            FieldError::new(
                "validation_min_greater_equal_than_required",
                "Must be greater than or equal to min.",
            ),
        );
    }
}

/// Checks a `pattern` with the same regex engine that enforces it (jsonschema's).
fn is_valid_regex(pattern: &str) -> bool {
    jsonschema::validator_for(&json!({"type": "string", "pattern": pattern})).is_ok()
}

/// Typed access to the keys of a field object; missing keys take the type's default.
struct Reader<'a>(&'a Map<String, Value>);

impl Reader<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    fn bad(key: &str, expected: &str) -> FieldInputError {
        FieldInputError::Format(format!("`{key}` must be {expected}"))
    }

    fn string(&self, key: &str) -> Result<String, FieldInputError> {
        match self.get(key) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(Self::bad(key, "a string")),
        }
    }

    fn bool(&self, key: &str) -> Result<bool, FieldInputError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(Self::bad(key, "a boolean")),
        }
    }

    fn u64(&self, key: &str) -> Result<u64, FieldInputError> {
        match self.get(key) {
            None => Ok(0),
            Some(v) => v
                .as_u64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9e15)
                        .map(|f| f as u64)
                })
                .ok_or_else(|| Self::bad(key, "a non-negative integer")),
        }
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>, FieldInputError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| Self::bad(key, "a number or null")),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, FieldInputError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| Self::bad(key, "a list of strings"))
                })
                .collect(),
            Some(_) => Err(Self::bad(key, "a list of strings")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_json() {
        for def in [
            json!({"name": "t", "type": "text", "min": 1, "max": 9, "pattern": "^a"}),
            json!({"name": "e", "type": "editor", "maxSize": 10}),
            json!({"name": "n", "type": "number", "min": -1.5, "max": 9, "onlyInt": true}),
            json!({"name": "b", "type": "bool", "required": true}),
            json!({"name": "m", "type": "email", "onlyDomains": ["x.com"]}),
            json!({"name": "u", "type": "url"}),
            json!({"name": "d", "type": "date", "min": "2024-01-01 00:00:00.000Z"}),
            json!({"name": "a", "type": "autodate", "onCreate": true}),
            json!({"name": "s", "type": "select", "values": ["a", "b"], "maxSelect": 2}),
            json!({"name": "f", "type": "file", "maxSelect": 3, "mimeTypes": ["image/png"]}),
            json!({"name": "r", "type": "relation", "collectionId": "pbc_1", "cascadeDelete": true}),
            json!({"name": "j", "type": "json"}),
            json!({"name": "p", "type": "password", "min": 8}),
            json!({"name": "g", "type": "geoPoint"}),
        ] {
            let field = Field::from_json(&def).unwrap_or_else(|_| panic!("{def} parses"));
            let again = Field::from_json(&field.to_json()).expect("its own JSON parses");
            assert_eq!(field, again, "{def}");
            for (key, value) in def.as_object().expect("object") {
                assert_eq!(&field.to_json()[key], value, "key {key} of {def}");
            }
        }
    }

    #[test]
    fn invalid_definitions_are_reported() {
        for (def, why) in [
            (json!({"name": "x", "type": "nope"}), "unknown type"),
            (
                json!({"name": "x", "type": "select"}),
                "select without values",
            ),
            (
                json!({"name": "x", "type": "relation"}),
                "relation without target",
            ),
            (json!({"name": "x y", "type": "text"}), "bad name"),
            (
                json!({"name": "x", "type": "text", "pattern": "("}),
                "bad regex",
            ),
            (
                json!({"name": "x", "type": "text", "min": "3"}),
                "min as string",
            ),
            (
                json!({"name": "x", "type": "text", "min": 5, "max": 2}),
                "min above max",
            ),
            (json!("text"), "not an object"),
        ] {
            assert!(
                Field::from_json(&def).is_err(),
                "{def} ({why}) should be refused"
            );
        }
    }

    #[test]
    fn thumb_sizes_are_checked_like_pocketbase() {
        for ok in ["100x100", "0x50", "50x0", "10x10t", "10x10b", "10x10f"] {
            assert!(thumb_error(ok).is_none(), "{ok}");
        }
        for (bad, code) in [
            ("abc", "validation_match_invalid"),
            ("100x100z", "validation_match_invalid"),
            ("x10", "validation_match_invalid"),
            ("0x0", "validation_not_in_invalid"),
            ("0x0f", "validation_not_in_invalid"),
        ] {
            assert_eq!(thumb_error(bad).map(|e| e.code), Some(code), "{bad}");
        }
    }
}
