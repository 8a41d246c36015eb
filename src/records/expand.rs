//! `?expand=`: relation and back-relation expansion. Each requested path is
//! resolved level by level (at most [`MAX_EXPAND_DEPTH`]); related records are
//! fetched in one query per relation and level, with the related collection's
//! view rule applied for the requester (records it may not see are silently
//! left out, as are unknown paths). Results nest under each record's
//! `expand` key: an object for a single relation, an array for a multiple one
//! or a back-relation (an object when the back-relation field is unique).

use super::RecordError;
use super::access::{self, Access, Caller};
use super::read::row_record;
use crate::db::{Conn, Db, ident};
use crate::rules::{Dialect, SqlValue};
use crate::schema::{Collection, CollectionType, CompiledCollection, FieldKind, Snapshot};
use rusqlite::Connection;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Deepest expansion followed; deeper segments are ignored.
pub const MAX_EXPAND_DEPTH: usize = 6;
/// Most records a back-relation expands to.
pub const MAX_BACK_RELATION_RECORDS: usize = 1000;

/// The requested expansion paths (`a`, `b.c`, `comments_via_post`), each at most
/// [`MAX_EXPAND_DEPTH`] segments deep.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExpandTree {
    paths: Vec<Vec<String>>,
}

/// Valid paths merged into a tree: relation name → deeper expansions.
#[derive(Debug, Default)]
struct Node(BTreeMap<String, Node>);

impl ExpandTree {
    /// Parses `a,b.c,comments_via_post`; `None` when nothing is requested.
    pub fn parse(raw: &str) -> Option<Self> {
        let paths: Vec<Vec<String>> = raw
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.split('.')
                    .take(MAX_EXPAND_DEPTH)
                    .map(str::to_owned)
                    .collect()
            })
            .collect();
        (!paths.is_empty()).then_some(Self { paths })
    }

    /// Merges the paths whose every segment is a relation (or back-relation) of
    /// the collection reached so far; PocketBase drops an invalid path whole.
    fn valid_for(&self, snapshot: &Snapshot, collection: &Collection) -> Node {
        let mut root = Node::default();
        for path in &self.paths {
            let mut current = collection;
            let valid = path
                .iter()
                .all(|seg| match relation_target(snapshot, current, seg) {
                    Some(next) => {
                        current = next;
                        true
                    }
                    None => false,
                });
            if valid {
                let mut node = &mut root;
                for seg in path {
                    node = node.0.entry(seg.clone()).or_default();
                }
            }
        }
        root
    }
}

/// The collection a relation field or `x_via_y` back-relation of `collection` leads to.
fn relation_target<'s>(
    snapshot: &'s Snapshot,
    collection: &Collection,
    name: &str,
) -> Option<&'s Collection> {
    if let Some(field) = collection.field(name) {
        let FieldKind::Relation { collection_id, .. } = &field.kind else {
            return None;
        };
        return snapshot.get_ref(collection_id).map(|c| &c.def);
    }
    let (source_name, field_name) = name.split_once("_via_")?;
    let source = snapshot.get_ref(source_name)?;
    let back = source.field(field_name)?;
    matches!(&back.kind, FieldKind::Relation { collection_id, .. } if collection_id == &collection.id).then_some(&source.def)
}

/// Expands `records` (serialised records of `collection`) in place.
pub async fn expand(
    db: &Db,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    records: Vec<Value>,
    tree: ExpandTree,
) -> Result<Vec<Value>, RecordError> {
    let tree = tree.valid_for(&snapshot, &collection);
    if tree.0.is_empty() {
        // Nothing resolvable: PocketBase answers without an `expand` key.
        return Ok(records);
    }
    let run = move |rows: &mut dyn Rows| {
        let caller = Caller {
            context: "expand",
            ..caller
        };
        let mut maps: Vec<Map<String, Value>> = records
            .into_iter()
            .map(|v| match v {
                Value::Object(m) => m,
                _ => Map::new(),
            })
            .collect();
        expand_level(rows, &snapshot, &collection, &caller, &mut maps, &tree)?;
        Ok(maps.into_iter().map(Value::Object).collect())
    };
    match db.dialect() {
        Dialect::Sqlite => db.read(move |conn| run(&mut SqliteRows(conn))).await,
        Dialect::Postgres => {
            db.read_conn(move |conn: &mut dyn Conn| run(&mut PgRows(conn)))
                .await
        }
    }
}

/// Runs a related-records query on one engine and shows each row as
/// `caller` may see it.
trait Rows {
    fn dialect(&self) -> Dialect;
    /// The rows `sql` (the target's `select_sql` and a condition) selects.
    fn records(
        &mut self,
        target: &CompiledCollection,
        caller: &Caller,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Map<String, Value>>, RecordError>;
}

/// SQLite: each row straight into the caller's view.
struct SqliteRows<'a>(&'a Connection);

impl Rows for SqliteRows<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn records(
        &mut self,
        target: &CompiledCollection,
        caller: &Caller,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Map<String, Value>>, RecordError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| {
            row_record(target, r, caller)
        })?;
        let mut out = Vec::new();
        for row in rows {
            if let Value::Object(m) = row? {
                out.push(m);
            }
        }
        Ok(out)
    }
}

/// PostgreSQL: the plain value path (see `on_postgres`).
struct PgRows<'a>(&'a mut dyn Conn);

impl Rows for PgRows<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn records(
        &mut self,
        target: &CompiledCollection,
        caller: &Caller,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Map<String, Value>>, RecordError> {
        super::on_postgres::records(self.0, target, caller, sql, params)
    }
}

