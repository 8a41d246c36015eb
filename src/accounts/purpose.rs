//! What the token-based account flows share: the message a `request-*`
//! step wants sent, looking an account up by id or email, checking a
//! purpose token (`confirm-*`), storing new credentials through the records
//! system write, and the short-lived file token. The flows themselves are
//! one file each (`verification`, `password_reset`, `email_change`).
//! Each `request-*` step never reveals whether an account exists; each
//! `confirm-*` step checks a purpose-bound token signed with the record's
//! tokenKey, so any later password or email change revokes it.

use super::takeover;
use crate::auth::token::{self, Purpose};
use crate::auth::{AuthError, purpose_duration, purpose_key};
use crate::db::{Conn, Db, DbError, ident};
use crate::mail::TemplateVars;
use crate::realtime::Changes;
use crate::records::Backend;
use crate::records::RecordError;
use crate::records::system::{self, SystemTx};
use crate::rules::SqlValue;
use crate::schema::{CompiledCollection, autogen};
use crate::validation::{FieldError, ValidationErrors};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// A message a flow wants sent: to whom, and the token to put in it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub to: String,
    pub token: String,
    pub record_id: String,
}

impl Outgoing {
    /// The template placeholders this message fills.
    pub fn template_vars(&self) -> TemplateVars {
        TemplateVars {
            token: self.token.clone(),
            record_email: self.to.clone(),
            record_id: self.record_id.clone(),
            ..TemplateVars::default()
        }
    }
}

/// The message of a token flow for the account `(id, email, tokenKey)`: to
/// `new_email` for an email change, else to the stored address; the token
/// carries the stored address (and the new one). Every flow that mails a
/// verification, reset or email-change token builds it here.
pub(super) fn outgoing(
    collection: &CompiledCollection,
    purpose: Purpose,
    (id, email, token_key): (String, String, String),
    new_email: Option<String>,
) -> Result<Outgoing, AuthError> {
    let mut extra = Map::new();
    extra.insert("email".into(), json!(email));
    if let Some(new_email) = &new_email {
        extra.insert("newEmail".into(), json!(new_email));
    }
    let token = purpose_token(collection, purpose, &id, &token_key, extra)?;
    Ok(Outgoing {
        to: new_email.unwrap_or(email),
        token,
        record_id: id,
    })
}

/// [`outgoing`] for record `id`, whoever chose it (the hooks' `$mails`
/// send to a record the hook names); `NotFound` when there is none.
pub async fn outgoing_for_record(
    db: &Db,
    collection: &CompiledCollection,
    id: &str,
    purpose: Purpose,
    new_email: Option<String>,
) -> Result<Outgoing, AuthError> {
    let (id, email, token_key, _) = find(db, collection, "id", id.to_owned())
        .await?
        .ok_or(AuthError::NotFound)?;
    outgoing(collection, purpose, (id, email, token_key), new_email)
}

/// Reads (id, email, tokenKey, verified) of the record with `column = value`.
pub(crate) async fn find(
    db: &Db,
    collection: &CompiledCollection,
    column: &'static str,
    value: String,
) -> Result<Option<(String, String, String, bool)>, AuthError> {
    // PostgreSQL text cannot hold NUL, so no stored value has one.
    if value.contains('\0') {
        return Ok(None);
    }
    let sql = format!(
        "SELECT id, email, \"tokenKey\", verified FROM {} WHERE {} LIMIT 1",
        ident(collection.name.as_str()),
        crate::auth::identity_match_in(collection, column, db.dialect())
    );
    let row = db
        .read_conn(move |conn: &mut dyn Conn| conn.first_row(&sql, &[SqlValue::Text(value)]))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    match <[SqlValue; 4]>::try_from(row) {
        Ok(
            [
                SqlValue::Text(id),
                SqlValue::Text(email),
                SqlValue::Text(token_key),
                SqlValue::Integer(verified),
            ],
        ) => Ok(Some((id, email, token_key, verified != 0))),
        other => Err(AuthError::Db(DbError::NotAnInteger(format!(
            "unexpected account row {other:?}"
        )))),
    }
}

