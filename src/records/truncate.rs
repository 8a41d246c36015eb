//! Truncate: every record of a collection deleted in one transaction, with
//! reference handling (cascade, clear or refuse) as single deletes have it,
//! a delete event per record when realtime clients listen, and the records'
//! files removed once the transaction committed.
//!
//! A collection nothing refers to is emptied with one statement; otherwise
//! each record goes through the single delete's reference handling. On
//! PostgreSQL the work is one transaction of its own (retried as a whole
//! after a deadlock), and the plain case deletes with `RETURNING`, so the
//! events and files are those of exactly the rows deleted, whatever a
//! concurrent create committed meanwhile.

use super::RecordError;
use super::files::Cleanup;
use super::refs;
use super::tx::{PgTx, SqliteTx};
use super::write::{Backend, change};
use crate::db::{Conn, ident};
use crate::realtime::{Action, Changes};
use crate::rules::{Dialect, SqlValue};
use crate::schema::{Collection, CollectionType, CompiledCollection, FieldKind, Snapshot};
use rusqlite::TransactionBehavior;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// Deletes every record of a collection (with reference handling), in one transaction.
pub async fn truncate(
    backend: Backend<'_>,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
) -> Result<(), RecordError> {
    let Backend { db, store, hub, .. } = backend;
    if collection.kind == CollectionType::View {
        return Err(RecordError::ViewTruncate);
    }
    if collection.is_superusers() {
        return Err(RecordError::Unsupported);
    }
    let cleanup = match db.dialect() {
        Dialect::Sqlite => {
            // Reading every row for delete events is only worth it when someone listens.
            let (cleanup, changes) = on_sqlite(db, snapshot, collection, hub.has_clients()).await?;
            hub.publish(changes);
            cleanup
        }
        // Subscribers may be on other nodes: the events go to the outbox.
        Dialect::Postgres => {
            let (cleanup, seq) = db
                .write_conn(move |conn: &mut dyn Conn| {
                    let (cleanup, changes) = on_postgres(conn, &snapshot, &collection, true)?;
                    let seq = crate::realtime::outbox::append(conn, &changes)?;
                    Ok::<_, RecordError>((cleanup, seq))
                })
                .await?;
            if let Some(seq) = seq {
                hub.wait_for_outbox(seq).await;
            }
            cleanup
        }
    };
    cleanup.run(store).await;
    Ok(())
}

/// The truncate on SQLite's single writer.
pub(super) async fn on_sqlite(
    db: &crate::db::Db,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    announce: bool,
) -> Result<(Cleanup, Changes), RecordError> {
    db.write(move |conn| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let table = ident(collection.name.as_str());
        let mut visited = HashSet::new();
        let mut changes = Changes::default();
        if refs::is_referenced(&snapshot, &collection) {
            let ids: Vec<String> = {
                let mut stmt = tx.prepare(&format!("SELECT id FROM {table}"))?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            for id in ids {
                refs::delete_with_references(
                    &mut SqliteTx::new(&tx),
                    &snapshot,
                    &collection,
                    &id,
                    &mut visited,
                    &mut changes,
                )?;
            }
        } else {
            if announce {
                // Every row goes out as a delete event, so read them before they go.
                let rows: Vec<Map<String, Value>> = {
                    let mut stmt = tx.prepare(&super::read::select_sql(&collection))?;
                    let rows = stmt.query_map([], |r| super::read::row_values(&collection, r))?;
                    rows.collect::<Result<_, _>>()?
                };
                for row in rows {
                    let id = row
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    changes.push(change(&collection, &id, Action::Delete, Some(row)));
                }
            }
            if has_file_fields(&collection) {
                // Per-record removal (not the whole collection folder): a
                // create racing with this truncate keeps its files.
                let mut stmt = tx.prepare(&format!("SELECT id FROM {table}"))?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                for id in rows {
                    visited.insert((collection.id.clone(), id?));
                }
            }
            tx.execute(&format!("DELETE FROM {table}"), [])?;
            if crate::search::SearchSpec::of(&collection).is_some() {
                // An empty index, rebuilt at once rather than row by row.
                crate::search::reindex(&tx, &collection)?;
            }
            super::auth_records::delete_all_auth_state(&tx, &collection)?;
        }
        tx.commit()?;
        Ok::<_, RecordError>((
            Cleanup {
                blobs: Vec::new(),
                records: visited.into_iter().collect(),
            },
            changes,
        ))
    })
    .await
}

/// The truncate inside a PostgreSQL transaction (full-text search does not
/// run on PostgreSQL, so there is no index to empty).
pub(super) fn on_postgres(
    conn: &mut dyn Conn,
    snapshot: &Snapshot,
    collection: &CompiledCollection,
    announce: bool,
) -> Result<(Cleanup, Changes), RecordError> {
    let table = ident(collection.name.as_str());
    let mut visited = HashSet::new();
    let mut changes = Changes::default();
    if refs::is_referenced(snapshot, collection) {
        // SQLite reads the ids through the primary key's index: in id order.
        let sql = format!("SELECT id FROM {table} ORDER BY id COLLATE \"C\"");
        let ids: Vec<String> = conn
            .rows(&sql, &[])?
            .into_iter()
            .filter_map(|row| match row.into_iter().next() {
                Some(SqlValue::Text(id)) => Some(id),
                _ => None,
            })
            .collect();
        for id in ids {
            refs::delete_with_references(
                &mut PgTx(&mut *conn),
                snapshot,
                collection,
                &id,
                &mut visited,
                &mut changes,
            )?;
        }
    } else {
        let columns: Vec<String> = collection
            .fields
            .iter()
            .map(|f| ident(f.name.as_str()))
            .collect();
        let sql = format!("DELETE FROM {table} RETURNING {}", columns.join(", "));
        let files = has_file_fields(collection);
        for row in conn.rows(&sql, &[])? {
            let row = super::on_postgres::values(collection, row);
            let id = row
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if files {
                visited.insert((collection.id.clone(), id.clone()));
            }
            if announce {
                changes.push(change(collection, &id, Action::Delete, Some(row)));
            }
        }
        delete_all_auth_state(conn, collection)?;
    }
    Ok((
        Cleanup {
            blobs: Vec::new(),
            records: visited.into_iter().collect(),
        },
        changes,
    ))
}

/// The auth bookkeeping rows (external auths, MFAs, OTPs) of an emptied
/// auth collection.
fn delete_all_auth_state(
    conn: &mut dyn Conn,
    collection: &CompiledCollection,
) -> Result<(), RecordError> {
    if collection.kind != CollectionType::Auth {
        return Ok(());
    }
    for table in crate::schema::AUTH_STATE_TABLES {
        conn.execute(
            &format!("DELETE FROM {} WHERE \"collectionRef\" = ?1", ident(table)),
            &[SqlValue::Text(collection.id.clone())],
        )?;
    }
    Ok(())
}

fn has_file_fields(collection: &Collection) -> bool {
    collection
        .fields
        .iter()
        .any(|f| matches!(f.kind, FieldKind::File { .. }))
}
