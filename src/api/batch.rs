//! `POST /api/batch`: record creates, updates, upserts and deletes across
//! collections, each with its own rules, applied in ONE transaction: any
//! failure rolls everything back and names the failing request.
//!
//! A batch gets `batch.timeout` seconds (3 when 0, as in PocketBase) from
//! the moment its body is read: preparing and applying its requests past
//! that fails the whole batch (400 "Batch transaction failed.", nothing
//! written). The transaction holds the single writer, so the deadline also
//! interrupts a statement still running on it (a slow rule), not only the
//! gaps between requests.
//!
//! On PostgreSQL the same members run in one PostgreSQL transaction (see
//! `records::apply_batch`); a batch with JavaScript hooks runs its members
//! in the hooks' write session there too (one held transaction).
//!
//! Each sub-request's own query string (percent-decoded) is its
//! `@request.query`, and its `expand` and `fields` shape its answer once the
//! batch has committed, as when the request is sent alone.

use super::error::ApiError;
use super::extract::{AppState, caller};
use super::fields::FieldSelection;
use super::multipart::read_body;
use super::ratelimit::{self, Action, Member};
use super::respond;
use crate::auth::Principal;
use crate::db::{Conn, ident};
use crate::files::{self, BlobKey, Staged};
use crate::records::session::Session;
use crate::records::{self, BatchAbort, BatchWrite, ExpandTree, RecordError, Upload};
use crate::rules::SqlValue;
use crate::validation::{FieldError, ValidationErrors};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Body limit when the settings' `batch.maxBodySize` is 0.
pub const DEFAULT_BATCH_BODY_BYTES: usize = 128 * 1024 * 1024;
/// File parts for sub-requests past this index are ignored (no huge allocations).
const MAX_FILE_REQUEST_INDEX: usize = 1000;
/// Seconds a batch may run when the settings' `batch.timeout` is 0.
pub const DEFAULT_BATCH_TIMEOUT_SECS: u64 = 3;

/// The deadline of a batch whose body was read just now.
fn deadline(timeout_secs: u64) -> Instant {
    let secs = match timeout_secs {
        0 => DEFAULT_BATCH_TIMEOUT_SECS,
        n => n,
    };
    let now = Instant::now();
    // Huge values overflow Instant; fall back to the default rather than panic.
    now.checked_add(Duration::from_secs(secs))
        .unwrap_or(now + Duration::from_secs(DEFAULT_BATCH_TIMEOUT_SECS))
}

/// A batch past its deadline. PocketBase answers 400, not 408, so browsers
/// do not silently retry.
pub(super) fn timed_out() -> ApiError {
    ApiError::bad_request("Batch transaction failed.")
}

/// How a sub-request's answer is shaped after the commit: its `expand`
/// (read as its caller) and its `fields`.
pub(super) struct Shape {
    collection: Arc<crate::schema::CompiledCollection>,
    caller: records::Caller,
    expand: Option<ExpandTree>,
    fields: Option<FieldSelection>,
    /// `onRecordEnrich`, when a handler applies to the collection.
    enrich: Option<super::hooks::Enrich>,
}

impl Shape {
    /// The sub-request's own query.
    pub(super) fn query(&self) -> &std::collections::HashMap<String, String> {
        &self.caller.query
    }

    /// The committed record as the sub-request alone would answer it.
    pub(super) async fn answer(self, state: &AppState, record: Value) -> Result<Value, ApiError> {
        let record = match self.expand {
            Some(tree) => records::expand(
                &state.db,
                state.registry.snapshot(),
                self.collection,
                self.caller,
                vec![record],
                tree,
            )
            .await?
            .pop()
            .ok_or_else(|| ApiError::internal("expansion lost the record"))?,
            None => record,
        };
        let record = super::hooks::enrich_one(self.enrich, record).await?;
        Ok(match self.fields {
            Some(selection) => selection.apply(record, false),
            None => record,
        })
    }
}

/// The percent-decoded query string of a sub-request URL (last value wins);
/// a malformed one is refused as a request alone would be.
fn url_query(url: &str) -> Result<std::collections::HashMap<String, String>, ApiError> {
    let query = url
        .split('#')
        .next()
        .and_then(|u| u.split_once('?'))
        .map_or("", |(_, q)| q);
    if query.split('&').any(|pair| !well_encoded(pair)) {
        return Err(ApiError::bad_request(super::error::GENERIC_MESSAGE));
    }
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|_| ApiError::bad_request(super::error::GENERIC_MESSAGE))
}

