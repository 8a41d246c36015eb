//! Password login against an auth collection's identity fields.

use super::principal::auth_signing_key;
use super::{AuthError, password, token};
use crate::db::{Conn, Db, ident};
use crate::rules::SqlValue;
use crate::schema::{CollectionType, CompiledCollection};
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
    let found = find_login(db, &collection, fields, identity).await?;
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
///
/// On PostgreSQL `COLLATE NOCASE` is
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
    let token_key = current_token_key(db, &collection, &id).await?;
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
    db.write_conn(move |conn: &mut dyn Conn| {
        conn.execute(
            &sql,
            &[SqlValue::Text(hash.clone()), SqlValue::Text(id.clone())],
        )?;
        Ok::<_, AuthError>(())
    })
    .await
}

/// (id, password hash, tokenKey) of the first record one of `fields`
/// identifies as `identity`, on either engine.
async fn find_login(
    db: &Db,
    collection: &Arc<CompiledCollection>,
    fields: Vec<String>,
    identity: String,
) -> Result<Option<(String, String, String)>, AuthError> {
    // PostgreSQL text cannot hold NUL, so no stored identity has one.
    if identity.contains('\0') {
        return Ok(None);
    }
    let collection = collection.clone();
    db.read_conn(move |conn: &mut dyn Conn| {
        let table = ident(collection.name.as_str());
        for field in &fields {
            let sql = format!(
                "SELECT id, password, \"tokenKey\" FROM {table} WHERE {} LIMIT 1",
                identity_match_in(&collection, field, conn.dialect())
            );
            let row = conn.first_row(&sql, &[SqlValue::Text(identity.clone())])?;
            if let Some(row) = row {
                let mut texts = row.into_iter().map(|cell| match cell {
                    SqlValue::Text(t) => t,
                    _ => String::new(),
                });
                let mut next = || texts.next().unwrap_or_default();
                return Ok(Some((next(), next(), next())));
            }
        }
        Ok(None)
    })
    .await
}

/// Record `id`'s current tokenKey; [`AuthError::InvalidCredentials`] when
/// the record is gone.
async fn current_token_key(
    db: &Db,
    collection: &CompiledCollection,
    id: &str,
) -> Result<String, AuthError> {
    if id.contains('\0') {
        return Err(AuthError::InvalidCredentials);
    }
    let sql = format!(
        "SELECT \"tokenKey\" FROM {} WHERE id = ?1",
        ident(collection.name.as_str())
    );
    let id = id.to_owned();
    let row = db
        .read_conn(move |conn: &mut dyn Conn| conn.first_row(&sql, &[SqlValue::Text(id)]))
        .await?;
    match row.and_then(|r| r.into_iter().next()) {
        Some(SqlValue::Text(key)) => Ok(key),
        _ => Err(AuthError::InvalidCredentials),
    }
}
