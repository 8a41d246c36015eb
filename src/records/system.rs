//! Changes the server makes to an existing record on its own behalf: the
//! account flows (verification, password reset, email change, OTP, OAuth2
//! linking) and the pre-hijacking guards. Like PocketBase's `app.Save` from
//! its own handlers, such a change skips the collection's API rules — the
//! flow has already proven who may make it — but nothing else: it goes
//! through the same steps as an API update ([`super::write`]): on-update
//! autodates stamped by the same code, the changed fields validated against
//! the collection (email domains included), unique indexes reported per
//! field, the saved row read back, and one realtime update event noted for
//! the transaction, delivered after the commit under each subscriber's view
//! rule. The transaction is [`write_in`]'s, or a write session's inside
//! model hooks ([`hooked`], [`in_session`]); either engine, a [`SystemTx`].
//! Flows only name the fields.

use super::RecordError;
use super::access::Access;
use super::hooked::{Stage, SystemWrite};
use super::tx::{PgTx, RecordTx, RowLock, SqliteTx};
use super::write::Backend;
use super::write::{UPDATE_FAILED, change, invalid, stamp_autodates};
use crate::db::Conn;
use crate::realtime::{Action, Changes};
use crate::schema::{CompiledCollection, FieldKind};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A flow's write transaction on either engine: reads and changes of an
/// existing record, and the connection for the flow's own statements.
pub struct SystemTx<'a>(&'a mut dyn RecordTx);

impl<'a> SystemTx<'a> {
    pub(super) fn new(tx: &'a mut dyn RecordTx) -> Self {
        SystemTx(tx)
    }
}

impl SystemTx<'_> {
    /// The connection, for statements both engines share.
    pub fn conn(&mut self) -> &mut dyn Conn {
        self.0.conn()
    }

    /// The record `id` as stored (every field, hidden ones included), if it
    /// exists; on PostgreSQL its row stays locked (`FOR UPDATE`) until the
    /// transaction ends, so a flow's check and its change see the same row.
    pub fn current(
        &mut self,
        collection: &CompiledCollection,
        id: &str,
    ) -> Result<Option<Map<String, Value>>, RecordError> {
        self.0
            .load(collection, id, &Access::All, RowLock::ForUpdate)
    }

    /// Inserts a prepared record (the create rule checked against it, the
    /// create noted in `changes`), as an API create does.
    pub fn create(
        &mut self,
        prepared: &super::PreparedCreate,
        snapshot: &crate::schema::Snapshot,
        changes: &mut Changes,
    ) -> Result<(), RecordError> {
        prepared.apply_in(self.0, snapshot, changes)?;
        Ok(())
    }

    /// Sets `patch`'s fields on the existing record `id` and notes the
    /// update in `changes`. Returns the saved row, or `None` when there is
    /// no such record (the flow decides whether that is an error).
    ///
    /// Password fields in `patch` carry hashes the server made (their
    /// plaintext rules were checked by the flow), so only the other changed
    /// fields are validated; fields the patch leaves alone are not
    /// re-validated, as a later schema change must not lock an account out
    /// of its own flows.
    pub fn update(
        &mut self,
        collection: &CompiledCollection,
        id: &str,
        patch: Map<String, Value>,
        changes: &mut Changes,
    ) -> Result<Option<Map<String, Value>>, RecordError> {
        let Some(mut values) = self.current(collection, id)? else {
            return Ok(None);
        };
        let checked: Vec<String> = patch
            .keys()
            .filter(|name| {
                collection
                    .field(name)
                    .is_some_and(|f| !matches!(f.kind, FieldKind::Password { .. }))
            })
            .cloned()
            .collect();
        values.extend(patch);
        stamp_autodates(collection, &mut values, &crate::clock::now(), false);
        let mut errors = super::validate::check(collection, &values);
        errors.retain(|name| checked.iter().any(|c| c == name));
        errors
            .into_result()
            .map_err(|e| invalid(UPDATE_FAILED, e))?;
        self.0.update(collection, id, &values, UPDATE_FAILED)?;
        let saved = self.current(collection, id)?.ok_or(RecordError::NotFound)?;
        changes.push_update(change(collection, id, Action::Update, Some(saved.clone())));
        Ok(Some(saved))
    }
}

