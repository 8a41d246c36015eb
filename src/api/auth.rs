//! Auth endpoints of auth collections: password login and token refresh.

use super::error::ApiError;
use super::extract::{AppState, JsonBody, Superuser, null_as_empty};
use super::respond;
use crate::accounts;
use crate::auth::{self, Principal};
use crate::mail::{Template, TemplateVars};
use crate::records;
use crate::schema::CollectionType;
use crate::validation::{FieldError, ValidationErrors};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// `{identity, password, identityField?, mfaId?}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordLogin {
    #[serde(default, deserialize_with = "null_as_empty")]
    identity: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    password: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    identity_field: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    mfa_id: String,
}

/// `{otpId, password, mfaId?}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtpLogin {
    #[serde(default, deserialize_with = "null_as_empty")]
    otp_id: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    password: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    mfa_id: String,
}

/// `{email}`: the requests that mail a code or a link.
#[derive(Debug, Deserialize)]
pub struct EmailBody {
    #[serde(default, deserialize_with = "null_as_empty")]
    email: String,
}

/// `{token}`: the verification confirm.
#[derive(Debug, Deserialize)]
pub struct TokenBody {
    #[serde(default, deserialize_with = "null_as_empty")]
    token: String,
}

/// `{token, password, passwordConfirm}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordResetConfirm {
    #[serde(default, deserialize_with = "null_as_empty")]
    token: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    password: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    password_confirm: String,
}

/// `{newEmail}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailChangeRequest {
    #[serde(default, deserialize_with = "null_as_empty")]
    new_email: String,
}

/// `{token, password}`.
#[derive(Debug, Deserialize)]
pub struct EmailChangeConfirm {
    #[serde(default, deserialize_with = "null_as_empty")]
    token: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    password: String,
}

/// `{duration?}` in seconds; absent, null or 0 is the collection's default.
#[derive(Debug, Deserialize)]
pub struct ImpersonateBody {
    #[serde(default)]
    duration: Option<i64>,
}

/// PocketBase's 404 for a collection that is not an auth collection.
const NOT_AUTH_COLLECTION: &str = "Missing or invalid auth collection context.";

/// The auth collection of an auth route. An unknown name is answered as
/// PocketBase's per-collection rate limiter answers it (it looks the
/// collection up first); a collection of another type by the route itself.
pub(super) fn auth_collection(
    state: &AppState,
    id_or_name: &str,
) -> Result<Arc<crate::schema::CompiledCollection>, ApiError> {
    known_collection(state, id_or_name).and_then(of_auth_type)
}

/// Any collection named by the route (PocketBase's rate limiter's 404).
fn known_collection(
    state: &AppState,
    id_or_name: &str,
) -> Result<Arc<crate::schema::CompiledCollection>, ApiError> {
    state
        .registry
        .get(id_or_name)
        .ok_or_else(|| ApiError::not_found("Missing or invalid collection context."))
}

/// The route's own 404 for a collection that is not an auth collection.
fn of_auth_type(
    collection: Arc<crate::schema::CompiledCollection>,
) -> Result<Arc<crate::schema::CompiledCollection>, ApiError> {
    if collection.kind == CollectionType::Auth {
        Ok(collection)
    } else {
        Err(ApiError::not_found(NOT_AUTH_COLLECTION))
    }
}

/// Every blank field of `fields` (name, value), reported at once as
/// PocketBase's form validation does; `Ok` when none is blank.
fn require(fields: &[(&str, &str)]) -> Result<(), ApiError> {
    require_or(
        fields,
        "An error occurred while validating the submitted data.",
    )
}

