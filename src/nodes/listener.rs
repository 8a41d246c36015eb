//! The listener thread: one PostgreSQL session of its own (the blocking
//! client, never on the async executor) that `LISTEN`s on the realtime and
//! cache channels, reads outbox rows after the last `seq` it handed on, and
//! sends everything as [`Signal`]s, in order, to the node's follower task.
//!
//! It reads the outbox after every notification and at least every [`POLL`]
//! (which also finds a dead connection within a poll). When the session
//! breaks it says [`Signal::Disconnected`] (the node closes its streams),
//! reconnects with a growing pause, asks for both caches to be reloaded
//! (their notifications may have been missed), and reads on from its last
//! `seq`, so nothing committed meanwhile is skipped. One node prunes rows
//! older than [`RETENTION`] about once a [`PRUNE_EVERY`] (any node may).

use super::{Link, Signal};
use crate::db::LockKey;
use crate::db::notify::{CACHE_CHANNEL, Cache, VERSIONS_TABLE_SQL};
use crate::db::postgres::{PgConnectError, connect, describe};
use crate::realtime::outbox::{REALTIME_CHANNEL, RETENTION, TABLE_SQL};
use crate::realtime::{Change, Changes};
use postgres::Client;
use postgres::fallible_iterator::FallibleIterator;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// The longest wait for a notification before the outbox is read anyway.
pub const POLL: Duration = Duration::from_secs(1);
/// How often outbox rows past their retention are deleted.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Outbox rows read per query.
const READ_BATCH: i64 = 256;
/// The first and the longest pause between reconnection attempts.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum Broken {
    #[error("{0}")]
    Postgres(String),
    #[error("the node is stopping")]
    Stopped,
}

impl From<postgres::Error> for Broken {
    fn from(e: postgres::Error) -> Self {
        Broken::Postgres(describe(&e))
    }
}

/// Starts the thread; returns once its first session listens (or could
/// not be opened, which fails the start).
pub(super) fn start(
    url: String,
    link: Link,
    signals: UnboundedSender<Signal>,
) -> Result<(), PgConnectError> {
    let (ready, started) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("ferrobase-pg-listener".into())
        .spawn(move || run(&url, &link, &signals, ready))
        .map_err(|e| PgConnectError::Connect(format!("cannot start the listener thread: {e}")))?;
    started
        .recv()
        .unwrap_or_else(|_| Err(PgConnectError::Connect("the listener thread ended".into())))
}

fn run(
    url: &str,
    link: &Link,
    signals: &UnboundedSender<Signal>,
    ready: std::sync::mpsc::Sender<Result<(), PgConnectError>>,
) {
    let mut ready = Some(ready);
    let mut last: Option<i64> = None;
    let mut pause = FIRST_PAUSE;
    while !link.stopping() && !signals.is_closed() {
        let mut client = match open(url, &mut last) {
            Ok(client) => client,
            Err(e) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(e));
                    return;
                }
                tracing::warn!(error = %e, "realtime listener cannot reconnect to PostgreSQL");
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_PAUSE);
                continue;
            }
        };
        pause = FIRST_PAUSE;
        link.set_connected(true);
        match ready.take() {
            Some(ready) => {
                let _ = ready.send(Ok(()));
            }
            None => {
                tracing::info!("realtime listener reconnected to PostgreSQL");
                let _ = signals.send(Signal::Reconnected);
                // Changes to either cache while away were not heard.
                let _ = signals.send(Signal::Reload(Cache::Schema));
                let _ = signals.send(Signal::Reload(Cache::Settings));
            }
        }
        let why = follow(&mut client, &mut last, link, signals);
        link.set_connected(false);
        let _ = signals.send(Signal::Disconnected);
        match why {
            Broken::Stopped => return,
            Broken::Postgres(e) => {
                tracing::warn!(error = %e, "realtime listener lost its PostgreSQL session");
            }
        }
        std::thread::sleep(pause);
    }
}

