//! The Litestream config `serve` writes into the data dir: one entry per
//! database, each replicated to its own path under the replica URL.

use super::{AUXILIARY_DB, CONFIG_FILE, DATA_DB, ReplicationError, replica_url};
use crate::config::ReplicationConfig;
use std::path::{Path, PathBuf};

/// How often Litestream looks at the WAL for new frames, in milliseconds
/// (its default is 1 s). A write reaches the replica at most about one
/// monitor interval plus one sync interval after its commit; checking the
/// WAL's size is cheap, so this keeps the lag close to the sync interval.
const MONITOR_INTERVAL_MS: u64 = 100;

/// Writes `DATA_DIR/litestream.yml` and returns its path. `data_dir` must be absolute.
pub(super) fn write(
    data_dir: &Path,
    options: &ReplicationConfig,
) -> Result<PathBuf, ReplicationError> {
    let path = data_dir.join(CONFIG_FILE);
    std::fs::write(&path, render(data_dir, options)).map_err(|source| {
        ReplicationError::WriteConfig {
            path: path.clone(),
            source,
        }
    })?;
    Ok(path)
}

/// The databases to replicate.
pub(super) fn databases(options: &ReplicationConfig) -> Vec<&'static str> {
    if options.auxiliary {
        vec![DATA_DB, AUXILIARY_DB]
    } else {
        vec![DATA_DB]
    }
}

fn render(data_dir: &Path, options: &ReplicationConfig) -> String {
    let mut out = String::from(
        "# Written by `ferrobase serve` from [replication] in config.toml at every start;\n\
         # edits here are overwritten.\ndbs:\n",
    );
    for db in databases(options) {
        let db_path = data_dir.join(db);
        out.push_str(&format!(
            "  - path: {}\n    monitor-interval: {}ms\n    replica:\n      url: {}\n      sync-interval: {}ms\n",
            quoted(&db_path.to_string_lossy()),
            MONITOR_INTERVAL_MS.min(options.sync_interval_ms),
            quoted(&replica_url(&options.replica, db)),
            options.sync_interval_ms
        ));
    }
    out
}

/// A YAML double-quoted scalar: JSON string syntax is a subset of it, so
/// paths with quotes, colons or `#` cannot break out of their value.
fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_database_is_listed_with_its_replica_and_interval() {
        let options = ReplicationConfig {
            replica: "file:///rep".into(),
            sync_interval_ms: 250,
            ..ReplicationConfig::default()
        };

        let yaml = render(Path::new("/data \"x\": #1"), &options);

        for (expected, why) in [
            (
                r#"- path: "/data \"x\": #1/data.db""#,
                "quoted data.db path",
            ),
            (r#"url: "file:///rep/data.db""#, "data.db replica"),
            (r#"url: "file:///rep/auxiliary.db""#, "auxiliary.db replica"),
            ("sync-interval: 250ms", "interval"),
            (
                "monitor-interval: 100ms",
                "WAL checked more often than it is shipped",
            ),
        ] {
            assert!(yaml.contains(expected), "{why}: {yaml}");
        }
    }

    #[test]
    fn auxiliary_db_is_left_out_when_not_wanted() {
        let options = ReplicationConfig {
            replica: "file:///rep".into(),
            auxiliary: false,
            ..ReplicationConfig::default()
        };
        assert!(!render(Path::new("/d"), &options).contains("auxiliary"));
    }
}
