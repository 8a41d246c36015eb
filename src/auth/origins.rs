//! Login origins (`_authOrigins`): each successful login records a
//! fingerprint of where it came from (client IP and user agent, hashed). A
//! login from a fingerprint the account has not used before, on an account
//! that has logged in before, is worth an alert email.

use super::AuthError;
use crate::db::{Conn, Db, SqliteConn, ident};
use crate::rules::{Dialect, SqlValue};
use crate::schema::{CompiledCollection, autogen};
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
    if db.dialect() == Dialect::Sqlite {
        // Shares the group commit of concurrent record writes (own savepoint,
        // one sync for the group) instead of a transaction and sync per login.
        return db
            .write_grouped(move |tx| {
                note_in(&mut SqliteConn(tx), &collection, &record_id, &fingerprint)
            })
            .await;
    }
    db.write_conn(move |conn: &mut dyn Conn| note_in(conn, &collection, &record_id, &fingerprint))
        .await
}

/// [`note_login`]'s bookkeeping in one transaction of either engine.
fn note_in(
    conn: &mut dyn Conn,
    collection: &CompiledCollection,
    record_id: &str,
    fingerprint: &str,
) -> Result<Option<String>, AuthError> {
    let now = SqlValue::Text(crate::clock::now());
    let owner = [
        SqlValue::Text(collection.id.clone()),
        SqlValue::Text(record_id.to_owned()),
    ];
    let table = ident(collection.name.as_str());
    let (unbounded, email) = match conn.dialect() {
        Dialect::Sqlite => ("-1", format!("SELECT email FROM {table} WHERE id = ?1")),
        // Logins of one account take turns, so the count and the cap hold.
        Dialect::Postgres => (
            "ALL",
            format!("SELECT email FROM {table} WHERE id = ?1 FOR UPDATE"),
        ),
    };
    let record = [SqlValue::Text(record_id.to_owned())];
    let email = match conn.first_row(&email, &record)? {
        Some(row) => match row.into_iter().next() {
            Some(SqlValue::Text(e)) if !e.is_empty() => Some(e),
            _ => None,
        },
        None => None,
    };
    let [cref, rref] = owner.clone();
    let known = conn.first_row(
        "SELECT id FROM \"_authOrigins\"
         WHERE \"collectionRef\" = ?1 AND \"recordRef\" = ?2 AND fingerprint = ?3",
        &[cref, rref, SqlValue::Text(fingerprint.to_owned())],
    )?;
    if let Some(id) = known.and_then(|r| r.into_iter().next()) {
        conn.execute(
            "UPDATE \"_authOrigins\" SET updated = ?2 WHERE id = ?1",
            &[id, now],
        )?;
        return Ok(None);
    }
    let earlier = conn.integer(
        "SELECT COUNT(*) FROM \"_authOrigins\" WHERE \"collectionRef\" = ?1 AND \"recordRef\" = ?2",
        &owner,
    )?;
    let [cref, rref] = owner.clone();
    conn.execute(
        "INSERT INTO \"_authOrigins\" (id, \"collectionRef\", \"recordRef\", fingerprint, created, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        &[
            SqlValue::Text(autogen::record_id()),
            cref,
            rref,
            SqlValue::Text(fingerprint.to_owned()),
            now,
        ],
    )?;
    let [cref, rref] = owner;
    conn.execute(
        &format!(
            "DELETE FROM \"_authOrigins\" WHERE id IN (
                 SELECT id FROM \"_authOrigins\" WHERE \"collectionRef\" = ?1 AND \"recordRef\" = ?2
                 ORDER BY updated DESC LIMIT {unbounded} OFFSET ?3)"
        ),
        &[cref, rref, SqlValue::Integer(MAX_ORIGINS_PER_RECORD)],
    )?;
    Ok(email.filter(|_| earlier > 0))
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
