//! `/api/collections/{c}/records…`: record CRUD and listing.

use super::error::ApiError;
use super::extract::{AppState, caller, query_map, record_collection};
use super::hooks;
use super::multipart::{Body, read_body};
use super::respond;
use crate::auth::Principal;
use crate::files;
use crate::records::{self, Caller, ExpandTree};
use crate::schema::{CompiledCollection, FieldKind};
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};
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
    principal: Principal,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = record_collection(&state, &path)?;
    let params = query_map(&req)?;
    let query = records::parse_list_query(&params)?;
    let search = params.get("search").map(String::as_str).unwrap_or_default();
    let who = caller(&principal, &req);
    if answered_as_listed(&state, &collection, &params) {
        let page = records::list_json(
            &state.db,
            state.registry.snapshot(),
            collection,
            who,
            query,
            search,
        )
        .await?;
        return Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(page.into_json()));
    }
    let mut page = records::list_searched(
        &state.db,
        state.registry.snapshot(),
        collection.clone(),
        who.clone(),
        query,
        search,
    )
    .await?;
    mark(&state, &collection, &who, &params, search, &mut page.items).await?;
    page.items = expanded(
        &req,
        &state,
        collection.clone(),
        who,
        std::mem::take(&mut page.items),
    )
    .await?;
    page.items = hooks::enrich(&state, &req, &principal, &collection, page.items).await?;
    let page = page.into_value();
    let hook = "onRecordsListRequest";
    let answered = hooks::around_read(&state, &req, &principal, &collection, hook, "result", page);
    match answered.await? {
        (Some(response), _) => Ok(response),
        (None, page) => respond::json(&req, page, true),
    }
}

/// Whether a list answer goes out exactly as listed: nothing asks to
/// expand it, select its fields (or search marks), and no hook reshapes it
/// (`onRecordEnrich` anywhere, or `onRecordsListRequest` here). Then its
/// items are written straight into JSON (`records::list_json`).
fn answered_as_listed(
    state: &AppState,
    collection: &CompiledCollection,
    params: &std::collections::HashMap<String, String>,
) -> bool {
    let expands = params
        .get("expand")
        .and_then(|raw| ExpandTree::parse(raw))
        .is_some();
    let hooked = state.hooks.as_ref().is_some_and(|h| {
        h.has("onRecordEnrich")
            || h.wants(
                "onRecordsListRequest",
                &collection.id,
                collection.name.as_str(),
            )
    });
    !expands && !params.contains_key("fields") && !hooked
}

/// Replaces the values that `fields=name:highlight|snippet` asks for with
/// the search's marked text (nothing without a search).
async fn mark(
    state: &AppState,
    collection: &Arc<CompiledCollection>,
    who: &Caller,
    params: &std::collections::HashMap<String, String>,
    search: &str,
    items: &mut [Value],
) -> Result<(), ApiError> {
    let wanted = params
        .get("fields")
        .map(|raw| super::fields::search_marks(raw))
        .unwrap_or_default();
    if wanted.is_empty() || search.trim().is_empty() {
        return Ok(());
    }
    let ids = items
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect();
    let marks =
        records::search_marks(&state.db, collection.clone(), who, search, ids, wanted).await?;
    for item in items.iter_mut() {
        let id = item["id"].as_str().unwrap_or_default().to_owned();
        if let (Some(marked), Value::Object(obj)) = (marks.get(&id), item) {
            for (name, text) in marked {
                obj.insert(name.clone(), text.clone());
            }
        }
    }
    Ok(())
}

