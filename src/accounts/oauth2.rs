//! OAuth2 accounts, past the protocol exchange (`auth::oauth2`): finding the
//! record a provider account belongs to, linking it to an existing record
//! with the pre-hijacking guards (`takeover`), and signing up a new record
//! from `createData` and the mapped provider fields — the record and its
//! link in one transaction, under the collection's create rule. Every
//! record change goes through the records write path (create, or the
//! system update), which publishes it to realtime after the commit.

use super::oauth2_hooked::{self, FlowSession};
use super::takeover;
use crate::auth::AuthError;
use crate::auth::oauth2::OAuth2User;
use crate::db::{Conn, Db, DbError, ident};
use crate::realtime::Changes;
use crate::records::system::{self, SystemTx};
use crate::records::{self, Backend, RecordError, Stage};
use crate::rules::SqlValue;
use crate::schema::{CompiledCollection, FieldKind, Snapshot, autogen};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The first column of the first row of `sql` (with `value` bound), as text.
async fn first_text(
    db: &Db,
    sql: String,
    params: Vec<SqlValue>,
) -> Result<Option<String>, AuthError> {
    if params
        .iter()
        .any(|p| matches!(p, SqlValue::Text(t) if t.contains('\0')))
    {
        // PostgreSQL text cannot hold NUL, so no stored value has one.
        return Ok(None);
    }
    let row = db
        .read_conn(move |conn: &mut dyn Conn| conn.first_row(&sql, &params))
        .await?;
    Ok(match row.and_then(|r| r.into_iter().next()) {
        Some(SqlValue::Text(t)) => Some(t),
        _ => None,
    })
}

/// The record already linked to this provider account, if any.
pub async fn linked_record(
    db: &Db,
    collection_id: String,
    provider: &'static str,
    provider_id: String,
) -> Result<Option<String>, AuthError> {
    let sql = "SELECT \"recordRef\" FROM \"_externalAuths\"
               WHERE \"collectionRef\" = ?1 AND provider = ?2 AND \"providerId\" = ?3";
    let params = vec![
        SqlValue::Text(collection_id),
        SqlValue::Text(provider.to_owned()),
        SqlValue::Text(provider_id),
    ];
    first_text(db, sql.to_owned(), params).await
}

/// The record with this email, if any, matched as the collection's email
/// index compares (exactly unless it is `COLLATE NOCASE`), like login.
pub async fn record_by_email(
    db: &Db,
    collection: &CompiledCollection,
    email: String,
) -> Result<Option<String>, AuthError> {
    let sql = format!(
        "SELECT id FROM {} WHERE {} LIMIT 1",
        ident(collection.name.as_str()),
        crate::auth::identity_match_in(collection, "email", db.dialect())
    );
    first_text(db, sql, vec![SqlValue::Text(email)]).await
}

/// Before linking an existing record: unless it is the caller's own, an
/// unverified record will get a random password (it may have been
/// registered by someone else), so hash one now, off the writer.
pub async fn replacement_password(
    db: &Db,
    collection: &Arc<CompiledCollection>,
    record_id: &str,
    is_caller: bool,
) -> Result<Option<String>, AuthError> {
    if is_caller {
        return Ok(None);
    }
    let (target, id) = (collection.clone(), record_id.to_owned());
    let verified = db
        .read_conn(move |conn: &mut dyn Conn| takeover::verified(conn, &target, &id))
        .await?;
    match verified {
        Some(false) => Ok(Some(takeover::random_password_hash().await?)),
        _ => Ok(None),
    }
}

