//! The model hook points of the one write path: `onRecordCreate`,
//! `onRecordUpdate`, `onRecordDelete` around the write (their `e.next()`
//! performs it inside a [`Session`], so a hook that throws or runs out of
//! time after `e.next()` rolls the write back, together with whatever the
//! hook itself wrote), then `onRecordAfter…Success` after the commit or
//! `onRecordAfter…Error` after a failure (neither can change the outcome).
//!
//! `records` knows hooks only through the [`WriteHooks`] trait; the hooks
//! module implements it. Without hooks `Backend::hooks` is `None` and the
//! write path does one `Option` check.

use super::RecordError;
use super::access::Caller;
use super::files::Upload;
use super::session::Session;
use super::write::{self, Backend};
use crate::schema::{CompiledCollection, Snapshot};
use futures_util::future::LocalBoxFuture;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which write a model hook surrounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Create,
    Update,
    Delete,
}

impl Stage {
    /// The hook around the write.
    pub fn hook(self) -> &'static str {
        match self {
            Stage::Create => "onRecordCreate",
            Stage::Update => "onRecordUpdate",
            Stage::Delete => "onRecordDelete",
        }
    }

    /// The hook after a committed write.
    pub fn success(self) -> &'static str {
        match self {
            Stage::Create => "onRecordAfterCreateSuccess",
            Stage::Update => "onRecordAfterUpdateSuccess",
            Stage::Delete => "onRecordAfterDeleteSuccess",
        }
    }

    /// The hook after a failed write.
    pub fn error(self) -> &'static str {
        match self {
            Stage::Create => "onRecordAfterCreateError",
            Stage::Update => "onRecordAfterUpdateError",
            Stage::Delete => "onRecordAfterDeleteError",
        }
    }

    /// The stage of an after-write hook (success or error).
    pub(super) fn of_after(hook: &str) -> Option<Stage> {
        [Stage::Create, Stage::Update, Stage::Delete]
            .into_iter()
            .find(|s| s.success() == hook || s.error() == hook)
    }
}

/// The write `e.next()` performs, given the record's fields as the hooks
/// left them; answers the written record.
pub type Next = Box<
    dyn FnOnce(Map<String, Value>) -> LocalBoxFuture<'static, Result<Value, RecordError>> + Send,
>;

/// One model hook invocation.
pub struct Invocation<'a> {
    pub hook: &'static str,
    pub collection: &'a CompiledCollection,
    /// `e.record`.
    pub record: Value,
    /// The fields `e.next()` writes unless the hooks change more.
    pub changed: Vec<String>,
    /// `e.error` of an `…Error` hook.
    pub error: Option<String>,
    pub session: Option<Arc<Session>>,
    pub next: Option<Next>,
    /// The record is being created (a submitted `id` is the one to write).
    pub is_new: bool,
}

/// PocketBase's validation hook: runs on every create and update before
/// its statement; its `e.next()` validates (and here also writes).
pub const VALIDATE: &str = "onRecordValidate";

/// What the write path needs of the hooks.
pub trait WriteHooks: Send + Sync {
    /// Whether any handler of `hook` applies to `collection`.
    fn wants(&self, hook: &str, collection: &CompiledCollection) -> bool;
    /// How long a hook may hold the writer.
    fn session_limit(&self) -> Duration;
    /// Runs the handlers; an error is the hook's refusal.
    fn run<'a>(&'a self, call: Invocation<'a>) -> LocalBoxFuture<'a, Result<(), RecordError>>;
    /// The hooks as an owned handle, for a hook that runs inside a write's
    /// `e.next()` (`onRecordValidate`).
    fn shared(&self) -> Arc<dyn WriteHooks>;
}

/// Whether any model hook of `stage` applies.
pub fn wanted(hooks: &dyn WriteHooks, stage: Stage, c: &CompiledCollection) -> bool {
    [stage.hook(), stage.success(), stage.error()]
        .iter()
        .any(|h| hooks.wants(h, c))
        || (stage != Stage::Delete && hooks.wants(VALIDATE, c))
}

/// A flow's own change of an existing record (`records::system`), given
/// the fields the model hooks passed to `e.next()` (see
/// [`super::system::hook_fields`]).
pub type SystemWrite = Box<
    dyn FnOnce(
            &mut super::system::SystemTx<'_>,
            &mut crate::realtime::Changes,
            Map<String, Value>,
        ) -> Result<(), RecordError>
        + Send,
>;

/// Whether any model hook of a create applies to `c`.
pub fn wanted_create(hooks: &dyn WriteHooks, c: &CompiledCollection) -> bool {
    wanted(hooks, Stage::Create, c)
}

