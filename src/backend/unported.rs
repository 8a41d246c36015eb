//! The commands that do not run on PostgreSQL yet, each refused with one
//! line saying what to use instead.

use std::fmt;

/// A command refused on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unported {
    /// `backup create|restore`: zip archives of the SQLite data dir.
    Backup,
    /// `restore --from REPLICA`: Litestream replicas of the SQLite files.
    Restore,
    /// `search reindex`: full-text search is SQLite's FTS5.
    SearchReindex,
}

impl Unported {
    /// The refusal, for a user: what does not work and what to use instead.
    pub fn message(self) -> &'static str {
        match self {
            Unported::Backup => {
                "`backup` archives the embedded SQLite data dir; with database.url on \
                 PostgreSQL use pg_dump / pg_restore or your provider's backups"
            }
            Unported::Restore => {
                "`restore` rebuilds the embedded SQLite data dir from a Litestream replica; \
                 with database.url on PostgreSQL use pg_restore or your provider's \
                 point-in-time recovery"
            }
            Unported::SearchReindex => {
                "full-text search is SQLite-only: on PostgreSQL no collection has a \
                 full-text index, so `search reindex` has nothing to rebuild"
            }
        }
    }
}

impl fmt::Display for Unported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}
