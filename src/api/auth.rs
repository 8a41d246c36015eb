//! Auth endpoints of auth collections: password login and token refresh.

use super::error::ApiError;
use super::extract::{AppState, Superuser, read_object};
use super::respond;
use crate::accounts;
use crate::auth::{self, Principal};
use crate::mail::{Template, TemplateVars};
use crate::records;
use crate::schema::CollectionType;
use crate::validation::{FieldError, ValidationErrors};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn auth_collection(
    state: &AppState,
    id_or_name: &str,
) -> Result<Arc<crate::schema::CompiledCollection>, ApiError> {
    state
        .registry
        .get(id_or_name)
        .filter(|c| c.kind == CollectionType::Auth)
        .ok_or_else(|| ApiError::not_found("Missing or invalid auth collection context."))
}

/// The auth response: `{token, record}` with the record as its owner sees
/// it, plus `meta` (OAuth2 only).
async fn auth_response(
    req: &HttpRequest,
    state: &AppState,
    collection: Arc<crate::schema::CompiledCollection>,
    record_id: String,
    token: String,
    meta: Option<Value>,
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
    let record = super::records::expanded_one(req, state, collection, owner, record).await?;
    let mut body = json!({"token": token, "record": record});
    if let Some(meta) = meta {
        body["meta"] = meta;
    }
    respond::json(req, body, false)
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
        && !super::client_ip::superuser_allowed(&settings, super::client_ip::of(req, state))
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
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    let (identity, password) = (text(&input, "identity"), text(&input, "password"));
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
    let identity_field = Some(text(&input, "identityField")).filter(|s| !s.is_empty());
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
        mfa_id: mfa_id_of(&req, &input),
        meta: None,
    };
    finish_login(&req, &state, collection, factor).await
}

/// `mfaId` from the body or the query string.
pub(super) fn mfa_id_of(
    req: &HttpRequest,
    body: &serde_json::Map<String, Value>,
) -> Option<String> {
    body.get("mfaId")
        .and_then(Value::as_str)
        .map(str::to_owned)
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
    } = factor;
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
    auth_response(req, state, collection, record_id, token, meta).await
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
    let noted =
        auth::origins::note_login(&state.db, collection.clone(), record_id.clone(), origin).await;
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
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    let email = text(&input, "email");
    if email.trim().is_empty() {
        let mut errors = ValidationErrors::new();
        errors.add("email", FieldError::required());
        return Err(ApiError::validation(
            "An error occurred while validating the submitted data.",
            &errors,
        ));
    }
    let issued = accounts::otp::request_otp(&state.db, collection.clone(), &email).await?;
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
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    let (otp_id, code) = (text(&input, "otpId"), text(&input, "password"));
    let mut errors = ValidationErrors::new();
    if otp_id.is_empty() {
        errors.add("otpId", FieldError::required());
    }
    if code.is_empty() {
        errors.add("password", FieldError::required());
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(
            "An error occurred while validating the submitted data.",
            &errors,
        ));
    }
    let record_id = accounts::otp::consume_otp(
        &state.db,
        &state.realtime,
        &state.login_throttle,
        collection.clone(),
        &otp_id,
        &code,
    )
    .await?;
    let factor = FirstFactor {
        record_id,
        token: None,
        method: "otp",
        mfa_id: mfa_id_of(&req, &input),
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
    let collection = auth_collection(&state, &path)?;
    let id = record_of(&who, &collection)?;
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
    auth_response(&req, &state, collection, id, token, None).await
}

/// The id of the authenticated record, which must belong to `collection`
/// (401 without a valid token, 403 for a record of another collection).
fn record_of(
    who: &Principal,
    collection: &crate::schema::CompiledCollection,
) -> Result<String, ApiError> {
    let (collection_id, id) = match who {
        Principal::Anonymous => {
            return Err(ApiError::unauthorized(
                "The request requires valid record authorization token.",
            ));
        }
        Principal::User {
            collection_id, id, ..
        } => (collection_id.as_str(), id),
        Principal::Superuser { id } => (crate::schema::SUPERUSERS_ID, id),
    };
    if collection_id != collection.id {
        return Err(ApiError::forbidden(format!(
            "The request requires auth record from {} collection.",
            collection.name
        )));
    }
    Ok(id.clone())
}

