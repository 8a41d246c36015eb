//! Login origins (`_authOrigins`): each successful login records a
//! fingerprint of where it came from (client IP and user agent, hashed). A
//! login from a fingerprint the account has not used before, on an account
//! that has logged in before, is worth an alert email.

use super::AuthError;
use crate::db::{Db, ident};
use crate::schema::{CompiledCollection, autogen};
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Origins kept per account; older ones are forgotten (and would alert again).
pub const MAX_ORIGINS_PER_RECORD: i64 = 5;

/// Where a login came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub ip: String,
    pub user_agent: String,
}

impl Origin {
    pub(crate) fn fingerprint(&self) -> String {
        let digest = Sha256::digest(format!("{}\n{}", self.ip, self.user_agent));
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The `{ALERT_INFO}` text of the alert email.
    pub fn describe(&self) -> String {
        let agent = if self.user_agent.is_empty() {
            "unknown client"
        } else {
            self.user_agent.as_str()
        };
        format!("{agent} (IP: {})", self.ip)
    }
}

/// Whether the collection sends login alerts.
pub fn alerts_enabled(collection: &CompiledCollection) -> bool {
    collection.auth.auth_alert.enabled
}

/// Records the origin of a successful login. Returns the email to alert
/// when the origin is new for an account that has logged in before.
pub async fn note_login(
    db: &Db,
    collection: Arc<CompiledCollection>,
    record_id: String,
    origin: Origin,
) -> Result<Option<String>, AuthError> {
    let fingerprint = origin.fingerprint();
    // Shares the group commit of concurrent record writes (own savepoint,
    // one sync for the group) instead of a transaction and sync per login.
    db.write_grouped(move |tx| -> Result<_, AuthError> {
        let now = crate::clock::now();
        let known = tx
            .query_row(
                "SELECT id FROM _authOrigins
                 WHERE collectionRef = ?1 AND recordRef = ?2 AND fingerprint = ?3",
                params![collection.id, record_id, fingerprint],
                |r| r.get::<_, String>(0),
            )
            .optional()?;
        if let Some(id) = known {
            tx.execute(
                "UPDATE _authOrigins SET updated = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            return Ok(None);
        }
        let earlier: i64 = tx.query_row(
            "SELECT COUNT(*) FROM _authOrigins WHERE collectionRef = ?1 AND recordRef = ?2",
            params![collection.id, record_id],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO _authOrigins (id, collectionRef, recordRef, fingerprint, created, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![
                autogen::record_id(),
                collection.id,
                record_id,
                fingerprint,
                now
            ],
        )?;
        tx.execute(
            "DELETE FROM _authOrigins WHERE id IN (
                 SELECT id FROM _authOrigins WHERE collectionRef = ?1 AND recordRef = ?2
                 ORDER BY updated DESC LIMIT -1 OFFSET ?3)",
            params![collection.id, record_id, MAX_ORIGINS_PER_RECORD],
        )?;
        let email = if earlier > 0 {
            tx.query_row(
                &format!(
                    "SELECT email FROM {} WHERE id = ?1",
                    ident(collection.name.as_str())
                ),
                [&record_id],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .filter(|e| !e.is_empty())
        } else {
            None
        };
        Ok(email)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_depend_on_ip_and_agent() {
        let a = Origin {
            ip: "1.2.3.4".into(),
            user_agent: "x".into(),
        };
        let b = Origin {
            ip: "1.2.3.4".into(),
            user_agent: "y".into(),
        };
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
    }
}
