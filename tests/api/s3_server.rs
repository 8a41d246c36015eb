//! An S3-compatible server on loopback for the tests: moto in server mode,
//! from the `tests/.venv-s3` virtualenv that `tests/run.sh` installs
//! (`python3 -m venv tests/.venv-s3 && tests/.venv-s3/bin/pip install 'moto[server]'`).
//!
//! [`S3Server::start`] picks a free port, starts `moto_server`, waits until
//! it answers and kills it on drop; a watchdog shell also kills it if the
//! test process dies first (the shared server of [`shared`] is a static and
//! is never dropped). Without the virtualenv the S3 tests skip loudly, unless
//! `CI=true`, where a missing server is a failure.
//!
//! Requests to moto are plain HTTP/1.0 over a std `TcpStream` with a dummy
//! signature (moto does not check signatures unless told to), so helpers
//! work from sync and async code.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Moto treats a request without credentials as anonymous (private objects
/// answer 403); any signature passes when it does not check them.
const FAKE_AUTH: &str = "Authorization: AWS4-HMAC-SHA256 \
    Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n";
/// How long moto may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct S3Server {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    addr: String,
    child: Child,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/.venv-s3/bin/moto_server")
}

/// Whether the S3 tests can run here; when not, says so on stderr (and
/// fails under `CI=true`, where tests/run.sh must have installed moto).
pub fn available() -> bool {
    if moto_bin().is_file() {
        return true;
    }
    let msg = format!(
        "S3 TESTS SKIPPED: {} is missing; run tests/run.sh or \
         `python3 -m venv tests/.venv-s3 && tests/.venv-s3/bin/pip install 'moto[server]'`",
        moto_bin().display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{msg} (required when CI=true)"
    );
    eprintln!("{msg}");
    false
}

impl S3Server {
    /// Starts moto on a free loopback port; `env` is passed to it (for
    /// example `INITIAL_NO_AUTH_ACTION_COUNT=0` to make it check keys).
    /// `None` when moto is not installed here (see [`available`]).
    pub fn start(env: &[(&str, &str)]) -> Option<Self> {
        if !available() {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(moto_bin())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        // Kills moto when this test process is gone (statics are never dropped).
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {} 2>/dev/null && kill -0 {} 2>/dev/null; do sleep 1; done; kill {} 2>/dev/null",
                std::process::id(),
                child.id(),
                child.id()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let addr = format!("127.0.0.1:{port}");
        let server = Self {
            endpoint: format!("http://{addr}"),
            addr,
            child,
        };
        let started = Instant::now();
        while server.request("GET", "/", b"").is_err() {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "moto_server did not answer on {}",
                server.endpoint
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }

    /// One plain HTTP/1.0 request: (status, body as text).
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
        let (status, raw) = self.request_bytes(method, path, body)?;
        Ok((status, String::from_utf8_lossy(&raw).into_owned()))
    }

    /// One plain HTTP/1.0 request: (status, body bytes).
    pub fn request_bytes(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut stream = TcpStream::connect(&self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: {}\r\n{FAKE_AUTH}Content-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        )?;
        stream.write_all(body)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let head_end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(raw.len(), |i| i + 4);
        let status = String::from_utf8_lossy(&raw[..head_end])
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status line"))?;
        Ok((status, raw.split_off(head_end)))
    }

    /// Creates a fresh bucket and returns its name.
    pub fn create_bucket(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "fb-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let (status, body) = self
            .request("PUT", &format!("/{name}"), b"")
            .expect("create bucket");
        assert_eq!(status, 200, "bucket {name} created: {body}");
        name
    }

    /// Every key in `bucket`, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let (status, body) = self
            .request("GET", &format!("/{bucket}?list-type=2&max-keys=1000"), b"")
            .expect("list bucket");
        assert_eq!(status, 200, "list {bucket}: {body}");
        let mut keys: Vec<String> = body
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(k, _)| k.to_owned()))
            .collect();
        keys.sort();
        keys
    }

    /// The raw bytes of one object (`None` when absent).
    pub fn get_bytes(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let (status, body) = self
            .request_bytes("GET", &format!("/{bucket}/{key}"), b"")
            .expect("get object");
        (status == 200).then_some(body)
    }

    /// The bytes of one object (`None` when absent).
    pub fn get(&self, bucket: &str, key: &str) -> Option<String> {
        let (status, body) = self
            .request("GET", &format!("/{bucket}/{key}"), b"")
            .expect("get object");
        (status == 200).then_some(body)
    }
}

/// The server the files group shares (one per test process); `None` when
/// moto is not installed here.
pub fn shared() -> Option<&'static S3Server> {
    static SHARED: OnceLock<Option<S3Server>> = OnceLock::new();
    SHARED.get_or_init(|| S3Server::start(&[])).as_ref()
}
