//! Consuming a checked OTP when model hooks apply, in PocketBase's steps:
//! the `_otps` row is deleted as a record (`onRecordDelete` … with the
//! collection `_otps`), then, when the code was sent to the record's
//! current address, the record is saved verified (`onRecordUpdate` …, its
//! password replaced unless MFA is on). Each step is its own save; as in
//! PocketBase a hook's refusal of either is logged and the login goes on.
//!
//! One difference, on purpose: a code whose deletion a hook refused (or
//! skipped by never calling `e.next()`) is burnt (its hash emptied), so it
//! still works only once; PocketBase would leave it usable.

use super::takeover;
use crate::auth::AuthError;
use crate::db::Conn;
use crate::records::system::{self, SystemStep};
use crate::records::{Backend, RecordError, Stage, SystemWrite};
use crate::rules::SqlValue;
use crate::schema::CompiledCollection;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A code that matched, and what using it changes.
pub(super) struct UsedOtp {
    pub otp_id: String,
    /// The hash that matched: the delete only takes the row still holding it.
    pub hash: String,
    pub record_id: String,
    pub sent_to: String,
    /// Whether the record is saved verified (unverified, and the code went
    /// to its current email).
    pub verifies: bool,
    pub new_password: Option<String>,
    /// MFA is off: a verified upgrade also replaces the password.
    pub reset_password: bool,
}

/// Deletes the code, then saves the record verified, through the model
/// hooks. `Ok(false)`: another request used the code first.
pub(super) async fn consume(
    backend: Backend<'_>,
    otps: Arc<CompiledCollection>,
    collection: Arc<CompiledCollection>,
    used: UsedOtp,
) -> Result<bool, AuthError> {
    match delete_code(backend, otps, &used).await {
        Deleted::Gone => return Ok(false),
        Deleted::Yes => {}
        Deleted::Refused(why) => {
            tracing::warn!(otp = %used.otp_id, error = %why, "a hook kept a used OTP; it is burnt instead");
            burn(backend, &used.otp_id).await?;
        }
    }
    if used.verifies {
        let id = used.record_id.clone();
        if let Err(e) = save_verified(backend, collection, used).await {
            tracing::warn!(record = %id, error = %e, "the verified save after an OTP login failed; the login goes on");
        }
    }
    Ok(true)
}

/// How the hooked delete of a code ended.
enum Deleted {
    Yes,
    /// The row no longer held the matched hash: used or burnt meanwhile.
    Gone,
    /// A hook threw, or never called `e.next()`.
    Refused(String),
}

async fn delete_code(
    backend: Backend<'_>,
    otps: Arc<CompiledCollection>,
    used: &UsedOtp,
) -> Deleted {
    let (deleted, gone) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (d, g) = (deleted.clone(), gone.clone());
    let (id, hash) = (used.otp_id.clone(), used.hash.clone());
    let write: SystemWrite = Box::new(move |tx, _, _| {
        let n = tx.conn().execute(
            "DELETE FROM _otps WHERE id = ?1 AND password = ?2",
            &[SqlValue::Text(id), SqlValue::Text(hash)],
        )?;
        if n == 1 {
            d.store(true, Ordering::SeqCst);
            Ok(())
        } else {
            g.store(true, Ordering::SeqCst);
            Err(RecordError::NotFound)
        }
    });
    let step = SystemStep {
        stage: Stage::Delete,
        id: used.otp_id.clone(),
        shown: Map::new(),
        write,
    };
    let result = system::hooked(backend, otps, step).await;
    if gone.load(Ordering::SeqCst) {
        return Deleted::Gone;
    }
    match result {
        // `deleted` alone is not enough: a throw after e.next() rolled it back.
        Ok(()) if deleted.load(Ordering::SeqCst) => Deleted::Yes,
        Ok(()) => Deleted::Refused("e.next() was not called".into()),
        // The row vanished before the hook ran (no e.record to show).
        Err(RecordError::NotFound) => Deleted::Gone,
        Err(e) => Deleted::Refused(e.to_string()),
    }
}

/// Makes the one code unusable (an empty hash never verifies).
async fn burn(backend: Backend<'_>, otp_id: &str) -> Result<(), AuthError> {
    let id = otp_id.to_owned();
    backend
        .db
        .write_conn(move |conn: &mut dyn Conn| {
            conn.execute(
                "UPDATE _otps SET password = '' WHERE id = ?1",
                &[SqlValue::Text(id.clone())],
            )?;
            Ok::<_, AuthError>(())
        })
        .await
}

/// The record saved verified through `onRecordUpdate` (`e.record` shows
/// `verified`, never the new password); fields a hook sets are saved too.
async fn save_verified(
    backend: Backend<'_>,
    collection: Arc<CompiledCollection>,
    used: UsedOtp,
) -> Result<(), RecordError> {
    let UsedOtp {
        record_id,
        sent_to,
        new_password,
        reset_password,
        ..
    } = used;
    let (c, target) = (collection.clone(), record_id.clone());
    let write: SystemWrite = Box::new(move |tx, changes, from_hooks| {
        // Still only while the record's email is the one the code went to.
        let upgraded = takeover::mark_verified_in(tx, &c, &target, Some(&sent_to), changes)?;
        if upgraded && reset_password {
            takeover::reset_password_in(tx, &c, &target, new_password.as_deref(), changes)?;
        }
        system::hook_fields(tx, &c, &target, from_hooks, &["verified"], changes)
    });
    let shown = Map::from_iter([("verified".to_owned(), Value::Bool(true))]);
    system::update_hooked(backend, collection, record_id, shown, write).await
}

/// A code about to be stored, owned (for the write closure).
#[derive(Clone)]
pub(super) struct IssuedCode {
    pub id: String,
    pub collection_id: String,
    pub record_id: String,
    pub hash: String,
    pub sent_to: String,
}

impl IssuedCode {
    fn as_new(&self) -> super::otp_store::NewCode<'_> {
        super::otp_store::NewCode {
            id: &self.id,
            collection_id: &self.collection_id,
            record_id: &self.record_id,
            hash: &self.hash,
            sent_to: &self.sent_to,
        }
    }
}

/// `request-otp`'s save of a new code through `onRecordCreate` … on
/// `_otps` (`e.record` without the hash); a throw refuses the request
/// with the hook's error, as in PocketBase. At the cap nothing is created
/// and the newest code's id is returned, as without hooks.
pub(super) async fn issue(
    backend: Backend<'_>,
    otps: Arc<CompiledCollection>,
    code: IssuedCode,
    window_secs: i64,
) -> Result<Option<String>, AuthError> {
    let probe = code.clone();
    let capped = backend
        .db
        .read_conn(move |conn| {
            super::otp_store::at_cap(conn, &probe.as_new(), window_secs).map_err(AuthError::Db)
        })
        .await?;
    if capped.is_some() {
        return Ok(capped);
    }
    let shown = Map::from_iter([
        (
            "collectionRef".to_owned(),
            Value::String(code.collection_id.clone()),
        ),
        (
            "recordRef".to_owned(),
            Value::String(code.record_id.clone()),
        ),
        ("sentTo".to_owned(), Value::String(code.sent_to.clone())),
    ]);
    let id = code.id.clone();
    // Fields a hook sets are not saved: the row is exactly this code.
    let write: SystemWrite = Box::new(move |tx, _, _| {
        super::otp_store::insert(tx.conn(), &code.as_new())?;
        Ok(())
    });
    let step = SystemStep {
        stage: Stage::Create,
        id,
        shown,
        write,
    };
    system::hooked(backend, otps, step).await?;
    Ok(None)
}