/// `GET /api/collections/{c}/aggregate`: groups and aggregates over the
/// records the caller could list.
pub async fn aggregate(
    req: HttpRequest,
    principal: Principal,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = record_collection(&state, &path)?;
    let query = records::parse_aggregate_query(&query_map(&req)?)?;
    let who = caller(&principal, &req);
    let items =
        records::aggregate(&state.db, state.registry.snapshot(), collection, who, query).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

pub async fn view(
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let collection = record_collection(&state, &c)?;
    let who = caller(&principal, &req);
    let record = records::view(
        &state.db,
        state.registry.snapshot(),
        collection.clone(),
        who.clone(),
        id,
    )
    .await?;
    let record = expanded_one(&req, &state, collection.clone(), who, record).await?;
    let record = hooks::enrich(&state, &req, &principal, &collection, vec![record])
        .await?
        .pop()
        .unwrap_or_default();
    let hook = "onRecordViewRequest";
    let answered = hooks::around_read(
        &state,
        &req,
        &principal,
        &collection,
        hook,
        "record",
        record,
    );
    match answered.await? {
        (Some(response), _) => Ok(response),
        (None, record) => respond::json(&req, record, false),
    }
}

pub async fn create(
    req: HttpRequest,
    principal: Principal,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = record_collection(&state, &path)?;
    respond::fields(&req)?;
    let input = record_body(&req, body, &state, &collection).await?;
    let who = caller(&principal, &req);
    let tree = expand_param(&req)?;
    let enrich = hooks::Enrich::prepare(&state, &req, &principal, &collection);
    let (st, c) = (state.clone(), collection.clone());
    let write: hooks::Write = Box::new(move |fields| {
        Box::pin(async move {
            let snapshot = st.registry.snapshot();
            let record = records::create(
                st.backend(),
                snapshot,
                c.clone(),
                who.clone(),
                fields,
                input.uploads,
            )
            .await?;
            let record = expand_with(&st, c, who, record, tree).await?;
            hooks::enrich_one(enrich, record).await
        })
    });
    let before = hooks::Before {
        hook: "onRecordCreateRequest",
        record: Value::Object(input.object.clone()),
        body: input.object,
    };
    let answer: hooks::Answer = (
        req.clone(),
        Box::new(move |record| respond::json(&req, record, false)),
    );
    hooks::around(&state, &principal, &collection, before, write, answer).await
}

pub async fn update(
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(String, String)>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let collection = record_collection(&state, &c)?;
    respond::fields(&req)?;
    let input = record_body(&req, body, &state, &collection).await?;
    let who = caller(&principal, &req);
    let tree = expand_param(&req)?;
    let current = stored(&state, &collection, &id, "onRecordUpdateRequest").await?;
    let enrich = hooks::Enrich::prepare(&state, &req, &principal, &collection);
    let (st, c) = (state.clone(), collection.clone());
    let write: hooks::Write = Box::new(move |fields| {
        Box::pin(async move {
            let snapshot = st.registry.snapshot();
            let (backend, uploads) = (st.backend(), input.uploads);
            let record = records::update(
                backend,
                snapshot,
                c.clone(),
                who.clone(),
                id,
                fields,
                uploads,
            )
            .await?;
            let record = expand_with(&st, c, who, record, tree).await?;
            hooks::enrich_one(enrich, record).await
        })
    });
    let mut record = current.unwrap_or_default();
    record.extend(input.object.clone());
    let before = hooks::Before {
        hook: "onRecordUpdateRequest",
        record: Value::Object(record),
        body: input.object,
    };
    let answer: hooks::Answer = (
        req.clone(),
        Box::new(move |record| respond::json(&req, record, false)),
    );
    hooks::around(&state, &principal, &collection, before, write, answer).await
}

pub async fn delete(
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let collection = record_collection(&state, &c)?;
    let who = caller(&principal, &req);
    let current = stored(&state, &collection, &id, "onRecordDeleteRequest").await?;
    let (st, c) = (state.clone(), collection.clone());
    let write: hooks::Write = Box::new(move |_| {
        Box::pin(async move {
            let snapshot = st.registry.snapshot();
            records::delete(st.backend(), snapshot, c, who, id).await?;
            Ok(Value::Null)
        })
    });
    let before = hooks::Before {
        hook: "onRecordDeleteRequest",
        record: Value::Object(current.unwrap_or_default()),
        body: Map::new(),
    };
    let answer: hooks::Answer = (req, Box::new(|_| Ok(respond::no_content())));
    hooks::around(&state, &principal, &collection, before, write, answer).await
}

/// The stored record (as a superuser sees it) when a `hook` will look at
/// it; `None` when no hook applies, so the path without hooks reads nothing
/// more. A missing record is the action's own 404, decided by the action.
async fn stored(
    state: &AppState,
    collection: &Arc<CompiledCollection>,
    id: &str,
    hook: &str,
) -> Result<Option<Map<String, Value>>, ApiError> {
    if !hooks::applies(state, hook, collection) {
        return Ok(None);
    }
    let found = records::view_as_owner(
        &state.db,
        collection.clone(),
        Caller::superuser(),
        id.to_owned(),
    )
    .await;
    match found {
        Ok(Value::Object(record)) => Ok(Some(record)),
        Ok(_) | Err(records::RecordError::NotFound) => Err(ApiError::not_found_default()),
        Err(e) => Err(e.into()),
    }
}

/// The request's `expand` parameter.
fn expand_param(req: &HttpRequest) -> Result<Option<ExpandTree>, ApiError> {
    Ok(query_map(req)?
        .get("expand")
        .and_then(|raw| ExpandTree::parse(raw)))
}

/// Expands one record along `tree`.
async fn expand_with(
    state: &AppState,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    record: Value,
    tree: Option<ExpandTree>,
) -> Result<Value, ApiError> {
    let Some(tree) = tree else {
        return Ok(record);
    };
    let snapshot = state.registry.snapshot();
    let mut out =
        records::expand(&state.db, snapshot, collection, caller, vec![record], tree).await?;
    out.pop()
        .ok_or_else(|| ApiError::internal("expansion lost the record"))
}
