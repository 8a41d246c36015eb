//! Cache announcements between nodes on one PostgreSQL: a schema or settings
//! change counts up its version in `_fb_versions` and notifies
//! [`CACHE_CHANNEL`] inside its transaction (delivered at commit). Every
//! node's listener (`crate::nodes`) reloads that cache when notified, and
//! each request first compares the versions with those its caches were
//! read at, so no request anywhere runs on a cache older than a change that
//! committed before it began. Nothing on SQLite, where one node owns the
//! database.

use super::{Conn, DbError};
use crate::rules::{Dialect, SqlValue};

/// The channel cache changes are announced on (payload: a [`Cache`] name).
pub const CACHE_CHANNEL: &str = "ferrobase_cache";

/// The versions table, created with the outbox at a node's start.
pub const VERSIONS_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS _fb_versions (
    cache   text COLLATE \"C\" PRIMARY KEY NOT NULL,
    version bigint NOT NULL
)";

/// A node-local cache another node's commit made stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    Schema,
    Settings,
}

impl Cache {
    pub fn name(self) -> &'static str {
        match self {
            Cache::Schema => "schema",
            Cache::Settings => "settings",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "schema" => Some(Cache::Schema),
            "settings" => Some(Cache::Settings),
            _ => None,
        }
    }
}

/// Tells the other nodes, at this transaction's commit, that `cache`
/// changed. Nothing on SQLite.
pub fn announce(conn: &mut dyn Conn, cache: Cache) -> Result<(), DbError> {
    if conn.dialect() != Dialect::Postgres {
        return Ok(());
    }
    conn.execute(
        "INSERT INTO _fb_versions (cache, version) VALUES (?1, 1) \
         ON CONFLICT (cache) DO UPDATE SET version = _fb_versions.version + 1",
        &[SqlValue::Text(cache.name().into())],
    )?;
    // `execute`: pg_notify answers void, which no row reader decodes.
    conn.execute(
        "SELECT pg_notify(?1, ?2)",
        &[
            SqlValue::Text(CACHE_CHANNEL.into()),
            SqlValue::Text(cache.name().into()),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_names_read_back() {
        for cache in [Cache::Schema, Cache::Settings] {
            assert_eq!(Cache::parse(cache.name()), Some(cache));
        }
        assert_eq!(Cache::parse("other"), None);
    }
}
