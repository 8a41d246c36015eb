//! Request logs in `auxiliary.db`. Handlers never wait for them: each
//! finished request copies its entry into a bounded queue ([`Logger::log`]);
//! one background task writes what has queued up in batches, one
//! transaction per batch. When the queue is full the entry is dropped and
//! counted instead of slowing the request down.

#[cfg(test)]
mod backends;
mod query;
mod queue;
mod row;

pub use query::{LogsError, cleanup, delete_all, list, stats, view};

use crate::db::Db;
use rusqlite::Connection;
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::Notify;

/// Entries waiting to be written before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Entries that end the wait for more before a commit.
const BATCH_MAX: usize = 4096;
/// How long the writer lets entries gather before a commit: a few large
/// transactions per second instead of one small one per request.
const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// PocketBase's log levels (slog): info for answered requests, error for 4xx/5xx.
pub const LEVEL_INFO: i64 = 0;
pub const LEVEL_ERROR: i64 = 8;

/// `data` size cap when the settings' `logs.maxDataSize` is 0 (PocketBase's ~16 KiB).
pub const DEFAULT_MAX_DATA_BYTES: u64 = 16 * 1024;
/// Key PocketBase adds to a `data` object that was cut to fit.
pub const TRUNCATED_KEY: &str = "__pb_truncated__";

/// Keeps a log entry's serialized `data` object within `max` bytes (0 =
/// [`DEFAULT_MAX_DATA_BYTES`]), as PocketBase's `logs.maxDataSize`: entries
/// are kept in order while they fit, and `__pb_truncated__: true` marks a cut.
pub fn cap_data(data: &str, max: u64) -> Cow<'_, str> {
    let max = usize::try_from(if max == 0 {
        DEFAULT_MAX_DATA_BYTES
    } else {
        max
    })
    .unwrap_or(usize::MAX);
    if data.len() <= max {
        return Cow::Borrowed(data);
    }
    let Ok(serde_json::Value::Object(full)) = serde_json::from_str(data) else {
        return Cow::Owned(serde_json::json!({ TRUNCATED_KEY: true }).to_string());
    };
    let mut kept = serde_json::Map::new();
    let mut used = 2; // the braces
    for (key, value) in full {
        let entry =
            serde_json::to_string(&key).unwrap_or_default().len() + 2 + value.to_string().len();
        if used + entry > max {
            continue;
        }
        used += entry;
        kept.insert(key, value);
    }
    kept.insert(TRUNCATED_KEY.to_owned(), serde_json::Value::Bool(true));
    Cow::Owned(serde_json::Value::Object(kept).to_string())
}

/// Cheap handle for queueing log entries; clones share the queue.
#[derive(Clone)]
pub struct Logger {
    aux: Db,
    shared: Arc<Shared>,
    /// Held by every handle; the writer stops once the last one is gone.
    _alive: Arc<Alive>,
}

/// What handles and the writer task share.
#[derive(Default)]
struct Shared {
    queue: queue::Queue,
    /// Wakes the writer: on a first entry, a full batch, and at shutdown.
    wake: Notify,
    dropped: AtomicU64,
    written: AtomicU64,
}

/// Dropped with the last [`Logger`]: wakes the writer for a final flush.
struct Alive(Arc<Shared>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.wake.notify_one();
    }
}

impl Logger {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(aux: Db) -> Self {
        let shared = Arc::new(Shared::default());
        let alive = Arc::new(Alive(shared.clone()));
        tokio::spawn(write_batches(
            aux.clone(),
            shared.clone(),
            Arc::downgrade(&alive),
        ));
        Self {
            aux,
            shared,
            _alive: alive,
        }
    }

    /// The auxiliary database the logs live in.
    pub fn db(&self) -> &Db {
        &self.aux
    }

