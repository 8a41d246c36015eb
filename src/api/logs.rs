//! `/api/logs` (superusers): list with filter/sort, one entry, hourly
//! stats, truncate.

use super::error::ApiError;
use super::extract::{AppState, Superuser, query_map};
use super::respond;
use crate::logs::{self, LogsError};
use crate::records::ListPage;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

impl From<LogsError> for ApiError {
    fn from(e: LogsError) -> Self {
        match e {
            LogsError::Rule(e) => ApiError::bad_request(format!("Invalid filter or sort: {e}")),
            LogsError::Db(e) => ApiError::from(e),
        }
    }
}

pub async fn list(
    req: HttpRequest,
    _: Superuser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = query_map(&req)?;
    let query = crate::records::parse_list_query(&params)?;
    let (items, total) = logs::list(
        state.logs.db(),
        &query.filter,
        &query.sort,
        query.page,
        query.per_page,
        query.skip_total,
    )
    .await?;
    respond::json(&req, json!(ListPage::new(&query, total, items)), true)
}

pub async fn view(
    req: HttpRequest,
    _: Superuser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let entry = logs::view(state.logs.db(), path.into_inner())
        .await?
        .ok_or_else(ApiError::not_found_default)?;
    respond::json(&req, entry, false)
}

pub async fn stats(
    req: HttpRequest,
    _: Superuser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = query_map(&req)?;
    let filter = params.get("filter").cloned().unwrap_or_default();
    let stats = logs::stats(state.logs.db(), &filter).await?;
    respond::json(&req, json!(stats), false)
}

pub async fn delete_all(
    _: Superuser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    logs::delete_all(state.logs.db()).await?;
    Ok(respond::no_content())
}
