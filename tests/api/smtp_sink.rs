//! A real SMTP server on loopback for tests that send mail. It speaks just
//! enough SMTP for lettre (EHLO/HELO, AUTH PLAIN/LOGIN accepting anything,
//! MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT), never offers
//! STARTTLS, and keeps every message it receives in memory.
//!
//! ```ignore
//! let sink = smtp_sink::start().await;
//! // point settings.smtp at 127.0.0.1:sink.port, trigger a mail, then:
//! let mail = sink.wait_for("ann@example.com", Duration::from_secs(5)).await.expect("mail");
//! let token = mail.find_token().expect("token in the mail");
//! ```
#![allow(dead_code)] // not every helper is used by every test area

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Longest command or data line we accept.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Largest message we accept in DATA.
const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// The running server; stops when dropped.
pub struct SmtpSink {
    pub port: u16,
    inbox: Arc<Inbox>,
    server: JoinHandle<()>,
}

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct CapturedMail {
    /// Envelope sender (`MAIL FROM`).
    pub from: String,
    /// Envelope recipients (`RCPT TO`), in order.
    pub to: Vec<String>,
    /// The message as sent after DATA: headers and body, dots unstuffed.
    pub raw: String,
    /// The user name given to AUTH, if the client authenticated.
    pub auth_user: Option<String>,
}

#[derive(Default)]
struct Inbox {
    mails: Mutex<Vec<Stored>>,
    arrived: Notify,
}

struct Stored {
    mail: CapturedMail,
    /// Already returned by `wait_for`.
    taken: bool,
}

/// Starts a sink on `127.0.0.1` at a free port.
pub async fn start() -> SmtpSink {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
    let port = listener.local_addr().expect("sink address").port();
    let inbox = Arc::new(Inbox::default());
    let server = tokio::spawn(accept_loop(listener, Arc::clone(&inbox)));
    SmtpSink {
        port,
        inbox,
        server,
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl SmtpSink {
    /// The next message for `to` (case-insensitive) that no earlier
    /// `wait_for` returned, waiting up to `timeout` for it to arrive. So two
    /// mails to one address come out of two calls in the order they arrived.
    pub async fn wait_for(&self, to: &str, timeout: Duration) -> Option<CapturedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.inbox.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable(); // registered before we look: no lost wake-up
            if let Some(mail) = self.take(to) {
                return Some(mail);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.take(to);
            }
        }
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<CapturedMail> {
        let mails = self.inbox.mails.lock().expect("sink inbox lock");
        mails.iter().map(|s| s.mail.clone()).collect()
    }

    /// How many messages were sent to `to` so far.
    pub fn count_for(&self, to: &str) -> usize {
        let mails = self.inbox.mails.lock().expect("sink inbox lock");
        mails.iter().filter(|s| s.mail.is_for(to)).count()
    }

    fn take(&self, to: &str) -> Option<CapturedMail> {
        let mut mails = self.inbox.mails.lock().expect("sink inbox lock");
        let stored = mails.iter_mut().find(|s| !s.taken && s.mail.is_for(to))?;
        stored.taken = true;
        Some(stored.mail.clone())
    }
}

impl CapturedMail {
    fn is_for(&self, to: &str) -> bool {
        self.to.iter().any(|t| t.eq_ignore_ascii_case(to))
    }

    /// The message with quoted-printable undone (soft line breaks removed,
    /// `=3D` and other `=XX` escapes decoded), for searching its text.
    pub fn decoded(&self) -> String {
        decode_quoted_printable(&self.raw)
    }

    /// The `Subject` header, unfolded, with `=?utf-8?b?…?=` words decoded.
    pub fn subject(&self) -> Option<String> {
        let header = self.header("subject")?;
        Some(decode_encoded_words(&header))
    }

    /// A header's raw value (first occurrence, continuation lines joined).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push_str(line);
                    continue;
                }
                break;
            }
            let Some((key, rest)) = line.split_once(':') else {
                continue;
            };
            if key.eq_ignore_ascii_case(name) {
                value = Some(rest.trim_start().to_owned());
            }
        }
        value
    }

    /// The first JWT-looking string (`eyJ…` with three non-empty base64url
    /// segments) in the decoded message.
    pub fn find_token(&self) -> Option<String> {
        let text = self.decoded();
        let is_b64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        text.match_indices("eyJ").find_map(|(at, _)| {
            let candidate = &text[at..];
            let end = candidate
                .find(|c: char| !is_b64url(c) && c != '.')
                .unwrap_or(candidate.len());
            let token = candidate[..end].trim_end_matches('.');
            let segments: Vec<&str> = token.split('.').collect();
            (segments.len() == 3 && segments.iter().all(|s| !s.is_empty()))
                .then(|| token.to_owned())
        })
    }

    /// The first free-standing run of exactly `len` ASCII digits in the
    /// decoded body (not the headers, which hold dates), e.g. an OTP. Runs
    /// inside a word do not count: a multipart mail's random boundary
    /// (`--4fX921337aQ…`) holds digit runs now and then.
    pub fn find_digits(&self, len: usize) -> Option<String> {
        let decoded = self.decoded();
        let body = decoded.split_once("\r\n\r\n")?.1;
        body.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .find(|word| word.len() == len && word.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
    }
}

