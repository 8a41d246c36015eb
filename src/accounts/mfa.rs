//! Multi-factor authentication: when a collection has `mfa.enabled`, the
//! first successful method creates an `_mfas` row and the client must finish
//! with a *different* method, passing its `mfaId`, within `mfa.duration`.

use crate::auth::AuthError;
use crate::db::{Db, DbError};
use crate::records::{Backend, Stage, system};
use crate::schema::{CompiledCollection, autogen};
use rusqlite::{OptionalExtension, params};
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
        let (row, collection_id, record) =
            (id.clone(), collection.id.clone(), record_id.to_owned());
        db.write(move |conn| {
            let now = crate::clock::now();
            conn.execute(
                "INSERT INTO _mfas (id, collectionRef, recordRef, method, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![row, collection_id, record, method, now],
            )
            .map_err(|e| AuthError::Db(DbError::Sqlite(e)))?;
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
        .write(move |conn| {
            let row: Option<(String, String)> = conn
                .query_row(
                    "SELECT method, created FROM _mfas WHERE id = ?1 AND collectionRef = ?2 AND recordRef = ?3",
                    [&mfa_id, &collection_id, &record],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(|e| AuthError::Db(DbError::Sqlite(e)))?;
            let Some((first_method, created)) = row else {
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
            if hooked_delete {
                // Deleted next, through the hooks.
                return Ok(Ok(()));
            }
            let deleted = conn
                .execute("DELETE FROM _mfas WHERE id = ?1", [&mfa_id])
                .map_err(|e| AuthError::Db(DbError::Sqlite(e)))?;
            Ok::<_, AuthError>(if deleted == 1 {
                Ok(())
            } else {
                Err(AuthError::InvalidMfa)
            })
        })
        .await?;
    consumed?;
    if let Some((backend, mfas)) = hooked_delete_with {
        super::mfa_hooked::delete(backend, mfas, &used_id).await?;
    }
    Ok(MfaOutcome::Completed)
}
