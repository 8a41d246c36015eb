//! What happens to references when a record goes away: records that point at
//! it through a `cascadeDelete` relation are deleted too (recursively), a
//! required reference blocks the delete, and other references are cleared.
//! Every record deleted or cleared here is noted as a realtime change (a deleted
//! row is read just before it goes, so its rules can be checked later).

use super::RecordError;
use super::access::Access;
use super::read::load;
use super::write::change;
use crate::db::ident;
use crate::realtime::{Action, Changes};
use crate::schema::{Collection, CompiledCollection, FieldKind, Snapshot};
use rusqlite::Connection;
use std::collections::HashSet;

/// Deletes record `id` of `collection` after handling every reference to it.
pub fn delete_with_references(
    tx: &Connection,
    snapshot: &Snapshot,
    collection: &CompiledCollection,
    id: &str,
    visited: &mut HashSet<(String, String)>,
    changes: &mut Changes,
) -> Result<(), RecordError> {
    if !visited.insert((collection.id.clone(), id.to_owned())) {
        return Ok(());
    }
    for other in snapshot.all() {
        for field in &other.fields {
            let FieldKind::Relation {
                collection_id,
                cascade_delete,
                ..
            } = &field.kind
            else {
                continue;
            };
            if collection_id != &collection.id {
                continue;
            }
            let table = ident(other.name.as_str());
            let col = ident(field.name.as_str());
            let matches = if field.is_multi() {
                format!(
                    "EXISTS (SELECT 1 FROM json_each({table}.{col}) WHERE json_each.value = ?1)"
                )
            } else {
                format!("{table}.{col} = ?1")
            };
            let referrers: Vec<String> = {
                let mut stmt =
                    tx.prepare_cached(&format!("SELECT id FROM {table} WHERE {matches}"))?;
                let rows = stmt.query_map([id], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            if referrers.is_empty() {
                continue;
            }
            if *cascade_delete && field.is_multi() {
                // A multi relation only cascades for records left with no ids at all;
                // the others just lose this one (as PocketBase does).
                let emptied: Vec<String> = {
                    let mut stmt = tx.prepare_cached(&format!(
                        "SELECT id FROM {table} WHERE {matches} AND NOT EXISTS \
                         (SELECT 1 FROM json_each({table}.{col}) WHERE json_each.value != ?1)"
                    ))?;
                    let rows = stmt.query_map([id], |r| r.get(0))?;
                    rows.collect::<Result<_, _>>()?
                };
                tx.execute(
                    &format!(
                        "UPDATE {table} SET {col} = (SELECT json_group_array(value) FROM json_each({table}.{col}) WHERE value != ?1) WHERE {matches}"
                    ),
                    [id],
                )?;
                for rid in referrers.iter().filter(|r| !emptied.contains(r)) {
                    changes.push(change(other, rid, Action::Update, None));
                }
                for rid in emptied {
                    if !visited.contains(&(other.id.clone(), rid.clone())) {
                        delete_with_references(tx, snapshot, other, &rid, visited, changes)?;
                    }
                }
            } else if *cascade_delete {
                for rid in referrers {
                    if visited.contains(&(other.id.clone(), rid.clone())) {
                        continue;
                    }
                    delete_with_references(tx, snapshot, other, &rid, visited, changes)?;
                }
            } else if field.is_multi() {
                if field.required {
                    let emptied: bool = tx.query_row(
                        &format!("SELECT EXISTS(SELECT 1 FROM {table} WHERE {matches} AND json_array_length({col}) <= 1)"),
                        [id],
                        |r| r.get(0),
                    )?;
                    if emptied {
                        return Err(RecordError::RequiredReference);
                    }
                }
                tx.execute(
                    &format!(
                        "UPDATE {table} SET {col} = (SELECT json_group_array(value) FROM json_each({table}.{col}) WHERE value != ?1) WHERE {matches}"
                    ),
                    [id],
                )?;
                note_updates(other, &referrers, changes);
            } else if field.required {
                return Err(RecordError::RequiredReference);
            } else {
                tx.execute(
                    &format!("UPDATE {table} SET {col} = '' WHERE {matches}"),
                    [id],
                )?;
                note_updates(other, &referrers, changes);
            }
        }
    }
    if let Some(row) = load(tx, collection, id, &Access::All)? {
        changes.push(change(collection, id, Action::Delete, Some(row)));
    }
    crate::search::index::delete_row(tx, collection, id)?;
    tx.execute(
        &format!(
            "DELETE FROM {} WHERE id = ?1",
            ident(collection.name.as_str())
        ),
        [id],
    )?;
    super::auth_records::delete_auth_state(tx, collection, id)?;
    Ok(())
}

fn note_updates(collection: &Collection, ids: &[String], changes: &mut Changes) {
    for id in ids {
        // Read at fan-out time: the clearing UPDATE touched many rows at once.
        changes.push(change(collection, id, Action::Update, None));
    }
}

/// Whether any collection has a relation field pointing at `collection`.
pub fn is_referenced(snapshot: &Snapshot, collection: &Collection) -> bool {
    snapshot.all().iter().any(|other| {
        other.fields.iter().any(|f| matches!(&f.kind, FieldKind::Relation { collection_id, .. } if collection_id == &collection.id))
    })
}
