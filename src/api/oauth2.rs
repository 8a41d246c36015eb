//! `auth-with-oauth2`: exchange the provider's code, then log in the linked
//! account, link an existing one (the caller's own, or the one with the
//! provider-verified email), or sign up a new record from `createData` and
//! the mapped provider fields — the new record and its link in one
//! transaction, under the collection's create rule with
//! `@request.context = "oauth2"`.

use super::auth::{FirstFactor, auth_collection, finish_login, mfa_id_of, require_or};
use super::error::ApiError;
use super::extract::{AppState, JsonBody, caller, null_as_empty};
use crate::accounts;
use crate::auth::oauth2;
use crate::auth::{AuthError, Principal};
use crate::records;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value};

/// `{provider, code, codeVerifier, redirectURL, createData?, mfaId?}`
/// (`redirectUrl` is the SDKs' older spelling).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Login {
    #[serde(default, deserialize_with = "null_as_empty")]
    provider: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    code: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    code_verifier: String,
    #[serde(default, rename = "redirectURL", deserialize_with = "null_as_empty")]
    redirect_url: String,
    #[serde(default, rename = "redirectUrl", deserialize_with = "null_as_empty")]
    redirect_url_legacy: String,
    #[serde(default)]
    create_data: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    mfa_id: String,
}

pub async fn with_oauth2(
    req: HttpRequest,
    who: Principal,
    path: web::Path<String>,
    body: JsonBody<OAuth2Login>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    if !collection.auth.oauth2.enabled {
        return Err(AuthError::OAuth2Disabled.into());
    }
    let OAuth2Login {
        provider: provider_name,
        code,
        code_verifier,
        redirect_url,
        redirect_url_legacy,
        create_data,
        mfa_id,
    } = body.bind()?;
    require_or(
        &[("provider", &provider_name), ("code", &code)],
        "An error occurred while loading the submitted data.",
    )?;
    let create_data = create_data.unwrap_or_default();
    let provider = oauth2::provider(&collection, &provider_name)
        .ok_or_else(|| AuthError::UnknownProvider(provider_name.clone()))?;
    let redirect_url = if redirect_url.is_empty() {
        redirect_url_legacy
    } else {
        redirect_url
    };
    let user = oauth2::exchange(&provider, &code, &code_verifier, &redirect_url).await?;

    let logged_in = match &who {
        Principal::User {
            collection_id, id, ..
        } if *collection_id == collection.id => Some(id.clone()),
        _ => None,
    };
    let mut target = accounts::oauth2::linked_record(
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
        target =
            accounts::oauth2::record_by_email(&state.db, &collection, user.email.clone()).await?;
    }
    let (record_id, is_new) = match target {
        Some(id) => {
            let is_caller = logged_in.as_deref() == Some(id.as_str());
            accounts::oauth2::link_existing(
                state.backend(),
                state.registry.snapshot(),
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
            let avatar = accounts::oauth2::avatar_upload(
                &collection,
                &create_data,
                &user,
                state.store.staging_dir(),
                state.config.oauth2_avatar_private_hosts,
            )
            .await;
            let body = accounts::oauth2::signup_body(&collection, create_data, &user);
            let signup = super::hooks::SignUp {
                collection: &collection,
                provider: provider.spec.name,
                user: &user,
                caller,
            };
            let id = if super::hooks::applies(&state, "onRecordCreateRequest", &collection) {
                super::hooks::oauth2_sign_up(&req, &who, &state, signup, body, avatar).await?
            } else {
                accounts::oauth2::sign_up(
                    state.backend(),
                    state.registry.snapshot(),
                    &collection,
                    provider.spec.name,
                    &user,
                    signup.caller,
                    body,
                    avatar,
                )
                .await?
            };
            (id, true)
        }
    };
    let factor = FirstFactor {
        record_id,
        token: None,
        method: "oauth2",
        mfa_id: mfa_id_of(&req, mfa_id),
        hook_fields: Some(
            serde_json::json!({"providerName": provider.spec.name, "isNewRecord": is_new}),
        ),
        meta: Some(user.meta(is_new)),
    };
    finish_login(&req, &state, collection, factor).await
}

/// `POST /api/settings/apple/generate-client-secret` (superusers): signs an
/// Apple client secret from `{clientId, teamId, keyId, privateKey, duration}`.
pub async fn apple_client_secret(
    _: super::extract::Superuser,
    body: JsonBody<crate::auth::apple::AppleSecretForm>,
) -> Result<HttpResponse, ApiError> {
    use crate::auth::apple::{self, AppleSecretError};
    let form = body.bind()?;
    match apple::client_secret(&form) {
        Ok(secret) => Ok(HttpResponse::Ok().json(serde_json::json!({"secret": secret}))),
        Err(AppleSecretError::Invalid(errors)) => {
            Err(ApiError::validation("Invalid client secret data.", &errors))
        }
        Err(AppleSecretError::Key) => Err(ApiError::bad_request(
            "Failed to generate client secret. The private key is not a valid PKCS#8 EC key.",
        )),
    }
}
