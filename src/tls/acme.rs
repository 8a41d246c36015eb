//! Certificates from an ACME CA (Let's Encrypt by default) for the domains
//! given to `serve`, one certificate per domain as PocketBase's autocert
//! gets them, proven with HTTP-01 on the plain-HTTP listener.
//!
//! - The protocol is `instant-acme`'s (RFC 8555); its HTTP goes through our
//!   reqwest client (rustls + ring, the OS roots, or `--acme-ca-root`).
//! - Cache (`<dataDir>/.autocert_cache`): one file per domain holding the
//!   private key then the chain in PEM, autocert's layout, so certificates
//!   cached by PocketBase are picked up; the account key sits beside them in
//!   `ferrobase_acme_account.pem` (autocert's account file is SEC1, which the
//!   ACME client can't take, so it is left alone).
//! - Renewal: a background task re-orders a domain's certificate once two
//!   thirds of its lifetime have passed ([`super::x509::Validity::renew_at`]);
//!   failures are retried with a doubling pause from one minute to six hours.

use super::{Certs, TlsError, files, x509};
use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{
    Account, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, HttpClient,
    Identifier, Key, NewOrder, OrderStatus, RetryPolicy,
};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The account key's file in the cache dir.
const ACCOUNT_KEY_FILE: &str = "ferrobase_acme_account.pem";
/// Bound on each request to the CA.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the directory check at start.
const START_CHECK_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for the CA to validate and to issue.
const ORDER_WAIT: Duration = Duration::from_secs(90);
/// Retry pauses after a failed order.
const FIRST_RETRY: Duration = Duration::from_secs(60);
const LONGEST_RETRY: Duration = Duration::from_secs(6 * 3600);
/// Shortest pause between rounds.
const MIN_SLEEP: Duration = Duration::from_secs(60);
/// Longest sleep between looks at the certificates (clock changes, etc.).
const LONGEST_SLEEP: Duration = Duration::from_secs(12 * 3600);

/// Pending HTTP-01 answers: token → key authorization.
#[derive(Debug, Clone, Default)]
pub struct Challenges(Arc<RwLock<HashMap<String, String>>>);

impl Challenges {
    pub fn get(&self, token: &str) -> Option<String> {
        self.0.read().ok()?.get(token).cloned()
    }

    fn insert(&self, token: String, key_authorization: String) {
        if let Ok(mut map) = self.0.write() {
            map.insert(token, key_authorization);
        }
    }

    fn remove(&self, token: &str) {
        if let Ok(mut map) = self.0.write() {
            map.remove(token);
        }
    }
}

pub struct ManagerConfig {
    pub domains: Vec<String>,
    pub directory: String,
    pub ca_root: Option<PathBuf>,
    pub email: Option<String>,
    pub cache_dir: PathBuf,
    pub certs: Arc<Certs>,
    pub challenges: Challenges,
}

/// Issues and renews the domains' certificates.
pub struct Manager {
    config: ManagerConfig,
    http: reqwest::Client,
    account: tokio::sync::Mutex<Option<Account>>,
}

/// Our reqwest client as instant-acme's transport.
struct Transport(reqwest::Client);

impl HttpClient for Transport {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.0.clone();
        Box::pin(async move {
            let other = |e: reqwest::Error| instant_acme::Error::Other(Box::new(e));
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(other)?;
            let (status, headers) = (response.status(), response.headers().clone());
            let bytes = response.bytes().await.map_err(other)?;
            let mut out = http::Response::new(http_body_util::Full::new(bytes));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok(BytesResponse::from(out))
        })
    }
}

fn cache_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Cache {
        path: path.to_owned(),
        source,
    }
}