/// Runs `f` with `conn`, a write transaction of either engine (a write
/// session's), as a [`SystemTx`].
pub fn in_conn<T>(conn: &mut dyn Conn, f: impl FnOnce(&mut SystemTx<'_>) -> T) -> T {
    if let Some(tx) = conn.sqlite() {
        return f(&mut SystemTx(&mut SqliteTx::new(tx)));
    }
    f(&mut SystemTx(&mut PgTx(conn)))
}

/// Runs `f` inside write session `session` (its transaction, its own
/// savepoint) on either engine; its changes are held by the session.
pub async fn in_session<T: Send + 'static>(
    session: &super::session::Session,
    f: impl FnOnce(&mut SystemTx<'_>, &mut Changes) -> Result<T, RecordError> + Send + 'static,
) -> Result<T, RecordError> {
    session
        .run_conn(move |conn, changes| in_conn(conn, |stx| f(stx, changes)))
        .await
}

/// Runs a flow's writes in one write transaction of either engine (on
/// SQLite the writer's, shared with concurrent writes; on PostgreSQL one of
/// its own, run again after a deadlock, so `f` may run more than once) and,
/// once it committed, hands the changes noted in it to the realtime hub.
pub async fn write_in<T: Send + 'static>(
    backend: &Backend<'_>,
    f: impl Fn(&mut SystemTx<'_>, &mut Changes) -> Result<T, RecordError> + Send + 'static,
) -> Result<T, RecordError> {
    super::write::apply_and_publish(backend.db, backend.hub, backend.joined(), move |tx, ch| {
        f(&mut SystemTx(tx), ch)
    })
    .await
}

/// A flow's change of record `id` on either engine: `body` in one write
/// transaction ([`write_in`]). With model hooks on the collection it runs
/// inside them as [`update_hooked`] (`shown` is what they see change), the
/// fields they set beside `owned` applied after it (either engine).
pub async fn update_flow(
    backend: Backend<'_>,
    collection: Arc<CompiledCollection>,
    id: String,
    shown: Map<String, Value>,
    owned: &'static [&'static str],
    body: impl Fn(&mut SystemTx<'_>, &mut Changes) -> Result<(), RecordError> + Send + 'static,
) -> Result<(), RecordError> {
    if !hooks_want(&backend, Stage::Update, &collection) {
        return write_in(&backend, body).await;
    }
    let (c, target) = (collection.clone(), id.clone());
    let write: SystemWrite = Box::new(move |tx, changes, from_hooks| {
        body(tx, changes)?;
        hook_fields(tx, &c, &target, from_hooks, owned, changes)
    });
    update_hooked(backend, collection, id, shown, write).await
}

/// Runs a flow's change of record `id` as an update the model hooks see:
/// `onRecordUpdate` around it (its `e.record` is the stored record with
/// `shown` set; whatever else a handler sets reaches `write`), then
/// `onRecordAfterUpdate…` — as PocketBase's flows save through `app.Save`.
/// Without such hooks `write` runs once in a write of its own.
pub async fn update_hooked(
    backend: Backend<'_>,
    collection: Arc<CompiledCollection>,
    id: String,
    shown: Map<String, Value>,
    write: SystemWrite,
) -> Result<(), RecordError> {
    let step = SystemStep {
        stage: Stage::Update,
        id,
        shown,
        write,
    };
    hooked(backend, collection, step).await
}

/// One server-side save the model hooks see, as PocketBase's `app.Save` /
/// `app.Delete` of a record (its bookkeeping rows in `_otps`,
/// `_externalAuths`… included).
pub struct SystemStep {
    pub stage: Stage,
    /// The record's id (for a create, the id `write` inserts).
    pub id: String,
    /// What `e.record` shows changed (for a create, the whole new row).
    pub shown: Map<String, Value>,
    /// The flow's own statements, given the fields the hooks passed on.
    pub write: SystemWrite,
}

/// Runs `step` inside the stage's model hooks (`onRecordCreate` …, then
/// `onRecordAfter…`); without such hooks `write` runs once in a write of
/// its own (either engine).
pub async fn hooked(
    backend: Backend<'_>,
    collection: Arc<CompiledCollection>,
    step: SystemStep,
) -> Result<(), RecordError> {
    let SystemStep {
        stage,
        id,
        shown,
        write,
    } = step;
    let hooks = backend
        .hooks
        .filter(|h| super::hooked::wanted(*h, stage, &collection));
    let Some(hooks) = hooks else {
        let joined = backend.joined();
        return super::write::apply_once_and_publish(
            backend.db,
            backend.hub,
            joined,
            move |tx, ch| write(&mut SystemTx(tx), ch, Map::new()),
        )
        .await;
    };
    let record = match stage {
        Stage::Create => {
            let mut record = shown.clone();
            record.insert("id".into(), Value::String(id.clone()));
            record.insert("collectionId".into(), Value::String(collection.id.clone()));
            record.insert(
                "collectionName".into(),
                Value::String(collection.name.to_string()),
            );
            record
        }
        Stage::Update => {
            let mut record = super::write::stored(&backend, &collection, &id).await?;
            record.extend(shown.clone());
            record
        }
        Stage::Delete => super::write::stored(&backend, &collection, &id).await?,
    };
    let plain = super::hooked::Plain::System { stage, id, write };
    super::hooked::write(
        hooks,
        backend,
        collection,
        Value::Object(record),
        shown,
        plain,
    )
    .await
    .map(|_| ())
}

/// Whether a server-side save of `stage` on `collection` would run model
/// hooks (so a flow knows to take its hooked, step-by-step path).
pub fn hooks_want(backend: &Backend<'_>, stage: Stage, collection: &CompiledCollection) -> bool {
    backend
        .hooks
        .is_some_and(|h| super::hooked::wanted(h, stage, collection))
}

/// Applies the fields a model hook set beside a flow's own (`owned`, which
/// the flow writes itself): plain fields of the collection only, never a
/// password (its value would be taken for a hash), `id` or `tokenKey`.
pub fn hook_fields(
    tx: &mut SystemTx<'_>,
    collection: &CompiledCollection,
    id: &str,
    mut fields: Map<String, Value>,
    owned: &[&str],
    changes: &mut Changes,
) -> Result<(), RecordError> {
    fields.retain(|name, _| {
        !owned.contains(&name.as_str())
            && !["id", "tokenKey"].contains(&name.as_str())
            && collection
                .field(name)
                .is_some_and(|f| !matches!(f.kind, FieldKind::Password { .. }))
    });
    if fields.is_empty() {
        return Ok(());
    }
    tx.update(collection, id, fields, changes)?
        .ok_or(RecordError::NotFound)?;
    Ok(())
}
