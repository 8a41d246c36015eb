//! Connections to PostgreSQL: the URL (`postgres://user:pass@host:5432/db`,
//! with libpq's `sslmode` and `sslrootcert`), TLS through rustls, and the
//! system tables' DDL. The blocking client runs its own small runtime, so
//! callers use it from a dedicated thread, never on the async executor.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use postgres::Client;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The system tables (`_migrations`, `_collections`, `_params`, `_logs`)
/// on PostgreSQL: jsonb for JSON (`_params` keeps text: sealed settings are
/// base64), text in byte order (`COLLATE "C"`).
pub const SYSTEM_SCHEMA: &str = include_str!("system.sql");

/// Why a PostgreSQL connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PgConnectError {
    #[error("the database URL is not valid: {0}")]
    Url(String),
    #[error("cannot read sslrootcert {path}: {reason}")]
    RootCert { path: PathBuf, reason: String },
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
}

/// A PostgreSQL failure in words: the server's own message (and detail)
/// when it sent one, else the client's error with its causes (a TLS
/// handshake's says which certificate check failed).
pub fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        };
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// How long making a connection may take (TCP, TLS, the startup and
/// password exchange) unless the URL sets libpq's `connect_timeout`: an
/// unreachable host, or a proxy that accepts and then says nothing, fails
/// in seconds, not after the operating system's TCP timeout or never.
pub const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What to do about a certificate the client did not trust.
const TLS_HINT: &str = "; pass sslrootcert=/path/to/ca.pem in the URL to trust the server's CA, \
                        or sslmode=disable to connect without TLS";

/// A database URL split into what rust-postgres reads and the CA file it
/// does not (`sslrootcert`), with libpq's `verify-ca`/`verify-full` modes
/// read as `require`: rustls always verifies the chain and the host name.
#[derive(Debug)]
struct Target {
    config: postgres::Config,
    root_cert: Option<PathBuf>,
}

impl Target {
    fn parse(url: &str) -> Result<Self, PgConnectError> {
        let mut parsed = url::Url::parse(url).map_err(|e| PgConnectError::Url(e.to_string()))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(PgConnectError::Url(
                "it must start with postgres:// or postgresql://".into(),
            ));
        }
        let mut root_cert = None;
        let mut kept = Vec::new();
        for (key, value) in parsed.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("sslrootcert", path) => root_cert = Some(PathBuf::from(path)),
                ("sslmode", "verify-ca" | "verify-full") => {
                    kept.push(("sslmode".to_owned(), "require".to_owned()));
                }
                (k, v) => kept.push((k.to_owned(), v.to_owned())),
            }
        }
        if kept.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(kept);
        }
        let mut config = postgres::Config::from_str(parsed.as_str())
            .map_err(|e| PgConnectError::Url(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        Ok(Self { config, root_cert })
    }

    /// rustls trusting the OS roots plus `sslrootcert`, with ring's crypto.
    fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgConnectError> {
        let mut roots = rustls::RootCertStore::empty();
        // A root the OS store holds but rustls cannot parse is skipped, as
        // every rustls client does; an unreadable store leaves it empty.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = &self.root_cert {
            let root_err = |reason: String| PgConnectError::RootCert {
                path: path.clone(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| root_err(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| root_err(e.to_string()))?;
            if certs.is_empty() {
                return Err(root_err("no PEM certificate in it".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| root_err(e.to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| PgConnectError::Url(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

/// Connects to `url`, giving up after its connect timeout. Call from a
/// dedicated thread: the blocking client refuses to run inside an async
/// runtime.
pub fn connect(url: &str) -> Result<Client, PgConnectError> {
    let target = Target::parse(url)?;
    let tls = target.tls()?;
    let limit = target
        .config
        .get_connect_timeout()
        .copied()
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    // The client's own timeout covers the TCP connect only; a peer that
    // accepts and stays silent would hold the handshake forever. So it runs
    // on a thread of its own, which is left behind if the limit passes (it
    // ends when the peer answers or closes; the caller has its error).
    let (sent, answer) = std::sync::mpsc::channel();
    let config = target.config;
    std::thread::Builder::new()
        .name("ferrobase-pg-connect".into())
        .spawn(move || {
            let _ = sent.send(config.connect(tls));
        })
        .map_err(|e| PgConnectError::Connect(format!("cannot start a thread: {e}")))?;
    match answer.recv_timeout(limit) {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => {
            let mut message = describe(&e);
            if message.contains("certificate") {
                message.push_str(TLS_HINT);
            }
            Err(PgConnectError::Connect(message))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(PgConnectError::Connect(
            "the connection attempt stopped unexpectedly".into(),
        )),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(PgConnectError::Connect(format!(
            "no PostgreSQL handshake within {} s (connect_timeout in the URL sets this limit)",
            limit.as_secs_f64()
        ))),
    }
}

/// `url` with its password replaced by `***`, for messages and logs.
pub fn redacted(url: &str) -> String {
    crate::config::redact_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslrootcert_is_ours_and_verify_modes_read_as_require() {
        let t = Target::parse(
            "postgres://app:secret@db.example:5433/app?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=fb",
        )
        .expect("parse");
        assert_eq!(t.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(t.config.get_ssl_mode(), postgres::config::SslMode::Require);
        assert_eq!(t.config.get_application_name(), Some("fb"));
        assert_eq!(t.config.get_dbname(), Some("app"));
        assert_eq!(t.config.get_user(), Some("app"));
    }

    #[test]
    fn other_schemes_and_unknown_options_are_refused() {
        for url in [
            "mysql://u@h/db",
            "host=localhost user=x",
            "postgres://u@h/db?sslmode=maybe",
            "postgres://u@h/db?nonsense=1",
        ] {
            assert!(
                matches!(Target::parse(url), Err(PgConnectError::Url(_))),
                "{url} must be refused"
            );
        }
    }

    #[test]
    fn a_missing_root_cert_file_is_a_clear_error() {
        let t = Target::parse("postgres://u@h/db?sslrootcert=/nonexistent/ca.pem").expect("parse");
        assert!(matches!(t.tls(), Err(PgConnectError::RootCert { .. })));
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redacted("postgres://app:s3cret@h:5432/db"),
            "postgres://app:***@h:5432/db"
        );
        assert!(!redacted("postgres://app:s3cret@h/db?x=1").contains("s3cret"));
        assert!(!redacted("postgres://app:s3cret@[::1").contains("s3cret"));
    }
}
