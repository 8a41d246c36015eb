//! Guards against account pre-hijacking (the class of PocketBase's
//! CVE-2024-38351). Anyone may register an address they don't own — with a
//! password of their choosing, or by linking their own OAuth2 account to a
//! record carrying the victim's email — and wait for the victim to prove the
//! address through OAuth2, OTP or the verification email. When a flow proves
//! an address for an unverified record, what an earlier registrant may have
//! left behind goes: the password is replaced, the `tokenKey` rotates (so
//! every earlier token dies) and other OAuth2 links are dropped.
//!
//! The helpers here run inside the caller's write transaction, change the
//! record only through `SystemTx::update` (autodates, validation,
//! realtime) and leave the decision of *when* to the flows (`oauth2`, `otp`,
//! `flows`), which follow PocketBase's rules; hashing a replacement password
//! happens before the transaction, off the writer ([`random_password_hash`]).

use crate::auth::{AuthError, password};
use crate::db::{Conn, DbError, ident};
use crate::realtime::Changes;
use crate::records::RecordError;
use crate::records::system::SystemTx;
use crate::rules::SqlValue;
use crate::schema::{CompiledCollection, autogen};
use serde_json::{Map, Value, json};

/// Length of the random password an unverified record gets.
const RANDOM_PASSWORD_CHARS: usize = 30;

/// An argon2 hash of a random password nobody knows.
pub async fn random_password_hash() -> Result<String, AuthError> {
    password::hash(autogen::random_string(
        autogen::ALPHANUMERIC,
        RANDOM_PASSWORD_CHARS,
    ))
    .await
}

/// The record's `verified` flag (`None` when it does not exist), on
/// either engine.
pub(crate) fn verified(
    conn: &mut dyn Conn,
    collection: &CompiledCollection,
    id: &str,
) -> Result<Option<bool>, DbError> {
    if id.contains('\0') {
        return Ok(None);
    }
    let sql = format!(
        "SELECT verified FROM {} WHERE id = ?1",
        ident(collection.name.as_str())
    );
    match conn.first_row(&sql, &[SqlValue::Text(id.to_owned())])? {
        None => Ok(None),
        Some(row) => match row.into_iter().next() {
            Some(SqlValue::Integer(v)) => Ok(Some(v != 0)),
            other => Err(DbError::NotAnInteger(format!("{other:?}"))),
        },
    }
}

/// One field set to one value, for a system update.
pub(crate) fn patch(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Replaces the record's password with `hash` and rotates its tokenKey.
/// `None` stores no password at all (an empty hash, which no login matches:
/// see `login_with_password`), for the rare case where a flow found the
/// record unverified only inside its transaction and so had nothing hashed.
pub(crate) fn reset_password_in(
    tx: &mut SystemTx<'_>,
    collection: &CompiledCollection,
    id: &str,
    hash: Option<&str>,
    changes: &mut Changes,
) -> Result<(), RecordError> {
    let fields = patch([
        ("password", json!(hash.unwrap_or_default())),
        ("tokenKey", json!(autogen::token_key())),
    ]);
    tx.update(collection, id, fields, changes)?;
    Ok(())
}

/// Deletes every OAuth2 link of the record; returns how many there were.
pub(crate) fn drop_external_auths_in(
    tx: &mut SystemTx<'_>,
    collection: &CompiledCollection,
    id: &str,
) -> Result<u64, RecordError> {
    Ok(tx.conn().execute(
        "DELETE FROM \"_externalAuths\" WHERE \"collectionRef\" = ?1 AND \"recordRef\" = ?2",
        &[
            SqlValue::Text(collection.id.clone()),
            SqlValue::Text(id.to_owned()),
        ],
    )?)
}

/// Marks the record verified if it was not, and only while its email is
/// `email` when one is given (compared exactly, as PocketBase's `==`).
/// An upgrade drops the record's OAuth2 links and, if there were any,
/// rotates its tokenKey (PocketBase's verified-upgrade hook): a link made
/// while nobody had proven the address is not trusted past that point.
/// Returns whether the record was upgraded.
pub(crate) fn mark_verified_in(
    tx: &mut SystemTx<'_>,
    collection: &CompiledCollection,
    id: &str,
    email: Option<&str>,
    changes: &mut Changes,
) -> Result<bool, RecordError> {
    // Read (locked on PostgreSQL) and written in one transaction: nothing
    // changes the row in between.
    let Some(row) = tx.current(collection, id)? else {
        return Ok(false);
    };
    let already = row.get("verified").and_then(Value::as_bool) == Some(true);
    let stored_email = row.get("email").and_then(Value::as_str).unwrap_or_default();
    if already || email.is_some_and(|e| e != stored_email) {
        return Ok(false);
    }
    tx.update(collection, id, patch([("verified", json!(true))]), changes)?;
    if drop_external_auths_in(tx, collection, id)? > 0 {
        let fields = patch([("tokenKey", json!(autogen::token_key()))]);
        tx.update(collection, id, fields, changes)?;
    }
    Ok(true)
}