/// Whether every `%` starts a two-digit hex escape (`serde_urlencoded`
/// keeps a broken escape as text; PocketBase refuses it).
fn well_encoded(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// A sub-request failure: its index and the error it would have answered alone.
pub(super) struct Failed {
    index: usize,
    error: ApiError,
}

pub(super) fn failed(index: usize, error: impl Into<ApiError>) -> Failed {
    Failed {
        index,
        error: error.into(),
    }
}

pub(super) fn batch_failed(f: Failed) -> ApiError {
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
    let deadline = deadline(settings.batch.timeout);
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
    if let Some(hooks) = super::batch_request::wanted(&state) {
        let batch = super::batch_request::Incoming {
            requests,
            files: files_by_request,
            deadline,
        };
        return super::batch_request::run(&req, &who, &state, hooks, batch).await;
    }
    let answers = execute(&state, &req, &who, deadline, &requests, files_by_request).await?;
    respond::json(&req, Value::Array(answers), false)
}

/// Runs the validated batch `requests` (their files by index) in one
/// transaction; answers each member's `{status, body}`.
pub(super) async fn execute(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    who: &Principal,
    deadline: Instant,
    requests: &[Value],
    mut files_by_request: Vec<Vec<Upload>>,
) -> Result<Vec<Value>, ApiError> {
    let state = state.clone();
    let base = caller(who, req);
    let base = records::Caller {
        context: "batch",
        ..base
    };
    if let Some(hooks) = super::batch_hooked::wanted(&state) {
        let batch = super::batch_hooked::Batch {
            state: &state,
            req,
            who,
            base: &base,
            deadline,
        };
        return super::batch_hooked::run(&batch, hooks, requests, files_by_request).await;
    }
    let snapshot = state.registry.snapshot();
    let preparing = async {
        let mut ops = Vec::with_capacity(requests.len());
        let mut shapes = Vec::with_capacity(requests.len());
        let mut staged = Vec::new();
        for (index, request) in requests.iter().enumerate() {
            let uploads = files_by_request
                .get_mut(index)
                .map(std::mem::take)
                .unwrap_or_default();
            let (op, shape, files) = prepare(&state, req, who, &snapshot, &base, request, uploads)
                .await
                .map_err(|e| batch_failed(failed(index, e)))?;
            ops.push(op);
            shapes.push(shape);
            staged.extend(files);
        }
        Ok::<_, ApiError>((ops, shapes, staged))
    };
    let (ops, shapes, staged) = tokio::time::timeout_at(deadline.into(), preparing)
        .await
        .map_err(|_| timed_out())??;
    let placed = files::place(&state.store, staged)
        .await
        .map_err(ApiError::from)?;
    match run(&state, snapshot, ops, deadline).await {
        Ok(records::BatchApplied {
            results,
            cleanup,
            changes,
            outbox,
        }) => {
            // Only a committed batch is announced.
            state.realtime.publish(changes);
            if let Some(seq) = outbox {
                state.realtime.wait_for_outbox(seq).await;
            }
            cleanup.run(&state.store).await;
            let mut answers = Vec::with_capacity(results.len());
            for (mut result, shape) in results.into_iter().zip(shapes) {
                if let Some(record) = result.get_mut("body").filter(|b| b.is_object()) {
                    *record = shape.answer(&state, record.take()).await?;
                }
                answers.push(result);
            }
            Ok(answers)
        }
        Err(e) => {
            files::remove(&state.store, placed, Vec::new()).await;
            Err(e)
        }
    }
}

/// Applies every prepared sub-request in one transaction (see
/// [`records::apply_batch`]), ending at `deadline`.
async fn run(
    state: &AppState,
    snapshot: std::sync::Arc<crate::schema::Snapshot>,
    writes: Vec<BatchWrite>,
    deadline: Instant,
) -> Result<records::BatchApplied, ApiError> {
    match records::apply_batch(&state.db, snapshot, writes, deadline).await {
        Ok(done) => Ok(done), // committed, even if only just in time
        Err(BatchAbort::Timeout) => Err(timed_out()),
        // An interrupted statement fails its member; the cause is the deadline.
        Err(BatchAbort::Member { .. } | BatchAbort::Transaction(_))
            if Instant::now() >= deadline =>
        {
            Err(timed_out())
        }
        Err(BatchAbort::Member { index, error }) => Err(batch_failed(failed(index, error))),
        Err(BatchAbort::Transaction(e)) => Err(ApiError::from(e)),
    }
}

/// What a sub-request does once an upsert is resolved.
pub(super) enum Target {
    Create,
    Update(String),
    Delete(String),
}

/// One sub-request, parsed and admitted by the rate limiter: what it does,
/// to which collection, as whom, and how its answer is shaped.
pub(super) struct Resolved {
    pub target: Target,
    pub collection: Arc<crate::schema::CompiledCollection>,
    pub caller: records::Caller,
    pub body: Map<String, Value>,
    /// The member's own method and path (an upsert's resolved one).
    pub method: &'static str,
    pub path: String,
    pub shape: Shape,
}

/// Parses one sub-request and checks its rate limit.
pub(super) async fn resolve(
    state: &AppState,
    req: &HttpRequest,
    who: &Principal,
    base: &records::Caller,
    request: &Value,
    session: Option<&Arc<Session>>,
) -> Result<Resolved, ApiError> {
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
    let Some((segment, id)) = parse_url(url) else {
        return Err(ApiError::bad_request(
            "Only record create, update, upsert and delete requests are allowed.",
        ));
    };
    let query = url_query(url)?;
    let fields = match query.get("fields") {
        Some(raw) => FieldSelection::parse_strict(raw)
            .map_err(|_| ApiError::bad_request(super::error::GENERIC_MESSAGE))?,
        None => None,
    };
    let expand = query.get("expand").and_then(|raw| ExpandTree::parse(raw));
    let collection = state
        .registry
        .get(&segment)
        .ok_or_else(ApiError::missing_collection)?;
    let target = match (method.as_str(), id) {
        ("POST", None) => Target::Create,
        ("PATCH", Some(id)) => Target::Update(id),
        ("DELETE", Some(id)) => Target::Delete(id),
        // An upsert becomes the update or create it resolves to, as in PocketBase.
        ("PUT", None) => match body.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() && exists(state, &collection, id, session).await? => {
                Target::Update(id.to_owned())
            }
            _ => Target::Create,
        },
        _ => {
            return Err(ApiError::bad_request(
                "Only record create, update, upsert and delete requests are allowed.",
            ));
        }
    };
    let (member_method, action, path) = match &target {
        Target::Create => (
            "POST",
            Action::Create,
            format!("/api/collections/{segment}/records"),
        ),
        Target::Update(id) => (
            "PATCH",
            Action::Update,
            format!("/api/collections/{segment}/records/{id}"),
        ),
        Target::Delete(id) => (
            "DELETE",
            Action::Delete,
            format!("/api/collections/{segment}/records/{id}"),
        ),
    };
    let member = Member {
        method: member_method,
        path: &path,
        collection: collection.name.as_str(),
        action,
    };
    if !ratelimit::allow_member(state, req, who, &member) {
        return Err(ApiError::too_many_requests());
    }
    let caller = records::Caller {
        method: member_method.to_owned(),
        query,
        ..base.clone()
    };
    let enrich = super::hooks::Enrich::prepare(state, req, who, &collection)
        .map(|e| e.with_query(&caller.query));
    let shape = Shape {
        collection: collection.clone(),
        caller: caller.clone(),
        expand,
        fields,
        enrich,
    };
    Ok(Resolved {
        target,
        collection,
        caller,
        body,
        method: member_method,
        path,
        shape,
    })
}

