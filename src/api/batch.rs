//! `POST /api/batch`: record creates, updates, upserts and deletes across
//! collections, each with its own rules, applied in ONE transaction: any
//! failure rolls everything back and names the failing request.

use super::error::ApiError;
use super::extract::{AppState, caller};
use super::multipart::read_body;
use super::respond;
use crate::auth::Principal;
use crate::db::{DbError, ident};
use crate::files::{self, BlobKey, Staged};
use crate::records::{
    self, Cleanup, PreparedCreate, PreparedDelete, PreparedUpdate, RecordError, Upload,
};
use crate::validation::{FieldError, ValidationErrors};
use actix_web::{HttpRequest, HttpResponse, web};
use rusqlite::TransactionBehavior;
use serde_json::{Map, Value, json};

/// Body limit when the settings' `batch.maxBodySize` is 0.
pub const DEFAULT_BATCH_BODY_BYTES: usize = 128 * 1024 * 1024;
/// File parts for sub-requests past this index are ignored (no huge allocations).
const MAX_FILE_REQUEST_INDEX: usize = 1000;

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

/// `(request index, field key)` of a file part named `requests.N.field` or `requests[N].field`.
fn parse_file_key(key: &str) -> Option<(usize, &str)> {
    let rest = key.strip_prefix("requests")?;
    let (index, field) = if let Some(rest) = rest.strip_prefix('.') {
        rest.split_once('.')?
    } else {
        let (index, field) = rest.strip_prefix('[')?.split_once(']')?;
        (index, field.strip_prefix('.')?)
    };
    let index = index.parse().ok()?;
    (!field.is_empty()).then_some((index, field))
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
    // Files come before the `@jsonPayload` that says where they go, so parts
    // are only bounded by the batch limit here; each field's maxSize and
    // mimeTypes are checked once the sub-request is known.
    let keep = |key: &str| parse_file_key(key).map(|_| limit as u64);
    let body = read_body(&req, body, limit, Some(&state.store), &keep).await?;
    let input = body.object;
    let mut files_by_request: Vec<Vec<Upload>> = Vec::new();
    for mut upload in body.uploads {
        let Some((index, field)) = parse_file_key(&upload.key) else {
            continue;
        };
        let field = field.to_owned();
        if index >= MAX_FILE_REQUEST_INDEX {
            continue;
        }
        if files_by_request.len() <= index {
            files_by_request.resize_with(index + 1, Vec::new);
        }
        upload.key = field;
        // PocketBase re-wraps batch files, so their names get a second suffix.
        upload.file.rename_again();
        files_by_request[index].push(upload);
    }
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
    let mut staged = Vec::new();
    for (index, request) in requests.iter().enumerate() {
        let uploads = files_by_request
            .get_mut(index)
            .map(std::mem::take)
            .unwrap_or_default();
        let (op, files) = prepare(&state, &snapshot, &base, request, uploads)
            .await
            .map_err(|e| batch_failed(failed(index, e)))?;
        ops.push(op);
        staged.extend(files);
    }
    let placed = files::place(&state.store, staged)
        .await
        .map_err(ApiError::from)?;
    match run(&state, snapshot, ops).await {
        Ok((results, cleanup, changes)) => {
            // Only a committed batch is announced.
            state.realtime.publish(changes);
            cleanup.run(&state.store).await;
            respond::json(&req, Value::Array(results), false)
        }
        Err(e) => {
            files::remove(&state.store, placed, Vec::new()).await;
            Err(e)
        }
    }
}

/// Applies every prepared sub-request in one transaction.
async fn run(
    state: &AppState,
    snapshot: std::sync::Arc<crate::schema::Snapshot>,
    ops: Vec<Op>,
) -> Result<(Vec<Value>, Cleanup, crate::realtime::Changes), ApiError> {
    state
        .db
        .write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(DbError::from)?;
            let mut changes = crate::realtime::Changes::default();
            let mut results = Vec::with_capacity(ops.len());
            let mut cleanup = Cleanup::default();
            for (index, op) in ops.iter().enumerate() {
                let result = match op {
                    Op::Create(p) => p.apply(&tx, &snapshot, &mut changes).map(|a| {
                        cleanup.absorb(a.cleanup);
                        json!({"status": 200, "body": a.record})
                    }),
                    Op::Update(p) => p.apply(&tx, &snapshot, &mut changes).map(|a| {
                        cleanup.absorb(a.cleanup);
                        json!({"status": 200, "body": a.record})
                    }),
                    Op::Delete(p) => p.apply(&tx, &snapshot, &mut changes).map(|c| {
                        cleanup.absorb(c);
                        json!({"status": 204, "body": null})
                    }),
                };
                results.push(result.map_err(|e| failed(index, e))?);
            }
            tx.commit().map_err(DbError::from)?;
            Ok::<_, Failed>((results, cleanup, changes))
        })
        .await
        .map_err(batch_failed)
}

/// Validates one sub-request and prepares it (rules, input, password hashes).
async fn prepare(
    state: &AppState,
    snapshot: &std::sync::Arc<crate::schema::Snapshot>,
    base: &records::Caller,
    request: &Value,
    uploads: Vec<Upload>,
) -> Result<(Op, Vec<(Staged, BlobKey)>), ApiError> {
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
            records::prepare_create(snapshot, collection, caller, body, &uploads).await?,
        )),
        ("PATCH", Some(id)) => Op::Update(Box::new(
            records::prepare_update(
                &state.db,
                snapshot.clone(),
                collection,
                caller,
                id,
                body,
                &uploads,
            )
            .await?,
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
                    records::prepare_update(
                        &state.db,
                        snapshot.clone(),
                        collection,
                        caller,
                        id,
                        body,
                        &uploads,
                    )
                    .await?,
                ))
            } else {
                Op::Create(Box::new(
                    records::prepare_create(snapshot, collection, caller, body, &uploads).await?,
                ))
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "Only record create, update, upsert and delete requests are allowed.",
            ));
        }
    };
    let staged = match &op {
        Op::Create(p) => p.stage(uploads)?,
        Op::Update(p) => p.stage(uploads)?,
        Op::Delete(_) => Vec::new(),
    };
    Ok((op, staged))
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
        assert_eq!(parse_file_key("requests.1.docs+"), Some((1, "docs+")));
        assert_eq!(parse_file_key("requests[0].cover"), Some((0, "cover")));
        assert_eq!(parse_file_key("requests.x.cover"), None);
        assert_eq!(parse_file_key("cover"), None);
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
