//! Success hooks held until an enclosing transaction ends ([`AfterCommit`]):
//! a batch and an OAuth2 sign-up run their writes' model hooks through it,
//! so `onRecordAfter…Success` only hears of what committed. Knows hooks
//! only through [`WriteHooks`].

use super::RecordError;
use super::hooked::{Invocation, Stage, WriteHooks};
use crate::schema::{CompiledCollection, Snapshot};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An after-write hook held until the enclosing transaction ends.
struct Held {
    stage: Stage,
    collection: Arc<CompiledCollection>,
    record: Value,
}

/// Model hooks whose success hooks (`onRecordAfter…Success`) wait for the
/// end of an enclosing transaction, as PocketBase defers them inside
/// `RunInTransaction` (a batch): a success hook only ever hears of a
/// committed write, and a write rolled back with the transaction gets its
/// error hook instead. A write that fails by itself gets its error hook at
/// once, inside the transaction (so what that hook writes rolls back too).
pub struct AfterCommit {
    inner: Arc<dyn WriteHooks>,
    snapshot: Arc<Snapshot>,
    held: Mutex<Vec<Held>>,
}

impl AfterCommit {
    pub fn new(inner: Arc<dyn WriteHooks>, snapshot: Arc<Snapshot>) -> Self {
        Self {
            inner,
            snapshot,
            held: Mutex::default(),
        }
    }

    /// Runs the held hooks in write order: as held when the transaction
    /// committed, else each as its stage's error hook with `error`.
    pub async fn flush(&self, committed: bool, error: &str) {
        let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(|p| p.into_inner()));
        for h in held {
            let (hook, error) = if committed {
                (h.stage.success(), None)
            } else {
                (h.stage.error(), Some(error.to_owned()))
            };
            if !self.inner.wants(hook, &h.collection) {
                continue;
            }
            let call = Invocation {
                hook,
                collection: &h.collection,
                record: h.record,
                changed: Vec::new(),
                error,
                session: None,
                next: None,
                is_new: false,
            };
            if let Err(e) = self.inner.run(call).await {
                tracing::warn!(target: "ferrobase::hooks", %hook, error = %e, "an after-write hook failed (the write stands as it was)");
            }
        }
    }
}

impl WriteHooks for AfterCommit {
    fn wants(&self, hook: &str, collection: &CompiledCollection) -> bool {
        // A success hook is held even when only the error hook would run
        // (the transaction may still roll back).
        self.inner.wants(hook, collection)
            || Stage::of_after(hook).is_some_and(|s| self.inner.wants(s.error(), collection))
    }

    fn session_limit(&self) -> Duration {
        self.inner.session_limit()
    }

    /// The inner hooks: only `onRecordValidate` runs through this handle,
    /// and it is never held.
    fn shared(&self) -> Arc<dyn WriteHooks> {
        self.inner.clone()
    }

    fn run<'a>(&'a self, call: Invocation<'a>) -> LocalBoxFuture<'a, Result<(), RecordError>> {
        // A write that failed hears of it at once, inside the transaction
        // (PocketBase triggers a failed save's error hook right away).
        let after =
            Stage::of_after(call.hook).filter(|_| call.next.is_none() && call.error.is_none());
        let Some(stage) = after else {
            return self.inner.run(call);
        };
        // A collection the batch's snapshot lacks cannot be held: run now.
        let Some(collection) = self.snapshot.get(&call.collection.id) else {
            return self.inner.run(call);
        };
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Held {
                stage,
                collection,
                record: call.record,
            });
        Box::pin(async { Ok(()) })
    }
}
