//! The JSON Schema of a collection's records, compiled once per collection
//! version. It checks types, lengths, ranges, patterns, enumerations and
//! blankness of a record after input normalisation; `records::validate`
//! maps its errors to PocketBase's validation codes and adds the checks a
//! schema can't express (relations exist, uniqueness, byte sizes).

use super::collection::Collection;
use super::field::{DEFAULT_TEXT_MAX_CHARS, Field, FieldKind};
use serde_json::{Map, Value, json};

/// Compiles the record schema of `collection`.
pub fn compile(collection: &Collection) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&record_schema(collection))
        .map_err(|e| e.to_string())
}

/// The record schema as JSON (also useful for API docs).
pub fn record_schema(collection: &Collection) -> Value {
    let mut props = Map::new();
    for field in &collection.fields {
        if let Some(schema) = field_schema(field) {
            props.insert(field.name.as_str().to_owned(), schema);
        }
    }
    json!({"type": "object", "properties": props})
}

fn field_schema(field: &Field) -> Option<Value> {
    let mut s = match &field.kind {
        FieldKind::Text {
            min, max, pattern, ..
        } => {
            let max = if *max == 0 {
                DEFAULT_TEXT_MAX_CHARS
            } else {
                *max
            };
            let mut s = json!({"type": "string", "maxLength": max});
            if *min > 0 {
                // Empty is "unset"; a required check reports it, not the length check.
                s = json!({"type": "string", "maxLength": max, "anyOf": [{"const": ""}, {"minLength": min}]});
            }
            if !pattern.is_empty() {
                s["allOf"] = json!([{"anyOf": [{"const": ""}, {"pattern": pattern}]}]);
            }
            s
        }
        FieldKind::Editor { .. } | FieldKind::Date { .. } | FieldKind::Autodate { .. } => {
            json!({"type": "string"})
        }
        FieldKind::Password { .. } => json!({"type": "string"}),
        FieldKind::Number { min, max, only_int } => {
            let mut s = json!({"type": "number"});
            // As PocketBase: 0 is a number field's empty value, so the
            // bounds only apply to other values (`required` refuses 0).
            let mut bounds = json!({});
            if let Some(min) = min {
                bounds["minimum"] = json!(min);
            }
            if let Some(max) = max {
                bounds["maximum"] = json!(max);
            }
            if min.is_some() || max.is_some() {
                s["if"] = json!({"not": {"const": 0}});
                s["then"] = bounds;
            }
            if *only_int {
                s["multipleOf"] = json!(1);
            }
            s
        }
        FieldKind::Bool => json!({"type": "boolean"}),
        FieldKind::Email { .. } => {
            json!({"type": "string", "anyOf": [{"const": ""}, {"format": "email"}]})
        }
        FieldKind::Url { .. } => {
            json!({"type": "string", "anyOf": [{"const": ""}, {"format": "uri", "pattern": "^[a-zA-Z][a-zA-Z0-9+.-]*://[^\\s]+$"}]})
        }
        FieldKind::Select { values, .. } => {
            if field.is_multi() {
                json!({"type": "array", "items": {"enum": values}})
            } else {
                let mut allowed = values.clone();
                allowed.push(String::new());
                json!({"type": "string", "enum": allowed})
            }
        }
        FieldKind::Relation { min_select, .. } => {
            if field.is_multi() {
                let mut s = json!({"type": "array", "items": {"type": "string", "minLength": 1}});
                if *min_select > 0 {
                    s["anyOf"] = json!([{"maxItems": 0}, {"minItems": min_select}]);
                }
                s
            } else {
                json!({"type": "string"})
            }
        }
        FieldKind::File { .. } => {
            if field.is_multi() {
                json!({"type": "array", "items": {"type": "string"}})
            } else {
                json!({"type": "string"})
            }
        }
        FieldKind::Json { .. } => json!({}),
        FieldKind::GeoPoint => json!({
            "type": "object",
            "required": ["lon", "lat"],
            "properties": {
                "lon": {"type": "number", "minimum": -180, "maximum": 180},
                "lat": {"type": "number", "minimum": -90, "maximum": 90}
            }
        }),
    };
    if let (Some(obj), Some(max)) = (s.as_object_mut(), max_select(field)) {
        obj.insert("maxItems".into(), json!(max));
    }
    if field.required && !matches!(field.kind, FieldKind::Autodate { .. }) {
        s["not"] = json!({"const": field.zero_value()});
    }
    Some(s)
}

fn max_select(field: &Field) -> Option<u64> {
    if !field.is_multi() {
        return None;
    }
    match &field.kind {
        FieldKind::Select { max_select, .. }
        | FieldKind::File { max_select, .. }
        | FieldKind::Relation { max_select, .. } => Some(*max_select),
        _ => None,
    }
}
