//! Several nodes on one PostgreSQL. Each node runs one listener thread
//! ([`listener`]) on a session of its own, and one follower task that acts
//! on what it hears, in order: outbox changes are published to this node's
//! hub (every node, the writing one included, publishes from the outbox, so
//! all see one commit order and rules are checked where the stream is), a
//! schema or settings announcement reloads that cache, and a lost session
//! closes this node's streams (the SDK reconnects). [`Link`] says whether
//! the listener is connected (`/api/health`). SQLite has no listener.

mod listener;

pub use listener::{POLL, PRUNE_EVERY};

use crate::db::notify::Cache;
use crate::db::postgres::PgConnectError;
use crate::db::{Db, LockKey};
use crate::realtime::{Changes, Hub};
use crate::schema::{Registry, SchemaError};
use crate::settings::{Seal, Settings};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

/// What the listener heard, in the order it heard it.
#[derive(Debug)]
pub(crate) enum Signal {
    /// One committed transaction's changes: its outbox `seq` and changes.
    Changes(i64, Changes),
    /// Another node (or this one) committed a change to a cache.
    Reload(Cache),
    /// The listener's session broke; it is reconnecting.
    Disconnected,
}

/// The listener's state, shared with `/api/health`; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Link {
    connected: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
}

impl Link {
    /// Whether the listener's session is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Ends the listener thread within a [`POLL`].
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }
}

/// What the follower updates on this node.
pub struct Local {
    pub db: Db,
    pub registry: Registry,
    pub hub: Hub,
    pub seal: Seal,
    /// Installs settings another node saved (cache, storage).
    pub on_settings: Box<dyn Fn(Settings) + Send + Sync>,
}

/// Starts the listener on `url`, reporting through `link`, and the
/// follower task on the current runtime; fails when the listener's first
/// session cannot be opened.
pub fn start(url: &str, link: &Link, local: Local) -> Result<(), PgConnectError> {
    let (signals, heard) = mpsc::unbounded_channel();
    listener::start(url.to_owned(), link.clone(), signals)?;
    local.hub.attach_listener();
    tokio::spawn(follow(heard, local));
    Ok(())
}

async fn follow(mut heard: mpsc::UnboundedReceiver<Signal>, local: Local) {
    while let Some(signal) = heard.recv().await {
        match signal {
            Signal::Changes(seq, changes) => {
                local.hub.publish(changes);
                local.hub.outbox_published(seq);
            }
            Signal::Reload(Cache::Schema) => reload_schema(&local).await,
            Signal::Reload(Cache::Settings) => {
                match crate::settings::load(&local.db, &local.seal).await {
                    Ok(settings) => (local.on_settings)(settings),
                    Err(e) => tracing::warn!(error = %e, "cannot reload the settings"),
                }
            }
            Signal::Disconnected => local.hub.disconnect_all(),
        }
    }
}

/// Reads the collections under the schema lock and installs them with a
/// generation taken under it, so a reload never replaces a newer snapshot
/// this node's own schema change installed.
async fn reload_schema(local: &Local) {
    let read = local
        .db
        .write_conn(|conn| {
            conn.lock(LockKey::Schema)?;
            let generation = crate::schema::next_generation();
            Ok::<_, SchemaError>((generation, crate::schema::read_snapshot(conn)?))
        })
        .await;
    match read {
        Ok((generation, snapshot)) => local.registry.install(generation, snapshot),
        Err(e) => tracing::warn!(error = %e, "cannot reload the collections"),
    }
}
