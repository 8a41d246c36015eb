//! Email verification: `request-verification` mails a token to an existing,
//! unverified account; `confirm-verification` marks it verified through the
//! records system write (and, without password login, replaces its
//! password: see `takeover`).

use super::purpose::{Outgoing, check_token, find, outgoing, require_email};
use super::takeover;
use crate::auth::AuthError;
use crate::auth::token::Purpose;
use crate::db::Db;
use crate::realtime::Hub;
use crate::records::system;
use crate::schema::CompiledCollection;
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
    db: &Db,
    hub: &Hub,
    collection: Arc<CompiledCollection>,
    raw_token: &str,
) -> Result<String, AuthError> {
    let (id, _, _) = check_token(db, &collection, Purpose::Verification, raw_token).await?;
    let new_password = if password_auth_enabled(&collection) {
        None
    } else {
        Some(takeover::random_password_hash().await?)
    };
    let written = system::system_write(db, hub, move |tx, changes| {
        let upgraded = takeover::mark_verified(tx, &collection, &id, None, changes)?;
        if upgraded && let Some(hash) = new_password {
            takeover::reset_password(tx, &collection, &id, Some(&hash), changes)?;
        }
        Ok(id)
    })
    .await?;
    Ok(written)
}

fn password_auth_enabled(collection: &CompiledCollection) -> bool {
    collection.auth.password_auth.enabled
}
