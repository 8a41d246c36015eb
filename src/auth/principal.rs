//! Who is asking: resolved once per request from the `Authorization` header.
//! A missing, malformed, expired or revoked token makes a guest, never an
//! error: only endpoints that require auth answer 401.

use super::token::{self, Purpose};
use crate::db::{Conn, Db, DbError};
use crate::rules::{Dialect, SqlValue};
use crate::schema::{CollectionType, CompiledCollection, Field, FieldKind, Registry, TokenConfig};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The requester of one HTTP request.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// No valid token.
    Anonymous,
    /// A record of an auth collection other than `_superusers`.
    User {
        collection_id: String,
        collection_name: String,
        id: String,
        /// The record's stored columns (without `password` and `tokenKey`),
        /// for `@request.auth.<field>` in rules.
        fields: Map<String, Value>,
    },
    /// A `_superusers` record.
    Superuser { id: String },
}

impl Principal {
    pub fn is_superuser(&self) -> bool {
        matches!(self, Principal::Superuser { .. })
    }
}

/// The key that signs auth tokens of `record_token_key` in `collection`.
pub(crate) fn auth_signing_key(collection: &CompiledCollection, record_token_key: &str) -> String {
    format!("{record_token_key}{}", collection.auth.auth_token.secret)
}

/// The collection's lifetime and secret for `purpose` tokens.
pub(crate) fn token_config(collection: &CompiledCollection, purpose: Purpose) -> &TokenConfig {
    let auth = &collection.auth;
    match purpose {
        Purpose::Verification => &auth.verification_token,
        Purpose::PasswordReset => &auth.password_reset_token,
        Purpose::EmailChange => &auth.email_change_token,
        Purpose::File => &auth.file_token,
    }
}

/// Seconds a `purpose` token of the collection stays valid.
pub(crate) fn purpose_duration(collection: &CompiledCollection, purpose: Purpose) -> i64 {
    token_config(collection, purpose).duration
}

/// The key that signs `purpose` tokens of a record with `token_key`.
pub(crate) fn purpose_key(
    collection: &CompiledCollection,
    purpose: Purpose,
    token_key: &str,
) -> String {
    format!("{token_key}{}", token_config(collection, purpose).secret)
}

/// Resolves an `Authorization` header value (with or without `Bearer `).
pub async fn resolve_token(db: &Db, registry: &Registry, header: &str) -> Principal {
    let token = bare_token(header);
    resolve_as(db, registry, token, "auth", |collection, token_key| {
        token::verify_auth(token, &auth_signing_key(collection, token_key)).is_ok()
    })
    .await
}

/// The token of an `Authorization` header value (with or without `Bearer `).
pub fn bare_token(header: &str) -> &str {
    let raw = header.trim();
    match raw.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => raw[7..].trim(),
        _ => raw,
    }
}

/// Resolves a `?token=` file token (type `file`) to its record, for
/// protected files. Anything invalid is a guest.
pub async fn resolve_file_token(db: &Db, registry: &Registry, token: &str) -> Principal {
    let token = token.trim();
    let file = token::Purpose::File;
    resolve_as(
        db,
        registry,
        token,
        file.claim(),
        |collection, token_key| {
            let key = purpose_key(collection, file, token_key);
            token::verify_purpose(token, file, &key).is_ok()
        },
    )
    .await
}

/// The record a token of type `kind` names, when `verifies(collection, its
/// tokenKey)` accepts the signature; a guest otherwise.
async fn resolve_as(
    db: &Db,
    registry: &Registry,
    token: &str,
    kind: &str,
    verifies: impl Fn(&CompiledCollection, &str) -> bool,
) -> Principal {
    let Some(claims) = token::peek(token) else {
        return Principal::Anonymous;
    };
    if claims.kind != kind {
        return Principal::Anonymous;
    }
    let Some(collection) = registry.snapshot().get(&claims.collection_id) else {
        return Principal::Anonymous;
    };
    if collection.kind != CollectionType::Auth || collection.id != claims.collection_id {
        return Principal::Anonymous;
    }
    let Some((token_key, fields)) = lookup_record(db, &collection, claims.id.clone()).await else {
        return Principal::Anonymous;
    };
    if !verifies(&collection, &token_key) {
        return Principal::Anonymous;
    }
    principal_of(&collection, claims.id, fields)
}

