//! Field values between JSON and SQLite. Input is normalised leniently but
//! never lossily: `"12"` becomes 12 for a number field, while `"abc"` is a
//! field error instead of PocketBase's silent 0 (the same for bools and dates).

pub use crate::schema::number_json;
use crate::schema::{Field, FieldKind};
use crate::validation::FieldError;
use rusqlite::types::{Value as SqlValue, ValueRef};
use serde_json::{Value, json};

/// Turns a submitted value into the field's canonical JSON form.
pub fn normalize(field: &Field, value: &Value) -> Result<Value, FieldError> {
    if field.is_multi() {
        return normalize_multi(value);
    }
    match &field.kind {
        FieldKind::Number { .. } => normalize_number(value),
        FieldKind::Bool => normalize_bool(value),
        FieldKind::Date { .. } => normalize_date(value),
        FieldKind::Json { .. } => Ok(value.clone()),
        FieldKind::GeoPoint => normalize_geo(value),
        FieldKind::Select { .. } | FieldKind::Relation { .. } | FieldKind::File { .. } => {
            match value {
                Value::Array(items) if items.len() > 1 => Err(FieldError::new(
                    "validation_too_many_values",
                    "Select no more than 1.",
                )
                .with_params(json!({"maxSelect": 1}))),
                Value::Array(items) => items.first().map_or(Ok(json!("")), scalar_text),
                other => scalar_text(other),
            }
        }
        _ => scalar_text(value),
    }
}

fn invalid(code: &'static str, message: &str) -> FieldError {
    FieldError::new(code, message)
}

fn scalar_text(value: &Value) -> Result<Value, FieldError> {
    match value {
        Value::Null => Ok(json!("")),
        Value::String(_) => Ok(value.clone()),
        Value::Number(n) => Ok(json!(n.to_string())),
        Value::Bool(b) => Ok(json!(b.to_string())),
        _ => Err(invalid("validation_invalid_value", "Must be a string.")),
    }
}

fn normalize_number(value: &Value) -> Result<Value, FieldError> {
    let n = match value {
        Value::Null => 0.0,
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) if s.trim().is_empty() => 0.0,
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| invalid("validation_invalid_number", "Must be a valid number."))?,
        _ => {
            return Err(invalid(
                "validation_invalid_number",
                "Must be a valid number.",
            ));
        }
    };
    Ok(number_json(n))
}

fn normalize_bool(value: &Value) -> Result<Value, FieldError> {
    let b = match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) if n.as_f64() == Some(1.0) => true,
        Value::Number(n) if n.as_f64() == Some(0.0) => false,
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" | "" => false,
            _ => return Err(invalid("validation_invalid_bool", "Must be true or false.")),
        },
        _ => return Err(invalid("validation_invalid_bool", "Must be true or false.")),
    };
    Ok(json!(b))
}

fn normalize_date(value: &Value) -> Result<Value, FieldError> {
    match value {
        Value::Null => Ok(json!("")),
        Value::String(s) if s.trim().is_empty() => Ok(json!("")),
        Value::String(s) => crate::clock::parse_date(s)
            .map(Value::String)
            .ok_or_else(|| {
                invalid(
                    "validation_invalid_date",
                    "Must be a valid date (e.g. 2024-01-02 15:04:05.000Z).",
                )
            }),
        _ => Err(invalid(
            "validation_invalid_date",
            "Must be a valid date (e.g. 2024-01-02 15:04:05.000Z).",
        )),
    }
}

fn normalize_geo(value: &Value) -> Result<Value, FieldError> {
    match value {
        Value::Null => Ok(json!({"lon": 0, "lat": 0})),
        Value::String(s) if s.is_empty() => Ok(json!({"lon": 0, "lat": 0})),
        Value::Object(m) => {
            let coord = |key: &str, code: &'static str| -> Result<Value, FieldError> {
                match m.get(key) {
                    None | Some(Value::Null) => Ok(json!(0)),
                    Some(Value::Number(n)) => Ok(number_json(n.as_f64().unwrap_or(0.0))),
                    Some(_) => Err(invalid(code, "Must be a number.")),
                }
            };
            Ok(json!({
                "lon": coord("lon", "validation_invalid_longitude")?,
                "lat": coord("lat", "validation_invalid_latitude")?
            }))
        }
        _ => Err(invalid(
            "validation_invalid_value",
            "Must be an object with lon and lat.",
        )),
    }
}

/// The strings a list value (or a single string) holds, without blanks or
/// duplicates: what a modifier adds to or removes from a list field.
pub fn normalize_list(value: &Value) -> Result<Vec<String>, FieldError> {
    let Value::Array(items) = normalize_multi(value)? else {
        return Ok(Vec::new());
    };
    Ok(items
        .into_iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s),
            _ => None,
        })
        .collect())
}

