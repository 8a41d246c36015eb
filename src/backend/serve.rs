//! What `serve` checks before it starts on PostgreSQL: the parts that do not
//! run there yet (JavaScript migrations) stop the start
//! with one line, rather than a server that half works.

use crate::config::Config;
use crate::db::Db;

/// Why `serve` refuses to start on PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum ServeRefusal {
    #[error(
        "{dir} holds JavaScript migrations not applied yet ({first}): `migrate up` does not \
         run on PostgreSQL yet (issue 21); apply them on SQLite before `db copy`, or remove \
         them, or mark them applied with `migrate history-sync`"
    )]
    PendingMigrations { dir: String, first: String },
    #[error("{0}")]
    Read(String),
}

/// Refuses when `pb_migrations` holds `.js` files `_migrations` does not
/// record as applied (automigrate's own files are recorded as it writes them).
pub async fn refuse_pending_migrations(db: &Db, config: &Config) -> Result<(), ServeRefusal> {
    let dir = config.migrations_dir();
    let files =
        crate::hooks::migrations::load(&dir).map_err(|e| ServeRefusal::Read(e.to_string()))?;
    if files.is_empty() {
        return Ok(());
    }
    let applied: std::collections::HashSet<String> = crate::hooks::migrations::applied(db)
        .await
        .map_err(|e| ServeRefusal::Read(e.to_string()))?
        .into_iter()
        .map(|(file, _)| file)
        .collect();
    match files.iter().find(|f| !applied.contains(&f.name)) {
        None => Ok(()),
        Some(first) => Err(ServeRefusal::PendingMigrations {
            dir: dir.display().to_string(),
            first: first.name.clone(),
        }),
    }
}