/// Reads a string field of a JSON body ("" when absent or not a string).
pub(super) fn text(body: &serde_json::Map<String, Value>, key: &str) -> String {
    body.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
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
    let vars = TemplateVars {
        token: outgoing.token,
        record_email: outgoing.to.clone(),
        record_id: outgoing.record_id,
        ..TemplateVars::default()
    };
    deliver(state, collection, template, &outgoing.to, vars);
}

pub async fn request_verification(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    if collection.is_superusers() {
        return Err(ApiError::bad_request(
            "All superusers are verified by default.",
        ));
    }
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    if let Some(outgoing) = accounts::verification::request_verification(
        &state.db,
        collection.clone(),
        &text(&input, "email"),
    )
    .await?
    {
        deliver_token(&state, &collection, Template::Verification, outgoing);
    }
    Ok(respond::no_content())
}

pub async fn confirm_verification(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    accounts::verification::confirm_verification(
        &state.db,
        &state.realtime,
        collection.clone(),
        &text(&input, "token"),
    )
    .await?;
    Ok(respond::no_content())
}

pub async fn request_password_reset(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    if let Some(outgoing) = accounts::password_reset::request_password_reset(
        &state.db,
        collection.clone(),
        &text(&input, "email"),
    )
    .await?
    {
        deliver_token(&state, &collection, Template::PasswordReset, outgoing);
    }
    Ok(respond::no_content())
}

pub async fn confirm_password_reset(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    accounts::password_reset::confirm_password_reset(
        &state.db,
        &state.realtime,
        collection.clone(),
        &text(&input, "token"),
        &text(&input, "password"),
        &text(&input, "passwordConfirm"),
    )
    .await?;
    Ok(respond::no_content())
}

pub async fn request_email_change(
    req: HttpRequest,
    who: Principal,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    let id = record_of(&who, &collection)?;
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    let outgoing = accounts::email_change::request_email_change(
        &state.db,
        collection.clone(),
        id,
        &text(&input, "newEmail"),
    )
    .await?;
    deliver_token(&state, &collection, Template::EmailChange, outgoing);
    Ok(respond::no_content())
}

pub async fn confirm_email_change(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = auth_collection(&state, &path)?;
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    accounts::email_change::confirm_email_change(
        &state.db,
        &state.realtime,
        collection.clone(),
        &text(&input, "token"),
        &text(&input, "password"),
    )
    .await?;
    Ok(respond::no_content())
}

/// Longest impersonation token a superuser may ask for (ten years); keeps
/// `now + duration` far from overflowing.
const MAX_IMPERSONATE_SECS: i64 = 10 * 365 * 24 * 60 * 60;

/// The requested token lifetime: absent, null or 0 means the collection's
/// default (`None`); anything but a whole number of seconds in
/// `0..=MAX_IMPERSONATE_SECS` is a 400, as PocketBase refuses negatives.
fn impersonate_duration(raw: Option<&Value>) -> Result<Option<i64>, ApiError> {
    let invalid = |code: &'static str, message: String| {
        let mut errors = ValidationErrors::new();
        errors.add("duration", FieldError::new(code, message));
        ApiError::validation(
            "An error occurred while validating the submitted data.",
            &errors,
        )
    };
    let secs = match raw {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64(),
        Some(_) => None,
    };
    match secs {
        Some(0) => Ok(None),
        Some(s) if s < 0 => Err(invalid(
            "validation_min_greater_equal_than_required",
            "Must be no less than 0.".into(),
        )),
        Some(s) if s <= MAX_IMPERSONATE_SECS => Ok(Some(s)),
        Some(_) => Err(invalid(
            "validation_max_less_equal_than_required",
            format!("Must be no greater than {MAX_IMPERSONATE_SECS}."),
        )),
        // Fractions, text, or past i64.
        None => Err(invalid(
            "validation_invalid_number",
            "Must be a whole number of seconds.".into(),
        )),
    }
}

pub async fn impersonate(
    req: HttpRequest,
    _: Superuser,
    path: web::Path<(String, String)>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let collection = auth_collection(&state, &c)?;
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    let duration = impersonate_duration(input.get("duration"))?;
    let token =
        accounts::impersonate::impersonate(&state.db, collection.clone(), id.clone(), duration)
            .await?;
    auth_response(&req, &state, collection, id, token, None).await
}
