//! Password reset: `request-password-reset` mails a token to an existing
//! account; `confirm-password-reset` checks the new password and stores its
//! hash, rotating the tokenKey (every earlier token dies) and verifying the
//! email, as proving the mailbox does.

use super::purpose::{Outgoing, check_token, find, outgoing, require_email, save_credentials};
use crate::auth::token::Purpose;
use crate::auth::{AuthError, password};
use crate::db::Db;
use crate::records::Backend;
use crate::schema::{CompiledCollection, FieldKind};
use crate::validation::{FieldError, ValidationErrors};
use serde_json::json;
use std::sync::Arc;

/// `request-password-reset`: a message for an existing account, else nothing.
pub async fn request_password_reset(
    db: &Db,
    collection: Arc<CompiledCollection>,
    email: &str,
) -> Result<Option<Outgoing>, AuthError> {
    let email = require_email(email)?;
    let Some((id, stored_email, token_key, _)) = find(db, &collection, "email", email).await?
    else {
        return Ok(None);
    };
    outgoing(
        &collection,
        Purpose::PasswordReset,
        (id, stored_email, token_key),
        None,
    )
    .map(Some)
}

fn check_new_password(
    collection: &CompiledCollection,
    password: &str,
    confirm: &str,
) -> Result<(), AuthError> {
    let mut errors = ValidationErrors::new();
    let min = collection
        .field("password")
        .and_then(|f| match f.kind {
            FieldKind::Password { min, .. } => Some(min),
            _ => None,
        })
        .unwrap_or(8);
    if password.is_empty() {
        errors.add("password", FieldError::required());
    } else if (password.chars().count() as u64) < min {
        errors.add(
            "password",
            FieldError::new(
                "validation_min_text_constraint",
                format!("Must be at least {min} character(s)."),
            )
            .with_params(json!({"min": min})),
        );
    }
    if confirm.is_empty() {
        errors.add("passwordConfirm", FieldError::required());
    } else if confirm != password {
        errors.add(
            "passwordConfirm",
            FieldError::new("validation_values_mismatch", "Values don't match."),
        );
    }
    errors.into_result().map_err(AuthError::Validation)
}

/// `confirm-password-reset`: sets the new password; every earlier token
/// dies. Returns the record's id.
pub async fn confirm_password_reset(
    backend: Backend<'_>,
    collection: Arc<CompiledCollection>,
    raw_token: &str,
    password_plain: &str,
    confirm: &str,
) -> Result<String, AuthError> {
    let checked = check_token(backend.db, &collection, Purpose::PasswordReset, raw_token).await?;
    check_new_password(&collection, password_plain, confirm)?;
    let hash = password::hash(password_plain.to_owned()).await?;
    let id = checked.id.clone();
    save_credentials(backend, &collection, checked, Some(hash), None).await?;
    Ok(id)
}
