//! The runtime pool: a few dedicated threads, each owning one QuickJS
//! runtime with the prelude and every hook file evaluated once, fed jobs over
//! a shared channel. QuickJS values are not `Send`, so JavaScript never runs
//! on actix's or tokio's threads; a caller awaits a oneshot reply instead.
//!
//! Each invocation runs under a memory limit (the runtime's allocator limit)
//! and a time limit (QuickJS's interrupt handler, checked while JavaScript
//! executes; time spent waiting for the database on the host's behalf is not
//! counted). A runtime that hit either limit is thrown away and rebuilt from
//! the same files, so no half-finished state leaks into the next request.

use super::bindings::{self, Host, Invocation};
use super::loader::HookFile;
use super::{Action, HookError, Limits, Manifest, Outcome};
use crate::records::session::{self, Session};
use rquickjs::{Context, Ctx, Function, Runtime, Value, context::EvalOptions};
use std::rc::Rc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use tokio::sync::oneshot;

/// Stack size of a hook thread; QuickJS's own stack limit sits well below it.
const THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;
/// Invocations between two explicit cycle collections of a runtime.
const GC_EVERY: u32 = 256;
/// QuickJS's limit on JavaScript recursion (a RangeError past it).
const JS_STACK_BYTES: usize = 1024 * 1024;

/// What a job asks a runtime to run.
pub(super) enum Call {
    Route {
        index: usize,
        event: String,
    },
    Record {
        hook: &'static str,
        event: RecordEvent,
    },
    Enrich {
        event: String,
    },
    Cron {
        id: String,
    },
}

/// The keys of a record hook's event that describe the request
/// (`e.request`, `e.requestInfo()`, `e.auth`, `e.realIP()`).
const REQUEST_KEYS: &[&str] = &[
    "method", "path", "rawQuery", "query", "headers", "params", "remoteIp", "auth", "body",
];

/// A record hook's event as three JSON texts, so a script parses only what
/// it reads: the control part (collection, action, changed fields…) at
/// once, the record or list result and the request on first use. A hook
/// that only calls `e.next()` parses neither.
pub(super) struct RecordEvent {
    head: String,
    /// `e.record`, or `e.result` when the head says `hasResult`.
    subject: String,
    request: String,
}

impl RecordEvent {
    pub(super) fn split(event: &serde_json::Value) -> Self {
        use std::collections::BTreeMap;
        let (mut head, mut request) = (BTreeMap::new(), BTreeMap::new());
        let mut subject = &serde_json::Value::Null;
        let has_result = event.get("result").is_some_and(|r| !r.is_null());
        for (key, value) in event.as_object().into_iter().flatten() {
            match key.as_str() {
                "result" if has_result => subject = value,
                "record" if !has_result => subject = value,
                "result" | "record" => {}
                k if REQUEST_KEYS.contains(&k) => {
                    request.insert(k, value);
                }
                k => {
                    head.insert(k, value);
                }
            }
        }
        let has_result = serde_json::Value::Bool(has_result);
        head.insert("hasResult", &has_result);
        Self {
            head: json_text(&head),
            subject: json_text(subject),
            request: json_text(&request),
        }
    }
}

/// JSON text of `value` (maps of JSON values always serialise).
fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

pub(super) struct Job {
    pub call: Call,
    /// The write to perform when a record hook calls `e.next()`.
    pub action: Option<Action>,
    /// The write session a model hook's writes join.
    pub session: Option<Arc<Session>>,
    pub reply: oneshot::Sender<Result<Outcome, Fault>>,
}

/// Why an invocation produced no outcome at all.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("hook exceeded its time limit of {0:?}")]
    Timeout(Duration),
    #[error("hook exceeded its memory limit")]
    OutOfMemory,
    #[error("hook failed: {0}")]
    Script(String),
    #[error("the hook runtime is gone")]
    Gone,
}

/// One runtime with everything evaluated.
struct Vm {
    // Field order matters: the context must be dropped before its runtime.
    context: Context,
    runtime: Runtime,
    invocation: Rc<Invocation>,
    limits: Limits,
    /// Invocations run so far (for [`GC_EVERY`]).
    runs: std::cell::Cell<u32>,
}

