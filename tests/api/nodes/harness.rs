//! The nodes tests' harness: two nodes on one database,
//! the `notes` collection, sign-ups, and a loopback proxy to PostgreSQL
//! that can be cut and restored.

use crate::helpers::DataDir;
use crate::pg_cli::Database;
use crate::pg_serve::{EMAIL, PASSWORD, Server, serve};
use reqwest::Method;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

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