/// [`require`] answered with `message` (PocketBase words the OAuth2 one as
/// a loading failure).
pub(super) fn require_or(fields: &[(&str, &str)], message: &str) -> Result<(), ApiError> {
    let mut errors = ValidationErrors::new();
    for (name, value) in fields {
        if value.is_empty() {
            errors.add(*name, FieldError::required());
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError::validation(message, &errors))
}

/// What PocketBase answers before reading the body of a route the
/// superusers collection does not take.
fn refuse_superusers(
    collection: &crate::schema::CompiledCollection,
    message: &'static str,
) -> Result<(), ApiError> {
    if collection.is_superusers() {
        return Err(ApiError::bad_request(message));
    }
    Ok(())
}

const SUPERUSERS_VERIFIED: &str = "All superusers are verified by default.";
const SUPERUSERS_CHANGE_EMAIL: &str = "All superusers can change their emails directly.";

/// The auth response: `{token, record}` with the record as its owner sees
/// it, plus `meta` (OAuth2 only).
async fn auth_response(
    req: &HttpRequest,
    state: &AppState,
    collection: Arc<crate::schema::CompiledCollection>,
    record_id: String,
    token: String,
    meta: Option<Value>,
    auth_method: &'static str,
) -> Result<HttpResponse, ApiError> {
    refuse_unlisted_superuser(req, state, &collection)?;
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
    let record =
        super::records::expanded_one(req, state, collection.clone(), owner, record).await?;
    // PocketBase enriches the record with `e.auth` = the record logging in.
    let who = logged_in(&collection, &record);
    let enrich = super::hooks::Enrich::prepare(state, req, &who, &collection);
    let record = super::hooks::enrich_one(enrich, record).await?;
    let mut body = json!({"token": token, "record": record});
    if let Some(meta) = meta {
        body["meta"] = meta;
    }
    if let Some(answered) =
        super::hooks::auth_request(req, state, &collection, &body, auth_method).await?
    {
        return Ok(answered);
    }
    respond::json(req, body, false)
}

/// The record of an auth response as the principal it becomes.
fn logged_in(collection: &crate::schema::CompiledCollection, record: &Value) -> Principal {
    let id = record["id"].as_str().unwrap_or_default().to_owned();
    if collection.is_superusers() {
        return Principal::Superuser { id };
    }
    let mut fields = record.as_object().cloned().unwrap_or_default();
    for secret in ["password", "tokenKey", "expand"] {
        fields.remove(secret);
    }
    Principal::User {
        collection_id: collection.id.clone(),
        collection_name: collection.name.to_string(),
        id,
        fields,
    }
}

/// A superuser token is only issued to an address in `superuserIPs` (when
/// the list is not empty), as PocketBase's auth response checks.
fn refuse_unlisted_superuser(
    req: &HttpRequest,
    state: &AppState,
    collection: &crate::schema::CompiledCollection,
) -> Result<(), ApiError> {
    let settings = state.settings.get();
    if collection.is_superusers()
        && !settings.allows_superuser_from(super::client_ip::of(req, state))
    {
        return Err(ApiError::forbidden(
            "You are not allowed to perform this request.",
        ));
    }
    Ok(())
}

pub async fn with_password(
    req: HttpRequest,
    path: web::Path<String>,
    body: JsonBody<PasswordLogin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    let PasswordLogin {
        identity,
        password,
        identity_field,
        mfa_id,
    } = body.bind()?;
    require(&[("identity", &identity), ("password", &password)])?;
    let identity_field = Some(identity_field).filter(|s| !s.is_empty());
    let hook_fields = if super::hooks::wants_auth(&state, &collection, "password") {
        json!({"identity": identity, "password": password})
    } else {
        Value::Null
    };
    // Counted before the password is checked, so parallel guesses cannot
    // all slip past the limit (see `auth::throttle`).
    let attempt = match super::client_ip::of(&req, &state) {
        Some(ip) => Some(
            state
                .login_throttle
                .begin_password(ip, &collection.id, &identity)
                .ok_or_else(ApiError::too_many_requests)?,
        ),
        None => None,
    };
    let result = auth::login_with_password(
        &state.db,
        collection.clone(),
        identity,
        password,
        identity_field,
    )
    .await;
    let outcome = match (result, attempt) {
        (Err(auth::AuthError::InvalidCredentials), Some(attempt)) => {
            attempt.failed();
            return Err(auth::AuthError::InvalidCredentials.into());
        }
        (Ok(outcome), Some(attempt)) => {
            attempt.succeeded();
            outcome
        }
        // Anything else is no verdict on the password: the attempt is given back.
        (result, _) => result?,
    };
    let factor = FirstFactor {
        record_id: outcome.record_id,
        token: Some(outcome.token),
        method: "password",
        mfa_id: mfa_id_of(&req, mfa_id),
        meta: None,
        hook_fields: Some(hook_fields),
    };
    finish_login(&req, &state, collection, factor).await
}

/// `mfaId` from the body (`from_body`), else from the query string.
pub(super) fn mfa_id_of(req: &HttpRequest, from_body: String) -> Option<String> {
    Some(from_body)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            super::extract::query_map(req)
                .ok()
                .and_then(|q| q.get("mfaId").cloned())
        })
        .filter(|s| !s.is_empty())
}