/// Inside a write transaction: links the provider account to an existing
/// record, as PocketBase's `oauth2Submit` does, pre-hijacking guards
/// included. While the record is unverified, whoever set it up may not be
/// the person now proving the email: unless the record is the caller's own
/// its password is replaced by `new_password` (tokenKey rotated), and its
/// other OAuth2 links are dropped either way. An empty email is filled in
/// from the provider (not on the caller's own record), and the record is
/// verified when its email is exactly the provider's verified one.
#[allow(clippy::too_many_arguments)] // one link, described field by field
fn link_existing_in(
    tx: &mut SystemTx<'_>,
    collection: &CompiledCollection,
    record_id: &str,
    provider: &str,
    user: &OAuth2User,
    is_caller: bool,
    new_password: Option<&str>,
    changes: &mut Changes,
) -> Result<(), RecordError> {
    link_existing_in_parts(
        tx,
        collection,
        record_id,
        user,
        is_caller,
        new_password,
        changes,
    )?;
    Ok(insert_link(tx, collection, record_id, provider, user)?)
}

/// [`link_existing_in`] but the link itself: the record's changes.
pub(super) fn link_existing_in_parts(
    tx: &mut SystemTx<'_>,
    collection: &CompiledCollection,
    record_id: &str,
    user: &OAuth2User,
    is_caller: bool,
    new_password: Option<&str>,
    changes: &mut Changes,
) -> Result<(), RecordError> {
    // Read locked (PostgreSQL): the checks and the changes see one row.
    let row = tx
        .current(collection, record_id)?
        .ok_or(RecordError::NotFound)?;
    if row.get("verified").and_then(Value::as_bool) != Some(true) {
        if !is_caller {
            takeover::reset_password_in(tx, collection, record_id, new_password, changes)?;
        }
        takeover::drop_external_auths_in(tx, collection, record_id)?;
    }
    if !user.email.is_empty()
        && !is_caller
        && email_is_free(tx.conn(), collection, record_id, user)?
    {
        let fields = takeover::patch([("email", json!(user.email))]);
        tx.update(collection, record_id, fields, changes)?;
    }
    verify_by_provider(tx, collection, record_id, user, changes)
}

/// Whether the provider's email may fill in the record's: only while the
/// record has none and no other record holds it (skipped, not refused).
pub(super) fn email_is_free(
    conn: &mut dyn Conn,
    collection: &CompiledCollection,
    record_id: &str,
    user: &OAuth2User,
) -> Result<bool, DbError> {
    if user.email.contains('\0') {
        return Ok(false);
    }
    let table = ident(collection.name.as_str());
    let free = conn.integer(
        &format!(
            "SELECT CASE WHEN EXISTS(SELECT 1 FROM {table} WHERE id = ?1 AND email = '') \
             AND NOT EXISTS(SELECT 1 FROM {table} WHERE email = ?2) THEN 1 ELSE 0 END"
        ),
        &[
            SqlValue::Text(record_id.to_owned()),
            SqlValue::Text(user.email.clone()),
        ],
    )?;
    Ok(free == 1)
}

/// Inside the sign-up transaction: links the provider account to the record
/// just created and verifies it when its email is the provider's.
fn link_new_in(
    tx: &mut SystemTx<'_>,
    collection: &CompiledCollection,
    record_id: &str,
    provider: &str,
    user: &OAuth2User,
    changes: &mut Changes,
) -> Result<(), RecordError> {
    verify_by_provider(tx, collection, record_id, user, changes)?;
    Ok(insert_link(tx, collection, record_id, provider, user)?)
}

/// Verifies the record when the provider vouches for exactly its email
/// (PocketBase compares with `==`: another case is another address).
pub(super) fn verify_by_provider(
    tx: &mut SystemTx<'_>,
    collection: &CompiledCollection,
    record_id: &str,
    user: &OAuth2User,
    changes: &mut Changes,
) -> Result<(), RecordError> {
    if !user.email.is_empty() {
        takeover::mark_verified_in(tx, collection, record_id, Some(&user.email), changes)?;
    }
    Ok(())
}

fn insert_link(
    tx: &mut SystemTx<'_>,
    collection: &CompiledCollection,
    record_id: &str,
    provider: &str,
    user: &OAuth2User,
) -> Result<(), DbError> {
    let now = SqlValue::Text(crate::clock::now());
    tx.conn().execute(
        "INSERT INTO \"_externalAuths\" (id, \"collectionRef\", \"recordRef\", provider, \"providerId\", created, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT DO NOTHING",
        &[
            SqlValue::Text(autogen::record_id()),
            SqlValue::Text(collection.id.clone()),
            SqlValue::Text(record_id.to_owned()),
            SqlValue::Text(provider.to_owned()),
            SqlValue::Text(user.id.clone()),
            now,
        ],
    )?;
    Ok(())
}