/// Writes a private file atomically (temp then rename), mode 0600.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(cache_err(path))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Manager {
    pub fn new(config: ManagerConfig) -> Result<Arc<Self>, TlsError> {
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ferrobase/", env!("CARGO_PKG_VERSION")));
        if let Some(root) = &config.ca_root {
            let pem = std::fs::read(root).map_err(|source| TlsError::Read {
                what: "ACME CA root",
                path: root.clone(),
                source,
            })?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .ok()
                .filter(|_| rustls_pki_types::CertificateDer::from_pem_slice(&pem).is_ok())
                .ok_or_else(|| TlsError::NoPem {
                    what: "ACME CA root",
                    path: root.clone(),
                    expected: "PEM CERTIFICATE block",
                })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| TlsError::Acme(format!("HTTP client: {e}")))?;
        let dir = &config.cache_dir;
        std::fs::create_dir_all(dir).map_err(cache_err(dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(cache_err(dir))?;
        }
        Ok(Arc::new(Self {
            config,
            http,
            account: tokio::sync::Mutex::new(None),
        }))
    }

    fn cert_path(&self, domain: &str) -> PathBuf {
        // `domain` passed `parse_domain`: no separators, no "..".
        self.config.cache_dir.join(domain)
    }

    /// Installs every cached certificate that has not expired.
    pub fn load_cached(&self) {
        for domain in &self.config.domains {
            let path = self.cert_path(domain);
            let Ok(pem) = std::fs::read(&path) else {
                continue;
            };
            match files::pair_from_pem(&pem, &pem, &path, &path) {
                Ok(pair) if expires_after(&pair, now()) => {
                    tracing::info!(domain, "using the cached certificate");
                    self.config.certs.set_for(domain, pair);
                }
                Ok(_) => tracing::info!(domain, "the cached certificate has expired"),
                Err(e) => tracing::warn!(domain, error = %e, "ignoring the cached certificate"),
            }
        }
    }

    /// Reads the directory (and registers the account) once at start: a
    /// URL that answers with something else than an ACME directory is a
    /// configuration error; an unreachable CA is retried in the background.
    pub async fn check_directory(&self) -> Result<(), TlsError> {
        match tokio::time::timeout(START_CHECK_TIMEOUT, self.account()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(instant_acme::Error::Json(e))) => Err(TlsError::NotADirectory {
                url: self.config.directory.clone(),
                reason: e.to_string(),
            }),
            Ok(Err(e)) => {
                tracing::warn!(directory = %self.config.directory, error = %e, "ACME CA not reachable yet; will retry");
                Ok(())
            }
            Err(_) => {
                tracing::warn!(directory = %self.config.directory, "ACME CA did not answer in time; will retry");
                Ok(())
            }
        }
    }

    /// The account, created (or found again by its key) on first use.
    async fn account(&self) -> Result<Account, instant_acme::Error> {
        let mut slot = self.account.lock().await;
        if let Some(account) = slot.as_ref() {
            return Ok(account.clone());
        }
        let key_path = self.config.cache_dir.join(ACCOUNT_KEY_FILE);
        let pkcs8 = match std::fs::read(&key_path)
            .ok()
            .and_then(|pem| PrivatePkcs8KeyDer::from_pem_slice(&pem).ok())
        {
            Some(der) => der,
            None => {
                let (_, der) = Key::generate_pkcs8()?;
                let pem = pem_block("PRIVATE KEY", der.secret_pkcs8_der());
                write_private(&key_path, pem.as_bytes())
                    .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
                der
            }
        };
        let key = Key::from_pkcs8_der(pkcs8.clone_key())?;
        let (account, _) = Account::builder_with_http(Box::new(Transport(self.http.clone())))
            .create_from_key(
                (key, rustls_pki_types::PrivateKeyDer::Pkcs8(pkcs8)),
                self.config.directory.clone(),
            )
            .await?;
        if let Some(email) = &self.config.email {
            let contact = format!("mailto:{email}");
            account.update_contacts(&[contact.as_str()]).await?;
        }
        *slot = Some(account.clone());
        Ok(account)
    }

    /// Starts the issue-and-renew loop.
    pub fn spawn(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut failures: u32 = 0;
            loop {
                let mut next = LONGEST_SLEEP;
                let mut failed = false;
                for domain in &self.config.domains {
                    if self.due_in(domain) <= 0 {
                        match self.issue(domain).await {
                            Ok(()) => tracing::info!(domain, "certificate issued"),
                            Err(e) => {
                                failed = true;
                                tracing::warn!(domain, error = %e, "certificate order failed");
                                continue;
                            }
                        }
                    }
                    let due_in = self.due_in(domain).max(0).unsigned_abs();
                    next = next.min(Duration::from_secs(due_in));
                }
                if failed {
                    let pause = FIRST_RETRY.saturating_mul(1 << failures.min(10));
                    next = next.min(pause.min(LONGEST_RETRY));
                    failures += 1;
                } else {
                    failures = 0;
                }
                // A floor, so a CA handing out already-due certificates
                // cannot make this loop spin.
                tokio::time::sleep(next.max(MIN_SLEEP)).await;
            }
        });
    }

    /// Seconds until a domain's certificate should be renewed (<= 0: now).
    fn due_in(&self, domain: &str) -> i64 {
        self.config
            .certs
            .get_for(domain)
            .and_then(|pair| leaf_validity(&pair))
            .map_or(0, |v| v.renew_at() - now())
    }

    /// One order for one domain, answered over HTTP-01.
    async fn issue(&self, domain: &str) -> Result<(), TlsError> {
        let acme = |e: instant_acme::Error| TlsError::Acme(e.to_string());
        let account = self.account().await.map_err(acme)?;
        let identifiers = [Identifier::Dns(domain.to_owned())];
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(acme)?;
        let mut tokens = Vec::new();
        let result = async {
            let mut authorizations = order.authorizations();
            while let Some(authz) = authorizations.next().await {
                let mut authz = authz.map_err(acme)?;
                match authz.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => continue,
                    other => return Err(TlsError::Acme(format!("authorization is {other:?}"))),
                }
                let mut challenge = authz
                    .challenge(ChallengeType::Http01)
                    .ok_or(TlsError::Acme("the CA offers no http-01 challenge".into()))?;
                let token = challenge.token.clone();
                self.config.challenges.insert(
                    token.clone(),
                    challenge.key_authorization().as_str().to_owned(),
                );
                tokens.push(token);
                challenge.set_ready().await.map_err(acme)?;
            }
            let wait = RetryPolicy::new().timeout(ORDER_WAIT);
            let status = order.poll_ready(&wait).await.map_err(acme)?;
            if status != OrderStatus::Ready {
                return Err(TlsError::Acme(format!("order is {status:?}, not ready")));
            }
            let key_pem = order.finalize().await.map_err(acme)?;
            let chain_pem = order.poll_certificate(&wait).await.map_err(acme)?;
            Ok((key_pem, chain_pem))
        }
        .await;
        for token in &tokens {
            self.config.challenges.remove(token);
        }
        let (key_pem, chain_pem) = result?;
        let bundle = format!("{key_pem}{chain_pem}");
        let path = self.cert_path(domain);
        let pair = files::pair_from_pem(bundle.as_bytes(), bundle.as_bytes(), &path, &path)?;
        write_private(&path, bundle.as_bytes())?;
        self.config.certs.set_for(domain, pair);
        Ok(())
    }
}

fn leaf_validity(pair: &rustls::sign::CertifiedKey) -> Option<x509::Validity> {
    x509::validity(pair.end_entity_cert().ok()?.as_ref())
}

fn expires_after(pair: &rustls::sign::CertifiedKey, at: i64) -> bool {
    leaf_validity(pair).is_some_and(|v| v.not_after > at)
}

/// PEM text for one DER block.
fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
