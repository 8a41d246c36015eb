//! OAuth2 link and sign-up when model hooks apply, in PocketBase's steps
//! (its `oauth2Submit` runs them in one transaction): the auth record is
//! saved through `onRecordUpdate` … when the link changes it (password
//! replaced, email filled in, verified), or created through
//! `onRecordCreate` … (and saved again through `onRecordUpdate` … when the
//! provider verifies its email); then the `_externalAuths` row is created through
//! `onRecordCreate` … of that collection (an unverified record's earlier
//! links are first deleted one by one through `onRecordDelete` …, as
//! PocketBase's guard against pre-hijacking). All of it shares one write
//! session; a throw anywhere rolls back everything and refuses the login,
//! and `onRecordAfter…Success` waits for the commit.
//!
//! Fields a hook sets on the `_externalAuths` row are not saved: the link
//! is exactly the provider account that logged in.

use super::oauth2::{email_is_free, link_existing_in_parts, verify_by_provider};
use crate::auth::oauth2::OAuth2User;
use crate::db::Db;
use crate::realtime::Hub;
use crate::records::session::Session;
use crate::records::system::{self, SystemStep};
use crate::records::{AfterCommit, Backend, RecordError, Stage, SystemWrite, WriteHooks};
use crate::rules::SqlValue;
use crate::schema::{CompiledCollection, Snapshot, autogen};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The name of PocketBase's OAuth2 link collection.
pub const LINKS: &str = "_externalAuths";

/// One write session for a link or sign-up, with its held after-hooks.
#[derive(Clone)]
pub struct FlowSession {
    session: Arc<Session>,
    after: Arc<AfterCommit>,
}

impl FlowSession {
    pub fn begin(db: &Db, hooks: Arc<dyn WriteHooks>, snapshot: Arc<Snapshot>) -> Self {
        Self {
            session: Session::begin_in(None, db, hooks.session_limit()),
            after: Arc::new(AfterCommit::new(hooks, snapshot)),
        }
    }

    /// `outer`'s database, store and hub, writing inside this session.
    pub fn backend<'a>(&'a self, outer: Backend<'a>) -> Backend<'a> {
        Backend {
            hooks: Some(&*self.after),
            session: Some(&self.session),
            ..outer
        }
    }

    /// Commits (`ok`) or rolls back, then runs the held after-hooks.
    pub async fn end(
        &self,
        ok: bool,
        store: &crate::files::Store,
        hub: &Hub,
        failure: &str,
    ) -> Result<(), RecordError> {
        let ended = self.session.end(ok, store, hub).await;
        self.after.flush(ok && ended.is_ok(), failure).await;
        ended
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }
}

/// Whether the hooks see a link or sign-up on `collection`: a model hook
/// of the record's `stage`, or a create or delete hook of `_externalAuths`.
pub fn wanted(
    hooks: &dyn WriteHooks,
    snapshot: &Snapshot,
    collection: &CompiledCollection,
    stage: Stage,
) -> bool {
    let links = |s| {
        snapshot
            .get_ref(LINKS)
            .is_some_and(|links| crate::records::hooked::wanted(hooks, s, links))
    };
    crate::records::hooked::wanted(hooks, stage, collection)
        || links(Stage::Create)
        || links(Stage::Delete)
}

/// What linking a provider account to an existing record needs.
pub struct ExistingLink<'a> {
    pub collection: &'a Arc<CompiledCollection>,
    pub provider: &'static str,
    pub user: &'a OAuth2User,
    pub record_id: &'a str,
    pub is_caller: bool,
    pub new_password: Option<String>,
}

/// Links to an existing record (see `oauth2::link_existing_in`) inside
/// `flow`: the record's save through `onRecordUpdate` when it changes,
/// then the link's create.
pub async fn link_existing(
    backend: Backend<'_>,
    snapshot: &Snapshot,
    link: ExistingLink<'_>,
) -> Result<(), RecordError> {
    let ExistingLink {
        collection,
        provider,
        user,
        record_id,
        is_caller,
        new_password,
    } = link;
    let session = backend.session.cloned().ok_or(RecordError::Aborted)?;
    let (c, id, u) = (collection.clone(), record_id.to_owned(), user.clone());
    let plan = system::in_session(&session, move |tx, _| {
        let row = tx.current(&c, &id)?.ok_or(RecordError::NotFound)?;
        let verified = row.get("verified").and_then(Value::as_bool) == Some(true);
        let email = row.get("email").and_then(Value::as_str).unwrap_or_default();
        let fill = !u.email.is_empty() && !is_caller && email_is_free(tx.conn(), &c, &id, &u)?;
        let email_after = if fill { u.email.as_str() } else { email };
        let verifies = !verified && !u.email.is_empty() && email_after == u.email;
        Ok((verified, fill, verifies))
    })
    .await?;
    let (verified, fill, verifies) = plan;
    if !verified {
        // PocketBase deletes an unverified record's other links one by one
        // (onRecordDelete on `_externalAuths`) before saving the record.
        drop_links(backend, snapshot, collection, record_id).await?;
    }
    let mut shown = Map::new();
    if fill {
        shown.insert("email".into(), json!(user.email));
    }
    if verifies {
        shown.insert("verified".into(), json!(true));
    }
    let (c, id, u) = (collection.clone(), record_id.to_owned(), user.clone());
    let write: SystemWrite = Box::new(move |tx, changes, from_hooks| {
        link_existing_in_parts(tx, &c, &id, &u, is_caller, new_password.as_deref(), changes)?;
        system::hook_fields(tx, &c, &id, from_hooks, &["verified", "email"], changes)
    });
    // PocketBase saves the record only when the link changes it.
    if (!verified && !is_caller) || !shown.is_empty() {
        let id = record_id.to_owned();
        system::update_hooked(backend, collection.clone(), id, shown, write).await?;
    } else {
        system::in_session(&session, move |tx, changes| write(tx, changes, Map::new())).await?;
    }
    create_link(backend, snapshot, collection, record_id, provider, user).await
}