/// Links the provider account to the existing record `record_id` (see
/// [`link_existing_in`]); a replacement password is hashed first, off the
/// writer. The link may fill in or verify the email, or reset the
/// password: subscribers hear of it from the write. With model hooks on the
/// record or on `_externalAuths`, the steps run through them
/// ([`super::oauth2_hooked`]).
pub async fn link_existing(
    backend: Backend<'_>,
    snapshot: Arc<Snapshot>,
    collection: &Arc<CompiledCollection>,
    provider: &'static str,
    user: &OAuth2User,
    record_id: &str,
    is_caller: bool,
) -> Result<(), RecordError> {
    let db = backend.db;
    let new_password = replacement_password(db, collection, record_id, is_caller).await?;
    let hooks = backend
        .hooks
        .filter(|h| oauth2_hooked::wanted(*h, &snapshot, collection, Stage::Update));
    if let Some(hooks) = hooks {
        let flow = FlowSession::begin(db, hooks.shared(), snapshot.clone());
        let link = oauth2_hooked::ExistingLink {
            collection,
            provider,
            user,
            record_id,
            is_caller,
            new_password,
        };
        let linked = oauth2_hooked::link_existing(flow.backend(backend), &snapshot, link).await;
        let ended = flow
            .end(linked.is_ok(), backend.store, backend.hub, LINK_FAILED)
            .await;
        return linked.and(ended);
    }
    let (target, user, id) = (collection.clone(), user.clone(), record_id.to_owned());
    system::write_in(&backend, move |tx, changes| {
        link_existing_in(
            tx,
            &target,
            &id,
            provider,
            &user,
            is_caller,
            new_password.as_deref(),
            changes,
        )
    })
    .await
}

/// What the after-error hooks of a refused link or sign-up are told.
const LINK_FAILED: &str = "Failed to authenticate.";

/// The create body of a new account: `createData`, then the provider's
/// verified email where `createData` has no (non-empty) email, the mapped
/// fields where it left them out, and a random password when none was
/// chosen. A client-chosen email stays unverified unless it is exactly the
/// provider's ([`link_new_in`]).
pub fn signup_body(
    collection: &CompiledCollection,
    mut body: Map<String, Value>,
    user: &OAuth2User,
) -> Map<String, Value> {
    let chose_email = body
        .get("email")
        .and_then(Value::as_str)
        .is_some_and(|e| !e.is_empty());
    if !user.email.is_empty() && !chose_email {
        body.insert("email".into(), json!(user.email));
    }
    for (source, field) in &collection.auth.oauth2.mapped_fields {
        let value = match source.as_str() {
            "id" => &user.id,
            "name" => &user.name,
            "username" => &user.username,
            // A file field gets the downloaded avatar ([`avatar_upload`]);
            // a text field the URL, as PocketBase assigns it.
            "avatarURL" | "avatarUrl" => &user.avatar_url,
            _ => continue,
        };
        let is_text = collection
            .field(field)
            .is_some_and(|f| matches!(f.kind, FieldKind::Text { .. } | FieldKind::Url { .. }));
        if is_text && !value.is_empty() && !body.contains_key(field) {
            body.insert(field.clone(), json!(value));
        }
    }
    if !body.contains_key("password") {
        let password = autogen::random_string(autogen::ALPHANUMERIC, 30);
        body.insert("passwordConfirm".into(), json!(password));
        body.insert("password".into(), json!(password));
    }
    body
}

