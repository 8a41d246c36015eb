//! `GET`/`PATCH /api/settings` (superusers).

use super::error::ApiError;
use super::extract::{AppState, read_object, require_superuser};
use super::respond;
use crate::auth::Principal;
use crate::settings;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

pub async fn get(
    req: HttpRequest,
    who: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_superuser(&who)?;
    respond::json(&req, state.settings.get().to_public_json(), false)
}

pub async fn patch(
    req: HttpRequest,
    who: Principal,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_superuser(&who)?;
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    let saved = settings::patch(&state.db, Value::Object(input)).await?;
    state.settings.set(saved.clone());
    super::backups::schedule(&state);
    respond::json(&req, saved.to_public_json(), false)
}
