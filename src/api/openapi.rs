//! `GET /api/openapi.json`: the OpenAPI document for the caller (see
//! `crate::openapi`), or 403 for non-superusers when `openapi.public` is off.

use super::error::ApiError;
use super::extract::AppState;
use crate::auth::Principal;
use crate::openapi::Audience;
use actix_web::{HttpResponse, web};

/// The document, trimmed to what the caller's rules could admit.
pub async fn document(who: Principal, st: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let audience = match who {
        Principal::Superuser { .. } => Audience::Superuser,
        _ if st.settings.get().openapi.public => Audience::Public,
        _ => {
            return Err(ApiError::forbidden(
                "Only superusers can access the API description.",
            ));
        }
    };
    let body = st.openapi.get(&st.registry.snapshot(), audience);
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}
