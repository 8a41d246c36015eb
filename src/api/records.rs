//! `/api/collections/{c}/records…`: record CRUD and listing.

use super::error::ApiError;
use super::extract::{AppState, caller, query_map, record_collection};
use super::multipart::{Body, read_body};
use super::respond;
use crate::auth::Principal;
use crate::files;
use crate::records::{self, Caller, ExpandTree};
use crate::schema::{CompiledCollection, FieldKind};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;
use std::sync::Arc;

/// Reads a create/update body: the limit grows by what the collection's file
/// fields may carry (`maxSize * maxSelect` each), and each file part is kept
/// up to its field's `maxSize` (bytes past it are only counted).
async fn record_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    collection: &CompiledCollection,
) -> Result<Body, ApiError> {
    let mut limit = state.config.server.max_body_bytes;
    for field in &collection.fields {
        if let FieldKind::File {
            max_size,
            max_select,
            ..
        } = &field.kind
        {
            let bytes = files::effective_max_size(*max_size).saturating_mul(*max_select);
            limit = limit.saturating_add(usize::try_from(bytes).unwrap_or(usize::MAX));
        }
    }
    let keep = |key: &str| file_part_limit(collection, key);
    read_body(req, payload, limit, Some(&state.store), &keep).await
}

/// How much of a file part under form key `key` to keep: one byte past the
/// field's `maxSize` (enough to know it is too large); `None` when no file
/// field has that name.
pub(super) fn file_part_limit(collection: &CompiledCollection, key: &str) -> Option<u64> {
    let name = key
        .strip_suffix('+')
        .or_else(|| key.strip_prefix('+'))
        .unwrap_or(key);
    match &collection.field(name)?.kind {
        FieldKind::File { max_size, .. } => Some(files::effective_max_size(*max_size) + 1),
        _ => None,
    }
}

/// Applies the request's `expand` parameter to serialised records.
pub(super) async fn expanded(
    req: &HttpRequest,
    state: &AppState,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    records: Vec<Value>,
) -> Result<Vec<Value>, ApiError> {
    let query = query_map(req)?;
    let Some(tree) = query.get("expand").and_then(|raw| ExpandTree::parse(raw)) else {
        return Ok(records);
    };
    Ok(records::expand(
        &state.db,
        state.registry.snapshot(),
        collection,
        caller,
        records,
        tree,
    )
    .await?)
}

/// Expands one record.
pub(super) async fn expanded_one(
    req: &HttpRequest,
    state: &AppState,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    record: Value,
) -> Result<Value, ApiError> {
    let mut out = expanded(req, state, collection, caller, vec![record]).await?;
    out.pop()
        .ok_or_else(|| ApiError::internal("expansion lost the record"))
}

pub async fn list(
    req: HttpRequest,
    who: Principal,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = record_collection(&state, &path)?;
    let query = records::parse_list_query(&query_map(&req)?)?;
    let who = caller(&who, &req);
    let mut page = records::list(
        &state.db,
        state.registry.snapshot(),
        collection.clone(),
        who.clone(),
        query,
    )
    .await?;
    page.items = expanded(
        &req,
        &state,
        collection,
        who,
        std::mem::take(&mut page.items),
    )
    .await?;
    respond::json(
        &req,
        serde_json::to_value(page).map_err(ApiError::internal)?,
        true,
    )
}

pub async fn view(
    req: HttpRequest,
    who: Principal,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let collection = record_collection(&state, &c)?;
    let who = caller(&who, &req);
    let record = records::view(
        &state.db,
        state.registry.snapshot(),
        collection.clone(),
        who.clone(),
        id,
    )
    .await?;
    let record = expanded_one(&req, &state, collection, who, record).await?;
    respond::json(&req, record, false)
}

pub async fn create(
    req: HttpRequest,
    who: Principal,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = record_collection(&state, &path)?;
    respond::fields(&req)?;
    let input = record_body(&req, body, &state, &collection).await?;
    let who = caller(&who, &req);
    let record = records::create(
        state.backend(),
        state.registry.snapshot(),
        collection.clone(),
        who.clone(),
        input.object,
        input.uploads,
    )
    .await?;
    let record = expanded_one(&req, &state, collection, who, record).await?;
    respond::json(&req, record, false)
}

pub async fn update(
    req: HttpRequest,
    who: Principal,
    path: web::Path<(String, String)>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let collection = record_collection(&state, &c)?;
    respond::fields(&req)?;
    let input = record_body(&req, body, &state, &collection).await?;
    let who = caller(&who, &req);
    let record = records::update(
        state.backend(),
        state.registry.snapshot(),
        collection.clone(),
        who.clone(),
        id,
        input.object,
        input.uploads,
    )
    .await?;
    let record = expanded_one(&req, &state, collection, who, record).await?;
    respond::json(&req, record, false)
}

pub async fn delete(
    req: HttpRequest,
    who: Principal,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let collection = record_collection(&state, &c)?;
    records::delete(
        state.backend(),
        state.registry.snapshot(),
        collection,
        caller(&who, &req),
        id,
    )
    .await?;
    Ok(respond::no_content())
}
