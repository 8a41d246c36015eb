//! The nodes tests' harness: realtime streams, two nodes on one database,
//! the `notes` collection, sign-ups, and a loopback proxy to PostgreSQL
//! that can be cut and restored.

use crate::helpers::DataDir;
use crate::pg_cli::Database;
use crate::pg_serve::{EMAIL, PASSWORD, Server, WAIT, serve};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// A realtime stream on one node.
pub(super) struct Stream {
    response: reqwest::Response,
    buffer: String,
    pub(super) client_id: String,
}

impl Stream {
    pub(super) async fn open(server: &Server) -> Stream {
        let response = server
            .client
            .get(format!("{}/api/realtime", server.base))
            .send()
            .await
            .expect("realtime");
        assert_eq!(response.status(), 200);
        let mut stream = Stream {
            response,
            buffer: String::new(),
            client_id: String::new(),
        };
        let (name, data) = stream.next(WAIT).await.expect("PB_CONNECT");
        assert_eq!(name, "PB_CONNECT");
        stream.client_id = data["clientId"].as_str().expect("clientId").to_owned();
        stream
    }

    /// Subscribes to `topics`, as `token` (a guest without).
    pub(super) async fn subscribe(&self, server: &Server, token: Option<&str>, topics: &[&str]) {
        let body = json!({"clientId": self.client_id, "subscriptions": topics});
        let (status, answer) = server
            .call(Method::POST, "/api/realtime", token, Some(body))
            .await;
        assert_eq!(status, 204, "{answer}");
    }

    /// The next (event, data) within `wait`; `None` on timeout or when the
    /// server ended the stream.
    pub(super) async fn next(&mut self, wait: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut data) = (String::new(), Value::Null);
                for line in raw.lines() {
                    if let Some(n) = line.strip_prefix("event:") {
                        name = n.to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data = serde_json::from_str(d).unwrap_or(Value::Null);
                    }
                }
                return Some((name, data));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Record ids of the `topic` events that arrive within `wait` of each other.
    pub(super) async fn ids(&mut self, topic: &str, wait: Duration) -> Vec<String> {
        let mut ids = Vec::new();
        while let Some((name, data)) = self.next(wait).await {
            if name == topic {
                ids.push(data["record"]["id"].as_str().unwrap_or_default().to_owned());
            }
        }
        ids
    }

    /// Whether the server ends the stream within `wait`.
    pub(super) async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return false,
                Ok(Ok(Some(_))) => continue,
                Ok(_) => return true,
            }
        }
    }
}

/// Starts two nodes on `url` (each with its own data dir).
pub(super) async fn two_nodes(a: &DataDir, b: &DataDir, url: &str) -> (Server, Server) {
    let mut first = serve(a.path(), Some(url)).await;
    let second = serve(b.path(), Some(url)).await;
    // The second start's `superuser upsert` ended the first one's session.
    first.token = first.login("_superusers", EMAIL, PASSWORD).await;
    (first, second)
}

/// `notes`: guests see a note unless it is secret.
pub(super) async fn create_notes(server: &Server) {
    let body = json!({
        "name": "notes", "type": "base",
        "fields": [{"name": "title", "type": "text"}, {"name": "secret", "type": "bool"}],
        "listRule": "secret = false", "viewRule": "secret = false",
    });
    let (status, answer) = server
        .su(Method::POST, "/api/collections", Some(body))
        .await;
    assert_eq!(status, 200, "{answer}");
}

pub(super) async fn create_note(server: &Server, title: &str, secret: bool) -> String {
    let (status, body) = server
        .su(
            Method::POST,
            "/api/collections/notes/records",
            Some(json!({"title": title, "secret": secret})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

/// Record ids in the outbox, in `seq` (commit) order.
pub(super) fn outbox_ids(db: &Database) -> Vec<String> {
    db.column(
        "SELECT c->>'record_id' FROM _realtime_outbox, jsonb_array_elements(payload) c \
         ORDER BY seq",
    )
}

/// Signs `name` up on `server` (users need no verification to log in here).
pub(super) async fn sign_up(server: &Server, name: &str) -> (String, String) {
    let (status, body) = server
        .call(
            Method::POST,
            "/api/collections/users/records",
            None,
            Some(json!({"email": format!("{name}@example.com"),
                "password": "secret-pass-1", "passwordConfirm": "secret-pass-1"})),
        )
        .await;
    assert_eq!(status, 200, "sign-up {name}: {body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let token = server
        .login("users", &format!("{name}@example.com"), "secret-pass-1")
        .await;
    (id, token)
}

/// A loopback TCP proxy to PostgreSQL that can be cut (every connection
/// closed, new ones refused) and restored on the same port.
pub(super) struct Proxy {
    pub(super) port: u16,
    target: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    pub(super) async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut proxy = Proxy {
            port,
            target,
            task: None,
        };
        proxy.task = Some(tokio::spawn(forward(listener, proxy.target.clone())));
        proxy
    }

    /// Closes every proxied connection and stops accepting.
    pub(super) fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    pub(super) async fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind again");
        self.task = Some(tokio::spawn(forward(listener, self.target.clone())));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Accepts and pipes connections; aborting it drops (closes) them all.
async fn forward(listener: TcpListener, target: String) {
    let mut pipes = tokio::task::JoinSet::new();
    while let Ok((mut inbound, _)) = listener.accept().await {
        let target = target.clone();
        pipes.spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                let _ = outbound.shutdown().await;
            }
        });
    }
}

/// Whether `server` says it runs the cron jobs.
pub(super) async fn leads_crons(server: &Server) -> bool {
    let (status, body) = server.su(Method::GET, "/api/health", None).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["cronLeader"]
        .as_bool()
        .unwrap_or_else(|| panic!("cronLeader: {body}"))
}
