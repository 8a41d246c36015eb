//! Success responses: JSON with the `fields` selection applied.

use super::error::ApiError;
use super::fields::FieldSelection;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

/// 200 with `body`, filtered by the request's `fields` parameter.
pub fn json(req: &HttpRequest, body: Value, is_list: bool) -> Result<HttpResponse, ApiError> {
    let body = match fields(req)? {
        Some(selection) => selection.apply(body, is_list),
        None => body,
    };
    Ok(HttpResponse::Ok().json(body))
}

/// The request's `fields` selection; a 400 when it does not parse. Handlers
/// that write call this first, so a bad `fields` refuses before the write.
pub fn fields(req: &HttpRequest) -> Result<Option<FieldSelection>, ApiError> {
    let query = super::extract::query_map(req)?;
    let Some(raw) = query.get("fields") else {
        return Ok(None);
    };
    FieldSelection::parse_strict(raw).map_err(|reason| {
        tracing::debug!(%reason, "bad fields parameter");
        ApiError::bad_request(super::error::GENERIC_MESSAGE)
    })
}

/// 204 with no body.
pub fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}
