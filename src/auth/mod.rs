//! Accounts and credentials: argon2id password hashing (bounded, off the
//! executor), HS256 tokens signed with a per-collection secret plus each
//! record's `tokenKey`, the request [`Principal`], password login and the
//! superuser maintenance used by the CLI, and the OAuth2 protocol exchange.
//! The account flows built from these primitives (verification, reset,
//! email change, OTP, MFA, OAuth2 linking) live in `accounts`; record
//! serialisation is left to `records`; HTTP to `api`.

pub mod apple;
pub mod install;
mod login;
pub mod oauth2;
mod oauth2_user;
pub mod origins;
pub mod password;
mod principal;
mod recheck;
mod superuser;
pub mod throttle;
pub mod token;

pub(crate) use login::identity_match_in;
pub use login::{LoginOutcome, login_with_password, refresh_token};
pub use principal::{Principal, bare_token, principal_for, resolve_file_token, resolve_token};
pub(crate) use principal::{auth_signing_key, purpose_duration, purpose_key};
pub use recheck::recheck_tokens;
pub use superuser::{
    MIN_PASSWORD_CHARS, SaveMode, SuperuserOtp, count_superusers, delete_superuser, save_superuser,
    superuser_emails, superuser_otp, upsert_superuser,
};

use crate::db::DbError;

/// Why an auth operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong identity or password")]
    InvalidCredentials,
    #[error("the collection is not an auth collection")]
    NotAuthCollection,
    #[error("password authentication is disabled for this collection")]
    PasswordAuthDisabled,
    #[error("no superuser with that email")]
    NoSuchSuperuser,
    #[error("the only remaining superuser cannot be deleted")]
    LastSuperuser,
    #[error("invalid input: {0}")]
    Input(String),
    #[error("invalid submitted data: {0}")]
    Validation(crate::validation::ValidationErrors),
    #[error("record not found")]
    NotFound,
    #[error("too many failed attempts")]
    Throttled,
    #[error("OTP authentication is disabled for this collection")]
    OtpDisabled,
    #[error("invalid or expired OTP")]
    InvalidOtp,
    #[error("too many OTP attempts for this record")]
    OtpThrottled,
    #[error("the record does not satisfy the collection's authRule")]
    AuthRuleFailed,
    #[error("invalid or expired MFA session")]
    InvalidMfa,
    #[error("a different authentication method is required")]
    SameMfaMethod,
    #[error("OAuth2 authentication is disabled for this collection")]
    OAuth2Disabled,
    #[error("provider {0} is missing or not enabled")]
    UnknownProvider(String),
    #[error("the provider did not issue a token")]
    OAuth2Token,
    #[error("the provider did not return the user")]
    OAuth2User,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("token: {0}")]
    Token(String),
    /// A flow's record write failed for a reason other than validation or
    /// the database (boxed: `RecordError` is the larger type).
    #[error("record write: {0}")]
    Record(Box<crate::records::RecordError>),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for AuthError {
    fn from(e: rusqlite::Error) -> Self {
        AuthError::Db(DbError::Sqlite(e))
    }
}