/// How a login was proven, and what the MFA step and the answer need.
pub(super) struct FirstFactor {
    pub record_id: String,
    /// The token already issued (password login), or `None` to issue one.
    pub token: Option<String>,
    /// "password", "otp" or "oauth2": MFA wants two different ones.
    pub method: &'static str,
    pub mfa_id: Option<String>,
    /// Extra `meta` of the answer (OAuth2).
    pub meta: Option<Value>,
    /// What the method's hook (`onRecordAuthWith…Request`) sees besides
    /// `e.record`: `identity`/`password`, `otpId`, `providerName` …;
    /// `None` when the method ran its hook itself (OTP).
    pub hook_fields: Option<Value>,
}

/// Ends a successful first factor: runs the MFA step (401 `{"mfaId"}` when a
/// second factor is due), notes the login origin (alerting on a new one),
/// then answers with `{token, record}`.
pub(super) async fn finish_login(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    collection: Arc<crate::schema::CompiledCollection>,
    factor: FirstFactor,
) -> Result<HttpResponse, ApiError> {
    // Before MFA and the login alert: nothing happens for a refused address.
    refuse_unlisted_superuser(req, state, &collection)?;
    let FirstFactor {
        record_id,
        token,
        method,
        mfa_id,
        meta,
        hook_fields,
    } = factor;
    if let Some(fields) = hook_fields {
        super::hooks::auth_method_gate(req, state, &collection, &record_id, method, fields).await?;
    }
    let owner = record_as_caller(req, state, &collection, &record_id, method).await?;
    let snapshot = state.registry.snapshot();
    accounts::login::check_auth_rule(
        &state.db,
        snapshot.clone(),
        &collection,
        &record_id,
        owner.clone(),
    )
    .await?;
    let outcome = accounts::login::second_factor(
        &state.db,
        Some(state.backend()),
        snapshot,
        &collection,
        owner,
        &record_id,
        method,
        mfa_id,
    )
    .await?;
    if let accounts::mfa::MfaOutcome::Challenge(id) = outcome {
        return Ok(HttpResponse::Unauthorized().json(json!({"mfaId": id})));
    }
    let token = match token {
        Some(token) => token,
        None => auth::refresh_token(&state.db, collection.clone(), record_id.clone()).await?,
    };
    note_login(req, state, collection.clone(), record_id.clone()).await;
    auth_response(req, state, collection, record_id, token, meta, method).await
}

/// The request as record `record_id` would make it once logged in: that
/// record is `@request.auth` (with its fields) and `context` is
/// `@request.context` ("password", "otp", "oauth2", or "default" on refresh).
async fn record_as_caller(
    req: &HttpRequest,
    state: &AppState,
    collection: &Arc<crate::schema::CompiledCollection>,
    record_id: &str,
    context: &'static str,
) -> Result<records::Caller, ApiError> {
    let who = auth::principal_for(&state.db, collection, record_id.to_owned())
        .await
        .ok_or(auth::AuthError::InvalidCredentials)?;
    Ok(records::Caller {
        context,
        ..super::extract::caller(&who, req)
    })
}

