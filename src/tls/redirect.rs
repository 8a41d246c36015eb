//! The plain-HTTP listener while HTTPS is on: it answers ACME HTTP-01
//! challenges and sends everything else to HTTPS, as PocketBase's autocert
//! handler does (GET/HEAD get a 302 to the same path and query, other
//! methods a 400 "Use HTTPS").
//!
//! Unlike autocert it is no open redirect: the target host is the request's
//! `Host` only when that is one of our domains (or, with `--tls-cert`, a
//! name the certificate is valid for); any other host is sent to the first
//! domain, or refused when there is none.
//!
//! This listener is its own small actix server, not part of the API's route
//! table, so it lives here rather than under `api/`.

use super::Certs;
use super::acme::Challenges;
use actix_web::dev::Server;
use actix_web::http::{Method, header};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

/// ACME's HTTP-01 path prefix (RFC 8555 §8.3).
pub const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// What the redirect listener needs to know.
#[derive(Clone)]
pub struct Policy {
    /// The command line's domains; the first is the fallback target.
    pub domains: Vec<String>,
    /// The HTTPS listener's port (left out of the target when 443); set
    /// once that listener is bound, as it may be asked for as port 0.
    pub https_port: Arc<AtomicU16>,
    pub certs: Arc<Certs>,
    pub challenges: Challenges,
}

impl Policy {
    /// Whether `host` (no port, lower-cased) may be redirected to.
    fn allows(&self, host: &str) -> bool {
        if self.domains.iter().any(|d| d == host) {
            return true;
        }
        // With --tls-cert: the names the certificate itself is valid for.
        let Some(pair) = self.certs.get_any() else {
            return false;
        };
        let (Some(leaf), Ok(name)) = (
            pair.end_entity_cert().ok(),
            rustls_pki_types::ServerName::try_from(host),
        ) else {
            return false;
        };
        let is_dns = matches!(name, rustls_pki_types::ServerName::DnsName(_));
        is_dns
            && webpki::EndEntityCert::try_from(leaf)
                .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
    }

    /// The `Location` for a request, or `None` when there is nowhere safe.
    pub fn target(&self, host_header: Option<&str>, path_and_query: &str) -> Option<String> {
        let host = host_header
            .map(strip_port)
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| self.allows(h))
            .or_else(|| self.domains.first().cloned())?;
        let port = match self.https_port.load(Ordering::Relaxed) {
            443 => String::new(),
            other => format!(":{other}"),
        };
        let path = if path_and_query.starts_with('/') {
            path_and_query
        } else {
            "/"
        };
        Some(format!("https://{host}{port}{path}"))
    }
}

/// `example.com:80` → `example.com`; `[::1]:80` → `[::1]` (never allowed).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

async fn handle(req: HttpRequest, policy: web::Data<Policy>) -> HttpResponse {
    let path = req.uri().path();
    if let Some(token) = path.strip_prefix(CHALLENGE_PREFIX) {
        return match policy.challenges.get(token) {
            Some(key_authorization) => HttpResponse::Ok()
                .content_type("text/plain")
                .body(key_authorization),
            None => HttpResponse::NotFound().finish(),
        };
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return HttpResponse::BadRequest().body("Use HTTPS");
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    match policy.target(host, path_and_query) {
        Some(location) => HttpResponse::Found()
            .insert_header((header::LOCATION, location))
            .finish(),
        None => HttpResponse::BadRequest().body("Use HTTPS"),
    }
}

/// Binds the plain-HTTP listener and starts serving it.
pub fn serve(addr: SocketAddr, policy: Policy) -> Result<(Server, SocketAddr), super::TlsError> {
    let bind_err = |source| super::TlsError::Bind { addr, source };
    let listener = TcpListener::bind(addr).map_err(bind_err)?;
    let bound = listener.local_addr().map_err(bind_err)?;
    let policy = web::Data::new(policy);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(policy.clone())
            .default_service(web::to(handle))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .map_err(bind_err)?
    .run();
    Ok((server, bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(domains: &[&str], https_port: u16) -> Policy {
        Policy {
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            https_port: Arc::new(AtomicU16::new(https_port)),
            certs: Arc::default(),
            challenges: Challenges::default(),
        }
    }

    #[test]
    fn redirects_go_to_our_domains_only() {
        let p = policy(&["ferro.test", "api.ferro.test"], 443);
        for (host, path, want, why) in [
            (
                Some("ferro.test"),
                "/a?b=1",
                Some("https://ferro.test/a?b=1"),
                "own domain",
            ),
            (
                Some("FERRO.test:80"),
                "/",
                Some("https://ferro.test/"),
                "case and port",
            ),
            (
                Some("api.ferro.test"),
                "/x",
                Some("https://api.ferro.test/x"),
                "second domain",
            ),
            (
                Some("evil.example"),
                "/x",
                Some("https://ferro.test/x"),
                "foreign host",
            ),
            (
                Some("ferro.test.evil.example"),
                "/",
                Some("https://ferro.test/"),
                "suffix trick",
            ),
            (
                Some("evil.example:ferro.test"),
                "/",
                Some("https://ferro.test/"),
                "port trick",
            ),
            (
                Some("[::1]:80"),
                "/",
                Some("https://ferro.test/"),
                "IPv6 literal",
            ),
            (
                Some("1.2.3.4"),
                "/",
                Some("https://ferro.test/"),
                "IP address",
            ),
            (None, "/", Some("https://ferro.test/"), "no Host"),
            (
                Some("ferro.test"),
                "//evil.example/",
                Some("https://ferro.test//evil.example/"),
                "path stays a path",
            ),
        ] {
            assert_eq!(p.target(host, path).as_deref(), want, "{why}");
        }
        assert_eq!(
            policy(&["ferro.test"], 8443)
                .target(Some("ferro.test:8080"), "/")
                .as_deref(),
            Some("https://ferro.test:8443/"),
            "a non-default HTTPS port is kept"
        );
        assert_eq!(
            policy(&[], 443).target(Some("evil.example"), "/"),
            None,
            "no domains and no certificate: nowhere safe to send it"
        );
    }

    #[test]
    fn with_a_certificate_file_the_names_it_covers_are_allowed() {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert =
            rcgen::CertificateParams::new(vec!["*.ferro.test".to_owned(), "ferro.test".to_owned()])
                .expect("params")
                .self_signed(&key)
                .expect("cert");
        let pair = super::super::files::pair_from_pem(
            cert.pem().as_bytes(),
            key.serialize_pem().as_bytes(),
            std::path::Path::new("c"),
            std::path::Path::new("k"),
        )
        .expect("pair");
        let p = policy(&[], 443);
        p.certs.set_any(pair);
        for (host, want, why) in [
            ("ferro.test", Some("https://ferro.test/"), "exact name"),
            (
                "www.ferro.test",
                Some("https://www.ferro.test/"),
                "wildcard",
            ),
            ("evil.example", None, "not in the certificate"),
            ("a.b.ferro.test", None, "wildcards cover one label"),
        ] {
            assert_eq!(p.target(Some(host), "/").as_deref(), want, "{why}");
        }
    }
}
