//! `POST /api/batch`: record creates, updates, upserts and deletes across
//! collections, each with its own rules, applied in ONE transaction: any
//! failure rolls everything back and names the failing request.

use super::error::ApiError;
use super::extract::{AppState, caller, read_object};
use super::respond;
use crate::auth::Principal;
use crate::db::{DbError, ident};
use crate::records::{self, PreparedCreate, PreparedDelete, PreparedUpdate, RecordError};
use crate::validation::{FieldError, ValidationErrors};
use actix_web::{HttpRequest, HttpResponse, web};
use rusqlite::TransactionBehavior;
use serde_json::{Map, Value, json};

/// Body limit when the settings' `batch.maxBodySize` is 0.
pub const DEFAULT_BATCH_BODY_BYTES: usize = 128 * 1024 * 1024;

enum Op {
    Create(Box<PreparedCreate>),
    Update(Box<PreparedUpdate>),
    Delete(PreparedDelete),
}

/// A sub-request failure: its index and the error it would have answered alone.
struct Failed {
    index: usize,
    error: ApiError,
}

impl From<DbError> for Failed {
    fn from(e: DbError) -> Self {
        Failed {
            index: 0,
            error: ApiError::internal(e),
        }
    }
}

fn failed(index: usize, error: impl Into<ApiError>) -> Failed {
    Failed {
        index,
        error: error.into(),
    }
}

fn batch_failed(f: Failed) -> ApiError {
    let mut errors = Map::new();
    errors.insert(
        f.index.to_string(),
        json!({"code": "batch_request_failed", "message": "Batch request failed.", "response": f.error.envelope()}),
    );
    ApiError::bad_request("Batch transaction failed.").with_data(json!({"requests": errors}))
}

/// `(collection, record id)` of a records URL, with the query string dropped.
fn parse_url(url: &str) -> Option<(String, Option<String>)> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let rest = path.strip_prefix("/api/collections/")?;
    let mut parts = rest.split('/');
    let collection = parts.next().filter(|c| !c.is_empty())?.to_owned();
    if parts.next()? != "records" {
        return None;
    }
    let id = parts.next().filter(|s| !s.is_empty()).map(str::to_owned);
    parts.next().is_none().then_some((collection, id))
}

pub async fn batch(
    req: HttpRequest,
    who: Principal,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let settings = state.settings.get();
    if !settings.batch.enabled {
        return Err(ApiError::forbidden("Batch requests are not allowed."));
    }
    let limit = match settings.batch.max_body_size {
        0 => DEFAULT_BATCH_BODY_BYTES,
        n => usize::try_from(n).unwrap_or(DEFAULT_BATCH_BODY_BYTES),
    };
    let input = read_object(&req, body, limit).await?;
    let requests = input
        .get("requests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let max = settings.batch.max_requests as usize;
    if requests.is_empty() || requests.len() > max {
        let mut errors = ValidationErrors::new();
        let e = if requests.is_empty() {
            FieldError::required()
        } else {
            FieldError::new(
                "validation_length_too_long",
                format!("The length must be no more than {max}."),
            )
            .with_params(json!({"max": max, "min": 0}))
        };
        errors.add("requests", e);
        return Err(ApiError::validation("Invalid batch request data.", &errors));
    }
    let base = caller(&who, &req);
    let base = records::Caller {
        context: "batch",
        ..base
    };
    let snapshot = state.registry.snapshot();
    let mut ops = Vec::with_capacity(requests.len());
    for (index, request) in requests.iter().enumerate() {
        let op = prepare(&state, &snapshot, &base, request)
            .await
            .map_err(|e| batch_failed(failed(index, e)))?;
        ops.push(op);
    }
    let (results, changes) = state
        .db
        .write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(DbError::from)?;
            let mut changes = crate::realtime::Changes::default();
            let mut results = Vec::with_capacity(ops.len());
            for (index, op) in ops.iter().enumerate() {
                let result = match op {
                    Op::Create(p) => p
                        .apply(&tx, &snapshot, &mut changes)
                        .map(|v| json!({"status": 200, "body": v})),
                    Op::Update(p) => p
                        .apply(&tx, &snapshot, &mut changes)
                        .map(|v| json!({"status": 200, "body": v})),
                    Op::Delete(p) => p
                        .apply(&tx, &snapshot, &mut changes)
                        .map(|()| json!({"status": 204, "body": null})),
                };
                results.push(result.map_err(|e| failed(index, e))?);
            }
            tx.commit().map_err(DbError::from)?;
            Ok::<_, Failed>((results, changes))
        })
        .await
        .map_err(batch_failed)?;
    // Only a committed batch is announced.
    state.realtime.publish(changes);
    respond::json(&req, Value::Array(results), false)
}

/// Validates one sub-request and prepares it (rules, input, password hashes).
async fn prepare(
    state: &AppState,
    snapshot: &crate::schema::Snapshot,
    base: &records::Caller,
    request: &Value,
) -> Result<Op, ApiError> {
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_uppercase();
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let body = match request.get("body") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiError::bad_request("The request body must be an object.")),
    };
    let Some((collection, id)) = parse_url(url) else {
        return Err(ApiError::bad_request(
            "Only record create, update, upsert and delete requests are allowed.",
        ));
    };
    let collection = state
        .registry
        .get(&collection)
        .ok_or_else(ApiError::missing_collection)?;
    let caller = records::Caller {
        method: method.clone(),
        ..base.clone()
    };
    let op = match (method.as_str(), id) {
        ("POST", None) => Op::Create(Box::new(
            records::prepare_create(snapshot, collection, caller, body).await?,
        )),
        ("PATCH", Some(id)) => Op::Update(Box::new(
            records::prepare_update(&state.db, snapshot, collection, caller, id, body).await?,
        )),
        ("DELETE", Some(id)) => {
            Op::Delete(records::prepare_delete(&state.db, snapshot, collection, caller, id).await?)
        }
        ("PUT", None) => {
            let id = body
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if !id.is_empty() && exists(state, &collection, &id).await? {
                Op::Update(Box::new(
                    records::prepare_update(&state.db, snapshot, collection, caller, id, body)
                        .await?,
                ))
            } else {
                Op::Create(Box::new(
                    records::prepare_create(snapshot, collection, caller, body).await?,
                ))
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "Only record create, update, upsert and delete requests are allowed.",
            ));
        }
    };
    Ok(op)
}

async fn exists(
    state: &AppState,
    collection: &crate::schema::CompiledCollection,
    id: &str,
) -> Result<bool, ApiError> {
    let sql = format!(
        "SELECT EXISTS(SELECT 1 FROM {} WHERE id = ?1)",
        ident(collection.name.as_str())
    );
    let id = id.to_owned();
    Ok(state
        .db
        .read(move |c| {
            c.query_row(&sql, [id], |r| r.get(0))
                .map_err(RecordError::from)
        })
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_record_urls_are_accepted() {
        assert_eq!(
            parse_url("/api/collections/posts/records"),
            Some(("posts".into(), None))
        );
        assert_eq!(
            parse_url("/api/collections/posts/records/abc?fields=id"),
            Some(("posts".into(), Some("abc".into())))
        );
        for bad in [
            "/api/collections/posts",
            "/api/settings",
            "/api/collections/posts/records/a/b",
            "posts/records",
        ] {
            assert_eq!(parse_url(bad), None, "{bad}");
        }
    }
}
