//! One way to run SQL on either engine, for the code that is the same on
//! both: statements with `?N` (or `?`) placeholders, values as SQLite's
//! storage classes ([`SqlValue`]), rows as values. On PostgreSQL the
//! placeholders become `$N` and values cross through
//! [`super::postgres::Param`] and [`super::postgres::Cell`]; SQL written for
//! this trait avoids PostgreSQL's `?` jsonb operators (use `jsonb_exists`).

use std::borrow::Cow;

use rusqlite::types::{ToSqlOutput, ValueRef};

use super::DbError;
use super::postgres::{Cell, Param, PgFailure, Shown, Statements, changes_schema};
use crate::rules::{Dialect, SqlValue};
use ::postgres::Statement;

/// A connection (in a transaction) to either engine.
pub trait Conn {
    /// Which SQL this connection speaks.
    fn dialect(&self) -> Dialect;

    /// Runs one statement; returns how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError>;

    /// Runs a query and hands each row's values to `row`, in order.
    fn for_each_row(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        row: &mut dyn FnMut(Vec<SqlValue>) -> Result<(), DbError>,
    ) -> Result<(), DbError>;

    /// Runs SQL a person wrote (a hook's raw query), exactly as written in
    /// this engine's own dialect and placeholders (`?N` / `$N`: nothing is
    /// translated, so PostgreSQL's `?` jsonb operators work), and answers its
    /// column names and at most `max` rows. On PostgreSQL types without a
    /// SQLite counterpart read as text where that is unambiguous
    /// ([`super::postgres::Shown`]); on SQLite a blob is an error.
    fn query_as_written(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        max: usize,
    ) -> Result<(Vec<String>, Vec<Vec<SqlValue>>), DbError>;

    /// Runs one statement a person wrote, as written (see
    /// [`Conn::query_as_written`]); returns how many rows it changed.
    /// SQLite's [`Conn::execute`] already translates nothing.
    fn execute_as_written(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        self.execute(sql, params)
    }

    /// The SQLite connection underneath, for code that still speaks
    /// rusqlite; `None` on PostgreSQL.
    fn sqlite(&self) -> Option<&rusqlite::Connection> {
        None
    }

    /// The deadlock or serialization failure a statement met, if any
    /// (PostgreSQL; never on SQLite's single writer).
    fn retryable(&self) -> Option<PgFailure> {
        None
    }
}

/// What a transaction locks on PostgreSQL to keep an invariant SQLite's
/// single writer keeps for free (a transaction-scoped advisory lock, held
/// until commit or rollback). Each key is its own lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub enum LockKey {
    /// The settings row: read, merge, write.
    Settings = 0x6662_0001,
    /// Creating the system tables of an empty database (or copying into it).
    Bootstrap = 0x6662_0002,
    /// The superusers: a delete counts them first and must never leave none.
    Superusers = 0x6662_0003,
    /// The collection definitions and their tables: read, change, write.
    Schema = 0x6662_0004,
    /// Auth record ids, unique across every auth collection: creates of
    /// auth records check the other collections in turn.
    AuthIds = 0x6662_0005,
    /// The realtime outbox: taken just before a transaction's outbox row is
    /// inserted, so outbox rows commit in the order of their `seq`.
    Outbox = 0x6662_0006,
    /// Which node runs the cron jobs: a session-level lock held by the
    /// leader's own connection (`crate::nodes::leader`), never taken
    /// through [`Conn::lock`](trait.Conn.html).
    CronLeader = 0x6662_0007,
}

impl dyn Conn + '_ {
    /// Takes `key` until the end of the transaction (PostgreSQL); nothing on
    /// SQLite, where every write transaction already excludes the others.
    pub fn lock(&mut self, key: LockKey) -> Result<(), DbError> {
        if self.dialect() == Dialect::Postgres {
            self.execute(
                "SELECT pg_advisory_xact_lock(?1)",
                &[SqlValue::Integer(key as i64)],
            )?;
        }
        Ok(())
    }

    /// Stops this transaction's later statements once `deadline` has
    /// passed: on PostgreSQL `statement_timeout` becomes the time left (at
    /// least 1 ms, as 0 means none; a transaction-local setting, so call it
    /// outside savepoints); on SQLite nothing, as the thread's deadline
    /// watch (`Db::with_deadline`) interrupts them. A statement stopped
    /// here fails with [`DbError::TimedOut`].
    pub fn limit_until(&mut self, deadline: std::time::Instant) -> Result<(), DbError> {
        if self.dialect() != Dialect::Postgres {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // Rounded up: stopped at the deadline, never before it.
        let ms = left.as_micros().div_ceil(1000).max(1).to_string();
        self.first_row(
            "SELECT set_config('statement_timeout', ?1, true)",
            &[SqlValue::Text(ms)],
        )?;
        Ok(())
    }

    /// Every row of a query.
    pub fn rows(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        let mut rows = Vec::new();
        self.for_each_row(sql, params, &mut |row| {
            rows.push(row);
            Ok(())
        })?;
        Ok(rows)
    }

    /// The integer a one-row, one-column query answers (`count(*)` …).
    pub fn integer(&mut self, sql: &str, params: &[SqlValue]) -> Result<i64, DbError> {
        match self
            .first_row(sql, params)?
            .and_then(|r| r.into_iter().next())
        {
            Some(SqlValue::Integer(i)) => Ok(i),
            other => Err(DbError::NotAnInteger(format!("{other:?}"))),
        }
    }

    /// The first row of a query, if any.
    pub fn first_row(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Option<Vec<SqlValue>>, DbError> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }
}

