//! One-time passwords: `request-otp` stores a hashed code in `_otps` (valid
//! for the collection's `otp.duration`) and returns its id; `auth-with-otp`
//! accepts it once. Unknown emails get a fake id, so the endpoint does not
//! reveal which accounts exist.
//!
//! Guessing is bounded: only a record's newest code is live (a new request
//! retires the older ones, so there is one code to guess, not several);
//! code checks per record are limited by [`LoginThrottle`] and reserved
//! before the (argon2, constant-time) comparison; and when the last allowed
//! check fails, the record's codes are burnt (their hash emptied), so even
//! the right code is refused afterwards and a new one must be requested.
//! A code that first verifies an account (MFA off) also replaces its
//! password and tokenKey, against pre-registration of someone's address.

use super::takeover;
use crate::auth::throttle::{LoginThrottle, OtpAttempt};
use crate::auth::{AuthError, password};
use crate::db::{Conn, Db, ident};
use crate::records::{Backend, Stage, system};
use crate::rules::SqlValue;
use crate::schema::{CompiledCollection, autogen};
use std::sync::Arc;

/// Shortest code we generate.
const MIN_OTP_LENGTH: u64 = 4;
/// Longest code we generate.
const MAX_OTP_LENGTH: u64 = 32;

/// A code to send: the record's email, the otp id and the plaintext code.
#[derive(Debug, Clone)]
pub struct IssuedOtp {
    pub otp_id: String,
    /// `None` for unknown emails: nothing is sent.
    pub delivery: Option<(String, String, String)>,
}

/// (enabled, duration in seconds, code length within our bounds).
fn otp_options(collection: &CompiledCollection) -> (bool, i64, u64) {
    let otp = &collection.auth.otp;
    (
        otp.enabled,
        otp.duration,
        otp.length.clamp(MIN_OTP_LENGTH, MAX_OTP_LENGTH),
    )
}

/// Refuses collections without OTP login (checked before a request is read).
pub fn require_enabled(collection: &CompiledCollection) -> Result<(), AuthError> {
    if collection.auth.otp.enabled {
        Ok(())
    } else {
        Err(AuthError::OtpDisabled)
    }
}

/// `request-otp`: issues a code for the account with `email` (if any).
/// With `hooked` (the write backend and the `_otps` collection) the new
/// code is saved through `_otps`' model hooks when any apply.
pub async fn request_otp(
    db: &Db,
    hooked: Option<(Backend<'_>, Arc<CompiledCollection>)>,
    collection: Arc<CompiledCollection>,
    email: &str,
) -> Result<IssuedOtp, AuthError> {
    let (enabled, window, length) = otp_options(&collection);
    if !enabled {
        return Err(AuthError::OtpDisabled);
    }
    let otp_id = autogen::record_id();
    let sql = format!(
        "SELECT id, email FROM {} WHERE {} LIMIT 1",
        ident(collection.name.as_str()),
        crate::auth::identity_match_in(&collection, "email", db.dialect())
    );
    let email = email.trim().to_owned();
    let found: Option<(String, String)> = db
        .read_conn(move |conn| {
            let row = conn.first_row(&sql, &[SqlValue::Text(email)])?;
            let mut cells = row.unwrap_or_default().into_iter();
            Ok::<_, AuthError>(match (cells.next(), cells.next()) {
                (Some(SqlValue::Text(id)), Some(SqlValue::Text(to))) => Some((id, to)),
                _ => None,
            })
        })
        .await?;
    let Some((record_id, to)) = found else {
        return Ok(IssuedOtp {
            otp_id,
            delivery: None,
        });
    };
    let code = autogen::random_string("0123456789", length as usize);
    let hash = password::hash(code.clone()).await?;
    let issued = super::otp_hooked::IssuedCode {
        id: otp_id.clone(),
        collection_id: collection.id.clone(),
        record_id: record_id.clone(),
        hash,
        sent_to: to.clone(),
    };
    let reused = match hooked.filter(|(b, o)| system::hooks_want(b, Stage::Create, o)) {
        Some((backend, otps)) => super::otp_hooked::issue(backend, otps, issued, window).await?,
        None => store_code(db, issued, window).await?,
    };
    if let Some(otp_id) = reused {
        // At the cap: the code already sent stays the one to use; no new mail.
        tracing::warn!(record = %record_id, "too many OTP requests; reusing the last issued code");
        return Ok(IssuedOtp {
            otp_id,
            delivery: None,
        });
    }
    Ok(IssuedOtp {
        otp_id,
        delivery: Some((to, code, record_id)),
    })
}

/// Stores a new code in one transaction (no model hooks apply), on either
/// engine.
async fn store_code(
    db: &Db,
    code: super::otp_hooked::IssuedCode,
    window: i64,
) -> Result<Option<String>, AuthError> {
    db.write_conn(move |conn| {
        let new = super::otp_store::NewCode {
            id: &code.id,
            collection_id: &code.collection_id,
            record_id: &code.record_id,
            hash: &code.hash,
            sent_to: &code.sent_to,
        };
        Ok::<_, AuthError>(super::otp_store::store(conn, &new, window)?)
    })
    .await
}

/// A code that matched, not used yet (see [`use_otp`]).
pub struct CheckedOtp<'a> {
    collection: Arc<CompiledCollection>,
    used: super::otp_hooked::UsedOtp,
    attempt: OtpAttempt<'a>,
}

