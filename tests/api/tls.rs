//! HTTPS for `ferrobase serve`, with the real binary on loopback:
//! certificates ordered from a local ACME CA (Debian's `pebble`, with
//! `pebble-challtestsrv` as its DNS so `ferro.test` is 127.0.0.1, and the
//! HTTP-01 challenge really answered on our plain-HTTP port), the plain-HTTP
//! redirect and its host policy, `--tls-cert/--tls-key`, and the one-line
//! start errors.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DOMAIN: &str = "ferro.test";
const PEBBLE: &str = "/usr/bin/pebble";
const CHALLTESTSRV: &str = "/usr/bin/pebble-challtestsrv";
/// Bound on every wait in this file.
const WAIT: Duration = Duration::from_secs(60);

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port below Linux's ephemeral range (32768-60999), so that
/// between this check and the server's bind no `bind(:0)` or outgoing
/// connection of a test running in parallel can take it. Ports come from
/// one counter per process (offset by the pid), never the same one twice.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id() % SPAN;
    for _ in 0..SPAN {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(FIRST + (offset + step) % SPAN).expect("below 32000");
        if TcpListener::bind(loopback(port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {FIRST} and {}", FIRST + SPAN)
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A CA and a `localhost`/127.0.0.1 certificate it signed, for pebble's
/// own HTTPS listeners (Debian's package ships no test certificates).
struct TestCa {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
}

fn test_ca() -> TestCa {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ferrobase test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().expect("server key");
    let server_cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("server params")
        .signed_by(&server_key, &issuer)
        .expect("server cert");
    TestCa {
        ca_pem: ca_cert.pem(),
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
    }
}

/// pebble and its DNS, started for one test.
struct Pebble {
    directory: String,
    management: String,
    ca_root: PathBuf,
    client: reqwest::Client,
    _dns: Proc,
    _pebble: Proc,
    _dir: tempfile::TempDir,
}

fn require_pebble() {
    assert!(
        Path::new(PEBBLE).exists() && Path::new(CHALLTESTSRV).exists(),
        "pebble is not installed: run `apt-get install -y pebble` (tests/run.sh does it in CI)"
    );
}

/// Starts pebble (validating HTTP-01 on `http_port`) and waits until its
/// directory answers.
async fn start_pebble(http_port: u16) -> Pebble {
    require_pebble();
    let dir = tempfile::tempdir().expect("tmp");
    let ca = test_ca();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let ca_root = write("ca.pem", &ca.ca_pem);
    let cert = write("cert.pem", &ca.server_cert_pem);
    let key = write("key.pem", &ca.server_key_pem);
    let (acme_port, mgmt_port, dns_port) = (free_port(), free_port(), free_port());
    let config = serde_json::json!({ "pebble": {
        "listenAddress": format!("127.0.0.1:{acme_port}"),
        "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
        "certificate": cert,
        "privateKey": key,
        "httpPort": http_port,
        "tlsPort": free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false
    }});
    let config_path = write("pebble.json", &config.to_string());
    let log = |name: &str| std::fs::File::create(dir.path().join(name)).expect("log");
    let dns = Proc(
        Command::new(CHALLTESTSRV)
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", free_port())])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .expect("pebble-challtestsrv starts"),
    );
    let pebble = Proc(
        Command::new(PEBBLE)
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            // Real validation (no PEBBLE_VA_ALWAYS_VALID), just no random delays.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("pebble starts"),
    );
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.ca_pem.as_bytes()).expect("ca"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let directory = format!("https://127.0.0.1:{acme_port}/dir");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(r) = client.get(&directory).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "pebble did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Pebble {
        directory,
        management: format!("https://127.0.0.1:{mgmt_port}"),
        ca_root,
        client,
        _dns: dns,
        _pebble: pebble,
        _dir: dir,
    }
}

/// `ferrobase serve …` with its first stdout line (the banner's).
fn serve(dir: &Path, args: &[&str]) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .arg("serve")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("serve.log")).expect("log"))
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    let proc = Proc(child);
    let first = rx.recv_timeout(WAIT).unwrap_or_else(|_| {
        panic!(
            "no banner; log: {}",
            std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
        )
    });
    assert!(
        !first.is_empty(),
        "serve stopped before its banner; log: {}",
        std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
    );
    (proc, first.trim().to_owned())
}

