//! Request logs in `auxiliary.db`. Handlers never wait for them: each
//! finished request hands an entry to a bounded channel ([`Logger::log`]);
//! one background task writes what has queued up in batches, one
//! transaction per batch. When the channel is full the entry is dropped and
//! counted instead of slowing the request down.

mod query;
mod row;

pub use query::{LogsError, cleanup, delete_all, list, stats, view};

use crate::db::Db;
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Entries waiting to be written before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Most entries written in one transaction.
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
pub fn cap_data(data: String, max: u64) -> String {
    let max = usize::try_from(if max == 0 {
        DEFAULT_MAX_DATA_BYTES
    } else {
        max
    })
    .unwrap_or(usize::MAX);
    if data.len() <= max {
        return data;
    }
    let Ok(serde_json::Value::Object(full)) = serde_json::from_str(&data) else {
        return serde_json::json!({ TRUNCATED_KEY: true }).to_string();
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
    serde_json::Value::Object(kept).to_string()
}

/// One log row.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub level: i64,
    pub message: String,
    /// The entry's `data` object as JSON text.
    pub data: String,
    /// When it happened, in microseconds since the Unix epoch (formatted
    /// as `created` by the writer, off the request path).
    pub at_micros: i64,
}

impl LogEntry {
    /// An entry stamped with the current time.
    pub fn now(level: i64, message: String, data: String) -> Self {
        Self {
            level,
            message,
            data,
            at_micros: chrono::Utc::now().timestamp_micros(),
        }
    }
}

/// Cheap handle for queueing log entries; clones share the queue.
#[derive(Clone)]
pub struct Logger {
    aux: Db,
    queue: mpsc::Sender<LogEntry>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl Logger {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(aux: Db) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        let written = Arc::new(AtomicU64::new(0));
        tokio::spawn(write_batches(aux.clone(), rx, written.clone()));
        Self {
            aux,
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
            written,
        }
    }

    /// The auxiliary database the logs live in.
    pub fn db(&self) -> &Db {
        &self.aux
    }

    /// Queues an entry without waiting; drops (and counts) it when full.
    pub fn log(&self, entry: LogEntry) {
        if self.queue.try_send(entry).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Entries dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Entries written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Entries waiting in the queue.
    pub fn queued(&self) -> usize {
        QUEUE_CAPACITY - self.queue.capacity()
    }
}

async fn write_batches(aux: Db, mut rx: mpsc::Receiver<LogEntry>, written: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(BATCH_MAX);
    while rx.recv_many(&mut batch, BATCH_MAX).await > 0 {
        if batch.len() < BATCH_MAX {
            tokio::time::sleep(FLUSH_INTERVAL).await;
            while batch.len() < BATCH_MAX {
                match rx.try_recv() {
                    Ok(entry) => batch.push(entry),
                    Err(_) => break,
                }
            }
        }
        let entries = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_MAX));
        let count = entries.len() as u64;
        let result = aux
            .write(move |conn| -> Result<(), crate::db::DbError> {
                let tx = conn.transaction()?;
                insert_all(&tx, &entries)?;
                tx.commit()?;
                Ok(())
            })
            .await;
        match result {
            Ok(()) => {
                written.fetch_add(count, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, lost = count, "could not write request logs"),
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
fn insert_all(conn: &Connection, entries: &[LogEntry]) -> rusqlite::Result<()> {
    let mut rng = rand::rng();
    let mut created = row::CreatedText::default();
    let mut chunks = entries.chunks_exact(ROWS_PER_INSERT);
    let mut insert = |stmt: &mut rusqlite::CachedStatement<'_>, chunk: &[LogEntry]| {
        for (n, entry) in chunk.iter().enumerate() {
            let at = n * 5;
            let id = row::ordered_id(entry.at_micros, &mut rng);
            // The id is ASCII letters and digits by construction.
            stmt.raw_bind_parameter(at + 1, std::str::from_utf8(&id).unwrap_or_default())?;
            stmt.raw_bind_parameter(at + 2, entry.level)?;
            stmt.raw_bind_parameter(at + 3, entry.message.as_str())?;
            stmt.raw_bind_parameter(at + 4, entry.data.as_str())?;
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
                serde_json::from_str(&super::cap_data(data.clone(), max)).expect("json");
            for key in &kept {
                assert!(out.get(key).is_some(), "{why}: {key} kept in {out}");
            }
            assert_eq!(out.get(super::TRUNCATED_KEY).is_some(), cut, "{why}: {out}");
        }
    }
}
