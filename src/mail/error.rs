//! Why a mail was not sent. Messages never carry the SMTP password: lettre's
//! errors describe the connection and the server's reply, not credentials.

/// Why [`Mailer::send`](super::Mailer::send) failed.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// SMTP is disabled in the settings; nothing was attempted.
    #[error("SMTP is not enabled in the settings")]
    NotConfigured,
    /// An SMTP setting can't be used (port out of range, unknown auth method…).
    #[error("invalid SMTP settings: {0}")]
    Settings(String),
    /// `meta.senderAddress` / `meta.senderName` don't form a mailbox.
    #[error("invalid sender address: {0}")]
    InvalidSender(#[source] lettre::address::AddressError),
    /// The recipient is not an email address.
    #[error("invalid recipient address: {0}")]
    InvalidRecipient(#[source] lettre::address::AddressError),
    /// The message could not be assembled.
    #[error("could not build the message: {0}")]
    Build(#[from] lettre::error::Error),
    /// Connecting, TLS, authentication or the SMTP dialogue failed.
    #[error("SMTP delivery failed: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The local sendmail program (SMTP off) failed or could not be run.
    #[error("sendmail failed: {0}")]
    Sendmail(String),
    /// The whole delivery took longer than [`SEND_TIMEOUT`](super::SEND_TIMEOUT).
    #[error("SMTP delivery timed out")]
    Timeout,
}
