//! Account flows, above `records`: email verification, password reset,
//! email change, OTP request and verify, the MFA step, OAuth2 link and
//! sign-up, impersonation and the `auth-methods` answer. A flow decides
//! *whether* and *what* to change; every change to a record goes through
//! the records write path (`records::system` for changes of an existing
//! record, `records::prepare_create` for OAuth2 sign-up), which stamps
//! autodates, validates, enforces unique indexes and publishes to realtime
//! after the commit. Tokens, password hashing, throttling, the request
//! principal and the OAuth2 protocol exchange are primitives in `auth`;
//! HTTP is `api`'s.

pub mod avatar;
#[cfg(test)]
mod backends;
pub mod email_change;
#[cfg(test)]
mod flow_backends;
pub mod impersonate;
pub mod login;
pub mod methods;
pub mod mfa;
mod mfa_hooked;
pub mod oauth2;
#[cfg(test)]
mod oauth2_backends;
pub mod oauth2_hooked;
pub mod origins_hooked;
pub mod otp;
mod otp_hooked;
mod otp_store;
pub mod password_reset;
mod purpose;
pub mod takeover;
pub mod verification;

pub(crate) use purpose::find as find_account;
pub use purpose::{Outgoing, issue_file_token, outgoing_for_record};

use crate::auth::AuthError;
use crate::records::RecordError;

/// A flow's record write refused by validation is the flow's validation
/// error; the rest keep their kind.
impl From<RecordError> for AuthError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Invalid { errors, .. } => AuthError::Validation(errors),
            RecordError::NotFound => AuthError::NotFound,
            RecordError::Db(e) => AuthError::Db(e),
            other => AuthError::Record(Box::new(other)),
        }
    }
}
