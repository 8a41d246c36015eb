//! Email verification: `request-verification` mails a token to an existing,
//! unverified account; `confirm-verification` marks it verified through the
//! records system write (and, without password login, replaces its
//! password: see `takeover`).

use super::purpose::{Outgoing, check_token, find, outgoing, require_email};
use super::takeover;
use crate::auth::AuthError;
use crate::auth::token::Purpose;
use crate::db::Db;
use crate::realtime::Changes;
use crate::records::Backend;
use crate::records::system::{self, SystemTx};
use crate::schema::CompiledCollection;
use serde_json::{Map, Value};
use std::sync::Arc;

/// `request-verification`: a message for an existing, unverified account, else nothing.
pub async fn request_verification(
    db: &Db,
    collection: Arc<CompiledCollection>,
    email: &str,
) -> Result<Option<Outgoing>, AuthError> {
    let email = require_email(email)?;
    let Some((id, stored_email, token_key, verified)) =
        find(db, &collection, "email", email).await?
    else {
        return Ok(None);
    };
    if verified {
        return Ok(None);
    }
    outgoing(
        &collection,
        Purpose::Verification,
        (id, stored_email, token_key),
        None,
    )
    .map(Some)
}

/// `confirm-verification`: marks the record verified; returns its id. As in
/// PocketBase, a record of a collection without password login also gets a
/// random password then (in case password login is turned on later, a
/// password set by whoever registered the address must not work), and an
/// upgrade drops OAuth2 links made before the address was proven.
pub async fn confirm_verification(
    backend: Backend<'_>,
    collection: Arc<CompiledCollection>,
    raw_token: &str,
) -> Result<String, AuthError> {
    let id = check_token(backend.db, &collection, Purpose::Verification, raw_token)
        .await?
        .id;
    let new_password = if password_auth_enabled(&collection) {
        None
    } else {
        Some(takeover::random_password_hash().await?)
    };
    let (c, target) = (collection.clone(), id.clone());
    let body = move |tx: &mut SystemTx<'_>, changes: &mut Changes| {
        let upgraded = takeover::mark_verified_in(tx, &c, &target, None, changes)?;
        if upgraded && let Some(hash) = &new_password {
            takeover::reset_password_in(tx, &c, &target, Some(hash), changes)?;
        }
        Ok(())
    };
    let shown = Map::from_iter([("verified".to_owned(), Value::Bool(true))]);
    system::update_flow(backend, collection, id.clone(), shown, &["verified"], body).await?;
    Ok(id)
}

fn password_auth_enabled(collection: &CompiledCollection) -> bool {
    collection.auth.password_auth.enabled
}
