//! Success responses: JSON with the `fields` selection applied.

use super::error::ApiError;
use super::fields::FieldSelection;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

/// 200 with `body`, filtered by the request's `fields` parameter.
pub fn json(req: &HttpRequest, body: Value, is_list: bool) -> Result<HttpResponse, ApiError> {
    let query = super::extract::query_map(req)?;
    let body = match query
        .get("fields")
        .and_then(|raw| FieldSelection::parse(raw))
    {
        Some(selection) => selection.apply(body, is_list),
        None => body,
    };
    Ok(HttpResponse::Ok().json(body))
}

/// 204 with no body.
pub fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}