/// The principal record `id` of `collection` would be once logged in (for
/// rules that see it as `@request.auth` before a token exists); `None` when
/// the record is gone.
pub async fn principal_for(
    db: &Db,
    collection: &Arc<CompiledCollection>,
    id: String,
) -> Option<Principal> {
    let (_, fields) = lookup_record(db, collection, id.clone()).await?;
    Some(principal_of(collection, id, fields))
}

/// The principal for record `id` of auth collection `collection`.
pub(super) fn principal_of(
    collection: &CompiledCollection,
    id: String,
    fields: Map<String, Value>,
) -> Principal {
    if collection.is_superusers() {
        Principal::Superuser { id }
    } else {
        Principal::User {
            collection_id: collection.id.clone(),
            collection_name: collection.name.to_string(),
            id,
            fields,
        }
    }
}

/// A row read with the collection's `select_sql` as its tokenKey and its
/// other columns (without `password`) as plain JSON values, the cells SQLite
/// stores: on PostgreSQL a whole `double precision` in a number field is the
/// integer SQLite's NUMERIC affinity keeps, and `jsonb` is compact text.
pub(super) fn key_and_fields(
    collection: &CompiledCollection,
    dialect: Dialect,
    row: Vec<SqlValue>,
) -> (String, Map<String, Value>) {
    let mut token_key = String::new();
    let mut fields = Map::new();
    for (field, cell) in collection.fields.iter().zip(row) {
        let cell = match dialect {
            Dialect::Sqlite => cell,
            Dialect::Postgres => as_sqlite_cell(field, cell),
        };
        let value = match cell {
            SqlValue::Null => Value::Null,
            SqlValue::Integer(n) => json!(n),
            SqlValue::Real(f) => json!(f),
            SqlValue::Text(t) => Value::String(t),
        };
        match field.name.as_str() {
            "tokenKey" => token_key = value.as_str().unwrap_or_default().to_owned(),
            "password" => {}
            name => {
                fields.insert(name.to_owned(), value);
            }
        }
    }
    (token_key, fields)
}

/// A PostgreSQL cell of `field` as SQLite stores the same value.
fn as_sqlite_cell(field: &Field, cell: SqlValue) -> SqlValue {
    /// Integers a double holds exactly (SQLite keeps a whole NUMERIC as one).
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match cell {
        SqlValue::Real(f)
            if matches!(field.kind, FieldKind::Number { .. })
                && f.fract() == 0.0
                && f.abs() <= EXACT =>
        {
            SqlValue::Integer(f as i64)
        }
        SqlValue::Text(t) if crate::records::is_jsonb(field) => {
            match serde_json::from_str::<Value>(&t) {
                Ok(v) => SqlValue::Text(v.to_string()),
                Err(_) => SqlValue::Text(t),
            }
        }
        other => other,
    }
}

/// The record's tokenKey and its other columns as plain JSON values.
async fn lookup_record(
    db: &Db,
    collection: &Arc<CompiledCollection>,
    id: String,
) -> Option<(String, Map<String, Value>)> {
    // PostgreSQL text cannot hold NUL, so no stored id has one.
    if id.contains('\0') {
        return None;
    }
    let collection = collection.clone();
    let found = db
        .read_conn(move |conn: &mut dyn Conn| {
            let dialect = conn.dialect();
            let row = conn.first_row(&collection.select_by_id_sql, &[SqlValue::Text(id)])?;
            Ok::<_, DbError>(row.map(|row| key_and_fields(&collection, dialect, row)))
        })
        .await;
    match found {
        Ok(row) => row.filter(|(key, _)| !key.is_empty()),
        Err(e) => {
            tracing::warn!(error = %e, "token lookup failed; treating request as guest");
            None
        }
    }
}
