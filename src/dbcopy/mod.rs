//! `ferrobase db copy --from DIR --to URL`: moves a SQLite data dir into an
//! empty PostgreSQL database — the system tables, every collection's table
//! (from its definition, with its indexes) and rows, the views, the request
//! logs — in ONE PostgreSQL transaction, then checks every table's row count
//! before committing. Anything that cannot be carried over exactly stops the
//! copy with the table, record and column named, and leaves the target as
//! it was. Blocking: run it on its own thread.

mod table;

use std::path::Path;

use postgres::Transaction;
use rusqlite::Connection;

use crate::db::postgres::{PgConnectError, SYSTEM_SCHEMA};
use crate::db::{Db, DbError, LockKey, ident};
use crate::schema::{Collection, CollectionType, SchemaError};
use table::{Bound, Table};

/// Rows per `INSERT`, bounded so no statement passes PostgreSQL's 65,535
/// parameters.
const MAX_PARAMS: usize = 30_000;
const MAX_ROWS: usize = 500;

/// Why the copy stopped (the target is then unchanged).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Source(#[from] DbError),
    #[error(
        "no Ferrobase database in {0} (data.db is missing): pass the data dir with --from or --dir"
    )]
    NoDatabase(std::path::PathBuf),
    #[error("reading the collections: {0}")]
    Schema(#[from] SchemaError),
    #[error("{0}")]
    Connect(#[from] PgConnectError),
    #[error(
        "the target database already has Ferrobase's tables (_collections): copy into an empty database"
    )]
    TargetNotEmpty,
    #[error("table {table}, row {row} (id {id}), column {column}: {reason}; nothing was copied")]
    Value {
        table: String,
        row: u64,
        id: String,
        column: String,
        reason: String,
    },
    #[error(
        "view collection {name}: its query does not run on PostgreSQL ({message}); nothing was copied"
    )]
    View { name: String, message: String },
    #[error("{table}: {source_rows} rows read from SQLite but {target_rows} in PostgreSQL")]
    Count {
        table: String,
        source_rows: u64,
        target_rows: i64,
    },
    #[error("PostgreSQL: {0}")]
    Target(String),
}

impl From<rusqlite::Error> for CopyError {
    fn from(e: rusqlite::Error) -> Self {
        CopyError::Source(DbError::from(e))
    }
}

impl From<postgres::Error> for CopyError {
    fn from(e: postgres::Error) -> Self {
        CopyError::Target(crate::db::postgres::describe(&e))
    }
}

/// What was copied: each table with its row count, in copy order.
#[derive(Debug, Default)]
pub struct CopyReport {
    pub tables: Vec<(String, u64)>,
    pub views: Vec<String>,
}

/// Copies the data dir `from` into the empty database at `url`.
pub fn copy(from: &Path, url: &str) -> Result<CopyReport, CopyError> {
    let path = from.join("data.db");
    if !path.is_file() {
        return Err(CopyError::NoDatabase(from.to_path_buf()));
    }
    let data = Db::open_read_only(&path)?;
    let logs = match from.join("auxiliary.db") {
        path if path.is_file() => Some(Db::open_read_only(&path)?),
        _ => None,
    };
    match copy_into(&data, logs.as_ref(), url)? {
        Some(report) => Ok(report),
        None => Err(CopyError::TargetNotEmpty),
    }
}

/// Gives the database at `url` Ferrobase's system tables and system
/// collections (the superusers, users, OTP, MFA, external-auth and
/// auth-origin collections, with fresh token secrets) when it has none:
/// a fresh data dir's contents, copied by the same path as `db copy`.
/// Returns whether it did; safe to race (one wins, the others find it done).
pub fn initialise(url: &str) -> Result<bool, CopyError> {
    let fresh = Db::fresh_in_memory()?;
    if copy_into(&fresh, None, url)?.is_some() {
        return Ok(true);
    }
    refresh_functions(url)?;
    Ok(false)
}

