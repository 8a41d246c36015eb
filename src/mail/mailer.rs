//! SMTP delivery with lettre on tokio. A [`Mailer`] is a snapshot of the
//! settings, cheap to build per mail so a settings change applies to the next
//! one; it opens one connection per [`Mailer::send`] (auth emails are rare,
//! so no pool).
//!
//! With SMTP disabled the mail goes to the local `sendmail` program when one
//! was found ([`find_sendmail`]), as PocketBase does on Unix.
//!
//! `smtp.tls = true` means implicit TLS from the first byte (port 465 style);
//! otherwise the connection starts in plain text and upgrades with STARTTLS
//! whenever the server offers it, as PocketBase (Go's `net/smtp`) does.

use super::error::MailError;
use super::template::RenderedMail;
use super::text::html_to_text;
use crate::settings::{Meta, Settings, Smtp};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where PocketBase looks for `sendmail` (it also tries `$PATH`; we only
/// run a program at a fixed, root-owned location or the configured one).
pub const SENDMAIL_PATHS: &[&str] = &["/usr/sbin/sendmail", "/usr/bin/sendmail"];

/// The sendmail program used when SMTP is off: `configured` (`mail.sendmail`)
/// when set, `"off"` for none, else the first of [`SENDMAIL_PATHS`] present.
pub fn find_sendmail(configured: &str) -> Option<PathBuf> {
    match configured.trim() {
        "off" => None,
        "" => SENDMAIL_PATHS
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .map(Path::to_path_buf),
        path => Some(PathBuf::from(path)),
    }
}

/// Limit for connecting and for each SMTP command's reply.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit for one whole delivery (connect, TLS, auth, envelope, data, quit).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends rendered mails with the SMTP settings it was built from.
#[derive(Clone)]
pub struct Mailer {
    smtp: Smtp,
    sender: Meta,
    sendmail: Option<PathBuf>,
}

impl Mailer {
    /// Captures what delivery needs from `settings`; nothing is checked or
    /// connected until [`send`](Self::send).
    pub fn new(settings: &Settings) -> Self {
        Self {
            smtp: settings.smtp.clone(),
            sender: settings.meta.clone(),
            sendmail: None,
        }
    }

    /// Delivers through `program` (see [`find_sendmail`]) while SMTP is off.
    pub fn with_sendmail(mut self, program: Option<PathBuf>) -> Self {
        self.sendmail = program;
        self
    }

    /// Whether `send` will try SMTP at all.
    pub fn is_enabled(&self) -> bool {
        self.smtp.enabled
    }

    /// Delivers `mail` to `to` from `"senderName" <senderAddress>`.
    /// With SMTP disabled it goes to the sendmail program, or returns
    /// [`MailError::NotConfigured`] without doing anything when there is none.
    #[tracing::instrument(skip_all, fields(host = %self.smtp.host, port = self.smtp.port))]
    pub async fn send(&self, to: &str, mail: &RenderedMail) -> Result<(), MailError> {
        if !self.smtp.enabled {
            let Some(program) = &self.sendmail else {
                return Err(MailError::NotConfigured);
            };
            let message = self.message(to, mail)?;
            return match tokio::time::timeout(SEND_TIMEOUT, sendmail(program, &message)).await {
                Ok(result) => result,
                Err(_elapsed) => Err(MailError::Timeout),
            };
        }
        let message = self.message(to, mail)?;
        let transport = self.transport()?;
        match tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await {
            Ok(Ok(_response)) => {
                tracing::debug!("mail delivered to the SMTP server");
                Ok(())
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_elapsed) => Err(MailError::Timeout),
        }
    }

    fn message(&self, to: &str, mail: &RenderedMail) -> Result<Message, MailError> {
        let sender: Address = self
            .sender
            .sender_address
            .trim()
            .parse()
            .map_err(MailError::InvalidSender)?;
        let recipient: Address = to.trim().parse().map_err(MailError::InvalidRecipient)?;
        let name = Some(self.sender.sender_name.trim())
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let message_id = format!("<{:032x}@{}>", rand::random::<u128>(), sender.domain());
        let body = MultiPart::alternative()
            .singlepart(part(ContentType::TEXT_PLAIN, html_to_text(&mail.html)))
            .singlepart(part(ContentType::TEXT_HTML, mail.html.clone()));
        Ok(Message::builder()
            .from(Mailbox::new(name, sender))
            .to(Mailbox::new(None, recipient))
            .subject(mail.subject.as_str())
            .message_id(Some(message_id))
            .multipart(body)?)
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
        let host = self.smtp.host.trim();
        if host.is_empty() {
            return Err(MailError::Settings("smtp.host is empty".into()));
        }
        let port = u16::try_from(self.smtp.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                MailError::Settings(format!("smtp.port {} is out of range", self.smtp.port))
            })?;
        let tls_parameters = TlsParameters::new(host.to_owned())?;
        // Credentials never cross the network in clear: with a username and a
        // non-loopback host, STARTTLS is required rather than opportunistic.
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let tls = if self.smtp.tls {
            Tls::Wrapper(tls_parameters)
        } else if !self.smtp.username.is_empty() && !loopback {
            Tls::Required(tls_parameters)
        } else {
            Tls::Opportunistic(tls_parameters)
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if !self.smtp.username.is_empty() {
            builder = builder
                .credentials(Credentials::new(
                    self.smtp.username.clone(),
                    self.smtp.password.clone(),
                ))
                .authentication(mechanisms(&self.smtp.auth_method)?);
        }
        Ok(builder
            .hello_name(hello_name(&self.smtp.local_name))
            .build())
    }
}

/// Pipes `message` to `program -i -f FROM -- TO…` (sendmail's interface;
/// addresses come from the parsed envelope, never a shell). The child is
/// killed if the send is dropped (timeout).
async fn sendmail(program: &Path, message: &Message) -> Result<(), MailError> {
    use tokio::io::AsyncWriteExt;
    let envelope = message.envelope();
    let mut command = tokio::process::Command::new(program);
    command.arg("-i");
    if let Some(from) = envelope.from() {
        command.arg("-f").arg(AsRef::<str>::as_ref(from));
    }
    command
        .arg("--")
        .args(envelope.to().iter().map(ToString::to_string));
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| MailError::Sendmail(format!("{}: {e}", program.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&message.formatted())
            .await
            .map_err(|e| MailError::Sendmail(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| MailError::Sendmail(e.to_string()))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    Err(MailError::Sendmail(format!(
        "{} exited with {}: {}",
        program.display(),
        out.status,
        said.chars().take(200).collect::<String>().trim()
    )))
}

/// A body part in quoted-printable: always valid whatever the text, and the
/// raw message stays readable (and greppable in tests), unlike base64.
fn part(kind: ContentType, text: String) -> SinglePart {
    let body = Body::new_with_encoding(text, ContentTransferEncoding::QuotedPrintable)
        .unwrap_or_else(Body::new);
    SinglePart::builder().header(kind).body(body)
}

/// `smtp.authMethod`: PocketBase knows PLAIN (its default) and LOGIN. Blank
/// lets lettre pick whichever of the two the server offers.
fn mechanisms(auth_method: &str) -> Result<Vec<Mechanism>, MailError> {
    match auth_method.trim().to_ascii_uppercase().as_str() {
        "" => Ok(vec![Mechanism::Plain, Mechanism::Login]),
        "PLAIN" => Ok(vec![Mechanism::Plain]),
        "LOGIN" => Ok(vec![Mechanism::Login]),
        other => Err(MailError::Settings(format!(
            "smtp.authMethod {other:?} is not PLAIN or LOGIN"
        ))),
    }
}

/// `smtp.localName` for EHLO; blank is `localhost`, as PocketBase (Go's
/// `net/smtp`) says, rather than lettre's `[127.0.0.1]` literal.
fn hello_name(local_name: &str) -> ClientId {
    let name = local_name.trim();
    if name.is_empty() {
        return ClientId::Domain("localhost".into());
    }
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ClientId::Ipv4(ip),
        Ok(IpAddr::V6(ip)) => ClientId::Ipv6(ip),
        Err(_) => ClientId::Domain(name.to_owned()),
    }
}

/// Leaves the password out.
impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("enabled", &self.smtp.enabled)
            .field("host", &self.smtp.host)
            .field("port", &self.smtp.port)
            .field("tls", &self.smtp.tls)
            .field("username", &self.smtp.username)
            .field("sender", &self.sender.sender_address)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::{Template, TemplateVars};

    #[test]
    fn the_ehlo_name_is_local_name_or_localhost_as_in_pocketbase() {
        for (local_name, expected, why) in [
            (
                "",
                ClientId::Domain("localhost".into()),
                "blank: Go's net/smtp default",
            ),
            (
                "  ",
                ClientId::Domain("localhost".into()),
                "blank after trim",
            ),
            (
                "relay.example.com",
                ClientId::Domain("relay.example.com".into()),
                "a name",
            ),
            (
                "10.0.0.5",
                ClientId::Ipv4("10.0.0.5".parse().expect("ip")),
                "an address",
            ),
        ] {
            assert_eq!(hello_name(local_name), expected, "{why}");
        }
    }

    fn settings() -> Settings {
        let mut settings = Settings::default();
        settings.smtp.enabled = true;
        settings.smtp.host = "127.0.0.1".into();
        settings.smtp.port = 2525;
        settings.smtp.username = "mailer".into();
        settings.smtp.password = "hunter2-secret".into();
        settings
    }

    fn mail() -> RenderedMail {
        let vars = TemplateVars {
            app_name: "Acme".into(),
            token: "eyJtoken".into(),
            ..TemplateVars::default()
        };
        Template::Verification.render(None, &vars)
    }

    #[tokio::test]
    async fn disabled_smtp_sends_nothing_and_says_so() {
        let mailer = Mailer::new(&Settings::default());

        let result = mailer.send("ann@example.com", &mail()).await;

        assert!(
            matches!(result, Err(MailError::NotConfigured)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn bad_addresses_and_ports_are_reported_before_connecting() {
        let mut bad_port = settings();
        bad_port.smtp.port = 70_000;
        let mut bad_sender = settings();
        bad_sender.meta.sender_address = "not an address".into();

        let to = Mailer::new(&settings()).send("nobody", &mail()).await;
        let port = Mailer::new(&bad_port).send("a@b.test", &mail()).await;
        let from = Mailer::new(&bad_sender).send("a@b.test", &mail()).await;

        assert!(matches!(to, Err(MailError::InvalidRecipient(_))), "{to:?}");
        assert!(matches!(port, Err(MailError::Settings(_))), "{port:?}");
        assert!(matches!(from, Err(MailError::InvalidSender(_))), "{from:?}");
    }

    #[test]
    fn message_has_sender_subject_and_both_parts() {
        let message = Mailer::new(&settings())
            .message("ann@example.com", &mail())
            .expect("message builds");

        let raw = String::from_utf8(message.formatted()).expect("ascii message");

        assert!(raw.contains("From: Support <support@example.com>"), "{raw}");
        assert!(raw.contains("To: ann@example.com"), "{raw}");
        assert!(
            raw.contains("Subject: Confirm your Acme email address"),
            "{raw}"
        );
        assert!(raw.contains("Message-ID: <") && raw.contains("@example.com>"));
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
    }

    #[test]
    fn auth_methods_follow_pocketbase_names() {
        assert_eq!(mechanisms("LOGIN").expect("known"), vec![Mechanism::Login]);
        assert_eq!(mechanisms("plain").expect("known"), vec![Mechanism::Plain]);
        assert_eq!(mechanisms("").expect("blank").len(), 2);
        assert!(mechanisms("CRAM-MD5").is_err());
    }

    #[test]
    fn debug_output_does_not_show_the_password() {
        let shown = format!("{:?}", Mailer::new(&settings()));

        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
