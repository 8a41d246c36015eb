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

use rusqlite::{Connection, params};

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

/// Stores `code` (retiring older ones) and returns `None`; or, when the
/// record is at the cap for the `window_secs` before now, stores nothing
/// and returns the id of its newest code.
pub fn store(
    tx: &Connection,
    code: &NewCode<'_>,
    window_secs: i64,
) -> rusqlite::Result<Option<String>> {
    if let Some(newest) = at_cap(tx, code, window_secs)? {
        return Ok(Some(newest));
    }
    insert(tx, code)?;
    Ok(None)
}

/// The id of the record's newest code when it is at the cap.
pub fn at_cap(
    conn: &Connection,
    code: &NewCode<'_>,
    window_secs: i64,
) -> rusqlite::Result<Option<String>> {
    let since = chrono::Duration::try_seconds(window_secs.max(0))
        .and_then(|d| chrono::Utc::now().checked_sub_signed(d))
        .map(crate::clock::format)
        .unwrap_or_default();
    let (recent, newest): (i64, Option<String>) = conn.query_row(
        "SELECT COUNT(*), (SELECT id FROM _otps WHERE collectionRef = ?1 AND recordRef = ?2
                           ORDER BY created DESC, rowid DESC LIMIT 1)
         FROM _otps WHERE collectionRef = ?1 AND recordRef = ?2 AND created > ?3",
        params![code.collection_id, code.record_id, since],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(newest.filter(|_| recent >= MAX_RECENT_CODES))
}

/// Stores `code`, retiring the record's older ones.
pub fn insert(tx: &Connection, code: &NewCode<'_>) -> rusqlite::Result<()> {
    // Only the newest code is live: one code to guess, not several.
    tx.execute(
        "UPDATE _otps SET password = '' WHERE collectionRef = ?1 AND recordRef = ?2",
        params![code.collection_id, code.record_id],
    )?;
    let now = crate::clock::now();
    tx.execute(
        "INSERT INTO _otps (id, collectionRef, recordRef, password, sentTo, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![code.id, code.collection_id, code.record_id, code.hash, code.sent_to, now],
    )?;
    Ok(())
}
