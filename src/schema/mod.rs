//! Collections and fields: names, types and options, per-collection rules,
//! the DDL that keeps each collection's table in step with its definition,
//! and the cached registry that the rest of the server reads.

mod auth_defaults;
mod auth_options;
pub mod autogen;
mod collection;
mod ddl;
mod field;
mod import;
mod index;
mod json_schema;
mod list;
mod names;
pub mod oauth2;
mod oauth2_catalog;
mod registry;
mod rule_scope;
mod store;
pub mod view;

pub use auth_options::{
    AuthAlertConfig, AuthOptions, MfaConfig, OAuth2Config, OtpConfig, PasswordAuthConfig,
    TokenConfig,
};
pub use collection::{
    Collection, CollectionType, RULE_KEYS, Rules, SUPERUSERS_ID, SUPERUSERS_NAME,
};
pub use ddl::{
    POSTGRES_ROWID, postgres_column_def, postgres_create_sql, postgres_create_table_sql,
};
pub use field::{
    DEFAULT_EDITOR_MAX_BYTES, DEFAULT_JSON_MAX_BYTES, DEFAULT_TEXT_MAX_CHARS, Field, FieldKind,
    number_json,
};
pub use import::{ImportError, MAX_IMPORT_COLLECTIONS, delete_in_tx, import, import_in};
pub use index::IndexDef;
pub use json_schema::record_schema;
pub use list::{ListError, list};
pub use names::{CollectionName, FieldName, NameError};
pub(crate) use registry::next_generation;
pub use registry::{CompiledCollection, Registry, Snapshot};
pub use rule_scope::{FieldScope, MAX_RELATION_HOPS, NoRequest, RequestValues, Trust, value_type};
pub use store::{
    AUTH_STATE_TABLES, LISTABLE_COLUMNS, create, delete, dry_run_view, load_all, load_snapshot,
    query_ids, read_all, read_snapshot, update, validate, view_column_origin,
};

use crate::db::DbError;
use crate::validation::ValidationErrors;

/// Why a schema operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("collection not found")]
    NotFound,
    #[error("invalid collection: {0}")]
    Invalid(ValidationErrors),
    #[error("malformed collection: {0}")]
    Format(String),
    #[error("collection is referenced by {0}")]
    Referenced(String),
    #[error("view collection {view} depends on it")]
    ViewDependency { view: String, deleting: bool },
    #[error("system collections cannot be deleted")]
    System,
    #[error("stored schema is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for SchemaError {
    fn from(e: rusqlite::Error) -> Self {
        SchemaError::Db(DbError::Sqlite(e))
    }
}
