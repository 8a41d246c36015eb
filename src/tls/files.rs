//! `--tls-cert FILE --tls-key FILE`: the operator's own PEM certificate
//! chain and private key, checked to belong together at start and re-read
//! when either file changes (a renewal by certbot or similar), keeping the
//! old pair if the new one is broken.

use super::{Certs, TlsError};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

/// How often the files' modification times are looked at.
const WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// Reads and checks a PEM certificate chain and its private key.
pub fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let read = |what: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read("certificate", cert)?;
    let key_pem = read("private key", key)?;
    pair_from_pem(&cert_pem, &key_pem, cert, key)
}

/// Builds a certified key from PEM text (the paths only name the error).
pub fn pair_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert: &Path,
    key: &Path,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoPem {
            what: "certificate",
            path: cert.to_owned(),
            expected: "PEM CERTIFICATE block",
        });
    }
    let private = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsError::NoPem {
        what: "private key",
        path: key.to_owned(),
        expected: "PEM private key (PKCS#8, PKCS#1 or SEC1)",
    })?;
    let provider = super::provider();
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| TlsError::BadKey(key.to_owned(), e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        // Unknown: rustls could not read the certificate's public key; the
        // handshake would then fail for every client, so refuse it too.
        Err(_) => Err(TlsError::KeyMismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
        }),
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Re-reads the pair when either file's modification time changes, until
/// the certificate store is gone.
pub fn watch(cert: PathBuf, key: PathBuf, certs: Weak<Certs>) {
    tokio::spawn(async move {
        let mut seen = (modified(&cert), modified(&key));
        loop {
            tokio::time::sleep(WATCH_INTERVAL).await;
            let Some(certs) = certs.upgrade() else { return };
            let now = (modified(&cert), modified(&key));
            if now == seen {
                continue;
            }
            match load_pair(&cert, &key) {
                Ok(pair) => {
                    certs.set_any(pair);
                    seen = now;
                    tracing::info!(cert = %cert.display(), "reloaded the TLS certificate");
                }
                // Half-written (cert renewed, key not yet): try again next tick.
                Err(e) => tracing::warn!(error = %e, "kept the previous TLS certificate"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_matching_pair_loads_and_anything_else_is_one_clear_error() {
        let (cert, key) = pair("ferro.test");
        let (_, other_key) = pair("other.test");
        let (c, k) = (Path::new("c.pem"), Path::new("k.pem"));
        assert!(pair_from_pem(cert.as_bytes(), key.as_bytes(), c, k).is_ok());
        for (cert_pem, key_pem, want, why) in [
            (
                cert.as_str(),
                other_key.as_str(),
                "does not belong",
                "someone else's key",
            ),
            (
                "",
                key.as_str(),
                "holds no PEM CERTIFICATE",
                "empty certificate file",
            ),
            (
                key.as_str(),
                key.as_str(),
                "holds no PEM CERTIFICATE",
                "key given as the cert",
            ),
            (
                cert.as_str(),
                "",
                "holds no PEM private key",
                "empty key file",
            ),
            (
                cert.as_str(),
                cert.as_str(),
                "holds no PEM private key",
                "cert given as the key",
            ),
        ] {
            let err = pair_from_pem(cert_pem.as_bytes(), key_pem.as_bytes(), c, k)
                .expect_err(why)
                .to_string();
            assert!(err.contains(want), "{why}: {err}");
            assert!(!err.contains('\n'), "{why}: one line");
        }
    }

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let err = load_pair(
            Path::new("/nonexistent/c.pem"),
            Path::new("/nonexistent/k.pem"),
        )
        .expect_err("missing")
        .to_string();
        assert!(
            err.contains("cannot read certificate /nonexistent/c.pem"),
            "{err}"
        );
    }
}
