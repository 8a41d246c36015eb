//! Who is asking: resolved once per request from the `Authorization` header.
//! A missing, malformed, expired or revoked token makes a guest, never an
//! error: only endpoints that require auth answer 401.

use super::token;
use crate::db::{Db, DbError, ident};
use crate::schema::{CollectionType, CompiledCollection, Registry};
use rusqlite::OptionalExtension;
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
    let secret = collection
        .options
        .get("authToken")
        .and_then(|o| o.get("secret"))
        .and_then(|s| s.as_str())
        .unwrap_or_default();
    format!("{record_token_key}{secret}")
}

/// Resolves an `Authorization` header value (with or without `Bearer `).
pub async fn resolve_token(db: &Db, registry: &Registry, header: &str) -> Principal {
    let raw = header.trim();
    let token = match raw.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => raw[7..].trim(),
        _ => raw,
    };
    let Some(claims) = token::peek(token) else {
        return Principal::Anonymous;
    };
    if claims.kind != "auth" {
        return Principal::Anonymous;
    }
    let Some(collection) = registry.snapshot().get(&claims.collection_id) else {
        return Principal::Anonymous;
    };
    if collection.kind != CollectionType::Auth || collection.id != claims.collection_id {
        return Principal::Anonymous;
    }
    let Some(token_key) = lookup_token_key(db, &collection, claims.id.clone()).await else {
        return Principal::Anonymous;
    };
    if token::verify_auth(token, &auth_signing_key(&collection, &token_key)).is_err() {
        return Principal::Anonymous;
    }
    if collection.is_superusers() {
        Principal::Superuser { id: claims.id }
    } else {
        Principal::User {
            collection_id: collection.id.clone(),
            collection_name: collection.name.to_string(),
            id: claims.id,
        }
    }
}

async fn lookup_token_key(
    db: &Db,
    collection: &Arc<CompiledCollection>,
    id: String,
) -> Option<String> {
    let sql = format!(
        "SELECT tokenKey FROM {} WHERE id = ?1",
        ident(collection.name.as_str())
    );
    let found = db
        .read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(DbError::from)?;
            stmt.query_row([id], |r| r.get::<_, String>(0))
                .optional()
                .map_err(DbError::from)
        })
        .await;
    match found {
        Ok(key) => key.filter(|k| !k.is_empty()),
        Err(e) => {
            tracing::warn!(error = %e, "token lookup failed; treating request as guest");
            None
        }
    }
}
