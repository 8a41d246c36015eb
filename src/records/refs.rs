//! What happens to references when a record goes away: records that point at
//! it through a `cascadeDelete` relation are deleted too (recursively), a
//! required reference blocks the delete, and other references are cleared.
//! Every record deleted or cleared here is noted as a realtime change (a deleted
//! row is read just before it goes, so its rules can be checked later).

use super::RecordError;
use super::access::Access;
use super::tx::{RecordTx, RowLock, dialect};
use super::write::{change, invalid};
use crate::db::{Conn, ident};
use crate::realtime::{Action, Changes};
use crate::rules::{Dialect, SqlValue};
use crate::schema::{Collection, CollectionType, CompiledCollection, FieldKind, Snapshot};
use crate::validation::{FieldError, ValidationErrors};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Deletes record `id` of `collection` after handling every reference to it.
/// On PostgreSQL the row is locked first, so a create that references it
/// (holding `FOR KEY SHARE` on it until it commits) is waited for and seen
/// here, or fails its relation check once this delete commits.
pub(super) fn delete_with_references(
    tx: &mut dyn RecordTx,
    snapshot: &Snapshot,
    collection: &CompiledCollection,
    id: &str,
    visited: &mut HashSet<(String, String)>,
    changes: &mut Changes,
) -> Result<(), RecordError> {
    if !visited.insert((collection.id.clone(), id.to_owned())) {
        return Ok(());
    }
    tx.lock_row(collection, id)?;
    let d = dialect(tx);
    let text = |s: &str| [SqlValue::Text(s.to_owned())];
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
            let sql = MultiSql::new(d, &table, &col);
            let matches = if field.is_multi() {
                sql.holds.clone()
            } else {
                format!("{table}.{col} = ?1")
            };
            let referrers = ids(
                tx.conn(),
                &format!("SELECT id FROM {table} WHERE {matches}"),
                id,
            )?;
            if referrers.is_empty() {
                continue;
            }
            if *cascade_delete && field.is_multi() {
                // A multi relation only cascades for records left with no ids at all;
                // the others just lose this one (as PocketBase does).
                let emptied = ids(
                    tx.conn(),
                    &format!("SELECT id FROM {table} WHERE {matches} AND {}", sql.only),
                    id,
                )?;
                tx.conn().execute(
                    &format!("UPDATE {table} SET {col} = {} WHERE {matches}", sql.without),
                    &text(id),
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
                    let emptied = tx.conn().integer(
                        &format!(
                            "SELECT EXISTS(SELECT 1 FROM {table} WHERE {matches} AND {} <= 1)",
                            sql.length
                        ),
                        &text(id),
                    )?;
                    if emptied != 0 {
                        return Err(RecordError::RequiredReference);
                    }
                }
                tx.conn().execute(
                    &format!("UPDATE {table} SET {col} = {} WHERE {matches}", sql.without),
                    &text(id),
                )?;
                note_updates(other, &referrers, changes);
            } else if field.required {
                return Err(RecordError::RequiredReference);
            } else {
                tx.conn().execute(
                    &format!("UPDATE {table} SET {col} = '' WHERE {matches}"),
                    &text(id),
                )?;
                note_updates(other, &referrers, changes);
            }
        }
    }
    if let Some(row) = tx.load(collection, id, &Access::All, RowLock::None)? {
        changes.push(change(collection, id, Action::Delete, Some(row)));
    }
    tx.delete(collection, id)?;
    super::auth_records::delete_auth_state(tx.conn(), collection, id)?;
    Ok(())
}

/// The SQL over a multi relation column `{table}.{col}` (a JSON array of
/// ids) in each dialect; `?1` is the id going away.
struct MultiSql {
    /// The array holds `?1`.
    holds: String,
    /// The array holds nothing but `?1`.
    only: String,
    /// The array without `?1`, the other ids in their order.
    without: String,
    /// How many ids the array holds.
    length: String,
}

impl MultiSql {
    fn new(dialect: Dialect, table: &str, col: &str) -> Self {
        match dialect {
            Dialect::Sqlite => Self {
                holds: format!(
                    "EXISTS (SELECT 1 FROM json_each({table}.{col}) WHERE json_each.value = ?1)"
                ),
                only: format!(
                    "NOT EXISTS (SELECT 1 FROM json_each({table}.{col}) WHERE json_each.value != ?1)"
                ),
                without: format!(
                    "(SELECT json_group_array(value) FROM json_each({table}.{col}) WHERE value != ?1)"
                ),
                length: format!("json_array_length({col})"),
            },
            // `jsonb_exists`, not the `?` operator: `?` is a placeholder here.
            Dialect::Postgres => Self {
                holds: format!("jsonb_exists({table}.{col}, ?1)"),
                only: format!(
                    "NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text({table}.{col}) \
                     AS e(v) WHERE e.v <> ?1)"
                ),
                without: format!(
                    "(SELECT COALESCE(jsonb_agg(e.v ORDER BY e.n), '[]'::jsonb) FROM \
                     jsonb_array_elements_text({table}.{col}) WITH ORDINALITY AS e(v, n) \
                     WHERE e.v <> ?1)"
                ),
                length: format!("jsonb_array_length({col})"),
            },
        }
    }
}

/// The ids a query with `?1` = `id` answers.
fn ids(conn: &mut dyn Conn, sql: &str, id: &str) -> Result<Vec<String>, RecordError> {
    Ok(conn
        .rows(sql, &[SqlValue::Text(id.to_owned())])?
        .into_iter()
        .filter_map(|row| match row.into_iter().next() {
            Some(SqlValue::Text(t)) => Some(t),
            _ => None,
        })
        .collect())
}

/// Checks that every record a relation field of `values` points at exists.
/// On PostgreSQL each is locked `FOR KEY SHARE` until the write commits: a
/// delete racing this write waits for it (and then sees the new referrer),
/// or went first and the record is missing here (a plain 400).
pub(super) fn check_relations(
    conn: &mut dyn Conn,
    snapshot: &Snapshot,
    collection: &Collection,
    values: &Map<String, Value>,
    message: &'static str,
) -> Result<(), RecordError> {
    let postgres = conn.dialect() == Dialect::Postgres;
    let mut errors = ValidationErrors::new();
    let missing = || {
        FieldError::new(
            "validation_missing_rel_records",
            "Failed to find all relation records with the provided ids.",
        )
    };
    for field in &collection.fields {
        let FieldKind::Relation { collection_id, .. } = &field.kind else {
            continue;
        };
        let ids: Vec<&str> = match values.get(field.name.as_str()) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(s)) if !s.is_empty() => vec![s.as_str()],
            _ => continue,
        };
        let Some(target) = snapshot.get(collection_id).or_else(|| {
            (collection_id == &collection.id)
                .then(|| snapshot.get(&collection.id))
                .flatten()
        }) else {
            errors.add(field.name.as_str(), missing());
            continue;
        };
        // A view's rows belong to other tables: nothing of its own to lock.
        let lock = if postgres && target.kind != CollectionType::View {
            " FOR KEY SHARE"
        } else {
            ""
        };
        let sql = format!(
            "SELECT 1 FROM {} WHERE id = ?1{lock}",
            ident(target.name.as_str())
        );
        for id in ids {
            let found = !(postgres && id.contains('\0'))
                && conn
                    .first_row(&sql, &[SqlValue::Text(id.to_owned())])?
                    .is_some();
            if !found {
                errors.add(field.name.as_str(), missing());
                break;
            }
        }
    }
    errors.into_result().map_err(|e| invalid(message, e))
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