/// A session that listens on both channels, with the outbox table made and
/// (on the first one) `last` set to the newest row: a node hears of what
/// commits after it started.
fn open(url: &str, last: &mut Option<i64>) -> Result<Client, PgConnectError> {
    let mut client = connect(url)?;
    let failed = |e: postgres::Error| PgConnectError::Connect(describe(&e));
    let mut tx = client.transaction().map_err(failed)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&(LockKey::Bootstrap as i64)],
    )
    .map_err(failed)?;
    tx.batch_execute(TABLE_SQL).map_err(failed)?;
    tx.batch_execute(VERSIONS_TABLE_SQL).map_err(failed)?;
    tx.commit().map_err(failed)?;
    // Channel names are our constants, not input.
    client
        .batch_execute(&format!(
            "LISTEN {REALTIME_CHANNEL}; LISTEN {CACHE_CHANNEL}"
        ))
        .map_err(failed)?;
    if last.is_none() {
        let row = client
            .query_one("SELECT coalesce(max(seq), 0) FROM _realtime_outbox", &[])
            .map_err(failed)?;
        *last = Some(row.get(0));
    }
    Ok(client)
}

/// Reads, waits, reloads, until the session breaks or the node stops.
fn follow(
    client: &mut Client,
    last: &mut Option<i64>,
    link: &Link,
    signals: &UnboundedSender<Signal>,
) -> Broken {
    let mut pruned: Option<Instant> = None;
    loop {
        if link.stopping() || signals.is_closed() {
            return Broken::Stopped;
        }
        let step = read_after(client, last, signals)
            .and_then(|()| match pruned {
                Some(at) if at.elapsed() < PRUNE_EVERY => Ok(()),
                _ => {
                    pruned = Some(Instant::now());
                    prune(client)
                }
            })
            .and_then(|()| wait(client, signals));
        if let Err(e) = step {
            return e;
        }
    }
}

/// Hands on every outbox row after `last`, in `seq` order.
fn read_after(
    client: &mut Client,
    last: &mut Option<i64>,
    signals: &UnboundedSender<Signal>,
) -> Result<(), Broken> {
    loop {
        let after = last.unwrap_or(0);
        let rows = client.query(
            "SELECT seq, payload::text FROM _realtime_outbox WHERE seq > $1 \
             ORDER BY seq LIMIT $2",
            &[&after, &READ_BATCH],
        )?;
        let full = rows.len() as i64 == READ_BATCH;
        for row in rows {
            let seq: i64 = row.get(0);
            let payload: String = row.get(1);
            match serde_json::from_str::<Vec<Change>>(&payload) {
                Ok(changes) => {
                    let mut batch = Changes::default();
                    changes.into_iter().for_each(|c| batch.push(c));
                    if signals.send(Signal::Changes(seq, batch)).is_err() {
                        return Err(Broken::Stopped);
                    }
                }
                Err(e) => {
                    tracing::warn!(seq, error = %e, "unreadable realtime outbox row skipped");
                    // Still counted as published: its writer stops waiting.
                    let _ = signals.send(Signal::Changes(seq, Changes::default()));
                }
            }
            *last = Some(seq);
        }
        if !full {
            return Ok(());
        }
    }
}

fn prune(client: &mut Client) -> Result<(), Broken> {
    client.execute(
        "DELETE FROM _realtime_outbox WHERE created < now() - make_interval(secs => $1)",
        &[&RETENTION.as_secs_f64()],
    )?;
    Ok(())
}

/// Waits up to [`POLL`] for notifications, then takes the ones pending;
/// cache notifications become reloads (outbox ones only end the wait).
fn wait(client: &mut Client, signals: &UnboundedSender<Signal>) -> Result<(), Broken> {
    let mut heard = Vec::new();
    let mut notifications = client.notifications();
    if let Some(first) = notifications.timeout_iter(POLL).next()? {
        heard.push(first);
    }
    let mut pending = notifications.iter();
    while let Some(more) = pending.next()? {
        heard.push(more);
    }
    let mut reload = [false, false];
    for n in heard.iter().filter(|n| n.channel() == CACHE_CHANNEL) {
        match Cache::parse(n.payload()) {
            Some(Cache::Schema) => reload[0] = true,
            Some(Cache::Settings) => reload[1] = true,
            None => {}
        }
    }
    for (wanted, cache) in reload.into_iter().zip([Cache::Schema, Cache::Settings]) {
        if wanted && signals.send(Signal::Reload(cache)).is_err() {
            return Err(Broken::Stopped);
        }
    }
    Ok(())
}
