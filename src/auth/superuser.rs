//! Superuser maintenance for the CLI (`superuser create|update|upsert|delete`)
//! and the first-run hint.

use super::{AuthError, password};
use crate::db::{Db, DbError};
use crate::schema::autogen;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

/// Minimum superuser password length (as PocketBase).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// What `save_superuser` may do: PocketBase's `superuser create`,
/// `update` (password only) and `upsert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    /// Only a new superuser; an existing email is an error.
    Create,
    /// Only an existing superuser's password; a missing one is an error.
    Update,
    /// Either.
    Upsert,
}

/// Creates the superuser `email`, or sets its password if it exists (rotating its tokenKey).
pub async fn upsert_superuser(db: &Db, email: &str, plain: &str) -> Result<String, AuthError> {
    save_superuser(db, email, plain, SaveMode::Upsert).await
}

/// Creates a superuser or changes its password (rotating its tokenKey, so
/// its old tokens stop working), as `mode` allows. Returns its id.
pub async fn save_superuser(
    db: &Db,
    email: &str,
    plain: &str,
    mode: SaveMode,
) -> Result<String, AuthError> {
    if !email.contains('@') || email.len() > 255 || email.chars().any(char::is_whitespace) {
        return Err(AuthError::Input(format!(
            "{email:?} is not a valid email address"
        )));
    }
    if plain.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::Input(format!(
            "the password must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let hash = password::hash(plain.to_owned()).await?;
    let email = email.to_owned();
    db.write(move |conn| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(DbError::from)?;
        let now = crate::clock::now();
        let token_key = autogen::token_key();
        let existing: Option<String> = tx
            .query_row("SELECT id FROM _superusers WHERE email = ?1", [&email], |r| r.get(0))
            .optional()?;
        let id = match existing {
            Some(_) if mode == SaveMode::Create => {
                return Err(AuthError::Input(format!(
                    "a superuser with email {email:?} already exists"
                )));
            }
            None if mode == SaveMode::Update => return Err(AuthError::NoSuchSuperuser),
            Some(id) => {
                tx.execute(
                    "UPDATE _superusers SET password = ?1, tokenKey = ?2, updated = ?3 WHERE id = ?4",
                    params![hash, token_key, now, id],
                )?;
                id
            }
            None => {
                let id = autogen::record_id();
                tx.execute(
                    "INSERT INTO _superusers (id, password, tokenKey, email, emailVisibility, verified, created, updated) \
                     VALUES (?1, ?2, ?3, ?4, FALSE, TRUE, ?5, ?5)",
                    params![id, hash, token_key, email, now],
                )?;
                id
            }
        };
        tx.commit()?;
        Ok(id)
    })
    .await
}

/// Deletes the superuser `email`; refuses to delete the last one.
pub async fn delete_superuser(db: &Db, email: &str) -> Result<(), AuthError> {
    let email = email.to_owned();
    db.write(move |conn| {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(DbError::from)?;
        let count: i64 = tx.query_row("SELECT count(*) FROM _superusers", [], |r| r.get(0))?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM _superusers WHERE email = ?1)",
            [&email],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(AuthError::NoSuchSuperuser);
        }
        if count <= 1 {
            return Err(AuthError::LastSuperuser);
        }
        // Its OAuth2 links, MFA/OTP rows and login origins go with it, so
        // nothing passes to a later record with the same id.
        for table in crate::schema::AUTH_STATE_TABLES {
            tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE collectionRef = ?1 AND recordRef IN \
                     (SELECT id FROM _superusers WHERE email = ?2)"
                ),
                [crate::schema::SUPERUSERS_ID, email.as_str()],
            )?;
        }
        tx.execute("DELETE FROM _superusers WHERE email = ?1", [&email])?;
        tx.commit()?;
        Ok(())
    })
    .await
}

/// Every superuser's email address (recipients of system alerts).
pub async fn superuser_emails(db: &Db) -> Result<Vec<String>, AuthError> {
    db.read(|conn| {
        let mut stmt = conn.prepare("SELECT email FROM _superusers ORDER BY created")?;
        let emails = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(emails)
    })
    .await
}

/// How many superusers exist.
pub async fn count_superusers(db: &Db) -> Result<i64, AuthError> {
    db.read(|conn| {
        conn.query_row("SELECT count(*) FROM _superusers", [], |r| r.get(0))
            .map_err(AuthError::from)
    })
    .await
}

/// A code made by `superuser otp`: the `_otps` id, the plaintext code and
/// how long it is valid, in seconds.
#[derive(Debug)]
pub struct SuperuserOtp {
    pub id: String,
    pub code: String,
    pub valid_secs: i64,
}

/// Issues a one-time password for the superuser `email` (PocketBase's
/// `superuser otp`), refused unless OTP is enabled on `_superusers`.
pub async fn superuser_otp(db: &Db, email: &str) -> Result<SuperuserOtp, AuthError> {
    let snapshot = db
        .read(|conn| {
            crate::schema::load_snapshot(conn)
                .map_err(|e| AuthError::Input(format!("cannot load the collections: {e}")))
        })
        .await?;
    let Some(collection) = snapshot.get(crate::schema::SUPERUSERS_ID) else {
        return Err(AuthError::Input(
            "the _superusers collection is missing".into(),
        ));
    };
    let valid_secs = collection.auth.otp.duration;
    let issued = match crate::accounts::otp::request_otp(db, None, collection, email).await {
        Err(AuthError::OtpDisabled) => {
            return Err(AuthError::Input(
                "OTP auth is not enabled for the _superusers collection".into(),
            ));
        }
        other => other?,
    };
    let Some((_, code, _)) = issued.delivery else {
        return Err(AuthError::NoSuchSuperuser);
    };
    Ok(SuperuserOtp {
        id: issued.otp_id,
        code,
        valid_secs,
    })
}