    /// Queues an entry stamped with the current time, without waiting;
    /// drops (and counts) it when [`QUEUE_CAPACITY`] entries are waiting.
    pub fn log(&self, level: i64, message: &str, data: &str) {
        let at_micros = chrono::Utc::now().timestamp_micros();
        let queued = {
            let mut pending = self.shared.queue.lock();
            if pending.len() >= QUEUE_CAPACITY {
                drop(pending);
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            pending.push(level, at_micros, message, data);
            pending.len()
        };
        if queued == 1 || queued == BATCH_MAX {
            self.shared.wake.notify_one();
        }
    }

    /// Entries dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Entries written so far.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Entries waiting in the queue.
    pub fn queued(&self) -> usize {
        self.shared.queue.lock().len()
    }
}

/// Waits for a first entry, lets more gather for [`FLUSH_INTERVAL`] (less
/// when [`BATCH_MAX`] are waiting), then writes all of them in one
/// transaction. Returns after a final flush once every [`Logger`] is gone.
async fn write_batches(aux: Db, shared: Arc<Shared>, alive: Weak<Alive>) {
    let mut spare = queue::Pending::default();
    loop {
        shared.wake.notified().await;
        if shared.queue.lock().len() < BATCH_MAX && alive.strong_count() > 0 {
            tokio::select! {
                () = tokio::time::sleep(FLUSH_INTERVAL) => {}
                () = shared.wake.notified() => {}
            }
        }
        let batch = shared.queue.swap(spare);
        if batch.is_empty() {
            // Woken at shutdown (or by a stale wake-up) with nothing queued.
            spare = batch;
            if alive.strong_count() == 0 {
                return;
            }
            continue;
        }
        let count = batch.len() as u64;
        let result = match aux.dialect() {
            crate::rules::Dialect::Sqlite => {
                aux.write(move |conn| -> Result<queue::Pending, crate::db::DbError> {
                    let tx = conn.transaction()?;
                    insert_all(&tx, &batch)?;
                    tx.commit()?;
                    Ok(batch)
                })
                .await
            }
            crate::rules::Dialect::Postgres => aux
                .write_conn(move |conn| insert_all_values(conn, &batch))
                .await
                .map(|()| queue::Pending::default()),
        };
        spare = match result {
            Ok(batch) => {
                shared.written.fetch_add(count, Ordering::Relaxed);
                batch
            }
            Err(e) => {
                tracing::warn!(error = %e, lost = count, "could not write request logs");
                queue::Pending::default()
            }
        };
        spare.clear();
        if alive.strong_count() == 0 && shared.queue.lock().is_empty() {
            return;
        }
    }
}

/// Rows per multi-row INSERT: one statement step per this many entries
/// (5 bound values each, far below SQLite's parameter limit).
const ROWS_PER_INSERT: usize = 32;

/// `INSERT INTO _logs (…) VALUES (…), (…)…` for `rows` rows.
fn insert_sql(rows: usize) -> String {
    let values = vec!["(?, ?, ?, ?, ?)"; rows].join(", ");
    format!("INSERT INTO _logs (id, level, message, data, created) VALUES {values}")
}

/// Inserts `entries` in statements of [`ROWS_PER_INSERT`] rows (the rest one
/// by one), binding every value; ids and `created` are built here.
fn insert_all(conn: &Connection, pending: &queue::Pending) -> rusqlite::Result<()> {
    let entries: Vec<_> = pending.entries().collect();
    let mut rng = rand::rng();
    let mut created = row::CreatedText::default();
    let mut chunks = entries.chunks_exact(ROWS_PER_INSERT);
    let mut insert = |stmt: &mut rusqlite::CachedStatement<'_>,
                      chunk: &[(queue::Row, &str, &str)]| {
        for (n, (entry, message, data)) in chunk.iter().enumerate() {
            let at = n * 5;
            let id = row::ordered_id(entry.at_micros, &mut rng);
            // The id is ASCII letters and digits by construction.
            stmt.raw_bind_parameter(at + 1, std::str::from_utf8(&id).unwrap_or_default())?;
            stmt.raw_bind_parameter(at + 2, entry.level)?;
            stmt.raw_bind_parameter(at + 3, *message)?;
            stmt.raw_bind_parameter(at + 4, *data)?;
            stmt.raw_bind_parameter(at + 5, created.format(entry.at_micros).as_ref())?;
        }
        stmt.raw_execute().map(drop)
    };
    {
        let mut many = conn.prepare_cached(&insert_sql(ROWS_PER_INSERT))?;
        for chunk in chunks.by_ref() {
            insert(&mut many, chunk)?;
        }
    }
    let mut one = conn.prepare_cached(&insert_sql(1))?;
    for entry in chunks.remainder() {
        insert(&mut one, std::slice::from_ref(entry))?;
    }
    Ok(())
}

/// [`insert_all`] through [`crate::db::Conn`] with bound values (the
/// PostgreSQL path; SQLite keeps the raw binding above, its hot path).
fn insert_all_values(
    conn: &mut dyn crate::db::Conn,
    pending: &queue::Pending,
) -> Result<(), crate::db::DbError> {
    use crate::rules::SqlValue;
    let entries: Vec<_> = pending.entries().collect();
    let mut rng = rand::rng();
    let mut created = row::CreatedText::default();
    for chunk in entries.chunks(ROWS_PER_INSERT) {
        let mut values = Vec::with_capacity(chunk.len() * 5);
        for (entry, message, data) in chunk {
            let id = row::ordered_id(entry.at_micros, &mut rng);
            // The id is ASCII letters and digits by construction.
            values.push(SqlValue::Text(String::from_utf8_lossy(&id).into_owned()));
            values.push(SqlValue::Integer(entry.level));
            values.push(SqlValue::Text((*message).to_owned()));
            values.push(SqlValue::Text((*data).to_owned()));
            values.push(SqlValue::Text(
                created.format(entry.at_micros).as_ref().to_owned(),
            ));
        }
        conn.execute(&insert_sql(chunk.len()), &values)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_data_over_the_cap_keeps_what_fits_and_is_marked() {
        let data =
            serde_json::json!({"a": "x".repeat(50), "b": 1, "c": "y".repeat(50)}).to_string();
        for (max, kept, cut, why) in [
            (0, vec!["a", "b", "c"], false, "0 means the ~16 KiB default"),
            (10_000, vec!["a", "b", "c"], false, "under the cap"),
            (70, vec!["a", "b"], true, "only the first two fit"),
            (5, vec![], true, "nothing fits"),
        ] {
            let out: serde_json::Value =
                serde_json::from_str(&super::cap_data(&data, max)).expect("json");
            for key in &kept {
                assert!(out.get(key).is_some(), "{why}: {key} kept in {out}");
            }
            assert_eq!(out.get(super::TRUNCATED_KEY).is_some(), cut, "{why}: {out}");
        }
    }
}
