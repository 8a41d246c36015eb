//! Superuser maintenance for the CLI (`superuser create|update|upsert|delete|otp`)
//! and the first-run hint; on either engine.

use super::{AuthError, password};
use crate::db::{Db, LockKey, ident};
use crate::rules::SqlValue;
use crate::schema::autogen;

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
    db.write_conn(move |conn| {
        let text = |s: &str| SqlValue::Text(s.to_owned());
        let now = crate::clock::now();
        let token_key = autogen::token_key();
        let existing = conn.first_row("SELECT id FROM _superusers WHERE email = ?1", &[text(&email)])?;
        let existing = match existing.and_then(|row| row.into_iter().next()) {
            Some(SqlValue::Text(id)) => Some(id),
            _ => None,
        };
        match existing {
            Some(_) if mode == SaveMode::Create => Err(AuthError::Input(format!(
                "a superuser with email {email:?} already exists"
            ))),
            None if mode == SaveMode::Update => Err(AuthError::NoSuchSuperuser),
            Some(id) => {
                conn.execute(
                    "UPDATE _superusers SET password = ?1, \"tokenKey\" = ?2, updated = ?3 WHERE id = ?4",
                    &[text(&hash), text(&token_key), text(now.as_str()), text(&id)],
                )?;
                Ok(id)
            }
            None => {
                let id = autogen::record_id();
                conn.execute(
                    "INSERT INTO _superusers (id, password, \"tokenKey\", email, \"emailVisibility\", \
                     verified, created, updated) VALUES (?1, ?2, ?3, ?4, FALSE, TRUE, ?5, ?5)",
                    &[text(&id), text(&hash), text(&token_key), text(&email), text(now.as_str())],
                )?;
                Ok(id)
            }
        }
    })
    .await
}

/// Deletes the superuser `email`; refuses to delete the last one (on
/// PostgreSQL under the superusers lock, so two deletes racing for the
/// last two cannot both pass the count).
pub async fn delete_superuser(db: &Db, email: &str) -> Result<(), AuthError> {
    let email = email.to_owned();
    db.write_conn(move |conn| {
        conn.lock(LockKey::Superusers)?;
        let count = conn.integer("SELECT count(*) FROM _superusers", &[])?;
        let exists = conn.integer(
            "SELECT count(*) FROM _superusers WHERE email = ?1",
            &[SqlValue::Text(email.clone())],
        )?;
        if exists == 0 {
            return Err(AuthError::NoSuchSuperuser);
        }
        if count <= 1 {
            return Err(AuthError::LastSuperuser);
        }
        // Its OAuth2 links, MFA/OTP rows and login origins go with it, so
        // nothing passes to a later record with the same id.
        for table in crate::schema::AUTH_STATE_TABLES {
            conn.execute(
                &format!(
                    "DELETE FROM {} WHERE \"collectionRef\" = ?1 AND \"recordRef\" IN \
                     (SELECT id FROM _superusers WHERE email = ?2)",
                    ident(table)
                ),
                &[
                    SqlValue::Text(crate::schema::SUPERUSERS_ID.to_owned()),
                    SqlValue::Text(email.clone()),
                ],
            )?;
        }
        conn.execute(
            "DELETE FROM _superusers WHERE email = ?1",
            &[SqlValue::Text(email.clone())],
        )?;
        Ok(())
    })
    .await
}

/// Every superuser's email address (recipients of system alerts).
pub async fn superuser_emails(db: &Db) -> Result<Vec<String>, AuthError> {
    db.read_conn(|conn| {
        let rows = conn.rows("SELECT email FROM _superusers ORDER BY created", &[])?;
        Ok(rows
            .into_iter()
            .filter_map(|row| match row.into_iter().next() {
                Some(SqlValue::Text(email)) => Some(email),
                _ => None,
            })
            .collect())
    })
    .await
}

/// How many superusers exist.
pub async fn count_superusers(db: &Db) -> Result<i64, AuthError> {
    db.read_conn(|conn| Ok(conn.integer("SELECT count(*) FROM _superusers", &[])?))
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
        .read_conn(|conn| {
            crate::schema::read_snapshot(conn)
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

#[cfg(test)]
mod backends {
    //! The superuser commands on SQLite and on PostgreSQL (the throwaway
    //! server of the test command): the same answers, and never zero
    //! superusers when two deletes race for the last two.

    use super::*;
    use crate::config::DatabaseConfig;
    use crate::pg_testing::{PgSchema, server};

    fn run(db: &Db) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let first = save_superuser(db, "a@example.com", "password123", SaveMode::Create)
                .await
                .expect("create");
            let again = save_superuser(db, "a@example.com", "password123", SaveMode::Create).await;
            assert!(matches!(again, Err(AuthError::Input(_))), "{again:?}");
            let missing =
                save_superuser(db, "nobody@example.com", "password123", SaveMode::Update).await;
            assert!(
                matches!(missing, Err(AuthError::NoSuchSuperuser)),
                "{missing:?}"
            );
            let updated = upsert_superuser(db, "a@example.com", "another-password")
                .await
                .expect("upsert");
            assert_eq!(
                updated, first,
                "an upsert of an existing email keeps its id"
            );
            let alone = delete_superuser(db, "a@example.com").await;
            assert!(matches!(alone, Err(AuthError::LastSuperuser)), "{alone:?}");

            // Rounds of two deletes racing for the last two superusers.
            for round in 0..6 {
                let b = format!("b{round}@example.com");
                upsert_superuser(db, &b, "password123").await.expect("b");
                assert_eq!(count_superusers(db).await.expect("count"), 2);
                let (one, two) = tokio::join!(
                    {
                        let db = db.clone();
                        tokio::spawn(async move { delete_superuser(&db, "a@example.com").await })
                    },
                    {
                        let (db, b) = (db.clone(), b.clone());
                        tokio::spawn(async move { delete_superuser(&db, &b).await })
                    }
                );
                let outcomes = [one.expect("task"), two.expect("task")];
                let refused = outcomes
                    .iter()
                    .filter(|o| matches!(o, Err(AuthError::LastSuperuser)))
                    .count();
                assert_eq!(refused, 1, "round {round}: {outcomes:?}");
                let left = superuser_emails(db).await.expect("emails");
                assert_eq!(left.len(), 1, "round {round}: {left:?}");
                if left[0] != "a@example.com" {
                    upsert_superuser(db, "a@example.com", "password123")
                        .await
                        .expect("a");
                    delete_superuser(db, &left[0])
                        .await
                        .expect("back to a alone");
                }
            }
        });
    }

    #[test]
    fn superusers_behave_the_same_on_sqlite() {
        let dir = tempfile::tempdir().expect("tmp");
        run(&Db::open(dir.path(), &DatabaseConfig::default()).expect("open"));
    }

    #[test]
    fn superusers_behave_the_same_on_postgres() {
        let Some(base) = server() else { return };
        let schema = PgSchema::open(&base);
        let url = schema.url(&base);
        crate::dbcopy::initialise(&url).expect("system tables");
        run(&Db::open_postgres(&url, &DatabaseConfig::default()).expect("open"));
    }
}
