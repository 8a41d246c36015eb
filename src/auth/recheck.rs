//! Checks many auth tokens again at once, for sessions that outlive the
//! request that opened them (realtime streams). A token still holds when
//! the same checks as on a request pass with the record as it is now: the
//! record exists, the token's signature matches the record's current
//! tokenKey and the collection's current secret, and it has not expired.
//! Records are read with one query per collection (in chunks), not one per
//! token, so a fan-out to many users stays cheap.

use super::principal::{auth_signing_key, bare_token, key_and_fields, principal_of};
use super::{Principal, token};
use crate::db::{Conn, Db, DbError, ident};
use crate::rules::SqlValue;
use crate::schema::{CollectionType, CompiledCollection, Registry};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Most record ids bound in one `IN (…)` query.
const IDS_PER_QUERY: usize = 500;

/// Each token's principal as of now, in input order: [`Principal::Anonymous`]
/// for a token that no longer holds (or never did). Failures to read count
/// as "no longer holds".
pub async fn recheck_tokens(db: &Db, registry: &Registry, tokens: &[String]) -> Vec<Principal> {
    let snapshot = registry.snapshot();
    let claims: Vec<Option<token::UnverifiedClaims>> = tokens
        .iter()
        .map(|t| token::peek(bare_token(t)).filter(|c| c.kind == "auth"))
        .collect();
    let mut wanted: HashMap<String, (Arc<CompiledCollection>, Vec<String>)> = HashMap::new();
    for c in claims.iter().flatten() {
        let Some(collection) = snapshot.get(&c.collection_id) else {
            continue;
        };
        if collection.kind != CollectionType::Auth || collection.id != c.collection_id {
            continue;
        }
        let entry = wanted
            .entry(collection.id.clone())
            .or_insert_with(|| (collection.clone(), Vec::new()));
        if !entry.1.contains(&c.id) {
            entry.1.push(c.id.clone());
        }
    }
    let mut rows: HashMap<(String, String), (String, Map<String, Value>)> = HashMap::new();
    for (collection_id, (collection, ids)) in wanted {
        for chunk in ids.chunks(IDS_PER_QUERY) {
            match load(db, &collection, chunk.to_vec()).await {
                Ok(found) => rows.extend(
                    found
                        .into_iter()
                        .map(|(id, row)| ((collection_id.clone(), id), row)),
                ),
                Err(e) => tracing::warn!(error = %e, "auth recheck failed; sessions end"),
            }
        }
    }
    tokens
        .iter()
        .zip(claims)
        .map(|(raw, claims)| {
            let Some(claims) = claims else {
                return Principal::Anonymous;
            };
            let key = (claims.collection_id, claims.id);
            let (Some(collection), Some((token_key, fields))) =
                (snapshot.get(&key.0), rows.get(&key))
            else {
                return Principal::Anonymous;
            };
            let signing_key = auth_signing_key(&collection, token_key);
            match token::verify_auth(bare_token(raw), &signing_key) {
                Ok(verified) if verified.id == key.1 && verified.collection_id == key.0 => {
                    principal_of(&collection, key.1, fields.clone())
                }
                _ => Principal::Anonymous,
            }
        })
        .collect()
}

/// (tokenKey, other columns) of the records `ids` of `collection` that
/// exist and have a tokenKey, by id.
async fn load(
    db: &Db,
    collection: &Arc<CompiledCollection>,
    mut ids: Vec<String>,
) -> Result<HashMap<String, (String, Map<String, Value>)>, DbError> {
    // PostgreSQL text cannot hold NUL, so no stored id has one.
    ids.retain(|id| !id.contains('\0'));
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let marks = vec!["?"; ids.len()].join(", ");
    let sql = format!(
        "{} WHERE {}.\"id\" IN ({marks})",
        collection.select_sql,
        ident(collection.name.as_str())
    );
    let collection = collection.clone();
    let params: Vec<SqlValue> = ids.into_iter().map(SqlValue::Text).collect();
    db.read_conn(move |conn: &mut dyn Conn| {
        let dialect = conn.dialect();
        let mut found = HashMap::new();
        conn.for_each_row(&sql, &params, &mut |row| {
            let (key, fields) = key_and_fields(&collection, dialect, row);
            let id = fields.get("id").and_then(Value::as_str).map(str::to_owned);
            if let (Some(id), false) = (id, key.is_empty()) {
                found.insert(id, (key, fields));
            }
            Ok(())
        })?;
        Ok(found)
    })
    .await
}
