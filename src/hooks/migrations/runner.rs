//! Runs one migration file in one transaction. Two threads take part:
//!
//! - a dedicated JavaScript thread owns a fresh QuickJS runtime (the prelude
//!   `migrations.js`, then the file), calls the file's up or down function,
//!   and sends every host call as a message;
//! - the writer thread runs an exclusive job holding one `IMMEDIATE`
//!   transaction: it answers the host calls on that transaction, then
//!   records the ledger row and commits, or rolls everything back.
//!
//! One deadline bounds both: QuickJS's interrupt handler stops the script,
//! and the writer's SQL is interrupted past it (`Db::with_deadline`), so an
//! endless loop or an endless query ends as a clear failure, not a hang.

use super::{Direction, MigrateError, MigrationFile, Options, host};
use crate::db::{Db, DbError};
use rquickjs::{Context, Function, Runtime, context::EvalOptions};
use rusqlite::{Connection, TransactionBehavior};
use serde_json::Value;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Instant;

const PRELUDE: &str = include_str!("migrations.js");
const THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;
const JS_STACK_BYTES: usize = 1024 * 1024;

enum Msg {
    Op {
        op: String,
        args: Value,
        reply: mpsc::Sender<Result<Value, String>>,
    },
    Done(Result<(), String>),
}

/// Runs `file`'s `direction` function and records (up) or forgets (down)
/// it in `_migrations`, all in one transaction.
pub(super) async fn run(
    db: &Db,
    options: &Options,
    file: &MigrationFile,
    direction: Direction,
) -> Result<(), MigrateError> {
    let deadline = Instant::now() + options.timeout;
    let (messages, inbox) = mpsc::channel::<Msg>();
    let (source, name, memory) = (file.source.clone(), file.name.clone(), options.memory_bytes);
    let timeout = options.timeout;
    let script = std::thread::Builder::new()
        .name("ferrobase-migration".to_owned())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            let outcome = run_script(&source, &name, direction, deadline, memory, &messages)
                .map_err(|e| match e {
                    ScriptError::TimedOut => format!("exceeded the time limit of {timeout:?}"),
                    ScriptError::Other(m) => m,
                });
            let _ = messages.send(Msg::Done(outcome));
        })
        .map_err(|e| MigrateError::Io(format!("cannot start a migration thread: {e}")))?;
    let handle = tokio::runtime::Handle::current();
    let name = file.name.clone();
    let result = db
        .write(move |conn| session(conn, &inbox, deadline, &name, direction, &handle))
        .await;
    // The script has sent its last message (or gone); let its thread end.
    let _ = tokio::task::spawn_blocking(move || script.join()).await;
    result.map_err(|e| match e {
        MigrateError::Db(DbError::TimedOut) => MigrateError::Failed {
            file: file.name.clone(),
            message: format!("exceeded the time limit of {:?}", options.timeout),
        },
        other => other,
    })
}

/// The writer's side: one transaction answering the script's calls.
fn session(
    conn: &mut Connection,
    inbox: &mpsc::Receiver<Msg>,
    deadline: Instant,
    name: &str,
    direction: Direction,
    handle: &tokio::runtime::Handle,
) -> Result<(), MigrateError> {
    let failed = |message: String| MigrateError::Failed {
        file: name.to_owned(),
        message,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(DbError::from)?;
    Db::with_deadline(deadline, || {
        loop {
            match inbox.recv() {
                Ok(Msg::Op { op, args, reply }) => {
                    let _ = reply.send(host::run(&tx, handle, &op, args));
                }
                Ok(Msg::Done(Ok(()))) => break,
                Ok(Msg::Done(Err(message))) => return Err(failed(message)),
                Err(_) => return Err(failed("the migration runtime stopped".to_owned())),
            }
        }
        match direction {
            Direction::Up => tx.execute(
                "INSERT INTO _migrations (file, applied) VALUES (?1, ?2)",
                [name, crate::clock::now().as_str()],
            ),
            Direction::Down => tx.execute("DELETE FROM _migrations WHERE file = ?1", [name]),
        }
        .map_err(DbError::from)?;
        // Whatever raw SQL did, the schema must still load.
        crate::schema::load_snapshot(&tx).map_err(|e| failed(e.to_string()))?;
        Ok(())
    })?;
    tx.commit().map_err(DbError::from)?;
    Ok(())
}

enum ScriptError {
    TimedOut,
    Other(String),
}

/// The script's side: evaluates the prelude and the file, then runs one
/// direction; host calls go to the writer and wait for its answer.
fn run_script(
    source: &str,
    name: &str,
    direction: Direction,
    deadline: Instant,
    memory_bytes: usize,
    messages: &mpsc::Sender<Msg>,
) -> Result<(), ScriptError> {
    let other = |e: rquickjs::Error| ScriptError::Other(e.to_string());
    let runtime = Runtime::new().map_err(other)?;
    runtime.set_max_stack_size(JS_STACK_BYTES);
    runtime.set_memory_limit(memory_bytes);
    let timed_out = Rc::new(Cell::new(false));
    let flag = timed_out.clone();
    runtime.set_interrupt_handler(Some(Box::new(move || {
        let late = Instant::now() >= deadline;
        if late {
            flag.set(true);
        }
        late
    })));
    let context = Context::full(&runtime).map_err(other)?;
    let sender = messages.clone();
    let outcome = context.with(|ctx| -> Result<String, String> {
        let host = Function::new(ctx.clone(), move |op: String, args: String| -> String {
            let answer = call_host(&sender, op, &args);
            match answer {
                Ok(v) => serde_json::json!({ "ok": v }).to_string(),
                Err(e) => serde_json::json!({ "err": e }).to_string(),
            }
        })
        .map_err(|e| e.to_string())?;
        ctx.globals()
            .set("__host", host)
            .map_err(|e| e.to_string())?;
        ctx.eval::<(), _>(PRELUDE)
            .map_err(|e| crate::hooks::engine::describe(&ctx, e, "prelude"))?;
        let mut options = EvalOptions::default();
        options.strict = false;
        options.filename = Some(name.to_owned());
        ctx.eval_with_options::<(), _>(source, options)
            .map_err(|e| crate::hooks::engine::describe(&ctx, e, name))?;
        let run: Function = ctx
            .globals()
            .get("__runMigration")
            .map_err(|e| e.to_string())?;
        run.call::<_, String>((direction.as_str(),))
            .map_err(|e| crate::hooks::engine::describe(&ctx, e, name))
    });
    if timed_out.get() {
        return Err(ScriptError::TimedOut);
    }
    let raw = outcome.map_err(|m| {
        if m.contains("out of memory") {
            ScriptError::Other("exceeded its memory limit".to_owned())
        } else {
            ScriptError::Other(first_line(&m))
        }
    })?;
    let reply: Value = serde_json::from_str(&raw).map_err(|e| ScriptError::Other(e.to_string()))?;
    match reply.get("err") {
        Some(Value::String(m)) => Err(ScriptError::Other(m.clone())),
        Some(other) => Err(ScriptError::Other(other.to_string())),
        None => Ok(()),
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_owned()
}

fn call_host(sender: &mpsc::Sender<Msg>, op: String, args: &str) -> Result<Value, String> {
    let args: Value = serde_json::from_str(args).map_err(|e| e.to_string())?;
    let (reply, answer) = mpsc::channel();
    sender
        .send(Msg::Op { op, args, reply })
        .map_err(|_| "the migration transaction is gone".to_owned())?;
    answer
        .recv()
        .map_err(|_| "the migration transaction is gone".to_owned())?
}
