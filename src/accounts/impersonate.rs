//! Superuser impersonation: a non-refreshable auth token for any record.

use super::purpose::find;
use crate::auth::token;
use crate::auth::{AuthError, auth_signing_key};
use crate::db::Db;
use crate::schema::CompiledCollection;
use std::sync::Arc;

/// `impersonate/{id}`: a non-refreshable auth token for any record (superusers only).
pub async fn impersonate(
    db: &Db,
    collection: Arc<CompiledCollection>,
    id: String,
    duration_secs: Option<i64>,
) -> Result<String, AuthError> {
    let (id, _, token_key, _) = find(db, &collection, "id", id)
        .await?
        .ok_or(AuthError::NotFound)?;
    let duration = duration_secs
        .filter(|d| *d > 0)
        .unwrap_or(collection.auth.auth_token.duration);
    token::issue_auth_fixed(
        &collection.id,
        &id,
        &auth_signing_key(&collection, &token_key),
        duration,
    )
}
