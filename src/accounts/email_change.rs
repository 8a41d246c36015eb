//! Email change: `request-email-change` mails a token to the new address of
//! the signed-in record, once the address passes the email field (format,
//! domain lists) and is free; `confirm-email-change` needs that token and
//! the current password, and moves the record through the records system
//! write, which validates the new address again (the field may have been
//! narrowed since the token was issued).

use super::purpose::{
    Outgoing, check_token, find, invalid, outgoing, require_email, save_credentials,
};
use crate::auth::token::Purpose;
use crate::auth::{AuthError, password};
use crate::db::{Conn, Db, ident};
use crate::records::Backend;
use crate::records::validate;
use crate::rules::SqlValue;
use crate::schema::CompiledCollection;
use crate::validation::FieldError;
use serde_json::{Value, json};
use std::sync::Arc;

/// `request-email-change`: a message to the new address for the authenticated record.
pub async fn request_email_change(
    db: &Db,
    collection: Arc<CompiledCollection>,
    record_id: String,
    new_email: &str,
) -> Result<Outgoing, AuthError> {
    let new_email = require_email(new_email).map_err(|_| {
        invalid(
            "newEmail",
            FieldError::new("validation_is_email", "Must be a valid email address."),
        )
    })?;
    // The new address must pass the email field as a create or update
    // would (its domain lists included): no token is mailed for an address
    // the record could never take.
    let mut refused = validate::check_field(&collection, "email", &json!(new_email));
    if !refused.is_empty() {
        refused.rename("email", "newEmail");
        return Err(AuthError::Validation(refused));
    }
    if find(db, &collection, "email", new_email.clone())
        .await?
        .is_some()
    {
        return Err(invalid(
            "newEmail",
            FieldError::new("validation_invalid_new_email", "Invalid new email address."),
        ));
    }
    let (id, email, token_key, _) = find(db, &collection, "id", record_id)
        .await?
        .ok_or(AuthError::InvalidCredentials)?;
    outgoing(
        &collection,
        Purpose::EmailChange,
        (id, email, token_key),
        Some(new_email),
    )
}

/// `confirm-email-change`: with the current password, moves the record to
/// the new email. Returns the record's id.
pub async fn confirm_email_change(
    backend: Backend<'_>,
    collection: Arc<CompiledCollection>,
    raw_token: &str,
    password_plain: &str,
) -> Result<String, AuthError> {
    let db = backend.db;
    let checked = check_token(db, &collection, Purpose::EmailChange, raw_token).await?;
    if password_plain.is_empty() {
        return Err(invalid("password", FieldError::required()));
    }
    let sql = format!(
        "SELECT password FROM {} WHERE id = ?1",
        ident(collection.name.as_str())
    );
    let lookup = SqlValue::Text(checked.id.clone());
    let row = db
        .read_conn(move |conn: &mut dyn Conn| conn.first_row(&sql, &[lookup]))
        .await?;
    let stored = match row.and_then(|r| r.into_iter().next()) {
        Some(SqlValue::Text(hash)) => hash,
        _ => String::new(),
    };
    if stored.is_empty() || !password::verify(password_plain.to_owned(), stored).await {
        return Err(invalid(
            "password",
            FieldError::new(
                "validation_invalid_password",
                "Missing or invalid auth record password.",
            ),
        ));
    }
    let new_email = checked
        .claims
        .get("newEmail")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let id = checked.id.clone();
    save_credentials(backend, &collection, checked, None, Some(new_email)).await?;
    Ok(id)
}
