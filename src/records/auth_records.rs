//! What ties an auth record to the rest of the database beyond its own row:
//! its id, which must be unique across *all* auth collections (superusers
//! included), and the bookkeeping rows keyed by it (`_externalAuths`,
//! `_mfas`, `_otps`, `_authOrigins`), which go with the record.
//!
//! Ids may be chosen by the client. Were they unique per collection only, a
//! sign-up in a second auth collection with a victim's id would pass
//! `@request.auth.id = id` rules written for the first; and a new sign-up
//! reusing a deleted record's id would inherit its OAuth2 links. Both checks
//! run inside the write transaction, so parallel writes cannot slip past.

use super::RecordError;
use crate::db::{Conn, DbError, LockKey, ident};
use crate::rules::SqlValue;
use crate::schema::{CollectionType, CompiledCollection, Snapshot};
use crate::validation::{FieldError, ValidationErrors};
use rusqlite::Connection;

use crate::schema::AUTH_STATE_TABLES as BOOKKEEPING_TABLES;

/// Refuses to create auth record `id` when another auth collection already
/// has a record with that id (PocketBase's `validation_invalid_auth_id`;
/// the collection's own primary key covers the same collection). On
/// PostgreSQL, creates of auth records take turns ([`LockKey::AuthIds`]),
/// so two creates of one id in two collections cannot both pass.
pub(crate) fn check_unique_auth_id(
    conn: &mut dyn Conn,
    snapshot: &Snapshot,
    collection: &CompiledCollection,
    id: &str,
    message: &'static str,
) -> Result<(), RecordError> {
    if collection.kind != CollectionType::Auth {
        return Ok(());
    }
    conn.lock(LockKey::AuthIds)?;
    for other in snapshot.all() {
        if other.kind != CollectionType::Auth || other.id == collection.id {
            continue;
        }
        let sql = format!("SELECT 1 FROM {} WHERE id = ?1", ident(other.name.as_str()));
        let taken = conn
            .first_row(&sql, &[SqlValue::Text(id.to_owned())])?
            .is_some();
        if taken {
            let mut errors = ValidationErrors::new();
            errors.add(
                "id",
                FieldError::new(
                    "validation_invalid_auth_id",
                    "Invalid or duplicated auth record id.",
                ),
            );
            return Err(RecordError::Invalid { message, errors });
        }
    }
    Ok(())
}

/// Deletes the bookkeeping rows of auth record `id` (none for other kinds).
pub(crate) fn delete_auth_state(
    conn: &mut dyn Conn,
    collection: &CompiledCollection,
    id: &str,
) -> Result<(), DbError> {
    if collection.kind != CollectionType::Auth {
        return Ok(());
    }
    for table in BOOKKEEPING_TABLES {
        conn.execute(
            &format!(
                "DELETE FROM {} WHERE \"collectionRef\" = ?1 AND \"recordRef\" = ?2",
                ident(table)
            ),
            &[
                SqlValue::Text(collection.id.clone()),
                SqlValue::Text(id.to_owned()),
            ],
        )?;
    }
    Ok(())
}

/// Deletes the bookkeeping rows of every record of auth `collection`
/// (for truncate).
pub(crate) fn delete_all_auth_state(
    tx: &Connection,
    collection: &CompiledCollection,
) -> rusqlite::Result<()> {
    if collection.kind != CollectionType::Auth {
        return Ok(());
    }
    for table in BOOKKEEPING_TABLES {
        tx.execute(
            &format!("DELETE FROM {} WHERE collectionRef = ?1", ident(table)),
            [collection.id.as_str()],
        )?;
    }
    Ok(())
}