fn normalize_multi(value: &Value) -> Result<Value, FieldError> {
    let items: Vec<Value> = match value {
        Value::Null => vec![],
        Value::String(s) if s.is_empty() => vec![],
        Value::String(_) => vec![value.clone()],
        Value::Array(items) => items.clone(),
        _ => {
            return Err(invalid(
                "validation_invalid_value",
                "Must be a list of strings.",
            ));
        }
    };
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(s) = item else {
            return Err(invalid(
                "validation_invalid_value",
                "Must be a list of strings.",
            ));
        };
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(json!(out))
}

/// The SQLite value stored for a normalised JSON value.
pub fn to_sql(field: &Field, value: &Value) -> SqlValue {
    if field.is_multi() {
        return SqlValue::Text(value.to_string());
    }
    match (&field.kind, value) {
        (FieldKind::Json { .. }, Value::Null) => SqlValue::Null,
        (FieldKind::Json { .. } | FieldKind::GeoPoint, v) => SqlValue::Text(v.to_string()),
        (FieldKind::Bool, Value::Bool(b)) => SqlValue::Integer(i64::from(*b)),
        (FieldKind::Number { .. }, Value::Number(n)) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
        },
        (_, Value::String(s)) => SqlValue::Text(s.clone()),
        (_, Value::Null) => SqlValue::Text(String::new()),
        (_, other) => SqlValue::Text(other.to_string()),
    }
}

/// The JSON value of a stored column.
pub fn from_sql(field: &Field, raw: ValueRef<'_>) -> Value {
    if field.is_multi() {
        return match raw {
            ValueRef::Text(t) => serde_json::from_slice(t)
                .ok()
                .filter(Value::is_array)
                .unwrap_or_else(|| json!([])),
            _ => json!([]),
        };
    }
    match &field.kind {
        FieldKind::Number { .. } => match raw {
            ValueRef::Integer(i) => json!(i),
            ValueRef::Real(f) => number_json(f),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .map_or(json!(0), number_json),
            _ => json!(0),
        },
        FieldKind::Bool => match raw {
            ValueRef::Integer(i) => json!(i != 0),
            ValueRef::Real(f) => json!(f != 0.0),
            ValueRef::Text(t) => json!(t == b"true" || t == b"1"),
            _ => json!(false),
        },
        FieldKind::Json { .. } => match raw {
            ValueRef::Text(t) => serde_json::from_slice(t)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(t).into_owned())),
            ValueRef::Integer(i) => json!(i),
            ValueRef::Real(f) => number_json(f),
            _ => Value::Null,
        },
        FieldKind::GeoPoint => match raw {
            ValueRef::Text(t) => {
                serde_json::from_slice(t).unwrap_or_else(|_| json!({"lon": 0, "lat": 0}))
            }
            _ => json!({"lon": 0, "lat": 0}),
        },
        _ => match raw {
            ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Integer(i) => Value::String(i.to_string()),
            ValueRef::Real(f) => Value::String(f.to_string()),
            _ => Value::String(String::new()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(kind: FieldKind) -> Field {
        Field::test_of(kind)
    }

    #[test]
    fn convertible_input_is_normalised() {
        let number = field(FieldKind::Number {
            min: None,
            max: None,
            only_int: false,
        });
        assert_eq!(normalize(&number, &json!("12")), Ok(json!(12)));
        assert_eq!(normalize(&number, &json!(-1.5)), Ok(json!(-1.5)));
        assert_eq!(normalize(&number, &Value::Null), Ok(json!(0)));
        let flag = field(FieldKind::Bool);
        assert_eq!(normalize(&flag, &json!("true")), Ok(json!(true)));
        assert_eq!(normalize(&flag, &json!(0)), Ok(json!(false)));
        let date = field(FieldKind::Date {
            min: String::new(),
            max: String::new(),
        });
        assert_eq!(
            normalize(&date, &json!("2024-01-02")),
            Ok(json!("2024-01-02 00:00:00.000Z"))
        );
        let multi = field(FieldKind::Select {
            values: vec!["a".into(), "b".into()],
            max_select: 3,
        });
        assert_eq!(
            normalize(&multi, &json!(["a", "a", "b"])),
            Ok(json!(["a", "b"])),
            "duplicates removed"
        );
        assert_eq!(
            normalize(&multi, &json!("a")),
            Ok(json!(["a"])),
            "single value wrapped"
        );
    }

    #[test]
    fn input_that_would_be_lost_is_a_field_error() {
        let number = field(FieldKind::Number {
            min: None,
            max: None,
            only_int: false,
        });
        let flag = field(FieldKind::Bool);
        let date = field(FieldKind::Date {
            min: String::new(),
            max: String::new(),
        });
        for (f, v, why) in [
            (&number, json!("abc"), "non-numeric text"),
            (&number, json!([1]), "array"),
            (&flag, json!("maybe"), "non-boolean text"),
            (&date, json!("next tuesday"), "unparseable date"),
            (&date, json!(12), "number as date"),
        ] {
            assert!(normalize(f, &v).is_err(), "{v} ({why}) should be refused");
        }
    }
}
