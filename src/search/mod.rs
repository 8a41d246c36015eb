//! Full-text search and aggregation over user collections, beyond what
//! PocketBase offers. This module owns the FTS5 index of each collection with
//! searchable fields (`index`: its DDL and the row updates that keep it in step
//! with the record table inside every write transaction; `held`: those row
//! writes held until a writer group's commit; `catch_up`: after raw SQL), the translation of
//! an end user's search text into an FTS5 query that is always well formed
//! (`query`), and the parsing of `groupBy`/`aggregate` parameters (`aggregate`).
//! Running a search or an aggregation under the list rule is left to
//! `records`, which owns the rule-checked WHERE clause; schema changes call
//! `index` from `schema::ddl` so the index follows every table rebuild.

pub mod aggregate;
pub mod catch_up;
pub mod held;
pub mod index;
pub mod query;

pub use aggregate::{AggFn, AggSpec, Bucket, GroupSpec};
pub use index::{ReindexError, SearchSpec, fts_table, reindex, reindex_all};
pub use query::{MAX_SEARCH_BYTES, MAX_SEARCH_TERMS, SearchQueryError, to_match};
