//! Multi-factor authentication: when a collection has `mfa.enabled`, the
//! first successful method creates an `_mfas` row and the client must finish
//! with a *different* method, passing its `mfaId`, within `mfa.duration`.

use crate::auth::AuthError;
use crate::db::{Conn, Db};
use crate::records::{Backend, Stage, system};
use crate::rules::{Dialect, SqlValue};
use crate::schema::{CompiledCollection, autogen};
use std::sync::Arc;

/// What the MFA step decided.
#[derive(Debug, Clone, PartialEq)]
pub enum MfaOutcome {
    /// MFA is off (or its rule does not apply): finish the login.
    NotRequired,
    /// First factor done: answer 401 `{"mfaId": …}`.
    Challenge(String),
    /// Second factor done: finish the login.
    Completed,
}

/// The name of PocketBase's MFA collection.
pub const MFAS: &str = "_mfas";

/// Runs the MFA step for `record_id` authenticated by `method`
/// (`rule_applies` is the already evaluated `mfa.rule`). With `hooked`
/// (the write backend and the `_mfas` collection) the row's create and
/// delete run its model hooks when any apply ([`super::mfa_hooked`]).
pub async fn step(
    db: &Db,
    hooked: Option<(Backend<'_>, Arc<CompiledCollection>)>,
    collection: Arc<CompiledCollection>,
    record_id: &str,
    method: &'static str,
    mfa_id: Option<String>,
    rule_applies: bool,
) -> Result<MfaOutcome, AuthError> {
    let (enabled, duration) = (collection.auth.mfa.enabled, collection.auth.mfa.duration);
    if !enabled || !rule_applies {
        return Ok(MfaOutcome::NotRequired);
    }
    let hooked_create = hooked
        .clone()
        .filter(|(b, mfas)| system::hooks_want(b, Stage::Create, mfas));
    let hooked_delete = hooked.filter(|(b, mfas)| system::hooks_want(b, Stage::Delete, mfas));
    let Some(mfa_id) = mfa_id.filter(|m| !m.is_empty()) else {
        if let Some((backend, mfas)) = hooked_create {
            let id =
                super::mfa_hooked::create(backend, mfas, &collection, record_id, method).await?;
            return Ok(MfaOutcome::Challenge(id));
        }
        let id = autogen::record_id();
        let params = [
            SqlValue::Text(id.clone()),
            SqlValue::Text(collection.id.clone()),
            SqlValue::Text(record_id.to_owned()),
            SqlValue::Text(method.to_owned()),
        ];
        db.write_conn(move |conn: &mut dyn Conn| {
            let mut params = params.to_vec();
            params.push(SqlValue::Text(crate::clock::now()));
            conn.execute(
                "INSERT INTO _mfas (id, \"collectionRef\", \"recordRef\", method, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                &params,
            )?;
            Ok::<_, AuthError>(())
        })
        .await?;
        return Ok(MfaOutcome::Challenge(id));
    };
    // Check and consume in one write: of two logins racing with one mfaId,
    // only the one whose DELETE removed the row finishes (the single writer
    // runs the two closures one after the other).
    let (collection_id, record) = (collection.id.clone(), record_id.to_owned());
    let (hooked_delete_with, used_id) = (hooked_delete, mfa_id.clone());
    let hooked_delete = hooked_delete_with.is_some();
    let consumed: Result<(), AuthError> = db
        .write_conn(move |conn: &mut dyn Conn| {
            consume(
                conn,
                &mfa_id,
                &collection_id,
                &record,
                method,
                duration,
                hooked_delete,
            )
        })
        .await?;
    consumed?;
    if let Some((backend, mfas)) = hooked_delete_with {
        super::mfa_hooked::delete(backend, mfas, &used_id).await?;
    }
    Ok(MfaOutcome::Completed)
}

/// Checks `mfa_id` (the record's, unexpired, a different method) and deletes
/// it unless `hooks_delete` (the caller deletes it through the hooks next).
/// The outer error is the database's; the inner the client's answer. On
/// PostgreSQL the row is locked first, so of two logins racing with one
/// `mfaId` only the one whose DELETE removed it finishes (on SQLite the
/// single writer runs them one after the other).
fn consume(
    conn: &mut dyn Conn,
    mfa_id: &str,
    collection_id: &str,
    record_id: &str,
    method: &str,
    duration: i64,
    hooks_delete: bool,
) -> Result<Result<(), AuthError>, AuthError> {
    if mfa_id.contains('\0') {
        return Ok(Err(AuthError::InvalidMfa));
    }
    let lock = match conn.dialect() {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE",
    };
    let row = conn.first_row(
        &format!(
            "SELECT method, created FROM _mfas WHERE id = ?1 AND \"collectionRef\" = ?2 AND \"recordRef\" = ?3{lock}"
        ),
        &[
            SqlValue::Text(mfa_id.to_owned()),
            SqlValue::Text(collection_id.to_owned()),
            SqlValue::Text(record_id.to_owned()),
        ],
    )?;
    let Some([SqlValue::Text(first_method), SqlValue::Text(created)]) =
        row.and_then(|r| <[SqlValue; 2]>::try_from(r).ok())
    else {
        return Ok(Err(AuthError::InvalidMfa));
    };
    let expired = chrono::DateTime::parse_from_rfc3339(&created.replacen(' ', "T", 1))
        .map(|t| crate::clock::unix_now() - t.timestamp() > duration)
        .unwrap_or(true);
    if expired {
        return Ok(Err(AuthError::InvalidMfa));
    }
    if first_method == method {
        return Ok(Err(AuthError::SameMfaMethod));
    }
    if hooks_delete {
        return Ok(Ok(()));
    }
    let deleted = conn.execute(
        "DELETE FROM _mfas WHERE id = ?1",
        &[SqlValue::Text(mfa_id.to_owned())],
    )?;
    Ok(if deleted == 1 {
        Ok(())
    } else {
        Err(AuthError::InvalidMfa)
    })
}