async fn accept_loop(listener: TcpListener, inbox: Arc<Inbox>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve(stream, Arc::clone(&inbox)));
    }
}

/// One SMTP session. I/O errors end it quietly: the client went away.
async fn serve(stream: TcpStream, inbox: Arc<Inbox>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut session = Session::default();
    if write.write_all(b"220 sink ESMTP ready\r\n").await.is_err() {
        return;
    }
    while let Some(line) = read_line(&mut reader).await {
        let reply = session
            .command(&line, &mut reader, &mut write, &inbox)
            .await;
        let Some(reply) = reply else { return };
        if write.write_all(reply.as_bytes()).await.is_err() || reply.starts_with("221") {
            return;
        }
    }
}

#[derive(Default)]
struct Session {
    from: Option<String>,
    to: Vec<String>,
    auth_user: Option<String>,
}

type Reader = BufReader<tokio::net::tcp::OwnedReadHalf>;
type Writer = tokio::net::tcp::OwnedWriteHalf;

impl Session {
    /// Handles one command line; `None` ends the session.
    async fn command(
        &mut self,
        line: &str,
        reader: &mut Reader,
        write: &mut Writer,
        inbox: &Inbox,
    ) -> Option<String> {
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let reply = match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                self.reset();
                // No STARTTLS: clients using opportunistic TLS stay in plain text.
                "250-sink\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n".into()
            }
            "HELO" => {
                self.reset();
                "250 sink\r\n".into()
            }
            "AUTH" => self.auth(arg, reader, write).await?,
            "MAIL" => {
                self.reset();
                self.from = Some(path_arg(arg, "FROM:"));
                "250 2.1.0 OK\r\n".into()
            }
            "RCPT" if self.from.is_none() => "503 5.5.1 MAIL first\r\n".into(),
            "RCPT" => {
                self.to.push(path_arg(arg, "TO:"));
                "250 2.1.5 OK\r\n".into()
            }
            "DATA" if self.to.is_empty() => "503 5.5.1 RCPT first\r\n".into(),
            "DATA" => {
                write
                    .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                    .await
                    .ok()?;
                let raw = read_data(reader).await?;
                self.store(raw, inbox);
                "250 2.0.0 OK queued\r\n".into()
            }
            "RSET" => {
                self.reset();
                "250 2.0.0 OK\r\n".into()
            }
            "NOOP" => "250 2.0.0 OK\r\n".into(),
            "QUIT" => "221 2.0.0 bye\r\n".into(),
            _ => "502 5.5.2 command not implemented\r\n".into(),
        };
        Some(reply)
    }

    /// AUTH PLAIN (initial response or prompted) and AUTH LOGIN; any
    /// credentials are accepted, the user name is remembered.
    async fn auth(&mut self, arg: &str, reader: &mut Reader, write: &mut Writer) -> Option<String> {
        let (mechanism, initial) = arg.split_once(' ').unwrap_or((arg, ""));
        let user = match mechanism.to_ascii_uppercase().as_str() {
            "PLAIN" => {
                let response = match initial {
                    "" => prompt(reader, write, "").await?,
                    given => given.to_owned(),
                };
                // authzid \0 authcid \0 password
                decode_b64(&response).split('\0').nth(1).map(str::to_owned)
            }
            "LOGIN" => {
                let user = match initial {
                    "" => prompt(reader, write, "VXNlcm5hbWU6").await?, // "Username:"
                    given => given.to_owned(),
                };
                prompt(reader, write, "UGFzc3dvcmQ6").await?; // "Password:"
                Some(decode_b64(&user))
            }
            _ => return Some("504 5.5.4 unrecognized authentication type\r\n".into()),
        };
        self.auth_user = user;
        Some("235 2.7.0 authentication succeeded\r\n".into())
    }

    fn reset(&mut self) {
        self.from = None;
        self.to.clear();
    }

    fn store(&mut self, raw: String, inbox: &Inbox) {
        let mail = CapturedMail {
            from: self.from.take().unwrap_or_default(),
            to: std::mem::take(&mut self.to),
            raw,
            auth_user: self.auth_user.clone(),
        };
        let mut mails = inbox.mails.lock().expect("sink inbox lock");
        mails.push(Stored { mail, taken: false });
        drop(mails);
        inbox.arrived.notify_waiters();
    }
}

