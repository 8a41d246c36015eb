//! The JavaScript API of hooks: a prelude written in JavaScript
//! (`prelude.js`: error classes, `routerAdd`, the `on…` registrars, events,
//! `Record`, `$app`, `$apis`, `console`) over one native function, `__host`,
//! which takes an operation name and JSON arguments and answers JSON. The
//! operations (`app.rs`) run on the hook thread, waiting on the server's
//! async code with `Handle::block_on`; the time they wait is not counted
//! against the hook's time limit.

mod app;
mod http;
mod mails;
mod query;
mod reads;
mod regex_gen;
mod security;

use super::engine::{self, Call, Fault, Job};
use super::{Action, HookError, Manifest, Outcome, PB_HOOK_NAMES};
use crate::db::Db;
use crate::files::Store;
use crate::realtime::Hub;
use crate::records::RecordError;
use crate::schema::Registry;
use rquickjs::{Ctx, Function, Object};
use std::cell::{Cell, OnceCell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PRELUDE: &str = include_str!("prelude.js");
/// More of the API, over the internals `prelude.js` leaves in `__internal`.
const PRELUDE_MORE: &str = include_str!("prelude_more.js");

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
    /// `[hooks] http_allow_private`: `$http.send` may reach non-public addresses.
    pub http_allow_private: bool,
    /// `[hooks] http_allow`: the hosts `$http.send` may reach (empty = any).
    pub http_allow: Arc<Vec<String>>,
    /// Builds a mailer from the current settings (set once the server's
    /// state exists; until then mail cannot be sent).
    pub mailer: Arc<std::sync::OnceLock<MailerFactory>>,
    /// Reads the settings of the moment for `$app.settings()` and the
    /// `$mails` templates (set once the server's state exists).
    pub settings: Arc<std::sync::OnceLock<SettingsSource>>,
    /// `$app.isDev()`: the server runs with `--dev`.
    pub dev: bool,
}

/// Reads the current [`crate::settings::Settings`].
pub type SettingsSource = Box<dyn Fn() -> Option<Arc<crate::settings::Settings>> + Send + Sync>;

/// Builds a [`crate::mail::Mailer`] from the settings of the moment.
pub type MailerFactory = Box<dyn Fn() -> Option<crate::mail::Mailer> + Send + Sync>;

/// The state of the invocation a runtime is running: its deadline, whether
/// it was interrupted, and the write `e.next()` performs.
pub(crate) struct Invocation {
    host: Host,
    deadline: Cell<Option<Instant>>,
    timed_out: Cell<bool>,
    action: RefCell<Option<Action>>,
    manifest: OnceCell<Arc<Manifest>>,
    limit: Cell<Duration>,
}

impl Invocation {
    pub(crate) fn new(host: Host) -> Self {
        Self {
            host,
            deadline: Cell::new(None),
            timed_out: Cell::new(false),
            action: RefCell::new(None),
            manifest: OnceCell::new(),
            limit: Cell::new(Duration::ZERO),
        }
    }

