//! The built-in scheduled jobs, with PocketBase's ids and schedules:
//! expired OTP and MFA sessions, old request logs, and SQLite's own
//! housekeeping. Each is a plain async function; `app` registers them with
//! the [`crate::cron::Scheduler`].

use crate::config::WalCheckpoints;
use crate::db::{Db, DbError};
use crate::schema::{CollectionType, Registry};
use chrono::Utc;
use rusqlite::params;

/// `(id, expression)` of the built-in jobs.
pub const DB_OPTIMIZE: (&str, &str) = ("__pbDBOptimize__", "0 0 * * *");
pub const MFA_CLEANUP: (&str, &str) = ("__pbMFACleanup__", "0 * * * *");
pub const OTP_CLEANUP: (&str, &str) = ("__pbOTPCleanup__", "0 * * * *");
pub const LOGS_CLEANUP: (&str, &str) = ("__pbLogsCleanup__", "0 */6 * * *");

/// Lets SQLite refresh its planner statistics and folds the WAL back in
/// (unless `database.wal_checkpoints = "off"`: Litestream checkpoints then).
pub async fn optimize(db: &Db) -> Result<(), DbError> {
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
    db.write(move |conn| -> Result<usize, DbError> {
        let tx = conn.transaction()?;
        let mut removed = 0;
        for (collection_id, cutoff) in &cutoffs {
            removed += tx.execute(
                &format!("DELETE FROM {table} WHERE collectionRef = ?1 AND created < ?2"),
                params![collection_id, cutoff],
            )?;
        }
        tx.commit()?;
        Ok(removed)
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
