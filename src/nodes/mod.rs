//! Several nodes on one PostgreSQL. Each node runs one listener thread
//! ([`listener`]) on a session of its own, and one follower task that acts
//! on what it hears, in order: outbox changes are published to this node's
//! hub (every node, the writing one included, publishes from the outbox, so
//! all see one commit order and rules are checked where the stream is), a
//! schema or settings announcement reloads that cache, and a lost session
//! closes this node's streams (the SDK reconnects).
//!
//! Notifications arrive a little after the commit, so each API request
//! also calls [`Link::ensure_fresh`] first: one query compares the caches'
//! versions in `_fb_versions` (`crate::db::notify`) with those this node's
//! caches were read at, and reloads what is behind. [`Link`] also says
//! whether the listener is connected (`/api/health`). The cron jobs run on
//! one node at a time ([`leader`]). SQLite has none of it.

pub mod leader;
mod listener;

pub use listener::{POLL, PRUNE_EVERY};

use crate::db::notify::Cache;
use crate::db::postgres::PgConnectError;
use crate::db::{Db, DbError, LockKey};
use crate::realtime::{Changes, Hub};
use crate::rules::SqlValue;
use crate::schema::{Registry, SchemaError};
use crate::settings::{Seal, Settings};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
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
    /// The listener has a session again (reloads and missed rows follow).
    Reconnected,
}

/// This node's link to the others; cheap to clone.
#[derive(Clone, Default)]
pub struct Link {
    connected: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
    caches: Arc<Caches>,
    /// When the database last answered a readiness probe.
    answered: Arc<std::sync::Mutex<Option<Instant>>>,
}

/// The caches [`Link::ensure_fresh`] keeps current, and their versions.
#[derive(Default)]
struct Caches {
    local: OnceLock<Local>,
    schema: AtomicI64,
    settings: AtomicI64,
    /// One reload at a time: requests that find the same cache behind wait
    /// for one reload instead of each doing it.
    reloading: tokio::sync::Mutex<()>,
}

impl Caches {
    fn held(&self, cache: Cache) -> &AtomicI64 {
        match cache {
            Cache::Schema => &self.schema,
            Cache::Settings => &self.settings,
        }
    }
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

    /// Whether the database answered a readiness probe less than `within`
    /// ago (a balancer polling `/api/health` then costs it nothing).
    pub fn answered_within(&self, within: Duration) -> bool {
        let last = *self.answered.lock().unwrap_or_else(|p| p.into_inner());
        last.is_some_and(|at| at.elapsed() < within)
    }

    /// The database just answered a readiness probe.
    pub fn note_answered(&self) {
        *self.answered.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Reloads every cache whose version in the database is newer than the
    /// one this node read. A failed check leaves the caches as they are
    /// (the request then meets the same database trouble itself).
    pub async fn ensure_fresh(&self) {
        let Some(local) = self.caches.local.get() else {
            return;
        };
        // One round trip: this runs before every API request.
        let rows = local
            .db
            .pg_simple_rows("SELECT cache, version FROM _fb_versions")
            .await;
        let Some(Ok(rows)) = rows else { return };
        for row in rows {
            let (Some(Some(name)), Some(Some(version))) = (row.first(), row.get(1)) else {
                continue;
            };
            let (Some(cache), Ok(version)) = (Cache::parse(name), version.parse::<i64>()) else {
                continue;
            };
            if version > self.caches.held(cache).load(Ordering::Acquire) {
                let _one = self.caches.reloading.lock().await;
                if version > self.caches.held(cache).load(Ordering::Acquire) {
                    reload(local, &self.caches, cache).await;
                }
            }
        }
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
    let hub = local.hub.clone();
    if link.caches.local.set(local).is_err() {
        return Err(PgConnectError::Connect(
            "the nodes link was started twice".into(),
        ));
    }
    tokio::spawn(follow(heard, hub, link.caches.clone()));
    Ok(())
}

async fn follow(mut heard: mpsc::UnboundedReceiver<Signal>, hub: Hub, caches: Arc<Caches>) {
    while let Some(signal) = heard.recv().await {
        match signal {
            Signal::Changes(seq, changes) => {
                hub.publish(changes);
                hub.outbox_published(seq);
            }
            Signal::Reload(cache) => {
                if let Some(local) = caches.local.get() {
                    let _one = caches.reloading.lock().await;
                    reload(local, &caches, cache).await;
                }
            }
            Signal::Disconnected => {
                hub.disconnect_all();
                suspect_pool(&caches);
            }
            // The pool's connections likely broke with the listener's: have
            // them checked before the reloads and renders that follow.
            Signal::Reconnected => suspect_pool(&caches),
        }
    }
}

fn suspect_pool(caches: &Caches) {
    if let Some(local) = caches.local.get() {
        local.db.suspect_connections();
    }
}

/// Reloads `cache` and notes the version it was read at (read first, so
/// the version is never newer than what was loaded).
async fn reload(local: &Local, caches: &Caches, cache: Cache) {
    let outcome = match cache {
        Cache::Schema => reload_schema(local).await.map_err(|e| e.to_string()),
        Cache::Settings => reload_settings(local).await,
    };
    match outcome {
        Ok(version) => {
            caches.held(cache).fetch_max(version, Ordering::AcqRel);
        }
        Err(e) => tracing::warn!(cache = cache.name(), error = %e, "cannot reload a cache"),
    }
}

/// The stored version of `cache` (0 before its first change).
fn version_of(conn: &mut dyn crate::db::Conn, cache: Cache) -> Result<i64, DbError> {
    conn.integer(
        "SELECT coalesce(max(version), 0) FROM _fb_versions WHERE cache = ?1",
        &[SqlValue::Text(cache.name().into())],
    )
}

/// Reads the collections under the schema lock and installs them with a
/// generation taken under it, so a reload never replaces a newer snapshot
/// this node's own schema change installed.
async fn reload_schema(local: &Local) -> Result<i64, SchemaError> {
    let (version, generation, snapshot) = local
        .db
        .write_conn(|conn| {
            conn.lock(LockKey::Schema)?;
            let version = version_of(conn, Cache::Schema)?;
            let generation = crate::schema::next_generation();
            Ok::<_, SchemaError>((version, generation, crate::schema::read_snapshot(conn)?))
        })
        .await?;
    local.registry.install(generation, snapshot);
    local.db.forget_prepared();
    Ok(version)
}

async fn reload_settings(local: &Local) -> Result<i64, String> {
    let version = local
        .db
        .read_conn(|conn| version_of(conn, Cache::Settings))
        .await
        .map_err(|e| e.to_string())?;
    let settings = crate::settings::load(&local.db, &local.seal)
        .await
        .map_err(|e| e.to_string())?;
    (local.on_settings)(settings);
    Ok(version)
}
