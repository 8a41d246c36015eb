//! The account flows around a password: verification, password reset,
//! email change and superuser impersonation. Each `request-*` step returns
//! the message to send (if any) and never reveals whether an account exists;
//! each `confirm-*` step checks a purpose-bound token signed with the
//! record's tokenKey, so any later password or email change revokes it.

use super::principal::auth_signing_key;
use super::takeover;
use super::token::{self, Purpose};
use super::{AuthError, password};
use crate::db::{Db, DbError, ident};
use crate::realtime::Hub;
use crate::records::{RecordError, system, validate};
use crate::schema::{CompiledCollection, FieldKind, TokenConfig, autogen};
use crate::validation::{FieldError, ValidationErrors};
use rusqlite::OptionalExtension;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// A message a flow wants sent: to whom, and the token to put in it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub to: String,
    pub token: String,
    pub record_id: String,
}

/// The collection's lifetime and secret for `purpose` tokens.
fn token_config(collection: &CompiledCollection, purpose: Purpose) -> &TokenConfig {
    let auth = &collection.auth;
    match purpose {
        Purpose::Verification => &auth.verification_token,
        Purpose::PasswordReset => &auth.password_reset_token,
        Purpose::EmailChange => &auth.email_change_token,
        Purpose::File => &auth.file_token,
    }
}

fn option_duration(collection: &CompiledCollection, purpose: Purpose) -> i64 {
    token_config(collection, purpose).duration
}

pub(crate) fn purpose_key(
    collection: &CompiledCollection,
    purpose: Purpose,
    token_key: &str,
) -> String {
    format!("{token_key}{}", token_config(collection, purpose).secret)
}

/// The `auth-methods` answer for a collection.
pub fn auth_methods(collection: &CompiledCollection) -> Value {
    let auth = &collection.auth;
    let password = &auth.password_auth;
    // A switched-off method reports no duration, as PocketBase does.
    let duration = |enabled: bool, secs: i64| if enabled { secs } else { 0 };
    let identity_fields = &password.identity_fields;
    let providers = super::oauth2::auth_methods_providers(collection);
    let legacy_providers: Vec<Value> = providers
        .iter()
        .cloned()
        .map(|mut p| {
            p["logo"] = json!("");
            p
        })
        .collect();
    json!({
        "password": {"identityFields": identity_fields, "enabled": password.enabled},
        "oauth2": {"enabled": auth.oauth2.enabled, "providers": providers},
        "mfa": {"enabled": auth.mfa.enabled, "duration": duration(auth.mfa.enabled, auth.mfa.duration)},
        "otp": {"enabled": auth.otp.enabled, "duration": duration(auth.otp.enabled, auth.otp.duration)},
        "authProviders": legacy_providers,
        "usernamePassword": identity_fields.iter().any(|f| f == "username"),
        "emailPassword": identity_fields.iter().any(|f| f == "email"),
    })
}

/// Reads (id, email, tokenKey, verified) of the record with `column = value`.
async fn find(
    db: &Db,
    collection: &CompiledCollection,
    column: &'static str,
    value: String,
) -> Result<Option<(String, String, String, bool)>, AuthError> {
    let sql = format!(
        "SELECT id, email, tokenKey, verified FROM {} WHERE {} LIMIT 1",
        ident(collection.name.as_str()),
        super::login::identity_match(collection, column)
    );
    db.read(move |conn| {
        conn.query_row(&sql, [value], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()
        .map_err(|e| AuthError::Db(DbError::Sqlite(e)))
    })
    .await
}

fn invalid(field: &str, error: FieldError) -> AuthError {
    let mut errors = ValidationErrors::new();
    errors.add(field, error);
    AuthError::Validation(errors)
}

fn invalid_token() -> AuthError {
    invalid(
        "token",
        FieldError::new("validation_invalid_token", "Invalid or expired token."),
    )
}

fn require_email(raw: &str) -> Result<String, AuthError> {
    let email = raw.trim();
    if email.is_empty() {
        return Err(invalid("email", FieldError::required()));
    }
    if !email.contains('@') || email.chars().any(char::is_whitespace) {
        return Err(invalid(
            "email",
            FieldError::new("validation_is_email", "Must be a valid email address."),
        ));
    }
    Ok(email.to_owned())
}

/// `POST /api/files/token`: a short-lived `file` token for record `id` of
/// `collection` (signed like its other purpose tokens, so rotating the
/// record's tokenKey revokes it too).
pub async fn issue_file_token(
    db: &Db,
    collection: &CompiledCollection,
    id: &str,
) -> Result<String, AuthError> {
    let (id, _, token_key, _) = find(db, collection, "id", id.to_owned())
        .await?
        .ok_or(AuthError::NotFound)?;
    token::issue_purpose(
        Purpose::File,
        &collection.id,
        &id,
        Map::new(),
        &purpose_key(collection, Purpose::File, &token_key),
        option_duration(collection, Purpose::File),
    )
}

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
    let mut extra = Map::new();
    extra.insert("email".into(), json!(stored_email));
    let token = token::issue_purpose(
        Purpose::Verification,
        &collection.id,
        &id,
        extra,
        &purpose_key(&collection, Purpose::Verification, &token_key),
        option_duration(&collection, Purpose::Verification),
    )?;
    Ok(Some(Outgoing {
        to: stored_email,
        token,
        record_id: id,
    }))
}

