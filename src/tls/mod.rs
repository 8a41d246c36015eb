//! HTTPS for `serve`: certificates from ACME (Let's Encrypt, as PocketBase's
//! `serve example.com` does) or from a PEM pair the operator brings
//! (`--tls-cert`/`--tls-key`), served through rustls with ring's crypto.
//!
//! - [`TlsOptions::from_flags`] turns the command line into a plan (or an
//!   error line) before anything is bound.
//! - [`start`] loads what it can now (the PEM pair, cached ACME
//!   certificates), starts the background work (ACME issuance and renewal,
//!   or watching the PEM files), and hands back the rustls config for the
//!   HTTPS listener and the policy for the plain-HTTP one ([`redirect`]).
//! - [`Certs`] picks the certificate per handshake. Under ACME only the
//!   domains named on the command line ever get one: certificates are
//!   ordered for those names at start, never on demand for whatever SNI a
//!   client sends, so nobody can make us spam the CA.

pub mod acme;
pub mod files;
pub mod redirect;
pub mod x509;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// PocketBase's certificate cache folder under the data dir.
pub const CACHE_DIR_NAME: &str = ".autocert_cache";

/// Let's Encrypt's production directory (the default `--acme-directory`).
pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The listeners' defaults once HTTPS is on (PocketBase's).
const DEFAULT_HTTP: ([u8; 4], u16) = ([0, 0, 0, 0], 80);
const DEFAULT_HTTPS: ([u8; 4], u16) = ([0, 0, 0, 0], 443);

/// Why HTTPS could not be set up. Each is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Usage(&'static str),
    #[error(
        "invalid domain {0:?}: expected a DNS name like example.com (no scheme, port or wildcard)"
    )]
    BadDomain(String),
    #[error("invalid --acme-directory {0:?}: expected an https:// URL")]
    BadDirectoryUrl(String),
    #[error("ACME directory {url} answered with something else than an ACME directory: {reason}")]
    NotADirectory { url: String, reason: String },
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path} holds no {expected}")]
    NoPem {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("the private key {key} does not belong to the certificate {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("the private key {0} is not usable: {1}")]
    BadKey(PathBuf, String),
    #[error("certificate cache {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ACME: {0}")]
    Acme(String),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Where certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// ACME HTTP-01 orders for the domains, answered on the plain-HTTP listener.
    Acme {
        directory: String,
        /// A PEM root to trust for the directory (a test CA such as pebble's).
        ca_root: Option<PathBuf>,
        /// Contact address given to the CA (expiry notices).
        email: Option<String>,
    },
    /// A PEM certificate chain and private key, re-read when they change.
    Files { cert: PathBuf, key: PathBuf },
}

/// HTTPS as asked for on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Lower-cased DNS names; the first is the one the banner shows.
    pub domains: Vec<String>,
    /// The plain-HTTP listener: ACME challenges and redirects to HTTPS.
    pub http: SocketAddr,
    /// The HTTPS listener serving the application.
    pub https: SocketAddr,
    pub source: CertSource,
}

/// The raw `serve` flags that concern HTTPS.
#[derive(Debug, Clone, Default)]
pub struct TlsFlags {
    pub domains: Vec<String>,
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub acme_directory: Option<String>,
    pub acme_ca_root: Option<PathBuf>,
    pub acme_email: Option<String>,
}

impl TlsOptions {
    /// `None` when HTTPS is off (no domains and no certificate files).
    pub fn from_flags(flags: TlsFlags) -> Result<Option<Self>, TlsError> {
        let domains = flags
            .domains
            .iter()
            .map(|d| parse_domain(d))
            .collect::<Result<Vec<_>, _>>()?;
        let acme_flags = flags.acme_directory.is_some()
            || flags.acme_ca_root.is_some()
            || flags.acme_email.is_some();
        let source = match (flags.tls_cert, flags.tls_key) {
            (Some(cert), Some(key)) => {
                if acme_flags {
                    return Err(TlsError::Usage(
                        "--acme-* flags do not apply with --tls-cert/--tls-key",
                    ));
                }
                CertSource::Files { cert, key }
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(TlsError::Usage(
                    "--tls-cert and --tls-key must be given together",
                ));
            }
            (None, None) if domains.is_empty() => {
                if flags.https.is_some() {
                    return Err(TlsError::Usage(
                        "--https needs domain arguments (ACME certificates) or --tls-cert/--tls-key",
                    ));
                }
                if acme_flags {
                    return Err(TlsError::Usage(
                        "--acme-* flags need domain arguments, e.g. serve example.com",
                    ));
                }
                return Ok(None);
            }
            (None, None) => {
                let directory = flags
                    .acme_directory
                    .unwrap_or_else(|| LETS_ENCRYPT_DIRECTORY.to_owned());
                check_directory_url(&directory)?;
                CertSource::Acme {
                    directory,
                    ca_root: flags.acme_ca_root,
                    email: flags.acme_email,
                }
            }
        };
        Ok(Some(Self {
            domains,
            http: flags.http.unwrap_or_else(|| DEFAULT_HTTP.into()),
            https: flags.https.unwrap_or_else(|| DEFAULT_HTTPS.into()),
            source,
        }))
    }