/// Sends a `334` challenge and reads the client's answer.
async fn prompt(reader: &mut Reader, write: &mut Writer, challenge: &str) -> Option<String> {
    let line = format!("334 {challenge}\r\n");
    write.write_all(line.as_bytes()).await.ok()?;
    read_line(reader).await
}

/// A command line without its CRLF; `None` at EOF, on error or if too long.
async fn read_line(reader: &mut Reader) -> Option<String> {
    let mut buf = Vec::new();
    let n = (&mut *reader)
        .take(MAX_LINE_BYTES as u64)
        .read_until(b'\n', &mut buf)
        .await
        .ok()?;
    if n == 0 || !buf.ends_with(b"\n") {
        return None;
    }
    let line = String::from_utf8_lossy(&buf);
    Some(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Lines up to the lone `.`, with the leading dot of stuffed lines removed.
async fn read_data(reader: &mut Reader) -> Option<String> {
    let mut raw = String::new();
    loop {
        let line = read_line(reader).await?;
        if line == "." {
            return Some(raw);
        }
        raw.push_str(line.strip_prefix('.').unwrap_or(&line));
        raw.push_str("\r\n");
        if raw.len() > MAX_MESSAGE_BYTES {
            return None;
        }
    }
}

/// `FROM:<a@b> SIZE=1` → `a@b`.
fn path_arg(arg: &str, prefix: &str) -> String {
    let arg = arg.trim();
    let rest = match arg.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => &arg[prefix.len()..],
        _ => arg,
    };
    let path = rest.trim_start().split(' ').next().unwrap_or_default();
    path.trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

fn decode_b64(text: &str) -> String {
    let bytes = BASE64.decode(text.trim()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn decode_quoted_printable(text: &str) -> String {
    let text = text.replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.map(|h| u8::from_str_radix(h, 16)) {
            Some(Ok(byte)) if bytes[i] == b'=' => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes RFC 2047 `=?charset?b?…?=` words (what lettre writes for
/// non-ASCII headers); other text is kept.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut previous_was_encoded = false;
    for word in value.split_whitespace() {
        let decoded = word
            .strip_prefix("=?")
            .and_then(|w| w.strip_suffix("?="))
            .and_then(|w| {
                let mut parts = w.splitn(3, '?');
                let (_charset, kind, data) = (parts.next()?, parts.next()?, parts.next()?);
                kind.eq_ignore_ascii_case("b").then(|| decode_b64(data))
            });
        // Whitespace between two encoded words is folding, not text.
        let joins = decoded.is_some() && previous_was_encoded;
        if !out.is_empty() && !joins {
            out.push(' ');
        }
        previous_was_encoded = decoded.is_some();
        out.push_str(decoded.as_deref().unwrap_or(word));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrobase::mail::{MailError, Mailer, Template, TemplateVars};
    use ferrobase::settings::Settings;
    use serde_json::json;

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6ImFiYzEyMyIsInR5cGUiOiJ2ZXJpZmljYXRpb24ifQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU";
    const WAIT: Duration = Duration::from_secs(5);

    fn settings_for(sink: &SmtpSink) -> Settings {
        let mut settings = Settings::default();
        settings.meta.app_name = "Sink Test".into();
        settings.meta.sender_name = "Sink Test Support".into();
        settings.meta.sender_address = "support@sink.test".into();
        settings.smtp.enabled = true;
        settings.smtp.host = "127.0.0.1".into();
        settings.smtp.port = u64::from(sink.port);
        settings
    }

    fn vars() -> TemplateVars {
        TemplateVars {
            app_name: "Sink Test".into(),
            app_url: "http://127.0.0.1:8090".into(),
            token: TOKEN.into(),
            ..TemplateVars::default()
        }
    }

    #[test]
    fn a_code_is_found_free_standing_never_inside_a_boundary() {
        let raw = "Subject: x\r\nDate: 7 Dec 2026 22:05:11\r\n\r\n\
            --9Qa123456bZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
            Your code is: 654321\r\n--9Qa123456bZ--\r\n";
        let mail = CapturedMail {
            from: String::new(),
            to: Vec::new(),
            raw: raw.to_owned(),
            auth_user: None,
        };
        assert_eq!(mail.find_digits(6).as_deref(), Some("654321"));
        assert_eq!(mail.find_digits(8), None, "no free-standing 8-digit run");
    }

    #[tokio::test]
    async fn mailer_delivers_a_verification_mail_with_subject_and_token() {
        let sink = start().await;
        let mut settings = settings_for(&sink);
        settings.smtp.username = "mailer".into();
        settings.smtp.password = "s3cret".into();
        let mail = Template::Verification.render(None, &vars());

        Mailer::new(&settings)
            .send("ann@example.com", &mail)
            .await
            .expect("mail is accepted by the sink");
        let got = sink
            .wait_for("ann@example.com", WAIT)
            .await
            .expect("mail arrives");

        assert_eq!(got.subject().as_deref(), Some(mail.subject.as_str()));
        assert_eq!(got.find_token().as_deref(), Some(TOKEN));
        assert_eq!(got.from, "support@sink.test");
        assert_eq!(got.to, ["ann@example.com"]);
        assert_eq!(
            got.auth_user.as_deref(),
            Some("mailer"),
            "credentials were used"
        );
        let link = format!("http://127.0.0.1:8090/_/#/auth/confirm-verification/{TOKEN}");
        assert!(got.decoded().contains(&link), "{}", got.decoded());
    }

    #[tokio::test]
    async fn both_auth_methods_and_no_auth_are_accepted() {
        let sink = start().await;
        for (user, method, to) in [
            ("plain-user", "PLAIN", "plain@example.com"),
            ("login-user", "LOGIN", "login@example.com"),
            ("", "", "anon@example.com"),
        ] {
            let mut settings = settings_for(&sink);
            settings.smtp.username = user.into();
            settings.smtp.password = "pw".into();
            settings.smtp.auth_method = method.into();
            let mail = Template::Otp.render(None, &vars());

            Mailer::new(&settings).send(to, &mail).await.expect("sent");
            let got = sink.wait_for(to, WAIT).await.expect("arrives");

            let expected = Some(user).filter(|u| !u.is_empty());
            assert_eq!(got.auth_user.as_deref(), expected, "auth method {method:?}");
        }
    }

    #[tokio::test]
    async fn otp_and_dot_stuffed_lines_survive_the_trip() {
        let sink = start().await;
        let over =
            json!({"subject": "Code {OTP}", "body": "<p>{OTP}</p>\n.leading dot\n..two dots"});
        let vars = TemplateVars {
            otp: "48151623".into(),
            ..vars()
        };
        let mail = Template::Otp.render(Some(&over), &vars);

        Mailer::new(&settings_for(&sink))
            .send("otp@example.com", &mail)
            .await
            .expect("sent");
        let got = sink
            .wait_for("otp@example.com", WAIT)
            .await
            .expect("arrives");

        assert_eq!(got.subject().as_deref(), Some("Code 48151623"));
        assert_eq!(got.find_digits(8).as_deref(), Some("48151623"));
        let text = got.decoded();
        assert!(text.contains("\r\n.leading dot\r\n..two dots"), "{text}");
    }

    #[tokio::test]
    async fn wait_for_hands_out_each_mail_once_in_arrival_order() {
        let sink = start().await;
        let mailer = Mailer::new(&settings_for(&sink));
        let first = Template::Verification.render(None, &vars());
        let second = Template::PasswordReset.render(None, &vars());

        mailer.send("Bob@Example.com", &first).await.expect("first");
        mailer
            .send("bob@example.com", &second)
            .await
            .expect("second");

        let a = sink
            .wait_for("bob@example.com", WAIT)
            .await
            .expect("first mail");
        let b = sink
            .wait_for("bob@example.com", WAIT)
            .await
            .expect("second mail");
        let none = sink
            .wait_for("bob@example.com", Duration::from_millis(50))
            .await;
        assert_eq!(a.subject(), Some(first.subject));
        assert_eq!(b.subject(), Some(second.subject));
        assert!(none.is_none(), "no third mail");
        assert_eq!(sink.count_for("bob@example.com"), 2);
        assert_eq!(sink.messages().len(), 2);
    }

    #[tokio::test]
    async fn non_ascii_subject_and_sender_name_are_decoded() {
        let sink = start().await;
        let mut settings = settings_for(&sink);
        settings.meta.sender_name = "Équipe Sink".into();
        let vars = TemplateVars {
            app_name: "Café ☕".into(),
            ..vars()
        };
        let mail = Template::EmailChange.render(None, &vars);

        Mailer::new(&settings)
            .send("zoe@example.com", &mail)
            .await
            .expect("sent");
        let got = sink
            .wait_for("zoe@example.com", WAIT)
            .await
            .expect("arrives");

        assert_eq!(got.subject(), Some(mail.subject));
        assert_eq!(got.find_token().as_deref(), Some(TOKEN));
        assert!(got.decoded().contains("Café ☕"), "{}", got.decoded());
    }

    #[tokio::test]
    async fn unreachable_server_fails_quickly_with_an_smtp_error() {
        let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let mut settings = Settings::default();
        settings.smtp.enabled = true;
        settings.smtp.host = "127.0.0.1".into();
        settings.smtp.port = u64::from(port);
        let mail = Template::Otp.render(None, &vars());

        let result = Mailer::new(&settings).send("x@example.com", &mail).await;

        assert!(matches!(result, Err(MailError::Smtp(_))), "{result:?}");
    }
}
