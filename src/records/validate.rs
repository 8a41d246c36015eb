//! Record validation: the collection's compiled JSON Schema, with each error
//! mapped to PocketBase's code for that field, plus the checks a schema can't
//! express well (byte sizes, date bounds, domain lists). Database checks —
//! relation targets and uniqueness — happen inside the write transaction.

use crate::schema::{
    CompiledCollection, DEFAULT_EDITOR_MAX_BYTES, DEFAULT_JSON_MAX_BYTES, DEFAULT_TEXT_MAX_CHARS,
    Field, FieldKind,
};
use crate::validation::{FieldError, ValidationErrors};
use serde_json::{Map, Value, json};

/// Validates a normalised record; one error per failing field (blank wins).
pub fn check(collection: &CompiledCollection, record: &Map<String, Value>) -> ValidationErrors {
    let mut errors = ValidationErrors::new();
    let instance = Value::Object(record.clone());
    for error in collection.validator.iter_errors(&instance) {
        let path = error.instance_path().as_str().to_owned();
        let mut segments = path.trim_start_matches('/').split('/');
        let Some(name) = segments.next().filter(|s| !s.is_empty()) else {
            continue;
        };
        let Some(field) = collection.field(name) else {
            continue;
        };
        let value = record.get(name).unwrap_or(&Value::Null);
        let mapped = map_error(field, error.kind().keyword(), segments.next(), value);
        if mapped.code == "validation_required" {
            errors.replace(name, mapped);
        } else {
            errors.add(name, mapped);
        }
    }
    for field in &collection.fields {
        if errors.contains(field.name.as_str()) {
            continue;
        }
        if let Some(value) = record.get(field.name.as_str())
            && let Some(e) = extra_check(field, value)
        {
            errors.add(field.name.as_str(), e);
        }
    }
    errors
}

/// Checks one value of field `name` alone, as a create or update would
/// (JSON Schema and the extra checks: domain lists, sizes, date bounds), for
/// flows that take a field's value from a request under another name. The
/// errors, if any, are keyed by `name`.
pub fn check_field(collection: &CompiledCollection, name: &str, value: &Value) -> ValidationErrors {
    let mut record = Map::new();
    record.insert(name.to_owned(), value.clone());
    let mut errors = check(collection, &record);
    errors.retain(|key| key == name);
    errors
}

fn map_error(field: &Field, keyword: &str, sub: Option<&str>, value: &Value) -> FieldError {
    match (keyword, &field.kind) {
        ("not", _) => FieldError::required(),
        (_, FieldKind::GeoPoint) if sub == Some("lat") => FieldError::new(
            "validation_invalid_latitude",
            "Latitude must be between -90 and 90 degrees.",
        ),
        (_, FieldKind::GeoPoint) => FieldError::new(
            "validation_invalid_longitude",
            "Longitude must be between -180 and 180 degrees.",
        ),
        ("maxLength", FieldKind::Text { max, .. }) => {
            let max = if *max == 0 {
                DEFAULT_TEXT_MAX_CHARS
            } else {
                *max
            };
            FieldError::new(
                "validation_max_text_constraint",
                format!("Must be less than {max} character(s)."),
            )
            .with_params(json!({"max": max}))
        }
        ("anyOf", FieldKind::Text { min, .. }) => {
            let len = value.as_str().map_or(0, |s| s.chars().count()) as u64;
            if len < *min {
                FieldError::new(
                    "validation_min_text_constraint",
                    format!("Must be at least {min} character(s)."),
                )
                .with_params(json!({"min": min}))
            } else {
                FieldError::new("validation_invalid_format", "Invalid value format.")
            }
        }
        ("minimum", FieldKind::Number { min, .. }) => FieldError::new(
            "validation_min_number_constraint",
            format!("Must be larger than {}.", min.unwrap_or_default()),
        )
        .with_params(json!({"min": min})),
        ("maximum", FieldKind::Number { max, .. }) => FieldError::new(
            "validation_max_number_constraint",
            format!("Must be less than {}.", max.unwrap_or_default()),
        )
        .with_params(json!({"max": max})),
        ("multipleOf", _) => FieldError::new(
            "validation_only_int_constraint",
            "Decimal numbers are not allowed.",
        ),
        ("enum", _) => {
            let bad = match value {
                Value::Array(items) => items
                    .iter()
                    .find(|v| !allowed(field, v))
                    .cloned()
                    .unwrap_or(Value::Null),
                other => other.clone(),
            };
            let shown = bad.as_str().map_or_else(|| bad.to_string(), str::to_owned);
            FieldError::new(
                "validation_invalid_value",
                format!("Invalid value {shown}."),
            )
            .with_params(json!({"value": shown}))
        }
        ("maxItems", _) => {
            let max = max_select(field);
            FieldError::new(
                "validation_too_many_values",
                format!("Select no more than {max}."),
            )
            .with_params(json!({"maxSelect": max}))
        }
        ("anyOf", FieldKind::Relation { min_select, .. }) => FieldError::new(
            "validation_not_enough_values",
            format!("Select at least {min_select}."),
        )
        .with_params(json!({"minSelect": min_select})),
        ("anyOf", FieldKind::Email { .. }) => {
            FieldError::new("validation_is_email", "Must be a valid email address.")
        }
        ("anyOf", FieldKind::Url { .. }) => {
            FieldError::new("validation_invalid_url", "Must be a valid url.")
        }
        _ => FieldError::new("validation_invalid_value", "Invalid value."),
    }
}