    /// The public base URL: `https://` + the first domain (PocketBase's
    /// banner), with the port when it is not 443.
    pub fn base_url(&self, https_port: u16) -> String {
        let Some(host) = self.domains.first() else {
            return format!("https://{}", SocketAddr::new(self.https.ip(), https_port));
        };
        if https_port == 443 {
            format!("https://{host}")
        } else {
            format!("https://{host}:{https_port}")
        }
    }
}

/// A DNS name we may ask a certificate for (and use as a cache file name):
/// letters, digits and hyphens in dot-separated labels, lower-cased.
pub fn parse_domain(raw: &str) -> Result<String, TlsError> {
    let name = raw.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let ok = (1..=253).contains(&name.len())
        && name.split('.').all(label_ok)
        // An IP address is not a DNS name (and ACME HTTP-01 can't prove one here).
        && name.parse::<std::net::IpAddr>().is_err()
        && !name.split('.').next_back().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(name)
    } else {
        Err(TlsError::BadDomain(raw.to_owned()))
    }
}

fn check_directory_url(url: &str) -> Result<(), TlsError> {
    let bad = || TlsError::BadDirectoryUrl(url.to_owned());
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("https") || uri.host().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(())
}

/// The certificates the HTTPS listener can present, chosen by SNI.
#[derive(Debug, Default)]
pub struct Certs {
    /// ACME: one certificate per configured domain.
    by_name: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    /// `--tls-cert`: one certificate for every handshake.
    any: RwLock<Option<Arc<CertifiedKey>>>,
}

impl Certs {
    pub fn set_for(&self, domain: &str, key: Arc<CertifiedKey>) {
        if let Ok(mut map) = self.by_name.write() {
            map.insert(domain.to_owned(), key);
        }
    }

    pub fn get_for(&self, domain: &str) -> Option<Arc<CertifiedKey>> {
        self.by_name.read().ok()?.get(domain).cloned()
    }

    pub fn set_any(&self, key: Arc<CertifiedKey>) {
        if let Ok(mut any) = self.any.write() {
            *any = Some(key);
        }
    }

    pub fn get_any(&self) -> Option<Arc<CertifiedKey>> {
        self.any.read().ok()?.clone()
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(any) = self.get_any() {
            return Some(any);
        }
        // No certificate for an unknown name: the handshake fails.
        let name = hello.server_name()?.to_ascii_lowercase();
        self.get_for(&name)
    }
}

/// The rustls provider everything here uses (ring; never aws-lc-rs).
/// Newer rustls 0.23 releases mark ring's provider deprecated because it has
/// no post-quantum key exchange; it stays supported, and ring is the one
/// crypto backend the whole tree (lettre, reqwest) builds with.
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// HTTPS set up: the listener config and what the plain-HTTP side needs.
pub struct Tls {
    pub server_config: Arc<rustls::ServerConfig>,
    pub redirect: redirect::Policy,
}

