//! Prepared statements kept per connection: a statement run again on the
//! same connection skips PostgreSQL's parse and its round trip (and, after
//! a few runs, its planning). Keyed by the SQL text, whose values are all
//! bound, so the set of texts is as small as the set of query shapes.
//!
//! A cached statement must not outlive the schema it was prepared against
//! (PostgreSQL refuses to run one whose result columns changed): every
//! schema change counts up a generation shared by the connections
//! ([`Generation`]), and each connection empties its cache before its next
//! job once the generation moved.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use postgres::{GenericClient, Statement};

/// More distinct statements than this on one connection empty its cache
/// (filters are many shapes; the common ones come back at once).
const CAPACITY: usize = 512;

/// The schema generation the connections' caches were prepared under;
/// cheap to clone.
#[derive(Clone, Default)]
pub struct Generation(Arc<AtomicU64>);

impl Generation {
    /// Marks every connection's cache stale (a schema change committed).
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// One connection's prepared statements.
pub struct Statements {
    by_sql: HashMap<String, Statement>,
    generation: Generation,
    prepared_under: u64,
}

impl Statements {
    pub fn new(generation: Generation) -> Self {
        let prepared_under = generation.current();
        Self {
            by_sql: HashMap::new(),
            generation,
            prepared_under,
        }
    }

    /// An empty cache for a fresh connection (statements are the
    /// connection's: the old ones died with it).
    pub fn for_new_connection(self) -> Self {
        Self::new(self.generation)
    }

    /// Empties the cache if the schema changed since it was filled: called
    /// before each job.
    pub fn refresh(&mut self) {
        let now = self.generation.current();
        if now != self.prepared_under {
            self.by_sql.clear();
            self.prepared_under = now;
        }
    }

    /// Empties this cache and every other connection's.
    pub fn forget_everywhere(&mut self) {
        self.by_sql.clear();
        self.generation.bump();
        self.prepared_under = self.generation.current();
    }

    /// The statement for `sql`, prepared on `client` the first time.
    pub fn get(
        &mut self,
        client: &mut impl GenericClient,
        sql: &str,
    ) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.by_sql.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql)?;
        if self.by_sql.len() >= CAPACITY {
            self.by_sql.clear();
        }
        self.by_sql.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// Whether `sql` changes the schema (and so must not be cached, and makes
/// the cached statements stale once committed).
pub fn changes_schema(sql: &str) -> bool {
    let head = sql.trim_start();
    ["CREATE", "ALTER", "DROP", "COMMENT"].iter().any(|verb| {
        head.get(..verb.len())
            .is_some_and(|word| word.eq_ignore_ascii_case(verb))
    })
}

#[cfg(test)]
mod tests {
    use super::changes_schema;

    #[test]
    fn schema_statements_are_told_apart_by_their_first_word() {
        for ddl in [
            "CREATE TABLE t (x int)",
            "  alter table t add column y int",
            "DROP VIEW v",
            "comment on table t is 'x'",
        ] {
            assert!(changes_schema(ddl), "{ddl}");
        }
        for dml in [
            "SELECT 1",
            "INSERT INTO t VALUES ($1)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "UPDATE created SET x = 1",
            "TRUNCATE t",
            "",
            "é",
        ] {
            assert!(!changes_schema(dml), "{dml}");
        }
    }
}