    pub(crate) fn begin(&self, limit: Duration) {
        self.limit.set(limit);
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

    /// The model hooks as writes made on this thread reach them.
    fn model(&self) -> Option<super::ModelHooks> {
        Some(super::ModelHooks {
            jobs: None,
            manifest: self.manifest.get()?.clone(),
            timeout: self.limit.get(),
            map_error: self.host.map_error,
        })
    }

    pub(crate) fn set_manifest(&self, manifest: Arc<Manifest>) {
        let _ = self.manifest.set(manifest);
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
        // A nested hook that ran out of time while we waited ends us too.
        if self.timed_out.get() {
            self.deadline.set(Some(Instant::now()));
            return out;
        }
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
    let host = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, op: String, args: String| -> String {
            app::dispatch(&ctx, &invocation, &op, &args)
        },
    )?;
    globals.set("__host", host)?;
    globals.set("__hookNames", PB_HOOK_NAMES.to_vec())?;
    ctx.eval::<(), _>(PRELUDE)?;
    ctx.eval::<(), _>(PRELUDE_MORE)
}

thread_local! {
    /// Inboxes of the host operations this hook thread is waiting in,
    /// innermost last: a hook triggered by that wait (a model hook of a
    /// write the script started) runs here, re-entrantly, instead of
    /// waiting for a free runtime of the pool (which may never come).
    static REENTRY: RefCell<Vec<tokio::sync::mpsc::UnboundedSender<Job>>> =
        const { RefCell::new(Vec::new()) };
}

tokio::task_local! {
    /// The inbox of a hook thread waiting in an `e.next()` whose work runs
    /// in another task (`onBatchRequest`: the batch runs on the HTTP worker,
    /// which holds the request): hooks that work triggers run on that
    /// waiting thread, as if triggered there.
    static REENTRY_TASK: tokio::sync::mpsc::UnboundedSender<Job>;
}

/// Where a model hook triggered here runs: the innermost waiting host
/// operation, if this is a hook thread inside one, or the hook thread a
/// [`Reentry`] scope of this task names.
pub(crate) fn reentry() -> Option<tokio::sync::mpsc::UnboundedSender<Job>> {
    REENTRY
        .with(|r| r.borrow().last().cloned())
        .or_else(|| REENTRY_TASK.try_with(Clone::clone).ok())
}

/// A hook thread waiting in `e.next()`, taken there ([`Reentry::current`])
/// and handed to the task that does the `e.next()` work.
pub struct Reentry(tokio::sync::mpsc::UnboundedSender<Job>);

impl Reentry {
    /// The hook thread this code runs on, while it waits in a host operation.
    pub fn current() -> Option<Reentry> {
        REENTRY.with(|r| r.borrow().last().cloned()).map(Reentry)
    }

    /// Runs `fut` with the hooks it triggers sent to that waiting thread
    /// (its one runtime may be the pool's only free one).
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        REENTRY_TASK.scope(self.0, fut).await
    }
}

/// Waits for `fut` on the server's runtime with the clock stopped, running
/// any hook the wait triggers on this thread's runtime meanwhile.
fn wait<T>(ctx: &Ctx<'_>, inv: &Invocation, fut: impl Future<Output = T>) -> T {
    inv.paused(|| wait_counted(ctx, inv, fut))
}

/// [`wait`] with the clock running (the wait counts against the limit).
fn wait_counted<T>(ctx: &Ctx<'_>, inv: &Invocation, fut: impl Future<Output = T>) -> T {
    let (inbox, mut nested) = tokio::sync::mpsc::unbounded_channel::<Job>();
    REENTRY.with(|r| r.borrow_mut().push(inbox));
    let _runtime = inv.host.handle.enter();
    let out = {
        park_on(async {
            let mut fut = std::pin::pin!(fut);
            loop {
                tokio::select! {
                    biased;
                    out = &mut fut => break out,
                    Some(job) = nested.recv() => run_nested(ctx, inv, job),
                }
            }
        })
    };
    REENTRY.with(|r| r.borrow_mut().pop());
    out
}

/// Polls `fut` to completion on this thread, parking between wake-ups.
/// Tokio's `block_on` refuses to nest, and a nested hook's own host
/// operations wait while the outer one is still waiting.
fn park_on<T>(fut: impl Future<Output = T>) -> T {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// Runs a nested job on this runtime; its time counts against the outer
/// invocation's deadline.
fn run_nested(ctx: &Ctx<'_>, inv: &Invocation, job: Job) {
    let Job {
        call,
        action,
        session,
        reply,
    } = job;
    let _entered = crate::records::session::enter(session);
    let depth = crate::records::session::depth();
    let outer = inv.action.replace(action);
    let raw = engine::dispatch(ctx, call);
    *inv.action.borrow_mut() = outer;
    drop(crate::records::session::truncate(depth));
    let outcome: Result<Outcome, Fault> = if inv.timed_out.get() {
        Err(Fault::Timeout(Duration::ZERO))
    } else {
        engine::parse_outcome(raw)
    };
    let _ = reply.send(outcome);
}

/// Builds a record hook job.
pub(crate) fn record_job(
    hook: &'static str,
    event: &serde_json::Value,
    action: Option<Action>,
    session: Option<Arc<crate::records::session::Session>>,
) -> (Job, tokio::sync::oneshot::Receiver<Result<Outcome, Fault>>) {
    let (reply, outcome) = tokio::sync::oneshot::channel();
    let job = Job {
        call: Call::Record {
            hook,
            event: engine::RecordEvent::split(event),
        },
        action,
        session,
        reply,
    };
    (job, outcome)
}