/// Records where a login came from and, for a new origin of an account that
/// logged in before, sends the login alert in the background.
async fn note_login(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    collection: Arc<crate::schema::CompiledCollection>,
    record_id: String,
) {
    let origin = auth::origins::Origin {
        ip: super::client_ip::of(req, state)
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(512)
            .collect(),
    };
    let alert_info = origin.describe();
    let origins = state
        .registry
        .get(accounts::origins_hooked::ORIGINS)
        // PocketBase keeps origins only for alerts, so only then do its hooks run.
        .filter(|o| {
            auth::origins::alerts_enabled(&collection)
                && accounts::origins_hooked::wanted(&state.backend(), o)
        });
    let noted = match origins {
        Some(origins) => {
            let backend = state.backend();
            accounts::origins_hooked::note_login(backend, origins, &collection, &record_id, &origin)
                .await
        }
        None => {
            auth::origins::note_login(&state.db, collection.clone(), record_id.clone(), origin)
                .await
        }
    };
    let to = match noted {
        Ok(Some(to)) if auth::origins::alerts_enabled(&collection) => to,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(error = %e, "could not record the login origin");
            return;
        }
    };
    let vars = TemplateVars {
        alert_info,
        record_email: to.clone(),
        record_id,
        ..TemplateVars::default()
    };
    deliver(state, &collection, Template::LoginAlert, &to, vars);
}

pub async fn request_otp(
    req: HttpRequest,
    path: web::Path<String>,
    body: JsonBody<EmailBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    accounts::otp::require_enabled(&collection)?;
    let email = body.bind()?.email;
    require(&[("email", email.trim())])?;
    let hooked = state.registry.get("_otps").map(|o| (state.backend(), o));
    let issued = accounts::otp::request_otp(&state.db, hooked, collection.clone(), &email).await?;
    if let Some((to, code, record_id)) = issued.delivery {
        let vars = TemplateVars {
            otp: code,
            otp_id: issued.otp_id.clone(),
            record_email: to.clone(),
            record_id,
            ..TemplateVars::default()
        };
        deliver(&state, &collection, Template::Otp, &to, vars);
    }
    respond::json(&req, json!({"otpId": issued.otp_id}), false)
}

pub async fn with_otp(
    req: HttpRequest,
    path: web::Path<String>,
    body: JsonBody<OtpLogin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    accounts::otp::require_enabled(&collection)?;
    let OtpLogin {
        otp_id,
        password: code,
        mfa_id,
    } = body.bind()?;
    require(&[("otpId", &otp_id), ("password", &code)])?;
    let checked = accounts::otp::check_otp(
        &state.db,
        &state.login_throttle,
        collection.clone(),
        &otp_id,
        &code,
    )
    .await?;
    // As PocketBase, onRecordAuthWithOTPRequest runs once the code matched
    // and before it is used: a handler that throws leaves code and record be.
    let hook_fields = json!({"otpId": otp_id});
    super::hooks::auth_method_gate(
        &req,
        &state,
        &collection,
        checked.record_id(),
        "otp",
        hook_fields,
    )
    .await?;
    let otps = state.registry.get("_otps");
    let record_id = accounts::otp::use_otp(state.backend(), otps, checked).await?;
    let factor = FirstFactor {
        record_id,
        token: None,
        method: "otp",
        mfa_id: mfa_id_of(&req, mfa_id),
        hook_fields: None,
        meta: None,
    };
    finish_login(&req, &state, collection, factor).await
}

