//! `ApiError`: every failure leaves the server as PocketBase's error envelope
//! `{"data":{…},"message":"…","status":N}`. Domain errors are mapped to a
//! status here, one by one; a 500 carries no internals (they go to the log).

use crate::auth::AuthError;
use crate::db::DbError;
use crate::files::FilesError;
use crate::records::RecordError;
use crate::schema::SchemaError;
use crate::settings::SettingsError;
use crate::validation::ValidationErrors;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};
use std::fmt;

/// Default message of a 400 (and of a 500).
pub const GENERIC_MESSAGE: &str = "Something went wrong while processing your request.";
const NOT_FOUND_MESSAGE: &str = "The requested resource wasn't found.";

/// An error response in the envelope.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    data: Value,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: sentence(&message.into()),
            data: json!({}),
        }
    }

    /// Any status with its message and `data` (hooks' thrown `ApiError`s).
    pub fn from_parts(status: StatusCode, message: impl Into<String>, data: Value) -> Self {
        let mut e = Self::new(status, message);
        e.data = data;
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 400 with per-field `data`.
    pub fn validation(message: impl Into<String>, errors: &ValidationErrors) -> Self {
        let mut e = Self::bad_request(message);
        e.data = errors.to_json();
        e
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn not_found_default() -> Self {
        Self::not_found(NOT_FOUND_MESSAGE)
    }

    pub fn too_many_requests() -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests.")
    }

    /// 429 with a message saying what to do next.
    pub fn too_many_requests_with(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, message)
    }

    pub fn too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "Request entity too large.")
    }

    /// 500: logs `cause`, answers with the generic message only.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, GENERIC_MESSAGE)
    }

    /// "Missing collection context." (unknown collection on record routes).
    pub fn missing_collection() -> Self {
        Self::not_found("Missing collection context.")
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Replaces `data` (for nested error reports such as batch failures).
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// The message of the envelope.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `data` of the envelope.
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// The envelope JSON this error answers with.
    pub fn envelope(&self) -> Value {
        json!({"data": self.data, "message": self.message, "status": self.status.as_u16()})
    }
}

/// Capitalises the first letter and ends with a period, as PocketBase does.
fn sentence(raw: &str) -> String {
    let trimmed = raw.trim();
    let mut chars = trimmed.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(self.envelope())
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            // PocketBase answers a list whose query hit `--queryTimeout`
            // with its generic 400: the client's filter asked too much.
            DbError::TimedOut => {
                tracing::debug!("query interrupted by the query timeout");
                ApiError::bad_request(GENERIC_MESSAGE)
            }
            // Only reaches a requester that has gone; any answer will do.
            DbError::Cancelled => ApiError::bad_request(GENERIC_MESSAGE),
            // A feature not yet ported: the client learns what and why, not a 500.
            DbError::NotOnPostgres(what) => {
                ApiError::bad_request(format!("{what} is not available on PostgreSQL yet"))
            }
            e @ (DbError::Sqlite(_)
            | DbError::Postgres(_)
            | DbError::NotAnInteger(_)
            | DbError::Pool(_)
            | DbError::ReaderGone
            | DbError::WriterGone
            | DbError::CommitFailed(_)
            | DbError::Migration { .. }
            | DbError::Locked { .. }
            | DbError::DataDir { .. }) => ApiError::internal(e),
        }
    }
}

impl From<RecordError> for ApiError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::NotFound => ApiError::not_found_default(),
            RecordError::SuperusersOnly => {
                ApiError::forbidden("Only superusers can perform this action.")
            }
            RecordError::SuperusersOnlyFilter(marker) => {
                ApiError::forbidden(format!("Only superusers can filter by {marker}"))
            }
            RecordError::CreateRuleFailed => ApiError::bad_request("Failed to create record."),
            RecordError::Invalid { message, errors } => ApiError::validation(message, &errors),
            RecordError::BadQuery(m) => {
                tracing::debug!(reason = %m, "bad list query");
                if m.starts_with("You can't") {
                    ApiError::bad_request(m)
                } else {
                    ApiError::bad_request(GENERIC_MESSAGE)
                }
            }
            RecordError::Rule(e) => {
                tracing::debug!(reason = %e, "bad filter or sort");
                ApiError::bad_request(GENERIC_MESSAGE)
            }
            RecordError::RequiredReference => ApiError::bad_request(
                "Failed to delete record. Make sure that the record is not part of a required relation reference.",
            ),
            RecordError::Unsupported => ApiError::bad_request("Unsupported collection type."),
            RecordError::ViewTruncate => ApiError::bad_request(
                "View collections cannot be truncated since they don't store their own records.",
            ),
            RecordError::Hash(m) => ApiError::internal(m),
            RecordError::Files(e) => ApiError::from(e),
            RecordError::Db(e) => ApiError::from(e),
            RecordError::Hook {
                status,
                message,
                data,
            } => ApiError::from(crate::hooks::HookError {
                status,
                message,
                data,
            }),
            RecordError::Aborted => {
                ApiError::internal("a hook's write transaction was rolled back")
            }
        }
    }
}

