//! `/api/crons` (superusers): the scheduled jobs, and running one now.

use super::error::ApiError;
use super::extract::{AppState, Superuser};
use super::respond;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

pub async fn list(
    req: HttpRequest,
    _: Superuser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let jobs: Vec<_> = state
        .crons
        .list()
        .into_iter()
        .map(|(id, expression)| json!({"id": id, "expression": expression}))
        .collect();
    respond::json(&req, json!(jobs), false)
}

pub async fn run(
    _: Superuser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if state.crons.run_now(&path).await {
        Ok(respond::no_content())
    } else {
        Err(ApiError::not_found("Missing or invalid cron job."))
    }
}
