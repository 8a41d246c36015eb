//! `@request.*` values of one request for the rules engine: the
//! authenticated record's fields, the submitted body, query parameters,
//! headers (lowercased, `-` → `_`), the method and the context.

use super::access::Caller;
use crate::rules::{Path, RuleError, SqlValue};
use crate::schema::RequestValues;
use serde_json::Value;

/// A JSON value as a bound SQL value (arrays and objects as JSON text).
pub(crate) fn json_to_sql(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

impl RequestValues for Caller {
    fn value(&self, path: &Path) -> Result<Option<SqlValue>, RuleError> {
        let key: Vec<&str> = path.segments.iter().skip(1).map(String::as_str).collect();
        let auth = self.auth.as_ref();
        let value = match key.as_slice() {
            ["auth", "id"] => Some(SqlValue::Text(
                auth.map(|a| a.2.clone()).unwrap_or_default(),
            )),
            ["auth", "collectionId"] => auth.map(|a| SqlValue::Text(a.0.clone())),
            ["auth", "collectionName"] => auth.map(|a| SqlValue::Text(a.1.clone())),
            ["auth", "password" | "tokenKey"] => None,
            ["auth", field] => self.auth_fields.get(*field).map(json_to_sql),
            ["method"] => Some(SqlValue::Text(self.method.clone())),
            ["context"] => Some(SqlValue::Text(self.context.to_owned())),
            ["query", name] => self.query.get(*name).map(|v| SqlValue::Text(v.clone())),
            ["headers", name] => self.headers.get(*name).map(|v| SqlValue::Text(v.clone())),
            ["body", name] => self
                .body
                .as_ref()
                .and_then(|b| b.get(*name))
                .map(json_to_sql),
            _ => None,
        };
        Ok(value)
    }

    fn auth_record(&self) -> Option<(&str, &str)> {
        self.auth
            .as_ref()
            .map(|(collection_id, _, id)| (collection_id.as_str(), id.as_str()))
    }
}