pub async fn refresh(
    req: HttpRequest,
    who: Principal,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let known = known_collection(&state, &path)?;
    let id = record_of(&who, &path)?;
    let collection = of_auth_type(known)?;
    // A non-refreshable (impersonation) token is answered with itself.
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            h.trim()
                .trim_start_matches("Bearer ")
                .trim_start_matches("bearer ")
                .to_owned()
        })
        .unwrap_or_default();
    let owner = record_as_caller(&req, &state, &collection, &id, "default").await?;
    accounts::login::check_auth_rule(
        &state.db,
        state.registry.snapshot(),
        &collection,
        &id,
        owner,
    )
    .await?;
    let token = if auth::token::refreshable(&presented) == Some(false) {
        presented
    } else {
        auth::refresh_token(&state.db, collection.clone(), id.clone()).await?
    };
    auth_response(&req, &state, collection, id, token, None, "").await
}

/// The id of the authenticated record, which must belong to the collection
/// the route names (401 without a valid token, 403 for a record of another
/// collection). Checked before the collection is looked up, as PocketBase's
/// middleware does.
fn record_of(who: &Principal, route_collection: &str) -> Result<String, ApiError> {
    let (collection_id, collection_name, id) = match who {
        Principal::Anonymous => {
            return Err(ApiError::unauthorized(
                "The request requires valid record authorization token.",
            ));
        }
        Principal::User {
            collection_id,
            collection_name,
            id,
            ..
        } => (collection_id.as_str(), collection_name.as_str(), id),
        Principal::Superuser { id } => (
            crate::schema::SUPERUSERS_ID,
            crate::schema::SUPERUSERS_NAME,
            id,
        ),
    };
    if route_collection != collection_id && route_collection != collection_name {
        // PocketBase's message names the caller's own collection.
        return Err(ApiError::forbidden(format!(
            "The request requires auth record from {collection_name} collection."
        )));
    }
    Ok(id.clone())
}

pub async fn methods(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    respond::json(&req, accounts::methods::auth_methods(&collection), false)
}

/// Sends a flow's email in the background: the request answers without
/// waiting for SMTP, so an existing account (mail sent) and an unknown one
/// (nothing sent) take the same time; failures are logged, never reported
/// to the client (that would reveal whether the account exists).
fn deliver(
    state: &web::Data<AppState>,
    collection: &Arc<crate::schema::CompiledCollection>,
    template: Template,
    to: &str,
    vars: TemplateVars,
) {
    let (state, collection, to) = (state.clone(), collection.clone(), to.to_owned());
    actix_web::rt::spawn(async move {
        if let Err(e) = super::mailer::send(&state, &collection, template, &to, vars).await {
            tracing::warn!(error = %e, collection = %collection.name, "could not send account email");
        }
    });
}

/// Sends the token-carrying email of a verification/reset/email-change flow.
fn deliver_token(
    state: &web::Data<AppState>,
    collection: &Arc<crate::schema::CompiledCollection>,
    template: Template,
    outgoing: accounts::Outgoing,
) {
    deliver(
        state,
        collection,
        template,
        &outgoing.to,
        outgoing.template_vars(),
    );
}

pub async fn request_verification(
    path: web::Path<String>,
    body: JsonBody<EmailBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    refuse_superusers(&collection, SUPERUSERS_VERIFIED)?;
    if let Some(outgoing) = accounts::verification::request_verification(
        &state.db,
        collection.clone(),
        &body.bind()?.email,
    )
    .await?
    {
        deliver_token(&state, &collection, Template::Verification, outgoing);
    }
    Ok(respond::no_content())
}

pub async fn confirm_verification(
    path: web::Path<String>,
    body: JsonBody<TokenBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    refuse_superusers(&collection, SUPERUSERS_VERIFIED)?;
    accounts::verification::confirm_verification(
        state.backend(),
        collection.clone(),
        &body.bind()?.token,
    )
    .await?;
    Ok(respond::no_content())
}

