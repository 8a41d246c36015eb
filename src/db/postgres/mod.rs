//! PostgreSQL: connections from libpq URLs with TLS ([`connect`]), SQLite's
//! dynamic values across PostgreSQL's types ([`Param`], [`Cell`]), and the
//! connection threads that run transactions ([`PgDb`]).

mod connect;
mod pool;
mod statements;
mod value;

pub use connect::{PgConnectError, SYSTEM_SCHEMA, connect, describe, redacted};
pub use pool::{MAX_ATTEMPTS, PgDb, PgStats, PgStatsSnapshot};
pub use statements::{Generation, Statements, changes_schema};
pub use value::{Cell, Param, Shown};

use postgres::error::SqlState;

/// A statement PostgreSQL refused, or a connection failure: the server's
/// SQLSTATE (when it sent one) and a message in words.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct PgFailure {
    pub state: Option<SqlState>,
    pub message: String,
}

impl From<postgres::Error> for PgFailure {
    fn from(e: postgres::Error) -> Self {
        Self {
            state: e.code().cloned(),
            message: describe(&e),
        }
    }
}

impl PgFailure {
    /// A deadlock or serialization failure: the transaction may succeed if
    /// run again.
    pub fn is_retryable(&self) -> bool {
        self.is_deadlock() || self.is_serialization_failure() || self.is_stale_statement()
    }

    pub fn is_serialization_failure(&self) -> bool {
        self.state == Some(SqlState::T_R_SERIALIZATION_FAILURE)
    }

    /// A prepared statement whose result columns a schema change altered
    /// ("cached plan must not change result type"): prepared again, it runs.
    pub fn is_stale_statement(&self) -> bool {
        self.state == Some(SqlState::FEATURE_NOT_SUPPORTED)
            && self
                .message
                .contains("cached plan must not change result type")
    }

    pub fn is_deadlock(&self) -> bool {
        self.state == Some(SqlState::T_R_DEADLOCK_DETECTED)
    }

    /// The statement ran past `statement_timeout`.
    pub fn is_timeout(&self) -> bool {
        self.state == Some(SqlState::QUERY_CANCELED)
    }

    /// A unique index refused the row.
    pub fn is_unique_violation(&self) -> bool {
        self.state == Some(SqlState::UNIQUE_VIOLATION)
    }
}

#[cfg(test)]
mod tests;
