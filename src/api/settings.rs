//! `GET`/`PATCH /api/settings` (superusers).

use super::error::ApiError;
use super::extract::{AppState, JsonBody, Superuser, null_as_empty};
use super::respond;
use crate::settings;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value};

pub async fn get(
    req: HttpRequest,
    _: Superuser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    respond::json(&req, state.settings.get().to_public_json(), false)
}

pub async fn patch(
    req: HttpRequest,
    _: Superuser,
    body: JsonBody<Map<String, Value>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = body.bind()?;
    let saved = settings::patch(&state.db, state.settings.seal(), Value::Object(input)).await?;
    state.settings.set(saved.clone());
    super::backups::schedule(&state);
    respond::json(&req, saved.to_public_json(), false)
}

/// `{email, template, collection?}` of the test email.
#[derive(Debug, Deserialize)]
pub struct TestEmailBody {
    #[serde(default, deserialize_with = "null_as_empty")]
    email: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    template: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    collection: String,
}

/// `POST /api/settings/test/email`: renders `template` of `collection`
/// (default `_superusers`) with sample values and sends it to `email`
/// through the configured SMTP server.
pub async fn test_email(
    _: Superuser,
    body: JsonBody<TestEmailBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    use crate::mail::{Template, TemplateVars};
    use crate::validation::{FieldError, ValidationErrors};
    let body = body.bind()?;
    let (email, template_name) = (body.email.trim().to_owned(), body.template.trim());
    let mut errors = ValidationErrors::new();
    if email.is_empty() {
        errors.add("email", FieldError::required());
    } else if !email.contains('@') || email.chars().any(char::is_whitespace) {
        errors.add(
            "email",
            FieldError::new("validation_is_email", "Must be a valid email address."),
        );
    }
    let template = match template_name {
        "verification" => Some(Template::Verification),
        "password-reset" => Some(Template::PasswordReset),
        "email-change" => Some(Template::EmailChange),
        "otp" => Some(Template::Otp),
        "login-alert" => Some(Template::LoginAlert),
        "" => {
            errors.add("template", FieldError::required());
            None
        }
        _ => {
            errors.add(
                "template",
                FieldError::new("validation_in_invalid", "Must be a valid value."),
            );
            None
        }
    };
    let collection_name = match body.collection.trim() {
        "" => crate::schema::SUPERUSERS_NAME,
        c => c,
    };
    let collection = state
        .registry
        .get(collection_name)
        .filter(|c| c.kind == crate::schema::CollectionType::Auth);
    if collection.is_none() {
        errors.add(
            "collection",
            FieldError::new(
                "validation_invalid_collection",
                "Missing or invalid auth collection.",
            ),
        );
    }
    let (Some(template), Some(collection), true) = (template, collection, errors.is_empty()) else {
        return Err(ApiError::validation(
            "Failed to send the test email.",
            &errors,
        ));
    };
    let vars = TemplateVars {
        token: "TEST_TOKEN".into(),
        otp: "123456".into(),
        otp_id: "TEST_OTP_ID".into(),
        alert_info: "a test of the login alert email".into(),
        record_email: email.clone(),
        ..TemplateVars::default()
    };
    super::mailer::send(&state, &collection, template, &email, vars)
        .await
        .map_err(|e| ApiError::bad_request(format!("Failed to send the test email: {e}")))?;
    Ok(super::respond::no_content())
}

/// `POST /api/settings/test/s3`: there is no S3 backend yet, so the test
/// fails honestly (PocketBase's error shape).
pub async fn test_s3(_: Superuser) -> Result<HttpResponse, ApiError> {
    Err(ApiError::bad_request(
        "Failed to test the S3 filesystem. Raw error: S3 storage is not supported yet; files and backups are stored on the local disk.",
    ))
}