/// Installs this version's `fb_*` functions in a database an earlier
/// version initialised (each is `CREATE OR REPLACE`, the aggregate state
/// type made only when missing), under the bootstrap lock, so a newer
/// server never calls a function the database lacks.
fn refresh_functions(url: &str) -> Result<(), CopyError> {
    let mut client = crate::db::postgres::connect(url)?;
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&(LockKey::Bootstrap as i64)],
    )?;
    tx.batch_execute(crate::rules::postgres::FUNCTIONS)?;
    tx.commit()?;
    Ok(())
}

/// Copies `data` (and the request logs of `logs`) into the database at
/// `url` in one transaction, under the bootstrap lock; `None` when the
/// target already has `_collections` (nothing is written then).
fn copy_into(
    data: &Connection,
    logs: Option<&Connection>,
    url: &str,
) -> Result<Option<CopyReport>, CopyError> {
    // One read transaction: a consistent point in time even if a server
    // were writing (the caller holds the data dir's lock anyway).
    data.execute_batch("BEGIN")?;
    let collections = crate::schema::load_all(data)?;

    let mut client = crate::db::postgres::connect(url)?;
    let mut tx = client.transaction()?;
    // Two nodes starting on an empty database, or two copies: one at a time.
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&(LockKey::Bootstrap as i64)],
    )?;
    let taken: bool = tx
        .query_one("SELECT to_regclass('_collections') IS NOT NULL", &[])?
        .get(0);
    if taken {
        return Ok(None);
    }
    tx.batch_execute(SYSTEM_SCHEMA)?;
    tx.batch_execute(crate::rules::postgres::FUNCTIONS)?;
    tx.batch_execute(crate::schema::view::POSTGRES_FUNCTIONS)?;

    let mut report = CopyReport::default();
    for table in Table::system() {
        report.tables.push(copy_table(data, &mut tx, &table)?);
    }
    let (tables, views): (Vec<&Collection>, Vec<&Collection>) = collections
        .iter()
        .partition(|c| c.kind != CollectionType::View);
    for collection in tables {
        for statement in crate::schema::postgres_create_sql(collection) {
            tx.batch_execute(&statement)?;
        }
        report
            .tables
            .push(copy_table(data, &mut tx, &Table::collection(collection))?);
    }
    report.views = create_views(&mut tx, &views)?;
    if let Some(logs) = logs {
        logs.execute_batch("BEGIN")?;
        report
            .tables
            .push(copy_table(logs, &mut tx, &Table::logs())?);
    }
    tx.commit()?;
    Ok(Some(report))
}

/// Copies one table's rows, then compares the counts.
fn copy_table(
    source: &Connection,
    tx: &mut Transaction<'_>,
    table: &Table,
) -> Result<(String, u64), CopyError> {
    let width = table.columns.len().max(1);
    let per_statement = (MAX_PARAMS / width).clamp(1, MAX_ROWS);
    let full = tx.prepare(&table.insert_sql(per_statement))?;
    let mut stmt = source.prepare(&table.select_sql())?;
    let mut rows = stmt.query([])?;
    let mut pending: Vec<Bound> = Vec::with_capacity(per_statement * width);
    let mut copied: u64 = 0;
    while let Some(row) = rows.next()? {
        copied += 1;
        for (i, column) in table.columns.iter().enumerate() {
            let value =
                table::convert(column.kind, row.get_ref(i)?).map_err(|e| CopyError::Value {
                    table: table.name.clone(),
                    row: copied,
                    id: row.get::<_, String>(0).unwrap_or_default(),
                    column: column.name.clone(),
                    reason: e.reason,
                })?;
            pending.push(value);
        }
        if pending.len() == per_statement * width {
            tx.execute(&full, &params(&pending))?;
            pending.clear();
        }
    }
    if !pending.is_empty() {
        let rest = tx.prepare(&table.insert_sql(pending.len() / width))?;
        tx.execute(&rest, &params(&pending))?;
    }
    let target_rows: i64 = tx
        .query_one(&format!("SELECT count(*) FROM {}", ident(&table.name)), &[])?
        .get(0);
    if i64::try_from(copied).ok() != Some(target_rows) {
        return Err(CopyError::Count {
            table: table.name.clone(),
            source_rows: copied,
            target_rows,
        });
    }
    Ok((table.name.clone(), copied))
}

