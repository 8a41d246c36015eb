//! Field → JSON Schema (2020-12, as OpenAPI 3.1 uses it) for the record
//! schemas of the document: what a record looks like in a response, and
//! what a create or update body may carry (JSON or multipart).

use crate::schema::{DEFAULT_TEXT_MAX_CHARS, Field, FieldKind};
use serde_json::{Value, json};

/// How a date travels: PocketBase's `2006-01-02 15:04:05.000Z` layout.
const DATE_PATTERN: &str = r"^$|^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?Z$";

/// Where a schema is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    Response,
    Json,
    Multipart,
}

/// The schema of `field`'s value for `usage`; `None` when the field does
/// not appear there (hidden fields in responses, autodates in bodies).
pub(crate) fn field_schema(field: &Field, usage: Use) -> Option<Value> {
    let hidden_out = usage == Use::Response && (field.hidden || is_password(field));
    let server_set = usage != Use::Response && matches!(field.kind, FieldKind::Autodate { .. });
    let hidden_in = usage != Use::Response && field.hidden && !is_password(field);
    if hidden_out || server_set || hidden_in {
        return None;
    }
    let mut s = value_schema(field, usage);
    if !field.help.is_empty() {
        s["description"] = json!(field.help);
    }
    Some(s)
}

/// Whether a create body must carry `field`.
pub(crate) fn required_on_create(field: &Field) -> bool {
    match &field.kind {
        FieldKind::Autodate { .. } => false,
        FieldKind::Text {
            autogenerate_pattern,
            ..
        } => field.required && autogenerate_pattern.is_empty(),
        _ => field.required,
    }
}

fn is_password(field: &Field) -> bool {
    matches!(field.kind, FieldKind::Password { .. })
}

fn value_schema(field: &Field, usage: Use) -> Value {
    let one = match &field.kind {
        FieldKind::Text {
            min, max, pattern, ..
        } => text(*min, *max, pattern, field.required),
        FieldKind::Editor { .. } => json!({"type": "string", "contentMediaType": "text/html"}),
        FieldKind::Password { min, max, .. } => text(*min, *max, "", field.required),
        FieldKind::Number { min, max, only_int } => number(*min, *max, *only_int, field.required),
        FieldKind::Bool => json!({"type": "boolean"}),
        FieldKind::Email { .. } => formatted("email", usage),
        FieldKind::Url { .. } => formatted("uri", usage),
        FieldKind::Date { .. } | FieldKind::Autodate { .. } => date(usage),
        FieldKind::Select { values, .. } => select(values, field.is_multi(), field.required),
        FieldKind::File { .. } if usage == Use::Multipart => {
            json!({"type": "string", "format": "binary"})
        }
        FieldKind::File { .. } => json!({"type": "string", "description": "Stored file name."}),
        FieldKind::Relation { .. } => {
            json!({"type": "string", "description": "Related record id."})
        }
        FieldKind::Json { .. } => json!({"description": "Any JSON value."}),
        FieldKind::GeoPoint => json!({
            "type": "object",
            "required": ["lon", "lat"],
            "properties": {
                "lon": {"type": "number", "minimum": -180, "maximum": 180},
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
            },
        }),
    };
    match (&field.kind, max_select(field)) {
        (FieldKind::Select { .. }, _) => one,
        (_, Some(max)) => json!({"type": "array", "items": one, "maxItems": max}),
        _ => one,
    }
}

/// An email or URL: the format in bodies; in responses also `""`, which
/// the server returns for an unset (or hidden) value.
fn formatted(format: &str, usage: Use) -> Value {
    if usage == Use::Response {
        json!({"type": "string", "anyOf": [{"const": ""}, {"format": format}],
            "description": "Empty when unset."})
    } else {
        json!({"type": "string", "format": format, "description": "Empty when unset."})
    }
}

/// A date. Responses use PocketBase's space-separated layout, which is not
/// RFC 3339 `date-time`, so there only the pattern describes it; bodies
/// take either layout.
fn date(usage: Use) -> Value {
    let mut s = json!({
        "type": "string",
        "pattern": DATE_PATTERN,
        "description": "UTC, as `2006-01-02 15:04:05.000Z`; empty when unset.",
    });
    if usage != Use::Response {
        s["format"] = json!("date-time");
    }
    s
}

