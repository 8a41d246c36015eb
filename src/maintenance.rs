//! The built-in scheduled jobs, with PocketBase's ids and schedules:
//! expired OTP and MFA sessions, old request logs, and SQLite's own
//! housekeeping. Each is a plain async function; `app` registers them with
//! the [`crate::cron::Scheduler`].

use crate::config::WalCheckpoints;
use crate::db::{Db, DbError, ident};
use crate::rules::{Dialect, SqlValue};
use crate::schema::{CollectionType, Registry};
use chrono::Utc;

/// `(id, expression)` of the built-in jobs.
pub const DB_OPTIMIZE: (&str, &str) = ("__pbDBOptimize__", "0 0 * * *");
pub const MFA_CLEANUP: (&str, &str) = ("__pbMFACleanup__", "0 * * * *");
pub const OTP_CLEANUP: (&str, &str) = ("__pbOTPCleanup__", "0 * * * *");
pub const LOGS_CLEANUP: (&str, &str) = ("__pbLogsCleanup__", "0 */6 * * *");

/// Lets SQLite refresh its planner statistics and folds the WAL back in
/// (unless `database.wal_checkpoints = "off"`: Litestream checkpoints then).
/// Nothing on PostgreSQL, whose autovacuum keeps its statistics.
pub async fn optimize(db: &Db) -> Result<(), DbError> {
    if db.dialect() == Dialect::Postgres {
        return Ok(());
    }
    let checkpoint = db.wal_checkpoints() == WalCheckpoints::Auto;
    db.write(move |conn| -> Result<(), DbError> {
        conn.execute_batch("PRAGMA optimize;")?;
        if checkpoint {
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        }
        Ok(())
    })
    .await
}

/// Which auth option's `duration` bounds the rows being expired.
#[derive(Clone, Copy)]
enum Expiring {
    Otp,
    Mfa,
}

/// Deletes rows of `table` (`_otps` or `_mfas`) older than their collection's
/// `option.duration`. Returns how many went.
async fn expire(
    db: &Db,
    registry: &Registry,
    table: &'static str,
    option: Expiring,
) -> Result<usize, DbError> {
    let cutoffs: Vec<(String, String)> = registry
        .snapshot()
        .all()
        .iter()
        .filter(|c| c.kind == CollectionType::Auth)
        .filter_map(|c| {
            let duration = match option {
                Expiring::Otp => c.auth.otp.duration,
                Expiring::Mfa => c.auth.mfa.duration,
            }
            .max(0);
            // A duration past chrono's range (a stored absurd value) expires nothing.
            let since = chrono::Duration::try_seconds(duration)
                .and_then(|d| Utc::now().checked_sub_signed(d))?;
            Some((c.id.clone(), crate::clock::format(since)))
        })
        .collect();
    db.write_conn(move |conn| -> Result<usize, DbError> {
        let mut removed = 0;
        for (collection_id, cutoff) in &cutoffs {
            removed += conn.execute(
                &format!(
                    "DELETE FROM {} WHERE \"collectionRef\" = ?1 AND created < ?2",
                    ident(table)
                ),
                &[
                    SqlValue::Text(collection_id.clone()),
                    SqlValue::Text(cutoff.clone()),
                ],
            )?;
        }
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    })
    .await
}

/// Deletes expired one-time passwords.
pub async fn cleanup_otps(db: &Db, registry: &Registry) -> Result<usize, DbError> {
    expire(db, registry, "_otps", Expiring::Otp).await
}

/// Deletes expired MFA sessions.
pub async fn cleanup_mfas(db: &Db, registry: &Registry) -> Result<usize, DbError> {
    expire(db, registry, "_mfas", Expiring::Mfa).await
}

#[cfg(test)]
mod tests {
    //! The expiry jobs on SQLite and on PostgreSQL (the throwaway server of
    //! the test command): the same rows go.

    use super::*;
    use crate::config::DatabaseConfig;
    use crate::pg_testing::{PgSchema, server};

    /// Two OTPs and two MFA sessions for `_superusers` (one fresh, one a day
    /// old), one of each for a collection that does not exist; returns what
    /// each cleanup removed and what is left.
    fn run(db: &Db) -> (usize, usize, i64, i64) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let registry = Registry::default();
            let snapshot = db
                .read_conn(|c| crate::schema::read_all(c))
                .await
                .expect("collections");
            registry.replace(crate::schema::Snapshot::build(snapshot).expect("snapshot"));
            let old = crate::clock::format(Utc::now() - chrono::Duration::days(1));
            let new = crate::clock::now();
            db.write_conn(move |c| -> Result<(), DbError> {
                for table in ["_otps", "_mfas"] {
                    for (id, collection, created) in [
                        ("fresh0000000001", "pbc_3142635823", new.as_str()),
                        ("stale0000000001", "pbc_3142635823", old.as_str()),
                        ("other0000000001", "pbc_0000000000", old.as_str()),
                    ] {
                        c.execute(
                            &format!(
                                "INSERT INTO {table} (id, \"collectionRef\", \"recordRef\", created, updated) \
                                 VALUES (?1, ?2, 'r', ?3, ?3)"
                            ),
                            &[
                                SqlValue::Text(id.into()),
                                SqlValue::Text(collection.into()),
                                SqlValue::Text(created.into()),
                            ],
                        )?;
                    }
                }
                Ok(())
            })
            .await
            .expect("rows");
            let otps = cleanup_otps(db, &registry).await.expect("otps");
            let mfas = cleanup_mfas(db, &registry).await.expect("mfas");
            optimize(db).await.expect("optimize");
            let left = |table: &'static str| {
                db.read_conn(move |c| c.integer(&format!("SELECT count(*) FROM {table}"), &[]))
            };
            (otps, mfas, left("_otps").await.expect("count"), left("_mfas").await.expect("count"))
        })
    }

    #[test]
    fn expired_otps_and_mfa_sessions_go_on_either_engine() {
        let dir = tempfile::tempdir().expect("tmp");
        let sqlite = run(&Db::open(dir.path(), &DatabaseConfig::default()).expect("open"));
        assert_eq!(
            sqlite,
            (1, 1, 2, 2),
            "only the stale rows of a known collection go"
        );
        let Some(base) = server() else { return };
        let schema = PgSchema::open(&base);
        let url = schema.url(&base);
        crate::dbcopy::initialise(&url).expect("system tables");
        let postgres = run(&Db::open_postgres(&url, &DatabaseConfig::default()).expect("open"));
        assert_eq!(postgres, sqlite);
    }
}