fn params(values: &[Bound]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    values
        .iter()
        .map(|v| v.as_ref() as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

/// Creates the views, each under a savepoint, pass after pass while a
/// pass creates any (a view may read another); when a pass creates none,
/// its first failure is the error.
fn create_views(tx: &mut Transaction<'_>, views: &[&Collection]) -> Result<Vec<String>, CopyError> {
    let mut left: Vec<&Collection> = views.to_vec();
    let mut created = Vec::new();
    while !left.is_empty() {
        let before = created.len();
        let mut failed = Vec::new();
        let mut first_error = None;
        for view in left {
            let mut savepoint = tx.transaction()?;
            match savepoint.batch_execute(&crate::schema::view::postgres_create_sql(view)) {
                Ok(()) => {
                    savepoint.commit()?;
                    created.push(view.name.as_str().to_owned());
                }
                Err(e) => {
                    savepoint.rollback()?;
                    first_error.get_or_insert_with(|| CopyError::View {
                        name: view.name.as_str().to_owned(),
                        message: CopyError::from(e).to_string(),
                    });
                    failed.push(view);
                }
            }
        }
        if created.len() == before
            && let Some(error) = first_error
        {
            return Err(error);
        }
        left = failed;
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use crate::config::DatabaseConfig;
    use crate::db::Db;
    use crate::pg_testing::{PgSchema, server};

    #[test]
    fn an_initialised_database_gets_the_functions_of_this_version() {
        let Some(base) = server() else { return };
        let mut schema = PgSchema::open(&base);
        let url = schema.url(&base);
        assert!(super::initialise(&url).expect("initialise"));
        schema
            .client
            .batch_execute("DROP AGGREGATE fb_sum(float8); DROP FUNCTION fb_pad(bigint, int)")
            .expect("an older version's functions");

        let created = super::initialise(&url).expect("again");

        assert!(!created, "initialised once");
        let found = schema
            .column(
                "SELECT proname::text FROM pg_proc WHERE proname IN ('fb_sum', 'fb_pad') \
                 AND pg_function_is_visible(oid) ORDER BY 1",
                &[],
            )
            .expect("functions");
        assert_eq!(found, ["fb_pad", "fb_sum"]);
    }

    #[test]
    fn racing_initialisations_create_the_system_collections_once() {
        let Some(base) = server() else { return };
        let schema = PgSchema::open(&base);
        let url = schema.url(&base);
        let created: Vec<bool> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..4)
                .map(|_| s.spawn(|| super::initialise(&url).expect("initialise")))
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("racer"))
                .collect()
        });
        assert_eq!(created.iter().filter(|c| **c).count(), 1, "{created:?}");
        assert!(
            !super::initialise(&url).expect("again"),
            "a second start finds it done"
        );

        let db = Db::open_postgres(&url, &DatabaseConfig::default()).expect("open");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let names: Vec<String> = runtime
            .block_on(db.read_conn(|c| crate::schema::read_all(c)))
            .expect("collections")
            .iter()
            .map(|c| c.name.as_str().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "_superusers",
                "users",
                "_mfas",
                "_otps",
                "_externalAuths",
                "_authOrigins"
            ]
        );
        let migrations = runtime.block_on(db.migration_status()).expect("status");
        assert!(
            migrations.iter().all(|m| m.applied.is_some()),
            "the fresh data dir's migrations are recorded: {migrations:?}"
        );
        let seal = crate::settings::Seal::none();
        let settings = runtime
            .block_on(crate::settings::load(&db, &seal))
            .expect("settings");
        assert_eq!(settings, crate::settings::Settings::default());
    }
}