impl CheckedOtp<'_> {
    /// The record the code logs in.
    pub fn record_id(&self) -> &str {
        &self.used.record_id
    }
}

/// `auth-with-otp`'s check: the code must exist for this collection, be
/// unexpired, unburnt and match (the guess counted by the throttle).
pub async fn check_otp<'a>(
    db: &Db,
    throttle: &'a LoginThrottle,
    collection: Arc<CompiledCollection>,
    otp_id: &str,
    code: &str,
) -> Result<CheckedOtp<'a>, AuthError> {
    let (enabled, duration, _) = otp_options(&collection);
    if !enabled {
        return Err(AuthError::OtpDisabled);
    }
    // PostgreSQL text cannot hold NUL, so no stored id has one.
    if otp_id.contains('\0') {
        return Err(AuthError::InvalidOtp);
    }
    let params = [
        SqlValue::Text(otp_id.to_owned()),
        SqlValue::Text(collection.id.clone()),
    ];
    let lookup = format!(
        "SELECT o.\"recordRef\", o.password, o.created, o.\"sentTo\", r.verified, r.email
         FROM _otps o JOIN {} r ON r.id = o.\"recordRef\"
         WHERE o.id = ?1 AND o.\"collectionRef\" = ?2",
        ident(collection.name.as_str())
    );
    let row = db
        .read_conn(move |conn: &mut dyn Conn| conn.first_row(&lookup, &params))
        .await?;
    let row = row.and_then(|r| match <[SqlValue; 6]>::try_from(r) {
        Ok(
            [
                SqlValue::Text(record_id),
                SqlValue::Text(hash),
                SqlValue::Text(created),
                SqlValue::Text(sent_to),
                SqlValue::Integer(verified),
                SqlValue::Text(email),
            ],
        ) => Some((record_id, hash, created, sent_to, verified != 0, email)),
        _ => None,
    });
    let Some((record_id, hash, created, sent_to, verified, email)) = row else {
        return Err(AuthError::InvalidOtp);
    };
    let expired = chrono::DateTime::parse_from_rfc3339(&created.replacen(' ', "T", 1))
        .map(|t| crate::clock::unix_now() - t.timestamp() > duration)
        .unwrap_or(true);
    if expired {
        return Err(AuthError::InvalidOtp);
    }
    let Some(attempt) = throttle.begin_otp(&collection.id, &record_id) else {
        return Err(AuthError::OtpThrottled);
    };
    if hash.is_empty() {
        // Burnt earlier: no verdict on this guess, so the attempt is given back.
        return Err(AuthError::InvalidOtp);
    }
    if !password::verify(code.to_owned(), hash.clone()).await {
        if attempt.failed() {
            burn_codes(db, &collection, &record_id).await?;
        }
        return Err(AuthError::InvalidOtp);
    }
    let reset_password = !collection.auth.mfa.enabled;
    let new_password = if reset_password && !verified && !sent_to.is_empty() && email == sent_to {
        Some(takeover::random_password_hash().await?)
    } else {
        None
    };
    // PocketBase's condition for the verified save (re-checked in the write).
    let verifies = !verified && !sent_to.is_empty() && email == sent_to;
    let used = super::otp_hooked::UsedOtp {
        otp_id: otp_id.to_owned(),
        hash,
        record_id,
        sent_to,
        verifies,
        new_password,
        reset_password,
    };
    Ok(CheckedOtp {
        collection,
        used,
        attempt,
    })
}