/// The provider's avatar as an upload to the mapped file field, when the
/// collection maps `avatarURL` to one and `body` sets no value for it.
/// Downloaded with the SSRF guards of [`super::avatar`]; a failed download
/// is logged and means no avatar, never a failed sign-up (as PocketBase).
pub async fn avatar_upload(
    collection: &CompiledCollection,
    body: &Map<String, Value>,
    user: &OAuth2User,
    staging_dir: &std::path::Path,
    allow_private: bool,
) -> Vec<records::Upload> {
    let Some((_, field)) = collection
        .auth
        .oauth2
        .mapped_fields
        .iter()
        .find(|(source, _)| source == "avatarURL" || source == "avatarUrl")
    else {
        return Vec::new();
    };
    let Some(FieldKind::File { max_size, .. }) = collection.field(field).map(|f| &f.kind) else {
        return Vec::new();
    };
    if user.avatar_url.is_empty() || body.contains_key(field.as_str()) {
        return Vec::new();
    }
    let limit = crate::files::effective_max_size(*max_size);
    match super::avatar::download(&user.avatar_url, staging_dir, limit, allow_private).await {
        Ok(file) => vec![records::Upload {
            key: field.clone(),
            file,
        }],
        Err(e) => {
            tracing::warn!(error = %e, "failed to retrieve the OAuth2 avatar");
            Vec::new()
        }
    }
}

/// Signs up a new record from `body` (see [`signup_body`]) under the
/// collection's create rule as `caller` sees it, then links the provider
/// account, in one transaction: the create, the provider's verification of
/// its email (folded into the create event) and the link. With model hooks
/// on the record or on `_externalAuths`, the create and the link run
/// through them in one write session ([`sign_up_in`]).
#[allow(clippy::too_many_arguments)] // one sign-up, described field by field
pub async fn sign_up(
    backend: Backend<'_>,
    snapshot: Arc<Snapshot>,
    collection: &Arc<CompiledCollection>,
    provider: &'static str,
    user: &OAuth2User,
    caller: records::Caller,
    body: Map<String, Value>,
    uploads: Vec<records::Upload>,
) -> Result<String, RecordError> {
    let hooks = backend
        .hooks
        .filter(|h| oauth2_hooked::wanted(*h, &snapshot, collection, Stage::Create));
    if let Some(hooks) = hooks {
        let flow = FlowSession::begin(backend.db, hooks.shared(), snapshot.clone());
        let inner = flow.backend(backend);
        let created = records::create(
            inner,
            snapshot.clone(),
            collection.clone(),
            caller,
            body,
            uploads,
        )
        .await;
        let linked = match created {
            Ok(record) => sign_up_in(inner, &snapshot, collection, &record, provider, user).await,
            Err(e) => Err(e),
        };
        let ended = flow
            .end(linked.is_ok(), backend.store, backend.hub, LINK_FAILED)
            .await;
        ended?;
        return linked;
    }
    let store = backend.store;
    let prepared =
        records::prepare_create(&snapshot, collection.clone(), caller, body, &uploads).await?;
    // The avatar is placed durably before the record that names it commits,
    // and removed again if the sign-up fails (as the records write does).
    let placed = crate::files::place(store, prepared.stage(uploads)?).await?;
    let (collection, user) = (collection.clone(), user.clone());
    let outcome = system::write_in(&backend, move |tx, changes| {
        tx.create(&prepared, &snapshot, changes)?;
        link_new_in(tx, &collection, prepared.id(), provider, &user, changes)?;
        Ok(prepared.id().to_owned())
    })
    .await;
    if outcome.is_err() {
        crate::files::remove(store, placed, Vec::new()).await;
    }
    outcome
}

/// Inside a sign-up's session, after the create answered `record`: the
/// provider's verification and the link (through their model hooks).
/// Returns the new record's id.
pub async fn sign_up_in(
    inner: Backend<'_>,
    snapshot: &Snapshot,
    collection: &Arc<CompiledCollection>,
    record: &Value,
    provider: &'static str,
    user: &OAuth2User,
) -> Result<String, RecordError> {
    // A hook that never called e.next() created nothing to link.
    let Some(id) = record["id"].as_str().filter(|id| !id.is_empty()) else {
        return Err(RecordError::BadQuery("Failed to create record.".into()));
    };
    oauth2_hooked::link_new(inner, snapshot, collection, id, provider, user).await?;
    Ok(id.to_owned())
}