/// Runs `ferrobase serve …` expecting it to stop; returns (success, stderr).
fn serve_fails(dir: &Path, args: &[&str]) -> (bool, String) {
    let err_path = dir.join("failed.err");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .arg("serve")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).expect("err file"))
        .spawn()
        .expect("serve starts");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve {args:?} kept running; it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    (status.success(), stderr)
}

/// An HTTPS client that trusts only `root` and sends `name` to `addr`.
fn https_client(root_pem: &[u8], name: &str, addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root_pem).expect("root"))
        .resolve(name, addr)
        .tls_info(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// The leaf certificate the server presented.
fn peer_cert(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("a peer certificate")
        .to_vec()
}

/// Polls `url` until it answers 200 (the certificate may still be on its way).
async fn wait_for_health(client: &reqwest::Client, url: &str, log_dir: &Path) -> reqwest::Response {
    let deadline = Instant::now() + WAIT;
    loop {
        match client.get(url).send().await {
            Ok(r) if r.status() == 200 => return r,
            other => {
                if Instant::now() > deadline {
                    panic!(
                        "{url} never answered 200 (last: {other:?}); log: {}",
                        std::fs::read_to_string(log_dir.join("serve.log")).unwrap_or_default()
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The plain-HTTP listener's answer (status, Location) for a Host header.
async fn plain_http(
    port: u16,
    method: reqwest::Method,
    host: &str,
    path: &str,
) -> (u16, Option<String>) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let r = client
        .request(method, format!("http://127.0.0.1:{port}{path}"))
        .header("Host", host)
        .send()
        .await
        .expect("plain HTTP answers");
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (r.status().as_u16(), location)
}

#[tokio::test]
async fn serve_with_a_domain_gets_a_certificate_from_the_acme_ca_and_redirects_plain_http() {
    let (http_port, https_port) = (free_port(), free_port());
    let pebble = start_pebble(http_port).await;
    let data = crate::helpers::DataDir::new();
    let dir = data.path();
    let http = format!("127.0.0.1:{http_port}");
    let https = format!("127.0.0.1:{https_port}");
    let ca_root = pebble.ca_root.to_string_lossy().into_owned();
    let args = [
        DOMAIN,
        "--http",
        &http,
        "--https",
        &https,
        "--acme-directory",
        &pebble.directory,
        "--acme-ca-root",
        &ca_root,
        "--acme-email",
        "ops@ferro.test",
    ];
    let (server, banner) = serve(dir, &args);
    assert_eq!(
        banner,
        format!("Server started at https://{DOMAIN}:{https_port}"),
        "the banner shows the https URL"
    );

    // The issuing CA's root, from pebble's management port.
    let root = pebble
        .client
        .get(format!("{}/roots/0", pebble.management))
        .send()
        .await
        .expect("pebble root")
        .bytes()
        .await
        .expect("root body");
    let client = https_client(&root, DOMAIN, loopback(https_port));
    let health = format!("https://{DOMAIN}:{https_port}/api/health");
    let first = wait_for_health(&client, &health, dir).await;
    let leaf = peer_cert(&first);
    // reqwest verified the chain to pebble's root and the name; the SAN is there too.
    assert!(
        leaf.windows(DOMAIN.len()).any(|w| w == DOMAIN.as_bytes()),
        "the certificate names {DOMAIN}"
    );

    let cached = std::fs::read_to_string(dir.join(".autocert_cache").join(DOMAIN))
        .expect("the certificate is cached in .autocert_cache");
    assert!(
        cached.contains("PRIVATE KEY-----") && cached.contains("BEGIN CERTIFICATE"),
        "autocert's layout: key then chain"
    );

    // Plain HTTP: redirects to HTTPS, only ever to our domain.
    for (method, host, path, want, why) in [
        (
            reqwest::Method::GET,
            format!("{DOMAIN}:{http_port}"),
            "/api/health?x=1",
            (
                302,
                Some(format!("https://{DOMAIN}:{https_port}/api/health?x=1")),
            ),
            "GET keeps path and query",
        ),
        (
            reqwest::Method::HEAD,
            DOMAIN.to_owned(),
            "/_/",
            (302, Some(format!("https://{DOMAIN}:{https_port}/_/"))),
            "HEAD too",
        ),
        (
            reqwest::Method::GET,
            "evil.example".to_owned(),
            "/x",
            (302, Some(format!("https://{DOMAIN}:{https_port}/x"))),
            "a foreign Host goes to our domain, not to evil",
        ),
        (
            reqwest::Method::POST,
            DOMAIN.to_owned(),
            "/api/health",
            (400, None),
            "other methods: Use HTTPS",
        ),
        (
            reqwest::Method::GET,
            DOMAIN.to_owned(),
            "/.well-known/acme-challenge/unknown",
            (404, None),
            "no such challenge",
        ),
    ] {
        let got = plain_http(http_port, method, &host, path).await;
        assert_eq!(got, want, "{why}");
    }

    // An unknown SNI gets no certificate, and nothing is ordered for it.
    let stranger = https_client(&root, "other.test", loopback(https_port));
    let refused = stranger
        .get(format!("https://other.test:{https_port}/api/health"))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "no certificate for other.test: {refused:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !dir.join(".autocert_cache").join("other.test").exists(),
        "no order for a name we were not given"
    );

    // A restart serves the cached certificate instead of ordering another.
    drop(server);
    let (_server, _) = serve(dir, &args);
    let again = wait_for_health(&client, &health, dir).await;
    assert_eq!(peer_cert(&again), leaf, "the cached certificate is reused");
}

#[tokio::test]
async fn an_acme_directory_that_is_not_one_stops_the_start_with_one_line() {
    let pebble = start_pebble(free_port()).await;
    let data = crate::helpers::DataDir::new();
    let ca_root = pebble.ca_root.to_string_lossy().into_owned();
    let not_a_directory = pebble.directory.replace("/dir", "/nope");
    let http = format!("127.0.0.1:{}", free_port());
    let https = format!("127.0.0.1:{}", free_port());
    for (args, want, why) in [
        (
            vec![
                DOMAIN,
                "--http",
                &http,
                "--https",
                &https,
                "--acme-directory",
                &not_a_directory,
                "--acme-ca-root",
                &ca_root,
            ],
            "answered with something else than an ACME directory",
            "a URL that is no directory",
        ),
        (
            vec![
                DOMAIN,
                "--http",
                &http,
                "--https",
                &https,
                "--acme-directory",
                "http://127.0.0.1:1/dir",
            ],
            "expected an https:// URL",
            "plain HTTP",
        ),
        (
            vec![
                DOMAIN,
                "--http",
                &http,
                "--https",
                &https,
                "--acme-ca-root",
                "/nonexistent/root.pem",
            ],
            "cannot read ACME CA root /nonexistent/root.pem",
            "missing CA root",
        ),
        (
            vec!["../../etc", "--http", &http, "--https", &https],
            "invalid domain",
            "a path for a domain",
        ),
    ] {
        let (ok, stderr) = serve_fails(data.path(), &args);
        assert!(!ok, "{why}: must exit non-zero");
        assert!(stderr.contains(want), "{why}: {stderr}");
        assert!(!stderr.contains("panicked"), "{why}: {stderr}");
        assert_eq!(
            stderr
                .trim()
                .lines()
                .filter(|l| l.starts_with("error"))
                .count(),
            1,
            "{why}: {stderr}"
        );
    }
}

/// A self-signed PEM pair for `names`, written to `dir`.
fn pem_pair(dir: &Path, stem: &str, names: &[&str]) -> (PathBuf, PathBuf, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params")
            .self_signed(&key)
            .expect("cert");
    let cert_path = dir.join(format!("{stem}.crt"));
    let key_path = dir.join(format!("{stem}.key"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path, cert.pem())
}

#[tokio::test]
async fn tls_cert_and_key_serve_https_with_the_operators_pair() {
    let data = crate::helpers::DataDir::new();
    let dir = data.path();
    let (cert, key, cert_pem) = pem_pair(dir, "site", &[DOMAIN]);
    let (cert, key) = (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    );
    let http_port = free_port();
    let http = format!("127.0.0.1:{http_port}");
    let (_server, banner) = serve(
        dir,
        &[
            "--https",
            "127.0.0.1:0",
            "--http",
            &http,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
    );
    let port: u16 = banner
        .strip_prefix("Server started at https://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("banner: {banner:?}"));
    let client = https_client(cert_pem.as_bytes(), DOMAIN, loopback(port));
    let health = format!("https://{DOMAIN}:{port}/api/health");
    let response = wait_for_health(&client, &health, dir).await;
    assert_eq!(
        peer_cert(&response),
        rustls_pki_types_der(&cert_pem),
        "our pair is served"
    );

    // A renewed pair written over the files is served without a restart.
    let renewed_dir = tempfile::tempdir().expect("tmp");
    let (new_cert, new_key, new_pem) = pem_pair(renewed_dir.path(), "site", &[DOMAIN]);
    std::fs::copy(&new_key, &key).expect("new key");
    std::fs::copy(&new_cert, &cert).expect("new cert");
    let deadline = Instant::now() + WAIT;
    loop {
        // A fresh client each time: a resumed TLS session shows no new certificate.
        let fresh = https_client(new_pem.as_bytes(), DOMAIN, loopback(port));
        let served = fresh.get(&health).send().await.map(|r| peer_cert(&r));
        if served.as_ref().ok() == Some(&rustls_pki_types_der(&new_pem)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed pair was never served"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    for (host, want, why) in [
        (
            DOMAIN.to_owned(),
            (302, Some(format!("https://{DOMAIN}:{port}/"))),
            "a name the certificate covers",
        ),
        (
            "evil.example".to_owned(),
            (400, None),
            "no domains given and not in the certificate: no redirect",
        ),
    ] {
        assert_eq!(
            plain_http(http_port, reqwest::Method::GET, &host, "/").await,
            want,
            "{why}"
        );
    }
}

fn rustls_pki_types_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("pem")
        .to_vec()
}

#[tokio::test]
async fn a_bad_tls_pair_stops_the_start_with_one_clear_line() {
    let data = crate::helpers::DataDir::new();
    let dir = data.path();
    let (cert, _, _) = pem_pair(dir, "a", &[DOMAIN]);
    let (_, other_key, _) = pem_pair(dir, "b", &[DOMAIN]);
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let (cert, other_key) = (s(&cert), s(&other_key));
    let https = format!("127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    for (args, want, why) in [
        (
            vec![
                "--https",
                &https,
                "--http",
                &http,
                "--tls-cert",
                &cert,
                "--tls-key",
                &other_key,
            ],
            "does not belong to the certificate",
            "a key that is not the certificate's",
        ),
        (
            vec![
                "--https",
                &https,
                "--http",
                &http,
                "--tls-cert",
                "/nonexistent/c.pem",
                "--tls-key",
                &other_key,
            ],
            "cannot read certificate /nonexistent/c.pem",
            "a missing certificate",
        ),
        (
            vec![
                "--https",
                &https,
                "--http",
                &http,
                "--tls-cert",
                &cert,
                "--tls-key",
                &cert,
            ],
            "holds no PEM private key",
            "the certificate given as the key",
        ),
        (
            vec!["--https", &https, "--tls-cert", &cert],
            "--tls-cert and --tls-key must be given together",
            "a certificate without a key",
        ),
        (
            vec!["--https", &https],
            "--https needs domain arguments",
            "HTTPS without any certificate",
        ),
    ] {
        let (ok, stderr) = serve_fails(dir, &args);
        assert!(!ok, "{why}: must exit non-zero");
        assert!(stderr.contains(want), "{why}: {stderr}");
        assert!(!stderr.contains("panicked"), "{why}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{why}: one line: {stderr}"
        );
    }
}