/// An optional field's empty value (`""`, `0`) passes its length, pattern
/// and bound checks, so those are only stated as assertions on required
/// fields; on optional ones they go into the description, keeping the
/// schema true for the records the server returns.
fn text(min: u64, max: u64, pattern: &str, required: bool) -> Value {
    let max = if max == 0 {
        DEFAULT_TEXT_MAX_CHARS
    } else {
        max
    };
    let mut s = json!({"type": "string", "maxLength": max});
    let mut notes = Vec::new();
    if min > 0 && required {
        s["minLength"] = json!(min);
    } else if min > 0 {
        notes.push(format!("At least {min} characters when set."));
    }
    if !pattern.is_empty() && required {
        s["pattern"] = json!(pattern);
    } else if !pattern.is_empty() {
        notes.push(format!("Matches `{pattern}` when set."));
    }
    if !notes.is_empty() {
        s["description"] = json!(notes.join(" "));
    }
    s
}

fn number(min: Option<f64>, max: Option<f64>, only_int: bool, required: bool) -> Value {
    let mut s = json!({"type": if only_int { "integer" } else { "number" }});
    let zero_in_bounds = min.is_none_or(|m| m <= 0.0) && max.is_none_or(|m| m >= 0.0);
    if required || zero_in_bounds {
        if let Some(min) = min {
            s["minimum"] = json!(min);
        }
        if let Some(max) = max {
            s["maximum"] = json!(max);
        }
    } else {
        let bound = |b: Option<f64>| b.map_or("any".to_owned(), |b| b.to_string());
        s["description"] = json!(format!(
            "0 when unset; otherwise from {} to {}.",
            bound(min),
            bound(max)
        ));
    }
    s
}

fn select(values: &[String], multi: bool, required: bool) -> Value {
    if multi {
        return json!({"type": "array", "items": {"type": "string", "enum": values}, "uniqueItems": true});
    }
    let mut allowed = values.to_vec();
    if !required {
        allowed.push(String::new());
    }
    json!({"type": "string", "enum": allowed})
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

#[cfg(test)]
mod tests {
    use super::*;

    fn field(kind: FieldKind) -> Field {
        Field::test_of(kind)
    }

    #[test]
    fn fields_map_to_their_formats_and_bounds() {
        let email = field(FieldKind::Email {
            except_domains: vec![],
            only_domains: vec![],
        });
        assert_eq!(
            field_schema(&email, Use::Json).expect("shown")["format"],
            "email"
        );
        assert_eq!(
            field_schema(&email, Use::Response).expect("shown")["anyOf"],
            json!([{"const": ""}, {"format": "email"}]),
            "an unset email comes back as \"\""
        );
        let date = field(FieldKind::Date {
            min: String::new(),
            max: String::new(),
        });
        assert!(
            field_schema(&date, Use::Response)
                .expect("shown")
                .get("format")
                .is_none(),
            "`2006-01-02 15:04:05.000Z` is not RFC 3339 date-time"
        );
        let select = field(FieldKind::Select {
            values: vec!["a".into(), "b".into()],
            max_select: 1,
        });
        assert_eq!(
            field_schema(&select, Use::Json).expect("shown")["enum"],
            json!(["a", "b", ""])
        );
        let files = field(FieldKind::File {
            max_select: 3,
            max_size: 0,
            mime_types: vec![],
            thumbs: vec![],
            protected: false,
        });
        let multipart = field_schema(&files, Use::Multipart).expect("shown");
        assert_eq!(multipart["items"]["format"], "binary", "{multipart}");
        assert_eq!(multipart["maxItems"], 3);
        let mut count = field(FieldKind::Number {
            min: Some(1.0),
            max: Some(9.0),
            only_int: true,
        });
        let optional = field_schema(&count, Use::Json).expect("shown");
        assert!(
            optional.get("minimum").is_none(),
            "0 (unset) is outside 1..9, so an optional field states the bounds in words: {optional}"
        );
        count.required = true;
        let s = field_schema(&count, Use::Json).expect("shown");
        assert_eq!(
            (
                s["type"].as_str(),
                s["minimum"].as_f64(),
                s["maximum"].as_f64()
            ),
            (Some("integer"), Some(1.0), Some(9.0))
        );
    }

    #[test]
    fn passwords_and_hidden_fields_stay_out_of_responses() {
        let mut secret = field(FieldKind::Bool);
        secret.hidden = true;
        assert!(field_schema(&secret, Use::Response).is_none());
        let password = field(FieldKind::Password {
            min: 8,
            max: 0,
            pattern: String::new(),
            cost: 0,
        });
        assert!(field_schema(&password, Use::Response).is_none());
        assert!(field_schema(&password, Use::Json).is_some());
    }
}