fn expand_level(
    conn: &mut dyn Rows,
    snapshot: &Snapshot,
    collection: &Collection,
    caller: &Caller,
    records: &mut [Map<String, Value>],
    tree: &Node,
) -> Result<(), RecordError> {
    for record in records.iter_mut() {
        record
            .entry("expand")
            .or_insert_with(|| Value::Object(Map::new()));
    }
    for (name, subtree) in &tree.0 {
        if let Some(field) = collection.field(name) {
            let FieldKind::Relation { collection_id, .. } = &field.kind else {
                continue;
            };
            let Some(target) = snapshot.get_ref(collection_id) else {
                continue;
            };
            if field.hidden && !caller.superuser {
                continue;
            }
            // Each related record once: many records often share one
            // (the IN list is a set either way).
            let mut ids: Vec<String> = records
                .iter()
                .flat_map(|r| ids_of(r.get(name.as_str())))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            let mut found = fetch(conn, snapshot, target, caller, Lookup::Ids(&ids))?;
            if !subtree.0.is_empty() {
                expand_level(conn, snapshot, target, caller, &mut found, subtree)?;
            }
            let by_id: BTreeMap<String, Map<String, Value>> = found
                .into_iter()
                .map(|m| {
                    (
                        m.get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        m,
                    )
                })
                .collect();
            for record in records.iter_mut() {
                let wanted = ids_of(record.get(name.as_str()));
                let value = if field.is_multi() {
                    let items: Vec<Value> = wanted
                        .iter()
                        .filter_map(|id| by_id.get(id).cloned().map(Value::Object))
                        .collect();
                    (!items.is_empty()).then_some(Value::Array(items))
                } else {
                    wanted
                        .first()
                        .and_then(|id| by_id.get(id))
                        .cloned()
                        .map(Value::Object)
                };
                if let (Some(value), Some(Value::Object(expand))) =
                    (value, record.get_mut("expand"))
                {
                    expand.insert(name.clone(), value);
                }
            }
        } else if let Some((source_name, field_name)) = name.split_once("_via_") {
            let Some(source) = snapshot.get_ref(source_name) else {
                continue;
            };
            let Some(back) = source.field(field_name).filter(|f| {
                matches!(&f.kind, FieldKind::Relation { collection_id, .. } if collection_id == &collection.id)
            }) else {
                continue;
            };
            let unique =
                !back.is_multi() && source.indexes.iter().any(|i| i.is_unique_on(field_name));
            for record in records.iter_mut() {
                let id = record
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let mut found = fetch(
                    conn,
                    snapshot,
                    source,
                    caller,
                    Lookup::Back {
                        field: back,
                        id: &id,
                    },
                )?;
                if found.is_empty() {
                    continue;
                }
                if !subtree.0.is_empty() {
                    expand_level(conn, snapshot, source, caller, &mut found, subtree)?;
                }
                let value = if unique {
                    found
                        .into_iter()
                        .next()
                        .map(Value::Object)
                        .unwrap_or(Value::Null)
                } else {
                    Value::Array(found.into_iter().map(Value::Object).collect())
                };
                if let Some(Value::Object(expand)) = record.get_mut("expand") {
                    expand.insert(name.clone(), value);
                }
            }
        }
    }
    Ok(())
}

fn ids_of(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

enum Lookup<'a> {
    Ids(&'a [String]),
    Back {
        field: &'a crate::schema::Field,
        id: &'a str,
    },
}

/// Reads related records visible to `caller` under `target`'s view rule.
fn fetch(
    conn: &mut dyn Rows,
    snapshot: &Snapshot,
    target: &CompiledCollection,
    caller: &Caller,
    lookup: Lookup<'_>,
) -> Result<Vec<Map<String, Value>>, RecordError> {
    let dialect = conn.dialect();
    let access = match access::resolve_in(snapshot, &target.rules.view, caller, target, dialect) {
        Ok(access) => access,
        Err(RecordError::SuperusersOnly) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let table = ident(target.name.as_str());
    let (mut sql, mut params) = match lookup {
        Lookup::Ids([]) => return Ok(Vec::new()),
        Lookup::Ids(ids) => {
            let marks = vec!["?"; ids.len()].join(", ");
            let params = ids.iter().map(|id| SqlValue::Text(id.clone())).collect();
            (
                format!("{} WHERE {table}.\"id\" IN ({marks})", target.select_sql),
                params,
            )
        }
        Lookup::Back { field, id } => {
            let col = format!("{table}.{}", ident(field.name.as_str()));
            let cond = match (field.is_multi(), dialect) {
                (true, Dialect::Sqlite) => {
                    format!("EXISTS (SELECT 1 FROM json_each({col}) WHERE json_each.value = ?)")
                }
                (true, Dialect::Postgres) => format!("jsonb_exists(fb_array({col}), ?)"),
                (false, _) => format!("{col} = ?"),
            };
            (
                format!("{} WHERE {cond}", target.select_sql),
                vec![SqlValue::Text(id.to_owned())],
            )
        }
    };
    if let Access::Filter(rule) = access {
        sql.push_str(&format!(" AND ({})", rule.sql));
        params.extend(rule.params);
    }
    if dialect == Dialect::Postgres && target.kind != CollectionType::View {
        // The insertion order SQLite's scan gives a back-relation's records.
        sql.push_str(&format!(" ORDER BY {table}._fb_rowid"));
    }
    sql.push_str(&format!(" LIMIT {MAX_BACK_RELATION_RECORDS}"));
    conn.records(target, caller, &sql, &params)
}
