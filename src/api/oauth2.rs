//! `auth-with-oauth2`: exchange the provider's code, then log in the linked
//! account, link an existing one (the caller's own, or the one with the
//! provider-verified email), or sign up a new record from `createData` and
//! the mapped provider fields — the new record and its link in one
//! transaction, under the collection's create rule with
//! `@request.context = "oauth2"`.

use super::auth::{FirstFactor, auth_collection, finish_login, mfa_id_of, text};
use super::error::ApiError;
use super::extract::{AppState, caller, read_object};
use crate::auth::oauth2::{self, OAuth2User};
use crate::auth::{AuthError, Principal};
use crate::records;
use crate::schema::{CompiledCollection, FieldKind, autogen};
use crate::validation::{FieldError, ValidationErrors};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub async fn with_oauth2(
    req: HttpRequest,
    who: Principal,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    if !collection.auth.oauth2.enabled {
        return Err(AuthError::OAuth2Disabled.into());
    }
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    let (provider_name, code) = (text(&input, "provider"), text(&input, "code"));
    let mut errors = ValidationErrors::new();
    for (key, value) in [("provider", &provider_name), ("code", &code)] {
        if value.is_empty() {
            errors.add(key, FieldError::required());
        }
    }
    let create_data = match input.get("createData") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            errors.add(
                "createData",
                FieldError::new("validation_invalid_value", "Must be an object."),
            );
            Map::new()
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(
            "An error occurred while loading the submitted data.",
            &errors,
        ));
    }
    let provider = oauth2::provider(&collection, &provider_name)
        .ok_or_else(|| AuthError::UnknownProvider(provider_name.clone()))?;
    let redirect_url = match text(&input, "redirectURL") {
        url if url.is_empty() => text(&input, "redirectUrl"),
        url => url,
    };
    let user = oauth2::exchange(
        &provider,
        &code,
        &text(&input, "codeVerifier"),
        &redirect_url,
    )
    .await?;

    let logged_in = match &who {
        Principal::User {
            collection_id, id, ..
        } if *collection_id == collection.id => Some(id.clone()),
        _ => None,
    };
    let mut target = oauth2::linked_record(
        &state.db,
        collection.id.clone(),
        provider.spec.name,
        user.id.clone(),
    )
    .await?;
    if target.is_none() {
        target = logged_in.clone();
    }
    if target.is_none() && !user.email.is_empty() {
        target = oauth2::record_by_email(&state.db, &collection, user.email.clone()).await?;
    }
    let (record_id, is_new) = match target {
        Some(id) => {
            let is_caller = logged_in.as_deref() == Some(id.as_str());
            link_existing(
                &state,
                &collection,
                provider.spec.name,
                &user,
                &id,
                is_caller,
            )
            .await?;
            (id, false)
        }
        None => {
            let caller = records::Caller {
                context: "oauth2",
                ..caller(&who, &req)
            };
            let body = signup_body(&collection, create_data, &user);
            let id = sign_up(&state, &collection, provider.spec.name, &user, caller, body).await?;
            (id, true)
        }
    };
    let factor = FirstFactor {
        record_id,
        token: None,
        method: "oauth2",
        mfa_id: mfa_id_of(&req, &input),
        meta: Some(user.meta(is_new)),
    };
    finish_login(&req, &state, collection, factor).await
}

async fn link_existing(
    state: &AppState,
    collection: &Arc<CompiledCollection>,
    provider: &'static str,
    user: &OAuth2User,
    record_id: &str,
    is_caller: bool,
) -> Result<(), ApiError> {
    let new_password =
        oauth2::replacement_password(&state.db, collection, record_id, is_caller).await?;
    let (target, user, id) = (collection.clone(), user.clone(), record_id.to_owned());
    // The link may fill in or verify the email, or reset the password:
    // subscribers hear of it from the write.
    records::system::system_write(&state.db, &state.realtime, move |tx, changes| {
        oauth2::link_existing(
            tx,
            &target,
            &id,
            provider,
            &user,
            is_caller,
            new_password.as_deref(),
            changes,
        )
    })
    .await?;
    Ok(())
}

/// The create body of a new account: `createData`, then the provider's
/// verified email where `createData` has no (non-empty) email, the mapped
/// fields where it left them out, and a random password when none was
/// chosen. A client-chosen email stays unverified unless it is exactly the
/// provider's ([`oauth2::link_new`]).
fn signup_body(
    collection: &CompiledCollection,
    mut body: Map<String, Value>,
    user: &OAuth2User,
) -> Map<String, Value> {
    let chose_email = body
        .get("email")
        .and_then(Value::as_str)
        .is_some_and(|e| !e.is_empty());
    if !user.email.is_empty() && !chose_email {
        body.insert("email".into(), json!(user.email));
    }
    for (source, field) in &collection.auth.oauth2.mapped_fields {
        let value = match source.as_str() {
            "id" => &user.id,
            "name" => &user.name,
            "username" => &user.username,
            // Avatars are files: downloading them waits for file uploads.
            _ => continue,
        };
        let is_text = collection
            .field(field)
            .is_some_and(|f| matches!(f.kind, FieldKind::Text { .. }));
        if is_text && !value.is_empty() && !body.contains_key(field) {
            body.insert(field.clone(), json!(value));
        }
    }
    if !body.contains_key("password") {
        let password = autogen::random_string(autogen::ALPHANUMERIC, 30);
        body.insert("passwordConfirm".into(), json!(password));
        body.insert("password".into(), json!(password));
    }
    body
}

async fn sign_up(
    state: &AppState,
    collection: &Arc<CompiledCollection>,
    provider: &'static str,
    user: &OAuth2User,
    caller: records::Caller,
    body: Map<String, Value>,
) -> Result<String, ApiError> {
    let snapshot = state.registry.snapshot();
    let prepared =
        records::prepare_create(&snapshot, collection.clone(), caller, body, &[]).await?;
    let (collection, user) = (collection.clone(), user.clone());
    // One transaction: the create, the provider's verification of its email
    // (folded into the create event) and the link.
    let id = records::system::system_write(&state.db, &state.realtime, move |tx, changes| {
        prepared.apply(tx, &snapshot, changes)?;
        oauth2::link_new(tx, &collection, prepared.id(), provider, &user, changes)?;
        Ok(prepared.id().to_owned())
    })
    .await?;
    Ok(id)
}