/// `auth-with-otp`'s use of a checked code; returns the record id. As in
/// PocketBase, a record becomes verified when the code was sent to its
/// current email (realtime subscribers hear of it from the write); unless
/// MFA is on, that also replaces its password with a random one (rotating
/// the tokenKey), since whoever set the password may not own the address.
/// With model hooks on `_otps` or the record, the steps run through them
/// ([`super::otp_hooked`]).
pub async fn use_otp(
    backend: Backend<'_>,
    otps: Option<Arc<CompiledCollection>>,
    checked: CheckedOtp<'_>,
) -> Result<String, AuthError> {
    let CheckedOtp {
        collection,
        used,
        attempt,
    } = checked;
    let record_id = used.record_id.clone();
    let hooked = otps
        .as_ref()
        .is_some_and(|o| system::hooks_want(&backend, Stage::Delete, o))
        || system::hooks_want(&backend, Stage::Update, &collection);
    let consumed = match otps {
        Some(otps) if hooked => super::otp_hooked::consume(backend, otps, collection, used).await?,
        _ => consume_plain(&backend, collection, used).await?,
    };
    if !consumed {
        return Err(AuthError::InvalidOtp);
    }
    attempt.succeeded();
    Ok(record_id)
}

/// Consumes a checked code in one transaction (no model hooks apply).
async fn consume_plain(
    backend: &Backend<'_>,
    target: Arc<CompiledCollection>,
    used: super::otp_hooked::UsedOtp,
) -> Result<bool, AuthError> {
    let super::otp_hooked::UsedOtp {
        otp_id: otp,
        hash,
        record_id: record,
        sent_to,
        new_password,
        reset_password,
        ..
    } = used;
    let consumed = system::write_in(backend, move |tx, changes| {
        // One-time: whoever deletes the row first wins; a code burnt or
        // retired while this one was being checked no longer matches.
        let deleted = tx.conn().execute(
            "DELETE FROM _otps WHERE id = ?1 AND password = ?2",
            &[SqlValue::Text(otp.clone()), SqlValue::Text(hash.clone())],
        )?;
        // Only an address the code was actually sent to is proven.
        if deleted == 1 && !sent_to.is_empty() {
            let verified_now =
                takeover::mark_verified_in(tx, &target, &record, Some(&sent_to), changes)?;
            if verified_now && reset_password {
                let hash = new_password.as_deref();
                takeover::reset_password_in(tx, &target, &record, hash, changes)?;
            }
        }
        Ok(deleted == 1)
    })
    .await?;
    Ok(consumed)
}

/// Makes every code of record `record_id` unusable (an empty hash never
/// verifies); the rows stay until they expire, so later guesses still meet
/// the record's attempt limit rather than "no such code".
async fn burn_codes(
    db: &Db,
    collection: &CompiledCollection,
    record_id: &str,
) -> Result<(), AuthError> {
    let params = [
        SqlValue::Text(collection.id.clone()),
        SqlValue::Text(record_id.to_owned()),
    ];
    db.write_conn(move |conn: &mut dyn Conn| {
        conn.execute(
            "UPDATE _otps SET password = '' WHERE \"collectionRef\" = ?1 AND \"recordRef\" = ?2",
            &params,
        )?;
        Ok::<_, AuthError>(())
    })
    .await
}
