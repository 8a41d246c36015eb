//! A login's `_authOrigins` bookkeeping through the collection's model
//! hooks, in PocketBase's steps: a known origin is saved again (its
//! `updated` moves: `onRecordUpdate` …); a new one first makes room (the
//! oldest past the limit deleted: `onRecordDelete` …) and is then created
//! (`onRecordCreate` …). As in PocketBase, a hook's refusal of any step is
//! logged and the login goes on (the alert for a new origin included).

use crate::auth::AuthError;
use crate::auth::origins::{MAX_ORIGINS_PER_RECORD, Origin};
use crate::db::{Conn, ident};
use crate::records::system::{self, SystemStep};
use crate::records::{Backend, Stage, SystemWrite};
use crate::rules::SqlValue;
use crate::schema::{CompiledCollection, autogen};
use serde_json::{Map, json};
use std::sync::Arc;

/// The name of PocketBase's login origins collection.
pub const ORIGINS: &str = "_authOrigins";

/// Whether any model hook applies to `_authOrigins`.
pub fn wanted(backend: &Backend<'_>, origins: &CompiledCollection) -> bool {
    [Stage::Create, Stage::Update, Stage::Delete]
        .into_iter()
        .any(|stage| system::hooks_want(backend, stage, origins))
}

/// Records the origin of a successful login; answers the email to alert
/// when the origin is new for an account that has logged in before.
pub async fn note_login(
    backend: Backend<'_>,
    origins: Arc<CompiledCollection>,
    collection: &CompiledCollection,
    record_id: &str,
    origin: &Origin,
) -> Result<Option<String>, AuthError> {
    let fingerprint = origin.fingerprint();
    let (cid, rid, fp) = (
        collection.id.clone(),
        record_id.to_owned(),
        fingerprint.clone(),
    );
    let table = ident(collection.name.as_str());
    let (known, earlier, email) = backend
        .db
        .read_conn(move |conn: &mut dyn Conn| -> Result<_, AuthError> {
            let (cid, rid, fp) = (
                SqlValue::Text(cid),
                SqlValue::Text(rid),
                SqlValue::Text(fp),
            );
            let known = conn
                .first_row(
                    "SELECT id FROM \"_authOrigins\"
                     WHERE \"collectionRef\" = ?1 AND \"recordRef\" = ?2 AND fingerprint = ?3",
                    &[cid.clone(), rid.clone(), fp],
                )?
                .and_then(first_text);
            let earlier = conn
                .rows(
                    "SELECT id FROM \"_authOrigins\" WHERE \"collectionRef\" = ?1 AND \"recordRef\" = ?2
                     ORDER BY updated DESC",
                    &[cid, rid.clone()],
                )?
                .into_iter()
                .filter_map(first_text)
                .collect::<Vec<String>>();
            let email = conn
                .first_row(&format!("SELECT email FROM {table} WHERE id = ?1"), &[rid])?
                .and_then(first_text);
            Ok((known, earlier, email))
        })
        .await?;
    if let Some(id) = known {
        let target = id.clone();
        let write: SystemWrite = Box::new(move |tx, _, _| {
            tx.conn().execute(
                "UPDATE \"_authOrigins\" SET updated = ?2 WHERE id = ?1",
                &[SqlValue::Text(target), SqlValue::Text(crate::clock::now())],
            )?;
            Ok(())
        });
        let step = SystemStep {
            stage: Stage::Update,
            id,
            shown: Map::new(),
            write,
        };
        logged(system::hooked(backend, origins, step).await);
        return Ok(None);
    }
    let keep = usize::try_from(MAX_ORIGINS_PER_RECORD - 1).unwrap_or(0);
    for old in earlier.iter().skip(keep) {
        let target = old.clone();
        let write: SystemWrite = Box::new(move |tx, _, _| {
            tx.conn().execute(
                "DELETE FROM \"_authOrigins\" WHERE id = ?1",
                &[SqlValue::Text(target)],
            )?;
            Ok(())
        });
        let step = SystemStep {
            stage: Stage::Delete,
            id: old.clone(),
            shown: Map::new(),
            write,
        };
        logged(system::hooked(backend, origins.clone(), step).await);
    }
    let id = autogen::record_id();
    let shown = Map::from_iter([
        ("collectionRef".to_owned(), json!(collection.id)),
        ("recordRef".to_owned(), json!(record_id)),
        ("fingerprint".to_owned(), json!(fingerprint)),
    ]);
    let (row, cid, rid) = (id.clone(), collection.id.clone(), record_id.to_owned());
    // Fields a hook sets are not saved: the row is exactly this login's.
    let write: SystemWrite = Box::new(move |tx, _, _| {
        tx.conn().execute(
            "INSERT INTO \"_authOrigins\" (id, \"collectionRef\", \"recordRef\", fingerprint, created, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            &[
                SqlValue::Text(row),
                SqlValue::Text(cid),
                SqlValue::Text(rid),
                SqlValue::Text(fingerprint),
                SqlValue::Text(crate::clock::now()),
            ],
        )?;
        Ok(())
    });
    let step = SystemStep {
        stage: Stage::Create,
        id,
        shown,
        write,
    };
    logged(system::hooked(backend, origins, step).await);
    Ok(email.filter(|e| !earlier.is_empty() && !e.is_empty()))
}

/// A row's first column as text, if it is text.
fn first_text(row: Vec<SqlValue>) -> Option<String> {
    match row.into_iter().next() {
        Some(SqlValue::Text(t)) => Some(t),
        _ => None,
    }
}

fn logged(result: Result<(), crate::records::RecordError>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "a login origin was not saved");
    }
}