impl Vm {
    fn new(files: &[HookFile], limits: &Limits, host: &Host) -> Result<(Self, Manifest), String> {
        let runtime = Runtime::new().map_err(|e| e.to_string())?;
        runtime.set_max_stack_size(JS_STACK_BYTES);
        let context = Context::full(&runtime).map_err(|e| e.to_string())?;
        let invocation = Rc::new(Invocation::new(host.clone()));
        let watch = invocation.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || watch.should_interrupt())));
        let vm = Self {
            context,
            runtime,
            invocation,
            limits: *limits,
            runs: std::cell::Cell::new(0),
        };
        vm.invocation.begin(limits.timeout);
        let manifest = vm.context.with(|ctx| -> Result<String, String> {
            bindings::install(&ctx, vm.invocation.clone()).map_err(|e| e.to_string())?;
            for file in files {
                let mut options = EvalOptions::default();
                // Hook files are plain scripts, as under PocketBase (sloppy mode).
                options.strict = false;
                options.filename = Some(file.name.clone());
                ctx.eval_with_options::<(), _>(file.source.as_str(), options)
                    .map_err(|e| describe(&ctx, e, &file.name))?;
            }
            let manifest: Function = ctx.globals().get("__manifest").map_err(|e| e.to_string())?;
            manifest
                .call::<_, String>(())
                .map_err(|e| describe(&ctx, e, "prelude"))
        });
        let timed_out = vm.invocation.end();
        if timed_out {
            return Err(format!(
                "evaluating the hook files took longer than {:?}",
                limits.timeout
            ));
        }
        let manifest: Manifest = serde_json::from_str(&manifest?).map_err(|e| e.to_string())?;
        vm.invocation.set_manifest(Arc::new(manifest.clone()));
        // The limit applies from here on, to invocations only: loading may
        // use what it needs (it is bounded by the time limit above).
        vm.runtime.set_memory_limit(limits.memory_bytes);
        Ok((vm, manifest))
    }

    fn run(&self, job: Job) -> Result<Outcome, Fault> {
        let Job {
            call,
            action,
            session,
            reply: _,
        } = job;
        let _entered = session::enter(session);
        let depth = session::depth();
        self.invocation.set_action(action);
        self.invocation.begin(self.limits.timeout);
        let raw = self.context.with(|ctx| dispatch(&ctx, call));
        let timed_out = self.invocation.end();
        self.invocation.set_action(None);
        // A runInTransaction the script never closed (it ran out of time):
        // dropping the session rolls it back.
        drop(session::truncate(depth));
        // Reference counting frees an invocation's objects as it returns;
        // only cycles need the collector, which QuickJS also runs by itself
        // as allocations grow. A full pass costs about as much as a small
        // hook, so it runs every `GC_EVERY` invocations, not after each.
        let runs = self.runs.get().wrapping_add(1);
        self.runs.set(runs);
        if runs.is_multiple_of(GC_EVERY) {
            self.runtime.run_gc();
        }
        if timed_out {
            return Err(Fault::Timeout(self.limits.timeout));
        }
        parse_outcome(raw)
    }
}

/// Calls the prelude's dispatcher for `call`; its outcome JSON.
pub(super) fn dispatch(ctx: &Ctx<'_>, call: Call) -> Result<String, String> {
    let globals = ctx.globals();
    let result = match call {
        Call::Route { index, event } => globals
            .get::<_, Function>("__dispatchRoute")
            .and_then(|f| f.call::<_, String>((index, event))),
        Call::Record { hook, event } => globals
            .get::<_, Function>("__dispatchRecord")
            .and_then(|f| f.call::<_, String>((hook, event.head, event.subject, event.request))),
        Call::Cron { id } => globals
            .get::<_, Function>("__dispatchCron")
            .and_then(|f| f.call::<_, String>((id,))),
        Call::Enrich { event } => globals
            .get::<_, Function>("__dispatchEnrich")
            .and_then(|f| f.call::<_, String>((event,))),
    };
    result.map_err(|e| describe(ctx, e, "hook"))
}

/// The outcome of a dispatch that did not run out of time.
pub(super) fn parse_outcome(raw: Result<String, String>) -> Result<Outcome, Fault> {
    let raw = raw.map_err(|message| {
        if message.contains("out of memory") {
            Fault::OutOfMemory
        } else {
            Fault::Script(message)
        }
    })?;
    serde_json::from_str::<RawOutcome>(&raw)
        .map(RawOutcome::into_outcome)
        .map_err(|e| Fault::Script(format!("unreadable hook outcome: {e}")))
}

