//! `GET /api/openapi.json` and `/api/openapi.yaml`: the OpenAPI document for
//! the caller (see `crate::openapi`), or 403 for non-superusers when
//! `openapi.public` is off;
//! `GET /api/typegen`: typed client definitions for superusers.

use super::error::ApiError;
use super::extract::{AppState, Superuser, query_map};
use crate::auth::Principal;
use crate::openapi::{Audience, Format};
use crate::typegen::Lang;
use crate::validation::{FieldError, ValidationErrors};
use actix_web::{HttpRequest, HttpResponse, web};

/// The document as JSON, trimmed to what the caller's rules could admit.
pub async fn document(who: Principal, st: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    serve(who, &st, Format::Json)
}

/// The same document as YAML.
pub async fn document_yaml(
    who: Principal,
    st: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    serve(who, &st, Format::Yaml)
}

fn serve(who: Principal, st: &AppState, format: Format) -> Result<HttpResponse, ApiError> {
    let audience = match who {
        Principal::Superuser { .. } => Audience::Superuser,
        _ if st.settings.get().openapi.public => Audience::Public,
        _ => {
            return Err(ApiError::forbidden(
                "Only superusers can access the API description.",
            ));
        }
    };
    let body = st.openapi.get(&st.registry.snapshot(), audience, format);
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .body(body))
}

/// `GET /api/typegen?lang=ts`: typed client definitions (superusers).
pub async fn typegen(
    _su: Superuser,
    req: HttpRequest,
    st: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = query_map(&req)?;
    let lang = query.get("lang").map_or("ts", String::as_str);
    let Some(lang) = Lang::parse(lang) else {
        let mut errors = ValidationErrors::new();
        errors.add(
            "lang",
            FieldError::new("validation_in_invalid", "Must be a valid value."),
        );
        return Err(ApiError::validation(super::error::GENERIC_MESSAGE, &errors));
    };
    let text = crate::typegen::generate(&st.registry.snapshot(), lang);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(text))
}