impl From<FilesError> for ApiError {
    fn from(e: FilesError) -> Self {
        match e {
            FilesError::NotFound => ApiError::not_found_default(),
            FilesError::BadKey => ApiError::bad_request(GENERIC_MESSAGE),
            FilesError::Image(m) => ApiError::internal(m),
            FilesError::Io(e) => ApiError::internal(e),
            FilesError::Task(m) => ApiError::internal(m),
            FilesError::Verify(m) => ApiError::internal(m),
            // The bucket failed or is unreachable: PocketBase answers a failed
            // upload with a 400; the store's own words stay in the log.
            FilesError::Remote(m) => {
                tracing::warn!(error = %m, "object storage request failed");
                ApiError::bad_request(GENERIC_MESSAGE)
            }
        }
    }
}

impl From<crate::schema::ImportError> for ApiError {
    fn from(e: crate::schema::ImportError) -> Self {
        use crate::schema::ImportError;
        let mut errors = ValidationErrors::new();
        match e {
            ImportError::Empty => {
                errors.add("collections", crate::validation::FieldError::required());
                ApiError::validation(
                    "An error occurred while validating the submitted data.",
                    &errors,
                )
            }
            ImportError::Failed(message) => {
                errors.add(
                    "collections",
                    crate::validation::FieldError::new(
                        "validation_collections_import_failure",
                        message,
                    ),
                );
                ApiError::validation("Failed to import collections.", &errors)
            }
            ImportError::Schema(e) => ApiError::from(e),
        }
    }
}

