//! `/api/collections/{c}/records…`: record CRUD and listing.

use super::error::ApiError;
use super::extract::{AppState, caller, query_map, read_object, record_collection};
use super::respond;
use crate::auth::Principal;
use crate::records;
use actix_web::{HttpRequest, HttpResponse, web};

pub async fn list(
    req: HttpRequest,
    who: Principal,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = record_collection(&state, &path)?;
    let query = records::parse_list_query(&query_map(&req)?)?;
    let page = records::list(&state.db, state.registry.snapshot(), collection, caller(&who, &req), query).await?;
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
    let record = records::view(&state.db, state.registry.snapshot(), collection, caller(&who, &req), id).await?;
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
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    let record = records::create(
        &state.db,
        state.registry.snapshot(),
        collection,
        caller(&who, &req),
        input,
    )
    .await?;
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
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    let record = records::update(
        &state.db,
        state.registry.snapshot(),
        collection,
        caller(&who, &req),
        id,
        input,
    )
    .await?;
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
        &state.db,
        state.registry.snapshot(),
        collection,
        caller(&who, &req),
        id,
    )
    .await?;
    Ok(respond::no_content())
}
