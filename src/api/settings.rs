//! `GET`/`PATCH /api/settings` (superusers), the test email and the S3
//! test. Saving a changed `s3` section switches the file storage: an
//! enabled bucket is tried (probe object written, read, deleted) before
//! anything is saved, and a bucket that fails the probe refuses the change
//! (400, nothing saved, files keep going where they went). A changed,
//! enabled `backups.s3` bucket is probed the same way before it is saved.

use super::error::ApiError;
use super::extract::{AppState, JsonBody, Superuser, null_as_empty};
use super::respond;
use crate::files;
use crate::settings;
use crate::validation::{FieldError, ValidationErrors};
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
    let input = Value::Object(body.bind()?);
    let before = state.settings.get();
    let next = settings::merged(&before, &input)?;
    let storage = if next.s3 == before.s3 {
        None
    } else {
        Some(try_storage(&state, &next.s3, S3Section::Files).await?)
    };
    // An enabled backups bucket is probed the same way before it is saved,
    // so scheduled backups do not start failing silently.
    if next.backups.s3 != before.backups.s3 {
        try_storage(&state, &next.backups.s3, S3Section::Backups).await?;
    }
    let saved = settings::patch(&state.db, state.settings.seal(), input).await?;
    state.settings.set(saved.clone());
    match storage {
        Some(Some(s3)) => state.storage.use_s3(s3),
        Some(None) => state.storage.use_local(),
        None => {}
    }
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

/// Which S3 settings a bucket comes from: where its field error goes.
#[derive(Debug, Clone, Copy)]
enum S3Section {
    /// `s3`: uploaded files.
    Files,
    /// `backups.s3`: backup archives.
    Backups,
}

/// The storage an `s3` section asks for: `None` for local disk, or a
/// bucket that passed the probe. A bucket that fails is a 400 on
/// `s3.enabled` (or `backups.s3.enabled`).
async fn try_storage(
    state: &AppState,
    s3: &settings::S3,
    section: S3Section,
) -> Result<Option<files::S3Storage>, ApiError> {
    if !s3.enabled {
        return Ok(None);
    }
    let tried = match files::S3Storage::connect(&s3.storage_config(), state.storage.staging()) {
        Ok(store) => store.probe().await.map(|()| store),
        Err(e) => Err(e),
    };
    tried.map(Some).map_err(|e| {
        let mut inner = ValidationErrors::new();
        inner.add(
            "enabled",
            FieldError::new(
                "validation_s3_unreachable",
                format!("The S3 storage could not be used: {e}."),
            ),
        );
        let mut errors = ValidationErrors::new();
        match section {
            S3Section::Files => errors.nest("s3", inner),
            S3Section::Backups => {
                let mut backups = ValidationErrors::new();
                backups.nest("s3", inner);
                errors.nest("backups", backups);
            }
        }
        ApiError::validation("An error occurred while saving the new settings.", &errors)
    })
}

/// At start: files go to the bucket of the saved `s3` settings when they are
/// enabled. Nothing is probed (start does not wait on the network); a
/// configuration the client refuses leaves files on the local disk, logged.
pub fn apply_storage(storage: &files::Switch, s3: &settings::S3) {
    if !s3.enabled {
        return;
    }
    match files::S3Storage::connect(&s3.storage_config(), storage.staging()) {
        Ok(store) => storage.use_s3(store),
        Err(e) => {
            tracing::error!(error = %e, "S3 file storage unusable; files stay on the local disk")
        }
    }
}

/// `{filesystem}` of the S3 test: `storage` or `backups`.
#[derive(Debug, Deserialize)]
pub struct TestS3Body {
    #[serde(default, deserialize_with = "null_as_empty")]
    filesystem: String,
}

/// `POST /api/settings/test/s3`: writes, reads and deletes a probe object in
/// the saved bucket of `filesystem` (PocketBase's messages).
pub async fn test_s3(
    _: Superuser,
    body: JsonBody<TestS3Body>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = body.bind()?;
    let failed = |raw: &str| {
        ApiError::bad_request(format!(
            "Failed to test the S3 filesystem. Raw error: \n{raw}"
        ))
    };
    let config = match body.filesystem.as_str() {
        "storage" => state.settings.get().s3.clone(),
        "backups" => state.settings.get().backups.s3.clone(),
        other => {
            let mut errors = ValidationErrors::new();
            errors.add(
                "filesystem",
                if other.is_empty() {
                    FieldError::required()
                } else {
                    FieldError::new("validation_in_invalid", "Must be a valid value.")
                },
            );
            return Err(ApiError::validation(
                "Failed to test the S3 filesystem.",
                &errors,
            ));
        }
    };
    if !config.enabled {
        return Err(failed("S3 storage filesystem is not enabled"));
    }
    let store = files::S3Storage::connect(&config.storage_config(), state.storage.staging())
        .map_err(|e| failed(&format!("failed to initialize the S3 filesystem: {e}")))?;
    store.probe().await.map_err(|e| failed(&e.to_string()))?;
    Ok(respond::no_content())
}
