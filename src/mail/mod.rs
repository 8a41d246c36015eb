//! Outgoing email: the auth emails' templates (verification, password reset,
//! email change, OTP, login alert) with PocketBase's `{PLACEHOLDER}`s, and a
//! [`Mailer`] that delivers a rendered mail over SMTP as configured in
//! [`Settings`](crate::settings::Settings).
//!
//! This module knows templates and SMTP, nothing about records, tokens or
//! HTTP: callers mint the token, fill [`TemplateVars`], render and send.
//! Like PocketBase, mail goes to the local `sendmail` when SMTP is disabled;
//! without one, [`MailError::NotConfigured`] lets the caller decide (the
//! email flows log it and still answer 204).

mod alert;
mod error;
mod mailer;
mod render;
mod template;
mod text;

pub use alert::system_alert;
pub use error::MailError;
pub use mailer::{Mailer, SEND_TIMEOUT, SENDMAIL_PATHS, SMTP_TIMEOUT, find_sendmail};
pub use template::{RenderedMail, Template, TemplateVars};
