//! Storing one-time codes, with PocketBase's cap on how many a record may
//! be sent: once [`MAX_RECENT_CODES`] codes were issued to a record within
//! the OTP window, a further request stores and mails nothing and answers
//! with the newest code's id (the code already in the inbox still works).
//! That bounds the mail one address can be made to receive.
//!
//! Only the newest code is live: issuing a code burns the older ones
//! (empty hash) instead of deleting them, so they still count toward the
//! cap until the expiry sweep removes them. Issuing and consuming codes
//! stays in `otp`.

use crate::db::{Conn, DbError};
use crate::rules::{Dialect, SqlValue};

/// Codes a record may be issued within one OTP window (PocketBase: 10).
pub const MAX_RECENT_CODES: i64 = 10;

/// A code about to be stored.
pub struct NewCode<'a> {
    pub id: &'a str,
    pub collection_id: &'a str,
    pub record_id: &'a str,
    pub hash: &'a str,
    pub sent_to: &'a str,
}

impl NewCode<'_> {
    fn owner(&self) -> [SqlValue; 2] {
        [
            SqlValue::Text(self.collection_id.to_owned()),
            SqlValue::Text(self.record_id.to_owned()),
        ]
    }
}

/// Stores `code` (retiring older ones) and returns `None`; or, when the
/// record is at the cap for the `window_secs` before now, stores nothing
/// and returns the id of its newest code. On either engine.
pub fn store(
    tx: &mut dyn Conn,
    code: &NewCode<'_>,
    window_secs: i64,
) -> Result<Option<String>, DbError> {
    if let Some(newest) = at_cap(tx, code, window_secs)? {
        return Ok(Some(newest));
    }
    insert(tx, code)?;
    Ok(None)
}

/// The id of the record's newest code when it is at the cap.
pub fn at_cap(
    conn: &mut dyn Conn,
    code: &NewCode<'_>,
    window_secs: i64,
) -> Result<Option<String>, DbError> {
    let since = chrono::Duration::try_seconds(window_secs.max(0))
        .and_then(|d| chrono::Utc::now().checked_sub_signed(d))
        .map(crate::clock::format)
        .unwrap_or_default();
    // Insertion order breaks ties between codes of the same millisecond.
    let rowid = match conn.dialect() {
        Dialect::Sqlite => "rowid",
        Dialect::Postgres => crate::rules::postgres::ROWID_COLUMN,
    };
    let [collection, record] = code.owner();
    let row = conn.first_row(
        &format!(
            "SELECT COUNT(*), (SELECT id FROM _otps WHERE \"collectionRef\" = ?1 AND \"recordRef\" = ?2
                               ORDER BY created DESC, {rowid} DESC LIMIT 1)
             FROM _otps WHERE \"collectionRef\" = ?1 AND \"recordRef\" = ?2 AND created > ?3"
        ),
        &[collection, record, SqlValue::Text(since)],
    )?;
    let mut cells = row.unwrap_or_default().into_iter();
    let recent = match cells.next() {
        Some(SqlValue::Integer(n)) => n,
        other => return Err(DbError::NotAnInteger(format!("{other:?}"))),
    };
    let newest = match cells.next() {
        Some(SqlValue::Text(id)) => Some(id),
        _ => None,
    };
    Ok(newest.filter(|_| recent >= MAX_RECENT_CODES))
}

/// Stores `code`, retiring the record's older ones.
pub fn insert(tx: &mut dyn Conn, code: &NewCode<'_>) -> Result<(), DbError> {
    // Only the newest code is live: one code to guess, not several.
    tx.execute(
        "UPDATE _otps SET password = '' WHERE \"collectionRef\" = ?1 AND \"recordRef\" = ?2",
        &code.owner(),
    )?;
    let text = |s: &str| SqlValue::Text(s.to_owned());
    let now = crate::clock::now();
    tx.execute(
        "INSERT INTO _otps (id, \"collectionRef\", \"recordRef\", password, \"sentTo\", created, updated) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        &[
            text(code.id),
            text(code.collection_id),
            text(code.record_id),
            text(code.hash),
            text(code.sent_to),
            text(now.as_str()),
        ],
    )?;
    Ok(())
}