/// What a hooked write performs: the plain write of `write.rs`, or a
/// flow's own change.
pub(super) enum Plain {
    System {
        stage: Stage,
        id: String,
        write: SystemWrite,
    },
    Create {
        snapshot: Arc<Snapshot>,
        caller: Caller,
        uploads: Vec<Upload>,
    },
    Update {
        snapshot: Arc<Snapshot>,
        caller: Caller,
        id: String,
        uploads: Vec<Upload>,
    },
    Delete {
        snapshot: Arc<Snapshot>,
        caller: Caller,
        id: String,
    },
}

impl Plain {
    fn stage(&self) -> Stage {
        match self {
            Plain::Create { .. } => Stage::Create,
            Plain::Update { .. } => Stage::Update,
            Plain::Delete { .. } => Stage::Delete,
            Plain::System { stage, .. } => *stage,
        }
    }

    /// Boxed: the plain write is the hooked write's own callee.
    fn perform(
        self,
        backend: Backend<'_>,
        collection: Arc<CompiledCollection>,
        fields: Map<String, Value>,
    ) -> LocalBoxFuture<'_, Result<Value, RecordError>> {
        Box::pin(async move {
            match self {
                Plain::System { stage, id, write } => {
                    let (c, joined) = (collection.clone(), backend.joined());
                    write::apply_once_and_publish(backend.db, backend.hub, joined, move |tx, ch| {
                        write(&mut super::system::SystemTx::new(tx), ch, fields)?;
                        if stage == Stage::Delete {
                            return Ok(Value::Null);
                        }
                        super::read::view_conn(tx.conn(), &c, &id)?.ok_or(RecordError::NotFound)
                    })
                    .await
                }
                Plain::Create {
                    snapshot,
                    caller,
                    uploads,
                } => write::create(backend, snapshot, collection, caller, fields, uploads).await,
                Plain::Update {
                    snapshot,
                    caller,
                    id,
                    uploads,
                } => {
                    write::update(backend, snapshot, collection, caller, id, fields, uploads).await
                }
                Plain::Delete {
                    snapshot,
                    caller,
                    id,
                } => write::delete(backend, snapshot, collection, caller, id)
                    .await
                    .map(|()| Value::Null),
            }
        })
    }
}

/// Runs `plain` inside the model hooks. `record` is `e.record` before the
/// write; `body` the submitted fields.
pub(super) async fn write(
    hooks: &dyn WriteHooks,
    backend: Backend<'_>,
    collection: Arc<CompiledCollection>,
    record: Value,
    body: Map<String, Value>,
    plain: Plain,
) -> Result<Value, RecordError> {
    let stage = plain.stage();
    let plain_backend = Backend {
        hooks: None,
        ..backend
    };
    // onRecordValidate runs inside the stage hook's e.next(), or alone
    // around the write when no stage hook applies.
    let validate = stage != Stage::Delete && hooks.wants(VALIDATE, &collection);
    let outer = if hooks.wants(stage.hook(), &collection) {
        Some(stage.hook())
    } else {
        validate.then_some(VALIDATE)
    };
    let result = if let Some(outer) = outer {
        let session = Session::begin_in(backend.joined(), backend.db, hooks.session_limit());
        let written: Arc<Mutex<Option<Value>>> = Arc::default();
        let seen: Arc<Mutex<Option<Value>>> = Arc::default();
        let (slot, seen_slot) = (written.clone(), seen.clone());
        let perform = Perform {
            plain,
            collection: collection.clone(),
            base: record.clone(),
            is_new: stage == Stage::Create,
            validator: (validate && outer != VALIDATE).then(|| hooks.shared()),
            db: backend.db.clone(),
            store: backend.store.clone(),
            hub: backend.hub.clone(),
        };
        let next: Next = Box::new(move |fields| {
            Box::pin(async move {
                let (value, full) = perform.run(fields).await?;
                if let Ok(mut s) = slot.lock() {
                    *s = Some(value);
                }
                if let Ok(mut s) = seen_slot.lock() {
                    *s = Some(full.clone());
                }
                Ok(full)
            })
        });
        let ran = hooks
            .run(Invocation {
                hook: outer,
                collection: &collection,
                record: record.clone(),
                changed: body.keys().cloned().collect(),
                error: None,
                session: Some(session.clone()),
                next: Some(next),
                is_new: stage == Stage::Create,
            })
            .await;
        let ended = session.end(ran.is_ok(), backend.store, backend.hub).await;
        let value = written.lock().ok().and_then(|mut s| s.take());
        let full = seen.lock().ok().and_then(|mut s| s.take());
        // A hook that never called e.next() wrote nothing: the record stays as it was.
        ran.and(ended).map(|()| {
            let full = full.unwrap_or_else(|| record.clone());
            (value.unwrap_or_else(|| record.clone()), Some(full))
        })
    } else {
        plain
            .perform(plain_backend, collection.clone(), body)
            .await
            .map(|v| (v, None))
    };
    let (result, full) = match result {
        Ok((value, full)) => (Ok(value), full),
        Err(e) => (Err(e), None),
    };
    let (hook, shown, error) = match &result {
        Ok(value) if stage != Stage::Delete => {
            let shown = match full {
                Some(full) => full,
                None if hooks.wants(stage.success(), &collection) => {
                    as_stored(&backend, &collection, value).await
                }
                None => value.clone(),
            };
            (stage.success(), shown, None)
        }
        Ok(_) => (stage.success(), record, None),
        Err(e) => (stage.error(), record, Some(e.to_string())),
    };
    if hooks.wants(hook, &collection) {
        let after = hooks
            .run(Invocation {
                hook,
                collection: &collection,
                record: shown,
                changed: Vec::new(),
                error,
                session: backend.joined(),
                next: None,
                is_new: false,
            })
            .await;
        if let Err(e) = after {
            tracing::warn!(target: "ferrobase::hooks", %hook, error = %e, "an after-write hook failed (the write stands as it was)");
        }
    }
    result
}

