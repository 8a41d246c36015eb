//! `/api/crons` (superusers): the scheduled jobs, and running one now.

use super::error::ApiError;
use super::extract::{AppState, require_superuser};
use super::respond;
use crate::auth::Principal;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

pub async fn list(
    req: HttpRequest,
    who: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_superuser(&who)?;
    let jobs: Vec<_> = state
        .crons
        .list()
        .into_iter()
        .map(|(id, expression)| json!({"id": id, "expression": expression}))
        .collect();
    respond::json(&req, json!(jobs), false)
}

pub async fn run(
    who: Principal,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_superuser(&who)?;
    if state.crons.run_now(&path).await {
        Ok(respond::no_content())
    } else {
        Err(ApiError::not_found("Missing or invalid cron job."))
    }
}