/// The one bridge from the rules' bound values to rusqlite: a `SqlValue`
/// (or a reference to one) binds directly.
impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            SqlValue::Null => ValueRef::Null,
            SqlValue::Integer(i) => ValueRef::Integer(*i),
            SqlValue::Real(f) => ValueRef::Real(*f),
            SqlValue::Text(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

/// A SQLite connection (or transaction, which derefs to one) as a [`Conn`];
/// statements are prepared once per connection and cached.
pub struct SqliteConn<'a>(pub &'a rusqlite::Connection);

impl Conn for SqliteConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn sqlite(&self) -> Option<&rusqlite::Connection> {
        Some(self.0)
    }

    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let changed = stmt.execute(rusqlite::params_from_iter(params))?;
        Ok(changed as u64)
    }

    fn for_each_row(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        row: &mut dyn FnMut(Vec<SqlValue>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        while let Some(r) = rows.next()? {
            row(sqlite_values(r, width)?)?;
        }
        Ok(())
    }

    fn query_as_written(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        max: usize,
    ) -> Result<(Vec<String>, Vec<Vec<SqlValue>>), DbError> {
        let mut stmt = self.0.prepare(sql)?;
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while out.len() < max {
            let Some(r) = rows.next()? else { break };
            out.push(sqlite_values(r, names.len())?);
        }
        Ok((names, out))
    }
}

/// One SQLite row's cells as values.
fn sqlite_values(r: &rusqlite::Row<'_>, width: usize) -> Result<Vec<SqlValue>, DbError> {
    (0..width)
        .map(|i| {
            Ok(match r.get_ref(i)? {
                ValueRef::Null => SqlValue::Null,
                ValueRef::Integer(n) => SqlValue::Integer(n),
                ValueRef::Real(f) => SqlValue::Real(f),
                // Raw SQL can store text that is not UTF-8: an error, never mangled.
                ValueRef::Text(t) => SqlValue::Text(
                    std::str::from_utf8(t)
                        .map_err(|e| DbError::Sqlite(rusqlite::Error::Utf8Error(i, e)))?
                        .to_owned(),
                ),
                ValueRef::Blob(_) => {
                    return Err(DbError::Sqlite(rusqlite::Error::InvalidColumnType(
                        i,
                        "blob".into(),
                        rusqlite::types::Type::Blob,
                    )));
                }
            })
        })
        .collect()
}

/// A PostgreSQL transaction as a [`Conn`]. Remembers whether a statement
/// failed in a way worth retrying the whole transaction for (a deadlock, a
/// serialization failure), whatever error type the caller turned it into.
pub struct PgConn<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    retryable: Option<PgFailure>,
    /// The connection's prepared statements, when it keeps them.
    statements: Option<&'a mut Statements>,
    /// A statement changed the schema: once committed, every connection's
    /// prepared statements are stale.
    changed_schema: bool,
}

impl<'a, 'b> PgConn<'a, 'b> {
    /// Statements prepared for this transaction only.
    pub fn new(tx: &'a mut postgres::Transaction<'b>) -> Self {
        Self {
            tx,
            retryable: None,
            statements: None,
            changed_schema: false,
        }
    }

    /// Statements prepared once per connection, in `statements`.
    pub fn cached(tx: &'a mut postgres::Transaction<'b>, statements: &'a mut Statements) -> Self {
        Self {
            statements: Some(statements),
            ..Self::new(tx)
        }
    }

    /// Whether a statement of this transaction changed the schema.
    pub fn changed_schema(&self) -> bool {
        self.changed_schema
    }

    /// The prepared statement for `sql`: from the cache, or prepared now.
    fn statement(&mut self, sql: &str) -> Result<Statement, DbError> {
        if changes_schema(sql) {
            self.changed_schema = true;
        }
        let prepared = match self.statements.as_deref_mut() {
            Some(cache) if !self.changed_schema => cache.get(self.tx, sql),
            _ => self.tx.prepare(sql),
        };
        prepared.map_err(|e| self.failed(e))
    }

