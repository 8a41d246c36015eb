//! Auth endpoints of auth collections: password login and token refresh.

use super::error::ApiError;
use super::extract::{AppState, caller, read_object};
use super::respond;
use crate::auth::{self, Principal};
use crate::records;
use crate::schema::CollectionType;
use crate::validation::{FieldError, ValidationErrors};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use std::sync::Arc;

fn auth_collection(
    state: &AppState,
    id_or_name: &str,
) -> Result<Arc<crate::schema::CompiledCollection>, ApiError> {
    state
        .registry
        .get(id_or_name)
        .filter(|c| c.kind == CollectionType::Auth)
        .ok_or_else(|| ApiError::not_found("Missing or invalid auth collection context."))
}

/// The auth response: `{token, record}` with the record as its owner sees it.
async fn auth_response(
    req: &HttpRequest,
    state: &AppState,
    collection: Arc<crate::schema::CompiledCollection>,
    record_id: String,
    token: String,
) -> Result<HttpResponse, ApiError> {
    let owner = records::Caller {
        superuser: collection.is_superusers(),
        auth: Some((
            collection.id.clone(),
            collection.name.to_string(),
            record_id.clone(),
        )),
        method: "GET".into(),
        ..records::Caller::default()
    };
    let record =
        records::view_as_owner(&state.db, collection.clone(), owner.clone(), record_id).await?;
    let record = super::records::expanded_one(req, state, collection, owner, record).await?;
    respond::json(req, json!({"token": token, "record": record}), false)
}

pub async fn with_password(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    let text = |key: &str| {
        input
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (identity, password) = (text("identity"), text("password"));
    let mut errors = ValidationErrors::new();
    if identity.is_empty() {
        errors.add("identity", FieldError::required());
    }
    if password.is_empty() {
        errors.add("password", FieldError::required());
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(
            "An error occurred while validating the submitted data.",
            &errors,
        ));
    }
    let identity_field = Some(text("identityField")).filter(|s| !s.is_empty());
    let outcome = auth::login_with_password(
        &state.db,
        collection.clone(),
        identity,
        password,
        identity_field,
    )
    .await?;
    auth_response(&req, &state, collection, outcome.record_id, outcome.token).await
}

pub async fn refresh(
    req: HttpRequest,
    who: Principal,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    let c = caller(&who, &req);
    let Some((collection_id, _, id)) = c.auth else {
        return Err(ApiError::unauthorized(
            "The request requires valid record authorization token.",
        ));
    };
    if collection_id != collection.id {
        return Err(ApiError::forbidden(format!(
            "The request requires auth record from {} collection.",
            collection.name
        )));
    }
    let token = auth::refresh_token(&state.db, collection.clone(), id.clone()).await?;
    auth_response(&req, &state, collection, id, token).await
}