/// The pending exception of `ctx` as "message\nstack", naming `origin`.
pub(super) fn describe(ctx: &Ctx<'_>, error: rquickjs::Error, origin: &str) -> String {
    if !matches!(error, rquickjs::Error::Exception) {
        return format!("{origin}: {error}");
    }
    let thrown: Value = ctx.catch();
    let text = |key: &str| {
        thrown.as_object().and_then(|o| {
            o.get::<_, Option<rquickjs::convert::Coerced<String>>>(key)
                .ok()
                .flatten()
                .map(|c| c.0)
        })
    };
    let name = text("name").unwrap_or_else(|| "Error".to_owned());
    let message = text("message").unwrap_or_else(|| {
        thrown
            .as_string()
            .and_then(|s| s.to_string().ok())
            .unwrap_or_else(|| "unknown exception".to_owned())
    });
    let stack = text("stack").unwrap_or_default();
    format!("{origin}: {name}: {message}\n{}", stack.trim_end())
}

/// The outcome as the prelude writes it.
#[derive(serde::Deserialize)]
struct RawOutcome {
    resp: Option<super::RawResponse>,
    error: Option<RawError>,
}

#[derive(serde::Deserialize)]
struct RawError {
    status: serde_json::Value,
    #[serde(default)]
    message: String,
    #[serde(default)]
    data: serde_json::Value,
    /// Set on errors that came from the server (already safe to show).
    #[serde(default)]
    safe: bool,
    /// A non-API error's text and stack, for the log only.
    #[serde(default)]
    log: Option<String>,
}

impl RawOutcome {
    fn into_outcome(self) -> Outcome {
        let error = self.error.map(|e| {
            if let Some(detail) = &e.log {
                tracing::error!(target: "ferrobase::hooks", "hook threw: {detail}");
            }
            HookError::from_script(&e.status, &e.message, e.data, e.safe)
        });
        Outcome {
            response: self.resp.map(super::RawResponse::into_response),
            error,
        }
    }
}

/// Starts `size` runtime threads over `files`; resolves to the manifest once
/// every runtime evaluated the files (all must agree), or to the first
/// failure, with the file and line.
pub(super) async fn start(
    files: Vec<HookFile>,
    limits: Limits,
    host: Host,
    size: usize,
) -> Result<(crossbeam_channel::Sender<Job>, Manifest), String> {
    let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
    let mut ready = Vec::with_capacity(size);
    for n in 0..size.max(1) {
        let (tx, rx) = oneshot::channel::<Result<Manifest, String>>();
        let (files, limits, host, queue) = (files.clone(), limits, host.clone(), queue.clone());
        thread::Builder::new()
            .name(format!("ferrobase-hooks-{n}"))
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || worker(files, limits, host, queue, tx))
            .map_err(|e| format!("cannot start a hook thread: {e}"))?;
        ready.push(rx);
    }
    let mut manifest: Option<Manifest> = None;
    for rx in ready {
        let got = rx
            .await
            .map_err(|_| "a hook thread stopped while loading".to_owned())??;
        match &manifest {
            Some(first) if *first != got => {
                return Err(
                    "hook files registered different routes or hooks in two runtimes \
                            (registration must not depend on time or randomness)"
                        .to_owned(),
                );
            }
            Some(_) => {}
            None => manifest = Some(got),
        }
    }
    let manifest = manifest.ok_or_else(|| "no hook runtime started".to_owned())?;
    Ok((jobs, manifest))
}

fn worker(
    files: Vec<HookFile>,
    limits: Limits,
    host: Host,
    queue: crossbeam_channel::Receiver<Job>,
    ready: oneshot::Sender<Result<Manifest, String>>,
) {
    let mut vm = match Vm::new(&files, &limits, &host) {
        Ok((vm, manifest)) => {
            let _ = ready.send(Ok(manifest));
            vm
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    // Ends when every sender (the `Hooks` handle) is dropped.
    for mut job in queue {
        let (reply, _) = oneshot::channel();
        let reply = std::mem::replace(&mut job.reply, reply);
        let outcome = vm.run(job);
        let spent = matches!(outcome, Err(Fault::Timeout(_) | Fault::OutOfMemory));
        let _ = reply.send(outcome);
        if spent {
            match Vm::new(&files, &limits, &host) {
                Ok((fresh, _)) => vm = fresh,
                Err(e) => {
                    tracing::error!(target: "ferrobase::hooks", error = %e, "cannot rebuild a hook runtime");
                    return;
                }
            }
        }
    }
}