    fn failed(&mut self, e: postgres::Error) -> DbError {
        let failure = PgFailure::from(e);
        if failure.is_stale_statement() {
            // Another connection changed the schema under a cached statement:
            // forget them all; the transaction may run again (a write does).
            if let Some(cache) = self.statements.as_deref_mut() {
                cache.forget_everywhere();
            }
        }
        if failure.is_retryable() {
            self.retryable = Some(failure.clone());
        }
        if failure.is_timeout() {
            // `statement_timeout`: SQLite's query time limit, answered alike.
            return DbError::TimedOut;
        }
        DbError::Postgres(failure)
    }
}

impl Conn for PgConn<'_, '_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn retryable(&self) -> Option<PgFailure> {
        self.retryable.clone()
    }

    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        let statement = self.statement(&dollar(sql))?;
        let bound = bind(params);
        self.tx
            .execute(&statement, &refs(&bound))
            .map_err(|e| self.failed(e))
    }

    fn for_each_row(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        row: &mut dyn FnMut(Vec<SqlValue>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        let statement = self.statement(&dollar(sql))?;
        let bound = bind(params);
        let rows = self
            .tx
            .query(&statement, &refs(&bound))
            .map_err(|e| self.failed(e))?;
        for r in rows {
            let values = (0..r.len())
                .map(|i| r.try_get::<_, Cell>(i).map(|c| c.0))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.failed(e))?;
            row(values)?;
        }
        Ok(())
    }

    fn execute_as_written(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        self.changed_schema |= changes_schema(sql);
        let bound = bind(params);
        self.tx
            .execute(sql, &refs(&bound))
            .map_err(|e| self.failed(e))
    }

    fn query_as_written(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        max: usize,
    ) -> Result<(Vec<String>, Vec<Vec<SqlValue>>), DbError> {
        self.changed_schema |= changes_schema(sql);
        let bound = bind(params);
        let stmt = self.tx.prepare(sql).map_err(|e| self.failed(e))?;
        let names: Vec<String> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
        let portal = self
            .tx
            .bind(&stmt, &refs(&bound))
            .map_err(|e| self.failed(e))?;
        // A portal hands over at most `max` rows: the rest are never sent.
        // (0 would mean every row.)
        let limit = i32::try_from(max.max(1)).unwrap_or(i32::MAX);
        let rows = self
            .tx
            .query_portal(&portal, limit)
            .map_err(|e| self.failed(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let values = (0..r.len())
                .map(|i| r.try_get::<_, Shown>(i).map(|c| c.0))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.failed(e))?;
            out.push(values);
        }
        Ok((names, out))
    }
}

fn bind(params: &[SqlValue]) -> Vec<Param<'_>> {
    params.iter().map(Param).collect()
}

/// The parameter list rust-postgres takes.
fn refs<'a>(bound: &'a [Param<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    bound
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

/// `?N` and `?` placeholders as PostgreSQL's `$N` (a bare `?` takes the
/// next number), outside quoted text and identifiers.
pub fn dollar(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    let mut next = 0usize;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    digits = next.to_string();
                }
                out.push('$');
                out.push_str(&digits);
            }
            (None, c) => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_outside_quotes() {
        assert_eq!(
            dollar("SELECT a FROM t WHERE b = ?1 AND c = ?2 OR d = ?1"),
            "SELECT a FROM t WHERE b = $1 AND c = $2 OR d = $1"
        );
        assert_eq!(dollar("VALUES (?, ?, ?)"), "VALUES ($1, $2, $3)");
        assert_eq!(
            dollar("SELECT '?1 it''s ?' AS \"odd?\" WHERE x = ?1"),
            "SELECT '?1 it''s ?' AS \"odd?\" WHERE x = $1"
        );
        assert!(matches!(dollar("SELECT 1"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_same_statements_run_on_sqlite_through_the_trait() {
        let db = rusqlite::Connection::open_in_memory().expect("memory");
        let conn: &mut dyn Conn = &mut SqliteConn(&db);
        conn.execute(
            "CREATE TABLE t (id TEXT PRIMARY KEY, n NUMERIC, j JSON)",
            &[],
        )
        .expect("create");
        let changed = conn
            .execute(
                "INSERT INTO t (id, n, j) VALUES (?1, ?2, ?3)",
                &[
                    SqlValue::Text("a".into()),
                    SqlValue::Integer(5),
                    SqlValue::Text("[1]".into()),
                ],
            )
            .expect("insert");
        assert_eq!(changed, 1);
        let row = conn
            .first_row(
                "SELECT id, n, j FROM t WHERE id = ?1",
                &[SqlValue::Text("a".into())],
            )
            .expect("select");
        assert_eq!(
            row,
            Some(vec![
                SqlValue::Text("a".into()),
                SqlValue::Integer(5),
                SqlValue::Text("[1]".into())
            ])
        );
    }
}
