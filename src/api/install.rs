//! `POST /api/_install`: creates the first superuser with the one-time token
//! that `serve` prints while none exists (the admin panel's first-run link,
//! `/_/#/pbinstal/TOKEN`). Body: `{token, email, password, passwordConfirm}`;
//! answers 204, after which the panel signs in with the same credentials.
//! Invalid input is reported per field without spending the token.

use super::error::ApiError;
use super::extract::{AppState, JsonBody, null_as_empty};
use crate::auth::{self, MIN_PASSWORD_CHARS};
use crate::validation::{FieldError, ValidationErrors};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

/// Longest accepted email (as elsewhere for superusers).
const MAX_EMAIL_BYTES: usize = 255;
/// Longest accepted password; argon2 work is bounded anyway.
const MAX_PASSWORD_CHARS: usize = 256;

const BAD_TOKEN: &str =
    "The install link is invalid, already used or expired. Restart the server for a new one.";

/// `{token, email, password, passwordConfirm}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallBody {
    #[serde(default, deserialize_with = "null_as_empty")]
    token: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    email: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    password: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    password_confirm: String,
}

pub async fn install(
    body: JsonBody<InstallBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let InstallBody {
        token,
        email,
        password,
        password_confirm,
    } = body.bind()?;
    let email = email.trim().to_owned();
    check_input(&email, &password, &password_confirm)?;
    if token.is_empty() || !state.install_tokens.is_valid(&token) {
        return Err(ApiError::unauthorized(BAD_TOKEN));
    }
    if auth::count_superusers(&state.db).await? > 0 {
        state.install_tokens.revoke();
        return Err(ApiError::forbidden(
            "A superuser already exists. Sign in instead.",
        ));
    }
    // Spend the token before the (slow) password hash so two requests with
    // the same link cannot both create an account.
    if !state.install_tokens.take(&token) {
        return Err(ApiError::unauthorized(BAD_TOKEN));
    }
    if let Err(e) = auth::upsert_superuser(&state.db, &email, &password).await {
        state.install_tokens.restore(&token);
        return Err(e.into());
    }
    tracing::info!("first superuser created through the install link");
    Ok(HttpResponse::NoContent().finish())
}

fn check_input(email: &str, password: &str, confirm: &str) -> Result<(), ApiError> {
    let mut errors = ValidationErrors::new();
    if email.is_empty() {
        errors.add("email", FieldError::required());
    } else if email.len() > MAX_EMAIL_BYTES
        || email.chars().any(char::is_whitespace)
        || !email
            .split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty())
    {
        errors.add(
            "email",
            FieldError::new("validation_is_email", "Must be a valid email address."),
        );
    }
    let chars = password.chars().count();
    if password.is_empty() {
        errors.add("password", FieldError::required());
    } else if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        errors.add(
            "password",
            FieldError::new(
                "validation_length_out_of_range",
                format!(
                    "The length must be between {MIN_PASSWORD_CHARS} and {MAX_PASSWORD_CHARS}."
                ),
            ),
        );
    }
    if confirm != password {
        errors.add(
            "passwordConfirm",
            FieldError::new("validation_values_mismatch", "Values don't match."),
        );
    }
    errors.into_result().map_err(|errors| {
        ApiError::validation(
            "An error occurred while validating the submitted data.",
            &errors,
        )
    })
}
