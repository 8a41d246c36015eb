//! Password login against an auth collection's identity fields.

use super::principal::auth_signing_key;
use super::{AuthError, password, token};
use crate::db::{Db, DbError, ident};
use crate::schema::{CollectionType, CompiledCollection};
use rusqlite::OptionalExtension;
use std::sync::Arc;

/// A successful login: the record's id and a fresh token.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub record_id: String,
    pub token: String,
}

/// Checks `identity`/`password` against the collection's identity fields and
/// issues an auth token. Wrong identity and wrong password are indistinguishable.
pub async fn login_with_password(
    db: &Db,
    collection: Arc<CompiledCollection>,
    identity: String,
    plain: String,
    identity_field: Option<String>,
) -> Result<LoginOutcome, AuthError> {
    if collection.kind != CollectionType::Auth {
        return Err(AuthError::NotAuthCollection);
    }
    let auth = &collection.auth.password_auth;
    if !auth.enabled {
        return Err(AuthError::PasswordAuthDisabled);
    }
    let configured = auth.identity_fields.clone();
    let fields: Vec<String> = match identity_field {
        Some(f) if configured.contains(&f) => vec![f],
        Some(_) => return Err(AuthError::Input("identityField".into())),
        None => configured,
    };
    // Only real columns with a single-column unique index may identify a record.
    let fields: Vec<String> = fields
        .into_iter()
        .filter(|f| {
            collection.field(f).is_some() && collection.indexes.iter().any(|i| i.is_unique_on(f))
        })
        .filter(|f| f != "email" || identity.contains('@'))
        .collect();
    let table = ident(collection.name.as_str());
    let queries: Vec<String> = fields
        .iter()
        .map(|field| {
            format!(
                "SELECT id, password, tokenKey FROM {table} WHERE {} LIMIT 1",
                identity_match(&collection, field)
            )
        })
        .collect();
    let found = db
        .read(move |conn| {
            for sql in queries {
                let row = conn
                    .prepare_cached(&sql)
                    .and_then(|mut s| {
                        s.query_row([&identity], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                            ))
                        })
                        .optional()
                    })
                    .map_err(DbError::from)?;
                if row.is_some() {
                    return Ok::<_, AuthError>(row);
                }
            }
            Ok(None)
        })
        .await?;
    // Verify against a dummy hash when nobody matched, so timing does not reveal accounts.
    let (id, stored, token_key) = found.unwrap_or_default();
    let stored_for_check = if stored.is_empty() {
        password::dummy_hash().to_owned()
    } else {
        stored
    };
    let rehash = password::needs_rehash(&stored_for_check);
    let ok = password::verify(plain.clone(), stored_for_check).await;
    if !ok || id.is_empty() {
        return Err(AuthError::InvalidCredentials);
    }
    if rehash {
        upgrade_hash(db, &collection, &id, plain).await?;
    }
    let token = token::issue_auth(
        &collection.id,
        &id,
        &auth_signing_key(&collection, &token_key),
        token_duration(&collection),
    )?;
    Ok(LoginOutcome {
        record_id: id,
        token,
    })
}

/// `field = ?1` compared the way the collection's single-column unique index
/// on `field` compares: case-insensitively when that index is
/// `COLLATE NOCASE`, exactly otherwise (PocketBase's identity and
/// `FindAuthRecordByEmail` lookups). Every lookup of an account by email —
/// password login, OTP, OAuth2, the email flows — goes through this, so they
/// all agree on which record an address names.
pub(crate) fn identity_match(collection: &CompiledCollection, field: &str) -> String {
    identity_match_in(collection, field, crate::rules::Dialect::Sqlite)
}

/// [`identity_match`] in `dialect`: on PostgreSQL `COLLATE NOCASE` is
/// `lower()` of both sides under `COLLATE "C"`, which folds ASCII only, as
/// SQLite's NOCASE does.
pub(crate) fn identity_match_in(
    collection: &CompiledCollection,
    field: &str,
    dialect: crate::rules::Dialect,
) -> String {
    let nocase = collection
        .indexes
        .iter()
        .any(|i| i.is_unique_on(field) && i.columns[0].nocase);
    let column = ident(field);
    match (nocase, dialect) {
        (true, crate::rules::Dialect::Sqlite) => format!("{column} = ?1 COLLATE NOCASE"),
        (true, crate::rules::Dialect::Postgres) => {
            format!("lower({column}) = lower(?1 COLLATE \"C\")")
        }
        (false, _) => format!("{column} = ?1"),
    }
}

/// Issues a fresh auth token for record `id` (which must still exist).
pub async fn refresh_token(
    db: &Db,
    collection: Arc<CompiledCollection>,
    id: String,
) -> Result<String, AuthError> {
    let sql = format!(
        "SELECT tokenKey FROM {} WHERE id = ?1",
        ident(collection.name.as_str())
    );
    let lookup_id = id.clone();
    let token_key: Option<String> = db
        .read(move |conn| {
            conn.query_row(&sql, [&lookup_id], |r| r.get(0))
                .optional()
                .map_err(AuthError::from)
        })
        .await?;
    let token_key = token_key.ok_or(AuthError::InvalidCredentials)?;
    token::issue_auth(
        &collection.id,
        &id,
        &auth_signing_key(&collection, &token_key),
        token_duration(&collection),
    )
}

/// The collection's auth token lifetime in seconds.
fn token_duration(collection: &CompiledCollection) -> i64 {
    collection.auth.auth_token.duration
}

/// Replaces an imported bcrypt hash with argon2id after a successful login
/// (the tokenKey stays, so existing sessions are unaffected).
async fn upgrade_hash(
    db: &Db,
    collection: &CompiledCollection,
    id: &str,
    plain: String,
) -> Result<(), AuthError> {
    let hash = password::hash(plain).await?;
    let sql = format!(
        "UPDATE {} SET password = ?1 WHERE id = ?2",
        ident(collection.name.as_str())
    );
    let id = id.to_owned();
    db.write(move |conn| {
        conn.execute(&sql, [hash, id])
            .map_err(|e| AuthError::Db(DbError::Sqlite(e)))?;
        Ok::<_, AuthError>(())
    })
    .await
}