pub(super) fn invalid(field: &str, error: FieldError) -> AuthError {
    let mut errors = ValidationErrors::new();
    errors.add(field, error);
    AuthError::Validation(errors)
}

pub(super) fn invalid_token() -> AuthError {
    invalid(
        "token",
        FieldError::new("validation_invalid_token", "Invalid or expired token."),
    )
}

pub(super) fn require_email(raw: &str) -> Result<String, AuthError> {
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

/// A purpose token that checked out: the record, the token's claims and
/// the tokenKey it was signed with.
pub(super) struct Checked {
    pub id: String,
    pub claims: Map<String, Value>,
    pub token_key: String,
}

/// Checks a purpose token against its record.
pub(super) async fn check_token(
    db: &Db,
    collection: &CompiledCollection,
    purpose: Purpose,
    raw: &str,
) -> Result<Checked, AuthError> {
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
    Ok(Checked {
        id,
        claims: verified,
        token_key,
    })
}

/// Stores a new password hash and/or email, rotating the tokenKey, through
/// the records system write (autodates, validation of the new email against
/// the email field — domains included — uniqueness, realtime). An email
/// refused by the field is reported under `newEmail`, the flow's own name.
/// The token was checked against `checked.token_key`; the write takes the
/// row (locked on PostgreSQL) only while that is still its tokenKey, so a
/// token spent by a concurrent confirm is refused, not used twice.
pub(super) async fn save_credentials(
    backend: Backend<'_>,
    collection: &Arc<CompiledCollection>,
    checked: Checked,
    hash: Option<String>,
    new_email: Option<String>,
) -> Result<(), AuthError> {
    let changes_email = new_email.is_some();
    // What the model hooks see change (never the hash or the tokenKey).
    let mut shown = Map::from_iter([("verified".to_owned(), json!(true))]);
    if let Some(email) = &new_email {
        shown.insert("email".into(), json!(email));
    }
    let (c, target, token_key) = (collection.clone(), checked.id.clone(), checked.token_key);
    let body = move |tx: &mut SystemTx<'_>, changes: &mut Changes| {
        let current = tx.current(&c, &target)?.ok_or(RecordError::NotFound)?;
        if current.get("tokenKey").and_then(Value::as_str) != Some(token_key.as_str()) {
            return Err(RecordError::NotFound);
        }
        let mut fields = takeover::patch([("tokenKey", json!(autogen::token_key()))]);
        if let Some(hash) = &hash {
            fields.insert("password".into(), json!(hash));
        }
        if let Some(email) = &new_email {
            fields.insert("email".into(), json!(email));
        }
        tx.update(&c, &target, fields, changes)?
            .ok_or(RecordError::NotFound)?;
        // Both prove control of the mailbox, so they also verify the email
        // (dropping OAuth2 links made before, as any verified upgrade does).
        takeover::mark_verified_in(tx, &c, &target, None, changes)?;
        Ok(())
    };
    let owned: &[&str] = &["verified", "email"];
    let written =
        system::update_flow(backend, collection.clone(), checked.id, shown, owned, body).await;
    match written {
        Err(RecordError::Invalid { mut errors, .. }) if changes_email => {
            errors.rename("email", "newEmail");
            Err(AuthError::Validation(errors))
        }
        // Gone, or its tokenKey changed since the token was checked.
        Err(RecordError::NotFound) => Err(invalid_token()),
        other => Ok(other?),
    }
}

/// A `purpose` token for record `id`, signed with the collection's secret
/// for that purpose and the record's `token_key`, lasting the collection's
/// duration for that purpose.
pub(super) fn purpose_token(
    collection: &CompiledCollection,
    purpose: Purpose,
    id: &str,
    token_key: &str,
    extra: Map<String, Value>,
) -> Result<String, AuthError> {
    token::issue_purpose(
        purpose,
        &collection.id,
        id,
        extra,
        &purpose_key(collection, purpose, token_key),
        purpose_duration(collection, purpose),
    )
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
    purpose_token(collection, Purpose::File, &id, &token_key, Map::new())
}