/// Loads certificates, starts renewal or file watching, and builds the
/// rustls config. Must run inside the tokio runtime.
pub async fn start(opts: &TlsOptions, data_dir: &std::path::Path) -> Result<Tls, TlsError> {
    let certs = Arc::new(Certs::default());
    let challenges = acme::Challenges::default();
    match &opts.source {
        CertSource::Files { cert, key } => {
            let pair = files::load_pair(cert, key)?;
            certs.set_any(pair);
            files::watch(cert.clone(), key.clone(), Arc::downgrade(&certs));
        }
        CertSource::Acme {
            directory,
            ca_root,
            email,
        } => {
            let manager = acme::Manager::new(acme::ManagerConfig {
                domains: opts.domains.clone(),
                directory: directory.clone(),
                ca_root: ca_root.clone(),
                email: email.clone(),
                cache_dir: data_dir.join(CACHE_DIR_NAME),
                certs: certs.clone(),
                challenges: challenges.clone(),
            })?;
            manager.load_cached();
            manager.check_directory().await?;
            manager.spawn();
        }
    }
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certs.clone());
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        server_config: Arc::new(server_config),
        redirect: redirect::Policy {
            domains: opts.domains.clone(),
            https_port: Arc::new(std::sync::atomic::AtomicU16::new(opts.https.port())),
            certs,
            challenges,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_dns_names_and_nothing_that_could_leave_the_cache_dir() {
        for (raw, want) in [
            ("example.com", Some("example.com")),
            ("Ferro.Test.", Some("ferro.test")),
            ("a-b.c0.io", Some("a-b.c0.io")),
            ("localhost", Some("localhost")),
            ("../etc/passwd", None),
            ("a/b.com", None),
            ("*.example.com", None),
            ("example.com:443", None),
            ("https://example.com", None),
            ("127.0.0.1", None),
            ("-bad.com", None),
            ("", None),
            ("a..b", None),
            ("exa mple.com", None),
        ] {
            assert_eq!(parse_domain(raw).ok().as_deref(), want, "{raw:?}");
        }
    }

    fn flags() -> TlsFlags {
        TlsFlags::default()
    }

    #[test]
    fn the_flags_turn_into_a_plan_or_one_clear_error() {
        assert_eq!(TlsOptions::from_flags(flags()).expect("plain"), None);

        let acme = TlsOptions::from_flags(TlsFlags {
            domains: vec!["Example.com".into()],
            ..flags()
        })
        .expect("acme")
        .expect("on");
        assert_eq!(acme.domains, ["example.com"]);
        assert_eq!(acme.http, SocketAddr::from(([0, 0, 0, 0], 80)));
        assert_eq!(acme.https, SocketAddr::from(([0, 0, 0, 0], 443)));
        assert_eq!(
            acme.source,
            CertSource::Acme {
                directory: LETS_ENCRYPT_DIRECTORY.into(),
                ca_root: None,
                email: None
            }
        );
        assert_eq!(acme.base_url(443), "https://example.com");
        assert_eq!(acme.base_url(8443), "https://example.com:8443");

        let files = TlsOptions::from_flags(TlsFlags {
            https: Some(SocketAddr::from(([127, 0, 0, 1], 8443))),
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..flags()
        })
        .expect("files")
        .expect("on");
        assert_eq!(
            files.source,
            CertSource::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            }
        );

        for (bad, why) in [
            (
                TlsFlags {
                    https: Some(SocketAddr::from(([127, 0, 0, 1], 8443))),
                    ..flags()
                },
                "--https alone has no certificate",
            ),
            (
                TlsFlags {
                    tls_cert: Some("c.pem".into()),
                    ..flags()
                },
                "a cert without its key",
            ),
            (
                TlsFlags {
                    acme_directory: Some("https://ca.test/dir".into()),
                    ..flags()
                },
                "ACME without domains",
            ),
            (
                TlsFlags {
                    domains: vec!["a.test".into()],
                    acme_directory: Some("http://ca.test/dir".into()),
                    ..flags()
                },
                "a directory over plain HTTP",
            ),
            (
                TlsFlags {
                    domains: vec!["a.test".into()],
                    acme_directory: Some("not a url".into()),
                    ..flags()
                },
                "not a URL",
            ),
            (
                TlsFlags {
                    domains: vec!["a.test".into()],
                    tls_cert: Some("c.pem".into()),
                    tls_key: Some("k.pem".into()),
                    acme_email: Some("me@a.test".into()),
                    ..flags()
                },
                "ACME flags with a PEM pair",
            ),
            (
                TlsFlags {
                    domains: vec!["../x".into()],
                    ..flags()
                },
                "a path as a domain",
            ),
        ] {
            let err = TlsOptions::from_flags(bad).expect_err(why);
            assert!(!err.to_string().contains('\n'), "{why}: one line");
        }
    }
}
