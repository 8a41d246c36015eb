//! CRUD and listing of records in user collections: input normalisation and
//! validation, access rules, serialisation with hidden fields removed, and
//! reference handling on delete (cascade, clear, or refuse), and what a
//! realtime subscriber may see of a committed change.

mod access;
mod after_commit;
mod aggregate;
#[cfg(test)]
mod aggregate_backends;
mod auth_records;
#[cfg(test)]
mod backends;
mod batch;
#[cfg(test)]
mod batch_backends;
mod broadcast;
mod expand;
mod files;
pub mod hooked;
mod input;
mod json_escape;
mod list;
mod list_json;
mod marks;
mod on_postgres;
mod read;
mod refs;
mod scope;
mod searched;
pub mod session;
#[cfg(test)]
mod session_backends;
pub mod system;
mod truncate;
mod tx;
pub mod validate;
pub mod value;
mod write;
#[cfg(test)]
mod write_backends;

pub use access::Caller;
pub use after_commit::AfterCommit;
pub use aggregate::{AggregateQuery, MAX_AGGREGATE_GROUPS, aggregate, parse_aggregate_query};
pub use batch::{BatchAbort, BatchApplied, BatchWrite, apply_batch, exists};
pub use broadcast::visible;
pub use expand::{ExpandTree, MAX_EXPAND_DEPTH, expand};
pub use files::{Cleanup, Upload};
pub use hooked::{Next, Stage, SystemWrite, WriteHooks};
pub use truncate::truncate;
// For hooks' `$app.recordQuery`, which selects rows with its own WHERE.
pub use list::{
    ListPage, ListQuery, list, list_json, list_searched, list_with_params, parse_list_query,
};
pub use list_json::JsonItems;
pub use marks::{SNIPPET_TOKENS, search_marks};
pub(crate) use on_postgres::values as cells_values;
pub(crate) use read::serialize;
pub use read::{
    StoredFile, find_file, matches_rule, select_sql, view, view_as_owner, view_conn, view_in,
    view_sample,
};
pub(crate) use tx::is_jsonb;
pub use write::{
    Applied, Backend, PreparedCreate, PreparedDelete, PreparedUpdate, create, delete,
    in_transaction, prepare_create, prepare_delete, prepare_update, settle, update,
};

use crate::auth::AuthError;
use crate::db::DbError;
use crate::rules::RuleError;
use crate::validation::ValidationErrors;

/// Largest accepted `perPage`.
pub const MAX_PER_PAGE: i64 = 1000;
/// `perPage` when none (or a non-positive one) is given.
pub const DEFAULT_PER_PAGE: i64 = 30;

/// Why a record operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record not found")]
    NotFound,
    #[error("only superusers can perform this action")]
    SuperusersOnly,
    #[error("only superusers can filter by {0}")]
    SuperusersOnlyFilter(&'static str),
    #[error("the create rule rejected the record")]
    CreateRuleFailed,
    #[error("validation failed: {errors}")]
    Invalid {
        message: &'static str,
        errors: ValidationErrors,
    },
    #[error("bad query: {0}")]
    BadQuery(String),
    #[error("bad filter or sort: {0}")]
    Rule(#[from] RuleError),
    #[error("the record is part of a required relation reference")]
    RequiredReference,
    #[error("collection type does not support this action")]
    Unsupported,
    #[error("view collections cannot be truncated")]
    ViewTruncate,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("file storage: {0}")]
    Files(#[from] crate::files::FilesError),
    #[error(transparent)]
    Db(#[from] DbError),
    /// A JavaScript hook refused the write (its status, message and data).
    #[error("a hook refused the write: {message}")]
    Hook {
        status: u16,
        message: String,
        data: serde_json::Value,
    },
    /// A hook's write session was rolled back (it failed or ran out of time).
    #[error("the hook's write transaction was rolled back")]
    Aborted,
}

impl From<rusqlite::Error> for RecordError {
    fn from(e: rusqlite::Error) -> Self {
        RecordError::Db(DbError::Sqlite(e))
    }
}

impl From<AuthError> for RecordError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Db(e) => RecordError::Db(e),
            other => RecordError::Hash(other.to_string()),
        }
    }
}