/// Deletes every `_externalAuths` row of the record through its model
/// hooks (a throw refuses the login).
async fn drop_links(
    backend: Backend<'_>,
    snapshot: &Snapshot,
    collection: &CompiledCollection,
    record_id: &str,
) -> Result<(), RecordError> {
    let (Some(links), Some(session)) = (snapshot.get(LINKS), backend.session.cloned()) else {
        return Err(RecordError::Aborted);
    };
    let (cid, rid) = (collection.id.clone(), record_id.to_owned());
    let ids = system::in_session(&session, move |tx, _| {
        let rows = tx.conn().rows(
            "SELECT id FROM \"_externalAuths\" WHERE \"collectionRef\" = ?1 AND \"recordRef\" = ?2",
            &[SqlValue::Text(cid), SqlValue::Text(rid)],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| match r.into_iter().next() {
                Some(SqlValue::Text(id)) => Some(id),
                _ => None,
            })
            .collect::<Vec<String>>())
    })
    .await?;
    for id in ids {
        let target = id.clone();
        let write: SystemWrite = Box::new(move |tx, _, _| {
            tx.conn().execute(
                "DELETE FROM \"_externalAuths\" WHERE id = ?1",
                &[SqlValue::Text(target)],
            )?;
            Ok(())
        });
        let step = SystemStep {
            stage: Stage::Delete,
            id,
            shown: Map::new(),
            write,
        };
        system::hooked(backend, links.clone(), step).await?;
    }
    Ok(())
}

/// After a sign-up's create inside the session: the provider's
/// verification of the new record's email, then the link's create.
pub async fn link_new(
    backend: Backend<'_>,
    snapshot: &Snapshot,
    collection: &Arc<CompiledCollection>,
    record_id: &str,
    provider: &'static str,
    user: &OAuth2User,
) -> Result<(), RecordError> {
    let session = backend.session.cloned().ok_or(RecordError::Aborted)?;
    let (c, id) = (collection.clone(), record_id.to_owned());
    let row = system::in_session(&session, move |tx, _| {
        tx.current(&c, &id)?.ok_or(RecordError::NotFound)
    })
    .await?;
    let verified = row.get("verified").and_then(Value::as_bool) == Some(true);
    let email = row.get("email").and_then(Value::as_str).unwrap_or_default();
    // PocketBase saves the new record again to verify it (onRecordUpdate).
    if !verified && !user.email.is_empty() && email == user.email {
        let (c, id, u) = (collection.clone(), record_id.to_owned(), user.clone());
        let write: SystemWrite = Box::new(move |tx, changes, from_hooks| {
            verify_by_provider(tx, &c, &id, &u, changes)?;
            system::hook_fields(tx, &c, &id, from_hooks, &["verified"], changes)
        });
        let shown = Map::from_iter([("verified".to_owned(), json!(true))]);
        let id = record_id.to_owned();
        system::update_hooked(backend, collection.clone(), id, shown, write).await?;
    }
    create_link(backend, snapshot, collection, record_id, provider, user).await
}

/// Creates the `_externalAuths` row through its model hooks, unless the
/// record or the provider account is already linked (PocketBase reuses the
/// link it found).
async fn create_link(
    backend: Backend<'_>,
    snapshot: &Snapshot,
    collection: &Arc<CompiledCollection>,
    record_id: &str,
    provider: &'static str,
    user: &OAuth2User,
) -> Result<(), RecordError> {
    let session = backend.session.cloned().ok_or(RecordError::Aborted)?;
    let Some(links) = snapshot.get(LINKS) else {
        return Err(RecordError::NotFound);
    };
    let (cid, rid, pid) = (collection.id.clone(), record_id.to_owned(), user.id.clone());
    let linked = system::in_session(&session, move |tx, _| {
        Ok(tx
            .conn()
            .first_row(
                "SELECT 1 FROM \"_externalAuths\" WHERE \"collectionRef\" = ?1 AND provider = ?3
                 AND (\"recordRef\" = ?2 OR \"providerId\" = ?4)",
                &[
                    SqlValue::Text(cid),
                    SqlValue::Text(rid),
                    SqlValue::Text(provider.to_owned()),
                    SqlValue::Text(pid),
                ],
            )?
            .is_some())
    })
    .await?;
    if linked {
        return Ok(());
    }
    let id = autogen::record_id();
    let shown = Map::from_iter([
        ("collectionRef".to_owned(), json!(collection.id)),
        ("recordRef".to_owned(), json!(record_id)),
        ("provider".to_owned(), json!(provider)),
        ("providerId".to_owned(), json!(user.id)),
    ]);
    let (link_id, cid, rid, pid) = (
        id.clone(),
        collection.id.clone(),
        record_id.to_owned(),
        user.id.clone(),
    );
    let write: SystemWrite = Box::new(move |tx, _, _| {
        let now = crate::clock::now();
        tx.conn().execute(
            "INSERT INTO \"_externalAuths\" (id, \"collectionRef\", \"recordRef\", provider, \"providerId\", created, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            &[
                SqlValue::Text(link_id),
                SqlValue::Text(cid),
                SqlValue::Text(rid),
                SqlValue::Text(provider.to_owned()),
                SqlValue::Text(pid),
                SqlValue::Text(now),
            ],
        )?;
        Ok(())
    });
    let step = SystemStep {
        stage: Stage::Create,
        id,
        shown,
        write,
    };
    system::hooked(backend, links, step).await
}