fn allowed(field: &Field, v: &Value) -> bool {
    match &field.kind {
        FieldKind::Select { values, .. } => {
            v.as_str().is_some_and(|s| values.iter().any(|x| x == s))
        }
        _ => true,
    }
}

fn max_select(field: &Field) -> u64 {
    match &field.kind {
        FieldKind::Select { max_select, .. }
        | FieldKind::File { max_select, .. }
        | FieldKind::Relation { max_select, .. } => *max_select,
        _ => 1,
    }
}

fn extra_check(field: &Field, value: &Value) -> Option<FieldError> {
    match &field.kind {
        FieldKind::Editor { max_size, .. } => {
            let limit = if *max_size == 0 {
                DEFAULT_EDITOR_MAX_BYTES
            } else {
                *max_size
            };
            let len = value.as_str().map_or(0, str::len) as u64;
            (len > limit).then(|| {
                FieldError::new(
                    "validation_content_size_limit",
                    format!("Must be less than {limit} bytes."),
                )
                .with_params(json!({"maxSize": limit}))
            })
        }
        FieldKind::Json { max_size } => {
            let limit = if *max_size == 0 {
                DEFAULT_JSON_MAX_BYTES
            } else {
                *max_size
            };
            let len = value.to_string().len() as u64;
            (len > limit).then(|| {
                FieldError::new(
                    "validation_json_size_limit",
                    format!("The maximum allowed JSON size is {limit} bytes."),
                )
                .with_params(json!({"maxSize": limit}))
            })
        }
        FieldKind::Date { min, max } => {
            let v = value.as_str().unwrap_or_default();
            if v.is_empty() {
                None
            } else if !min.is_empty() && v < min.as_str() {
                Some(
                    FieldError::new(
                        "validation_min_date_constraint",
                        format!("Must be no earlier than {min}."),
                    )
                    .with_params(json!({"min": min})),
                )
            } else if !max.is_empty() && v > max.as_str() {
                Some(
                    FieldError::new(
                        "validation_max_date_constraint",
                        format!("Must be no later than {max}."),
                    )
                    .with_params(json!({"max": max})),
                )
            } else {
                None
            }
        }
        FieldKind::Email {
            except_domains,
            only_domains,
        } => {
            let domain = value
                .as_str()
                .and_then(|s| s.rsplit_once('@'))
                .map(|(_, d)| d.to_ascii_lowercase())?;
            domain_refused(&domain, except_domains, only_domains).then(|| {
                FieldError::new(
                    "validation_email_domain_not_allowed",
                    "Email domain is not allowed.",
                )
            })
        }
        FieldKind::Url {
            except_domains,
            only_domains,
        } => {
            let rest = value
                .as_str()
                .and_then(|s| s.split_once("://"))
                .map(|(_, r)| r)?;
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = host
                .rsplit('@')
                .next()
                .unwrap_or_default()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            domain_refused(&host, except_domains, only_domains).then(|| {
                FieldError::new(
                    "validation_url_domain_not_allowed",
                    "URL domain is not allowed.",
                )
            })
        }
        _ => None,
    }
}

fn domain_refused(domain: &str, except: &[String], only: &[String]) -> bool {
    let matches = |list: &[String]| list.iter().any(|d| d.eq_ignore_ascii_case(domain));
    (!only.is_empty() && !matches(only)) || matches(except)
}

/// Checks a plaintext password against a password field's options.
pub fn check_password(field: &Field, plain: &str) -> Option<FieldError> {
    let FieldKind::Password {
        min, max, pattern, ..
    } = &field.kind
    else {
        return None;
    };
    let len = plain.chars().count() as u64;
    let max = if *max == 0 { 71 } else { *max };
    if plain.is_empty() {
        return field.required.then(FieldError::required);
    }
    if len < *min {
        return Some(
            FieldError::new(
                "validation_min_text_constraint",
                format!("Must be at least {min} character(s)."),
            )
            .with_params(json!({"min": min})),
        );
    }
    if len > max {
        return Some(
            FieldError::new(
                "validation_max_text_constraint",
                format!("Must be less than {max} character(s)."),
            )
            .with_params(json!({"max": max})),
        );
    }
    if !pattern.is_empty()
        && let Ok(v) = jsonschema::validator_for(&json!({"pattern": pattern}))
        && !v.is_valid(&json!(plain))
    {
        return Some(FieldError::new(
            "validation_invalid_format",
            "Invalid value format.",
        ));
    }
    None
}
