//! The `_mfas` row of an MFA login through its model hooks, as PocketBase
//! saves and deletes it (`onRecordCreate` … / `onRecordDelete` … with the
//! collection `_mfas`). A refused create refuses the login with the hook's
//! error; a refused delete after the second factor is logged and the login
//! goes on, as in PocketBase. Of two logins racing with one `mfaId`, only
//! the one whose delete removed the row finishes, as without hooks.

use crate::auth::AuthError;
use crate::records::system::{self, SystemStep};
use crate::records::{Backend, RecordError, Stage, SystemWrite};
use crate::rules::SqlValue;
use crate::schema::{CompiledCollection, autogen};
use serde_json::{Map, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Creates the row of a first factor; returns its id (the `mfaId`).
pub(super) async fn create(
    backend: Backend<'_>,
    mfas: Arc<CompiledCollection>,
    collection: &CompiledCollection,
    record_id: &str,
    method: &'static str,
) -> Result<String, AuthError> {
    let id = autogen::record_id();
    let shown = Map::from_iter([
        ("collectionRef".to_owned(), json!(collection.id)),
        ("recordRef".to_owned(), json!(record_id)),
        ("method".to_owned(), json!(method)),
    ]);
    let (row, cid, rid) = (id.clone(), collection.id.clone(), record_id.to_owned());
    // Fields a hook sets are not saved: the row is exactly this login's.
    let write: SystemWrite = Box::new(move |tx, _, _| {
        tx.conn().execute(
            "INSERT INTO _mfas (id, \"collectionRef\", \"recordRef\", method, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            &[
                SqlValue::Text(row),
                SqlValue::Text(cid),
                SqlValue::Text(rid),
                SqlValue::Text(method.to_owned()),
                SqlValue::Text(crate::clock::now()),
            ],
        )?;
        Ok(())
    });
    let step = SystemStep {
        stage: Stage::Create,
        id: id.clone(),
        shown,
        write,
    };
    system::hooked(backend, mfas, step).await?;
    Ok(id)
}

/// Deletes the row of a finished second factor (checked by the caller).
pub(super) async fn delete(
    backend: Backend<'_>,
    mfas: Arc<CompiledCollection>,
    mfa_id: &str,
) -> Result<(), AuthError> {
    let gone = Arc::new(AtomicBool::new(false));
    let (flag, id) = (gone.clone(), mfa_id.to_owned());
    let write: SystemWrite = Box::new(move |tx, _, _| {
        let n = tx
            .conn()
            .execute("DELETE FROM _mfas WHERE id = ?1", &[SqlValue::Text(id)])?;
        if n == 1 {
            Ok(())
        } else {
            flag.store(true, Ordering::SeqCst);
            Err(RecordError::NotFound)
        }
    });
    let step = SystemStep {
        stage: Stage::Delete,
        id: mfa_id.to_owned(),
        shown: Map::new(),
        write,
    };
    match system::hooked(backend, mfas, step).await {
        Ok(()) => Ok(()),
        // Another login used it meanwhile (or it was gone before the hook ran).
        Err(RecordError::NotFound) => Err(AuthError::InvalidMfa),
        Err(_) if gone.load(Ordering::SeqCst) => Err(AuthError::InvalidMfa),
        Err(e) => {
            tracing::warn!(mfa = %mfa_id, error = %e, "a hook refused deleting a used MFA session; the login goes on");
            Ok(())
        }
    }
}
