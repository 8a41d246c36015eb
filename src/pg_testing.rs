//! Test support for the PostgreSQL dialect: the throwaway server of the test
//! command (`PG_TEST_URL`, started by `tests/postgres/throwaway.sh`), a
//! private schema per test with the rules' `fb_*` functions installed, and
//! the binding of compiled filters' parameters.

use std::env;
use std::sync::atomic::{AtomicUsize, Ordering};

use postgres::types::ToSql;
use postgres::{Client, NoTls};
use proptest::prelude::*;
use proptest::sample::select;

use crate::rules::SqlValue;
use crate::rules::postgres::{FUNCTIONS, numbered};

/// Asserts that two engines gave the same labelled answers, compared as
/// JSON text (so key order and `1` against `1.0` count too).
pub fn assert_same_json(
    on_sqlite: &[(String, serde_json::Value)],
    on_postgres: &[(String, serde_json::Value)],
) {
    assert_eq!(on_postgres.len(), on_sqlite.len());
    for ((label, want), (_, got)) in on_sqlite.iter().zip(on_postgres) {
        assert_eq!(
            serde_json::to_string(want).expect("json"),
            serde_json::to_string(got).expect("json"),
            "{label}"
        );
    }
}

/// The test server's URL; `None` outside CI when there is none (the test
/// then says so and passes), a failure under `CI`.
pub fn server() -> Option<String> {
    match env::var("PG_TEST_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                env::var_os("CI").is_none(),
                "PG_TEST_URL is not set: tests/run.sh starts a throwaway PostgreSQL for this test"
            );
            eprintln!("skipped: PG_TEST_URL is not set (tests/postgres/throwaway.sh starts one)");
            None
        }
    }
}

/// A private schema on the test server, dropped with the value.
pub struct PgSchema {
    pub client: Client,
    name: String,
}

impl PgSchema {
    /// Connects, creates a fresh schema first on the search path and
    /// installs the `fb_*` functions in it.
    pub fn open(url: &str) -> Self {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let mut client = Client::connect(url, NoTls).expect("connect to PG_TEST_URL");
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let name = format!("fb_test_{}_{run}", std::process::id());
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}; \
                 SET search_path TO {name};"
            ))
            .expect("private schema");
        client.batch_execute(FUNCTIONS).expect("fb_* functions");
        Self { client, name }
    }

    /// `base` (the server's URL) with this schema first on the search path
    /// of every connection made from it.
    pub fn url(&self, base: &str) -> String {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-csearch_path%3D{}", self.name)
    }

    /// The first column (text or bigint, as text) of every row `sql` returns;
    /// `sql` has `?` placeholders for `params`.
    pub fn column(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<String>, String> {
        let fragment = crate::rules::SqlFragment {
            sql: sql.to_owned(),
            params: params.to_vec(),
        };
        let text = numbered(&fragment);
        let values = bind(params);
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref()).collect();
        let rows = self.client.query(&text, &refs).map_err(|e| {
            let message = e.as_db_error().map(|d| d.message().to_owned());
            format!("{e}: {message:?}\nSQL: {text}")
        })?;
        Ok(rows
            .iter()
            .map(|row| {
                row.try_get::<_, String>(0)
                    .or_else(|_| row.try_get::<_, i64>(0).map(|i| i.to_string()))
                    .unwrap_or_default()
            })
            .collect())
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = self
            .client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

/// Parameters for a statement written by [`numbered`] (`$n::type` casts).
pub fn bind(params: &[SqlValue]) -> Vec<Box<dyn ToSql + Sync>> {
    params
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync> {
            match v {
                SqlValue::Null => Box::new(Option::<String>::None),
                SqlValue::Integer(i) => Box::new(*i),
                SqlValue::Real(r) => Box::new(*r),
                SqlValue::Text(t) => Box::new(t.clone()),
            }
        })
        .collect()
}

/// Filters of up to two levels of `&&` / `||` groups over `comparison`.
pub fn and_or(comparison: BoxedStrategy<String>) -> BoxedStrategy<String> {
    comparison
        .prop_recursive(2, 8, 3, |inner| {
            (
                proptest::collection::vec(inner, 2..4),
                select(vec![" && ", " || "]),
            )
                .prop_map(|(parts, join)| format!("({})", parts.join(join)))
        })
        .boxed()
}