/// Validates one sub-request and prepares it (rate limits, rules, input,
/// password hashes).
async fn prepare(
    state: &AppState,
    req: &HttpRequest,
    who: &Principal,
    snapshot: &std::sync::Arc<crate::schema::Snapshot>,
    base: &records::Caller,
    request: &Value,
    uploads: Vec<Upload>,
) -> Result<(BatchWrite, Shape, Vec<(Staged, BlobKey)>), ApiError> {
    let Resolved {
        target,
        collection,
        caller,
        body,
        shape,
        ..
    } = resolve(state, req, who, base, request, None).await?;
    let op = match target {
        Target::Create => BatchWrite::Create(Box::new(
            records::prepare_create(snapshot, collection, caller, body, &uploads).await?,
        )),
        Target::Update(id) => BatchWrite::Update(Box::new(
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
        Target::Delete(id) => BatchWrite::Delete(Box::new(
            records::prepare_delete(snapshot, collection, caller, id).await?,
        )),
    };
    let staged = match &op {
        BatchWrite::Create(p) => p.stage(uploads)?,
        BatchWrite::Update(p) => p.stage(uploads)?,
        BatchWrite::Delete(_) => Vec::new(),
    };
    Ok((op, shape, staged))
}

/// Whether record `id` exists (inside `session` when the batch holds one,
/// so a record an earlier member created counts).
async fn exists(
    state: &AppState,
    collection: &crate::schema::CompiledCollection,
    id: &str,
    session: Option<&Arc<Session>>,
) -> Result<bool, ApiError> {
    let Some(session) = session else {
        return Ok(records::exists(&state.db, collection, id).await?);
    };
    let sql = format!(
        "SELECT count(*) FROM {} WHERE id = ?1",
        ident(collection.name.as_str())
    );
    let id = SqlValue::Text(id.to_owned());
    let read =
        move |c: &mut dyn Conn| -> Result<bool, RecordError> { Ok(c.integer(&sql, &[id])? != 0) };
    Ok(session.run_conn(move |c, _| read(c)).await?)
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