pub async fn request_password_reset(
    path: web::Path<String>,
    body: JsonBody<EmailBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    if let Some(outgoing) = accounts::password_reset::request_password_reset(
        &state.db,
        collection.clone(),
        &body.bind()?.email,
    )
    .await?
    {
        deliver_token(&state, &collection, Template::PasswordReset, outgoing);
    }
    Ok(respond::no_content())
}

pub async fn confirm_password_reset(
    path: web::Path<String>,
    body: JsonBody<PasswordResetConfirm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    let body = body.bind()?;
    require(&[
        ("token", &body.token),
        ("password", &body.password),
        ("passwordConfirm", &body.password_confirm),
    ])?;
    accounts::password_reset::confirm_password_reset(
        state.backend(),
        collection.clone(),
        &body.token,
        &body.password,
        &body.password_confirm,
    )
    .await?;
    Ok(respond::no_content())
}

pub async fn request_email_change(
    who: Principal,
    path: web::Path<String>,
    body: JsonBody<EmailChangeRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let known = known_collection(&state, &path)?;
    let id = record_of(&who, &path)?;
    let collection = of_auth_type(known)?;
    refuse_superusers(&collection, SUPERUSERS_CHANGE_EMAIL)?;
    let outgoing = accounts::email_change::request_email_change(
        &state.db,
        collection.clone(),
        id,
        &body.bind()?.new_email,
    )
    .await?;
    deliver_token(&state, &collection, Template::EmailChange, outgoing);
    Ok(respond::no_content())
}

pub async fn confirm_email_change(
    path: web::Path<String>,
    body: JsonBody<EmailChangeConfirm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    refuse_superusers(&collection, SUPERUSERS_CHANGE_EMAIL)?;
    let body = body.bind()?;
    require(&[("token", &body.token), ("password", &body.password)])?;
    accounts::email_change::confirm_email_change(
        state.backend(),
        collection.clone(),
        &body.token,
        &body.password,
    )
    .await?;
    Ok(respond::no_content())
}

/// Longest impersonation token a superuser may ask for (ten years); keeps
/// `now + duration` far from overflowing.
const MAX_IMPERSONATE_SECS: i64 = 10 * 365 * 24 * 60 * 60;

/// The requested token lifetime: absent, null or 0 means the collection's
/// default (`None`); a negative or longer than `MAX_IMPERSONATE_SECS` is a
/// 400, as PocketBase refuses negatives (fractions and text do not bind).
fn impersonate_duration(secs: Option<i64>) -> Result<Option<i64>, ApiError> {
    let invalid = |code: &'static str, message: String| {
        let mut errors = ValidationErrors::new();
        errors.add("duration", FieldError::new(code, message));
        ApiError::validation(
            "An error occurred while validating the submitted data.",
            &errors,
        )
    };
    match secs {
        None | Some(0) => Ok(None),
        Some(s) if s < 0 => Err(invalid(
            "validation_min_greater_equal_than_required",
            "Must be no less than 0.".into(),
        )),
        Some(s) if s <= MAX_IMPERSONATE_SECS => Ok(Some(s)),
        Some(_) => Err(invalid(
            "validation_max_less_equal_than_required",
            format!("Must be no greater than {MAX_IMPERSONATE_SECS}."),
        )),
    }
}

pub async fn impersonate(
    req: HttpRequest,
    _: Superuser,
    path: web::Path<(String, String)>,
    body: JsonBody<ImpersonateBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    // No per-collection rate limiter on this route in PocketBase: an
    // unknown name gets the route's own message.
    let collection =
        auth_collection(&state, &c).map_err(|_| ApiError::not_found(NOT_AUTH_COLLECTION))?;
    let duration = impersonate_duration(body.bind()?.duration)?;
    let token =
        accounts::impersonate::impersonate(&state.db, collection.clone(), id.clone(), duration)
            .await?;
    auth_response(&req, &state, collection, id, token, None, "").await
}