/// What a model hook's `e.next()` performs: the plain write, through
/// `onRecordValidate` first when `validator` is set. Runs on the hook
/// thread, where the write's session is current.
struct Perform {
    plain: Plain,
    collection: Arc<CompiledCollection>,
    /// The record before the write (`onRecordValidate` sees it with the
    /// fields `e.next()` was given).
    base: Value,
    is_new: bool,
    validator: Option<Arc<dyn WriteHooks>>,
    db: crate::db::Db,
    store: crate::files::Store,
    hub: crate::realtime::Hub,
}

/// A write's result: the record as the caller sees it, and as stored.
type Done = (Value, Value);

impl Perform {
    async fn run(self, fields: Map<String, Value>) -> Result<Done, RecordError> {
        let Perform {
            plain,
            collection: c,
            base,
            is_new,
            validator,
            db,
            store,
            hub,
        } = self;
        let backend = Backend {
            db: &db,
            store: &store,
            hub: &hub,
            hooks: None,
            session: None,
        };
        let Some(validator) = validator else {
            return written(backend, plain, &c, fields).await;
        };
        let mut record = match base {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        record.extend(fields.clone());
        let pending = Arc::new(Mutex::new(Some(plain)));
        let done: Arc<Mutex<Option<Done>>> = Arc::default();
        let (take, keep) = (pending.clone(), done.clone());
        let (db2, store2, hub2, c2) = (db.clone(), store.clone(), hub.clone(), c.clone());
        let next: Next = Box::new(move |fields| {
            Box::pin(async move {
                let plain = take.lock().ok().and_then(|mut p| p.take());
                let Some(plain) = plain else {
                    return Err(RecordError::Aborted);
                };
                let backend = Backend {
                    db: &db2,
                    store: &store2,
                    hub: &hub2,
                    hooks: None,
                    session: None,
                };
                let (value, full) = written(backend, plain, &c2, fields).await?;
                if let Ok(mut d) = keep.lock() {
                    *d = Some((value, full.clone()));
                }
                Ok(full)
            })
        });
        validator
            .run(Invocation {
                hook: VALIDATE,
                collection: &c,
                record: Value::Object(record),
                changed: fields.keys().cloned().collect(),
                error: None,
                session: super::session::current(),
                next: Some(next),
                is_new,
            })
            .await?;
        if let Some(done) = done.lock().ok().and_then(|mut d| d.take()) {
            return Ok(done);
        }
        // The handlers never called e.next(): PocketBase then saves without
        // its own validation; here the write goes on, still validated.
        let plain = pending.lock().ok().and_then(|mut p| p.take());
        match plain {
            Some(plain) => written(backend, plain, &c, fields).await,
            None => Err(RecordError::Aborted),
        }
    }
}

/// Performs `plain`; answers the record as the caller sees it and as stored.
async fn written(
    backend: Backend<'_>,
    plain: Plain,
    c: &Arc<CompiledCollection>,
    fields: Map<String, Value>,
) -> Result<Done, RecordError> {
    let value = plain.perform(backend, c.clone(), fields).await?;
    let full = as_stored(&backend, c, &value).await;
    Ok((value, full))
}

/// The record as model hooks see it after a write: every field as stored
/// (inside the write's session when there is one) but the secrets; the
/// written value itself when it cannot be read.
async fn as_stored(
    backend: &Backend<'_>,
    collection: &Arc<CompiledCollection>,
    written: &Value,
) -> Value {
    let Some(id) = written
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
    else {
        return written.clone();
    };
    match write::stored(backend, collection, id).await {
        Ok(mut record) => {
            for key in ["collectionId", "collectionName"] {
                if let Some(v) = written.get(key) {
                    record.entry(key).or_insert_with(|| v.clone());
                }
            }
            Value::Object(record)
        }
        Err(_) => written.clone(),
    }
}
