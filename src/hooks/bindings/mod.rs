//! The JavaScript API of hooks: a prelude written in JavaScript
//! (`prelude.js`: error classes, `routerAdd`, the `on…` registrars, events,
//! `Record`, `$app`, `$apis`, `console`) over one native function, `__host`,
//! which takes an operation name and JSON arguments and answers JSON. The
//! operations (`app.rs`) run on the hook thread, waiting on the server's
//! async code with `Handle::block_on`; the time they wait is not counted
//! against the hook's time limit.

mod app;

use super::{Action, HookError, PB_HOOK_NAMES};
use crate::db::Db;
use crate::files::Store;
use crate::realtime::Hub;
use crate::records::RecordError;
use crate::schema::Registry;
use rquickjs::{Ctx, Function, Object};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

const PRELUDE: &str = include_str!("prelude.js");

/// What host operations reach: the server's handles, the runtime to wait
/// on, and the API's mapping of record errors to statuses.
#[derive(Clone)]
pub struct Host {
    pub db: Db,
    pub registry: Registry,
    pub store: Store,
    pub hub: Hub,
    pub handle: tokio::runtime::Handle,
    /// The status and message the API answers a record error with.
    pub map_error: fn(RecordError) -> HookError,
}

/// The state of the invocation a runtime is running: its deadline, whether
/// it was interrupted, and the write `e.next()` performs.
pub(crate) struct Invocation {
    host: Host,
    deadline: Cell<Option<Instant>>,
    timed_out: Cell<bool>,
    action: RefCell<Option<Action>>,
}

impl Invocation {
    pub(crate) fn new(host: Host) -> Self {
        Self {
            host,
            deadline: Cell::new(None),
            timed_out: Cell::new(false),
            action: RefCell::new(None),
        }
    }

    pub(crate) fn begin(&self, limit: Duration) {
        self.timed_out.set(false);
        self.deadline.set(Some(Instant::now() + limit));
    }

    /// Ends the invocation; whether it ran out of time.
    pub(crate) fn end(&self) -> bool {
        self.deadline.set(None);
        self.timed_out.replace(false)
    }

    pub(crate) fn set_action(&self, action: Option<Action>) {
        *self.action.borrow_mut() = action;
    }

    /// QuickJS's interrupt handler: true stops the script (uncatchable).
    pub(crate) fn should_interrupt(&self) -> bool {
        match self.deadline.get() {
            Some(deadline) if Instant::now() >= deadline => {
                self.timed_out.set(true);
                true
            }
            _ => false,
        }
    }

    /// Runs `f` (waiting on the server) with the clock stopped.
    fn paused<T>(&self, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        if let Some(deadline) = self.deadline.get() {
            self.deadline.set(Some(deadline + started.elapsed()));
        }
        out
    }

    /// Marks the invocation as out of time (a `sleep` that reached the deadline).
    fn expire(&self) {
        self.timed_out.set(true);
        self.deadline.set(Some(Instant::now()));
    }

    fn remaining(&self) -> Duration {
        self.deadline
            .get()
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    }
}

/// Defines `__host` and the hook names, then evaluates the prelude.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, invocation: Rc<Invocation>) -> rquickjs::Result<()> {
    let globals: Object = ctx.globals();
    let host = Function::new(ctx.clone(), move |op: String, args: String| -> String {
        app::dispatch(&invocation, &op, &args)
    })?;
    globals.set("__host", host)?;
    globals.set("__hookNames", PB_HOOK_NAMES.to_vec())?;
    ctx.eval::<(), _>(PRELUDE)
}