impl From<SchemaError> for ApiError {
    fn from(e: SchemaError) -> Self {
        match e {
            SchemaError::NotFound => ApiError::not_found_default(),
            SchemaError::Invalid(errors) => ApiError::validation(
                "An error occurred while validating the submitted data.",
                &errors,
            ),
            SchemaError::Format(m) => {
                tracing::debug!(reason = %m, "malformed collection");
                ApiError::bad_request(
                    "Failed to load the submitted data due to invalid formatting.",
                )
            }
            SchemaError::Referenced(by) => ApiError::bad_request(format!(
                "Failed to delete collection probably due to existing reference in {by}."
            )),
            SchemaError::System => ApiError::bad_request("Failed to delete collection."),
            // PocketBase's words for a delete a view depends on; it has none
            // for an update (it saves and leaves the view broken).
            SchemaError::ViewDependency { deleting: true, .. } => {
                ApiError::bad_request("Failed to delete collection.")
            }
            SchemaError::ViewDependency {
                view,
                deleting: false,
            } => ApiError::bad_request(format!(
                "Failed to update collection: the view collection {view} depends on it."
            )),
            SchemaError::Corrupt(m) => ApiError::internal(m),
            SchemaError::Db(e) => ApiError::from(e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => ApiError::bad_request("Failed to authenticate."),
            AuthError::Validation(errors) => ApiError::validation(
                "An error occurred while validating the submitted data.",
                &errors,
            ),
            AuthError::NotFound => ApiError::not_found_default(),
            AuthError::Throttled => ApiError::too_many_requests(),
            AuthError::OtpDisabled => {
                ApiError::forbidden("The collection is not configured to allow OTP authentication.")
            }
            AuthError::InvalidOtp => ApiError::bad_request("Invalid or expired OTP."),
            AuthError::OtpThrottled => ApiError::too_many_requests_with(
                "Too many attempts, please try again later with a new OTP.",
            ),
            AuthError::AuthRuleFailed => ApiError::forbidden(
                "The request doesn't satisfy the collection requirements to authenticate.",
            ),
            AuthError::InvalidMfa => ApiError::bad_request("Invalid or expired MFA session."),
            AuthError::SameMfaMethod => {
                ApiError::bad_request("A different authentication method is required.")
            }
            AuthError::NotAuthCollection => {
                ApiError::not_found("Missing or invalid auth collection context.")
            }
            AuthError::PasswordAuthDisabled => ApiError::forbidden(
                "The collection is not configured to allow password authentication.",
            ),
            AuthError::Input(field) => {
                let mut errors = ValidationErrors::new();
                errors.add(
                    field,
                    crate::validation::FieldError::new(
                        "validation_in_invalid",
                        "Must be a valid value.",
                    ),
                );
                ApiError::validation(
                    "An error occurred while validating the submitted data.",
                    &errors,
                )
            }
            AuthError::OAuth2Disabled => ApiError::forbidden(
                "The collection is not configured to allow OAuth2 authentication.",
            ),
            AuthError::UnknownProvider(name) => {
                let mut errors = ValidationErrors::new();
                errors.add(
                    "provider",
                    crate::validation::FieldError::new(
                        "validation_invalid_provider",
                        format!("Provider with name {name} is missing or is not enabled."),
                    )
                    .with_params(serde_json::json!({"name": name})),
                );
                ApiError::validation(
                    "An error occurred while loading the submitted data.",
                    &errors,
                )
            }
            AuthError::OAuth2Token => ApiError::bad_request("Failed to fetch OAuth2 token."),
            AuthError::OAuth2User => ApiError::bad_request("Failed to fetch OAuth2 user."),
            AuthError::NoSuchSuperuser | AuthError::LastSuperuser => {
                ApiError::bad_request(e.to_string())
            }
            AuthError::Hash(m) | AuthError::Token(m) => ApiError::internal(m),
            AuthError::Db(e) => ApiError::from(e),
            AuthError::Record(e) => ApiError::from(*e),
        }
    }
}

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::Invalid(errors) => {
                ApiError::validation("An error occurred while saving the new settings.", &errors)
            }
            SettingsError::Format(m) => {
                tracing::debug!(reason = %m, "malformed settings");
                ApiError::bad_request("An error occurred while saving the new settings.")
            }
            SettingsError::Db(e) => ApiError::from(e),
            SettingsError::Sealed(e) => ApiError::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_out_query_is_a_generic_400_and_other_database_failures_stay_opaque_500s() {
        for (error, status, why) in [
            (DbError::TimedOut, 400, "timeout from a read"),
            (DbError::Cancelled, 400, "requester gone"),
            (DbError::ReaderGone, 500, "reader gone"),
            (
                DbError::CommitFailed("disk full at /secret/path".into()),
                500,
                "commit",
            ),
        ] {
            for api in [
                ApiError::from(RecordError::Db(clone_db(&error))),
                ApiError::from(AuthError::Db(clone_db(&error))),
                ApiError::from(SchemaError::Db(clone_db(&error))),
                ApiError::from(SettingsError::Db(clone_db(&error))),
            ] {
                assert_eq!(api.status().as_u16(), status, "{why}");
                assert_eq!(api.message(), GENERIC_MESSAGE, "{why}: no internals");
                assert_eq!(api.data(), &json!({}), "{why}");
            }
        }
    }

    /// `DbError` is not `Clone` (it wraps rusqlite and io errors).
    fn clone_db(e: &DbError) -> DbError {
        match e {
            DbError::TimedOut => DbError::TimedOut,
            DbError::Cancelled => DbError::Cancelled,
            DbError::ReaderGone => DbError::ReaderGone,
            DbError::NotOnPostgres(what) => DbError::NotOnPostgres(what),
            other => DbError::CommitFailed(other.to_string()),
        }
    }

    #[test]
    fn a_feature_not_on_postgres_is_a_400_naming_it_from_every_domain() {
        let error = DbError::NotOnPostgres("a record write with JavaScript hooks");
        for api in [
            ApiError::from(clone_db(&error)),
            ApiError::from(RecordError::Db(clone_db(&error))),
            ApiError::from(AuthError::Db(clone_db(&error))),
            ApiError::from(SchemaError::Db(clone_db(&error))),
            ApiError::from(SettingsError::Db(clone_db(&error))),
        ] {
            assert_eq!(api.status().as_u16(), 400, "{api}");
            assert_eq!(
                api.message(),
                "A record write with JavaScript hooks is not available on PostgreSQL yet."
            );
            assert_eq!(api.data(), &json!({}));
            assert_eq!(api.envelope()["status"], 400);
        }
    }

    #[test]
    fn messages_are_sentences() {
        assert_eq!(
            sentence("failed to authenticate"),
            "Failed to authenticate."
        );
        assert_eq!(sentence("Done."), "Done.");
        assert_eq!(sentence(""), "");
    }
}