/// Checks a purpose token against its record; returns (id, stored email, claims).
async fn check_token(
    db: &Db,
    collection: &CompiledCollection,
    purpose: Purpose,
    raw: &str,
) -> Result<(String, String, Map<String, Value>), AuthError> {
    if raw.trim().is_empty() {
        return Err(invalid("token", FieldError::required()));
    }
    let claims = token::peek(raw).ok_or_else(invalid_token)?;
    if claims.collection_id != collection.id || claims.kind != purpose.claim() {
        return Err(invalid_token());
    }
    let (id, email, token_key, _) = find(db, collection, "id", claims.id.clone())
        .await?
        .ok_or_else(invalid_token)?;
    let verified =
        token::verify_purpose(raw, purpose, &purpose_key(collection, purpose, &token_key))
            .map_err(|_| invalid_token())?;
    if purpose != Purpose::File
        && verified.get("email").and_then(Value::as_str) != Some(email.as_str())
    {
        return Err(invalid_token());
    }
    Ok((id, email, verified))
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
        Some(super::takeover::random_password_hash().await?)
    };
    let written = system::system_write(db, hub, move |tx, changes| {
        let upgraded = super::takeover::mark_verified(tx, &collection, &id, None, changes)?;
        if upgraded && let Some(hash) = new_password {
            super::takeover::reset_password(tx, &collection, &id, Some(&hash), changes)?;
        }
        Ok(id)
    })
    .await?;
    Ok(written)
}

fn password_auth_enabled(collection: &CompiledCollection) -> bool {
    collection.auth.password_auth.enabled
}

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
    let mut extra = Map::new();
    extra.insert("email".into(), json!(stored_email));
    let token = token::issue_purpose(
        Purpose::PasswordReset,
        &collection.id,
        &id,
        extra,
        &purpose_key(&collection, Purpose::PasswordReset, &token_key),
        option_duration(&collection, Purpose::PasswordReset),
    )?;
    Ok(Some(Outgoing {
        to: stored_email,
        token,
        record_id: id,
    }))
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

/// Stores a new password hash and/or email, rotating the tokenKey, through
/// the records system write (autodates, validation of the new email against
/// the email field — domains included — uniqueness, realtime). An email
/// refused by the field is reported under `newEmail`, the flow's own name.
async fn save_credentials(
    db: &Db,
    hub: &Hub,
    collection: &Arc<CompiledCollection>,
    id: String,
    hash: Option<String>,
    new_email: Option<String>,
) -> Result<(), AuthError> {
    let collection = collection.clone();
    let changes_email = new_email.is_some();
    let written = system::system_write(db, hub, move |tx, changes| {
        let mut fields = takeover::patch([("tokenKey", json!(autogen::token_key()))]);
        if let Some(hash) = hash {
            fields.insert("password".into(), json!(hash));
        }
        if let Some(email) = new_email {
            fields.insert("email".into(), json!(email));
        }
        system::update(tx, &collection, &id, fields, changes)?.ok_or(RecordError::NotFound)?;
        // Both prove control of the mailbox, so they also verify the email
        // (dropping OAuth2 links made before, as any verified upgrade does).
        takeover::mark_verified(tx, &collection, &id, None, changes)?;
        Ok(())
    })
    .await;
    match written {
        Err(RecordError::Invalid { mut errors, .. }) if changes_email => {
            errors.rename("email", "newEmail");
            Err(AuthError::Validation(errors))
        }
        other => Ok(other?),
    }
}

/// `confirm-password-reset`: sets the new password; every earlier token
/// dies. Returns the record's id.
pub async fn confirm_password_reset(
    db: &Db,
    hub: &Hub,
    collection: Arc<CompiledCollection>,
    raw_token: &str,
    password_plain: &str,
    confirm: &str,
) -> Result<String, AuthError> {
    let (id, _, _) = check_token(db, &collection, Purpose::PasswordReset, raw_token).await?;
    check_new_password(&collection, password_plain, confirm)?;
    let hash = password::hash(password_plain.to_owned()).await?;
    save_credentials(db, hub, &collection, id.clone(), Some(hash), None).await?;
    Ok(id)
}

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
    let mut extra = Map::new();
    extra.insert("email".into(), json!(email));
    extra.insert("newEmail".into(), json!(new_email));
    let token = token::issue_purpose(
        Purpose::EmailChange,
        &collection.id,
        &id,
        extra,
        &purpose_key(&collection, Purpose::EmailChange, &token_key),
        option_duration(&collection, Purpose::EmailChange),
    )?;
    Ok(Outgoing {
        to: new_email,
        token,
        record_id: id,
    })
}

/// `confirm-email-change`: with the current password, moves the record to
/// the new email. Returns the record's id.
pub async fn confirm_email_change(
    db: &Db,
    hub: &Hub,
    collection: Arc<CompiledCollection>,
    raw_token: &str,
    password_plain: &str,
) -> Result<String, AuthError> {
    let (id, _, claims) = check_token(db, &collection, Purpose::EmailChange, raw_token).await?;
    if password_plain.is_empty() {
        return Err(invalid("password", FieldError::required()));
    }
    let sql = format!(
        "SELECT password FROM {} WHERE id = ?1",
        ident(collection.name.as_str())
    );
    let lookup = id.clone();
    let stored: String = db
        .read(move |conn| {
            conn.query_row(&sql, [lookup], |r| r.get(0))
                .map_err(|e| AuthError::Db(DbError::Sqlite(e)))
        })
        .await?;
    if !password::verify(password_plain.to_owned(), stored).await {
        return Err(invalid(
            "password",
            FieldError::new(
                "validation_invalid_password",
                "Missing or invalid auth record password.",
            ),
        ));
    }
    let new_email = claims
        .get("newEmail")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    save_credentials(db, hub, &collection, id.clone(), None, Some(new_email)).await?;
    Ok(id)
}

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
