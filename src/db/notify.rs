//! Cache announcements between nodes on one PostgreSQL: a schema or settings
//! change notifies [`CACHE_CHANNEL`] inside its transaction (delivered at
//! commit), and every node's listener (`crate::nodes`) reloads that cache.
//! Nothing on SQLite, where one node owns the database.

use super::{Conn, DbError};
use crate::rules::{Dialect, SqlValue};

/// The channel cache changes are announced on (payload: a [`Cache`] name).
pub const CACHE_CHANNEL: &str = "ferrobase_cache";

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
