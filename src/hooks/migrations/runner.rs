//! Runs one migration file in one transaction, on either engine. Two
//! threads take part:
//!
//! - a dedicated JavaScript thread owns a fresh QuickJS runtime (the prelude
//!   `migrations.js`, then the file), calls the file's up or down function,
//!   and sends every host call as a message;
//! - the database side holds one exclusive write transaction
//!   ([`Db::write_exclusive`]: SQLite's writer, or one PostgreSQL
//!   connection): it takes the schema lock, answers the host calls (each in
//!   a savepoint, so a call that fails leaves nothing behind even when the
//!   script catches its error), then records the ledger row and commits, or
//!   rolls everything back.
//!
//! One deadline bounds both: QuickJS's interrupt handler stops the script;
//! the SQL is stopped past it (SQLite: `Db::with_deadline` interrupts the
//! writer; PostgreSQL: `statement_timeout` set to the time left before each
//! call, `Conn::limit_until`), so an endless loop or an endless query ends
//! as a clear failure, not a hang.
//!
//! The script starts only once the transaction holds the schema lock and
//! has found the file still pending: of two PostgreSQL nodes starting
//! together, one runs it and the other finds it applied and skips it.

use super::{Direction, MigrateError, MigrationFile, Options, host};
use crate::db::{Conn, Db, DbError, LockKey};
use crate::rules::SqlValue;
use rquickjs::{Context, Function, Runtime, context::EvalOptions};
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

/// What running a file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ran {
    /// Its function ran and the ledger was changed.
    Done,
    /// The ledger already had it as `direction` leaves it (another process
    /// got there first): nothing ran.
    AlreadyDone,
}

/// Runs `file`'s `direction` function and records (up) or forgets (down)
/// it in `_migrations`, all in one transaction.
pub(super) async fn run(
    db: &Db,
    options: &Options,
    file: &MigrationFile,
    direction: Direction,
) -> Result<Ran, MigrateError> {
    let deadline = Instant::now() + options.timeout;
    let (messages, inbox) = mpsc::channel::<Msg>();
    let (go, start) = mpsc::channel::<()>();
    let (source, name, memory) = (file.source.clone(), file.name.clone(), options.memory_bytes);
    let timeout = options.timeout;
    let script = std::thread::Builder::new()
        .name("ferrobase-migration".to_owned())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            // No go: the transaction failed to start or found the file done.
            if start.recv().is_err() {
                return;
            }
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
        .write_exclusive(move |conn| {
            let serving = Serving {
                inbox: &inbox,
                go,
                deadline,
                name: &name,
                direction,
                handle: &handle,
            };
            Db::with_deadline(deadline, || serving.serve(conn))
        })
        .await;
    // The script has sent its last message (or never started); let its thread end.
    let _ = tokio::task::spawn_blocking(move || script.join()).await;
    result.map_err(|e| match e {
        MigrateError::Db(DbError::TimedOut) => MigrateError::Failed {
            file: file.name.clone(),
            message: format!("exceeded the time limit of {:?}", options.timeout),
        },
        other => other,
    })
}

/// The database side of one file: its transaction answering the script.
struct Serving<'a> {
    inbox: &'a mpsc::Receiver<Msg>,
    /// Starts the script (dropped unsent when there is nothing to run).
    go: mpsc::Sender<()>,
    deadline: Instant,
    name: &'a str,
    direction: Direction,
    handle: &'a tokio::runtime::Handle,
}

impl Serving<'_> {
    fn failed(&self, message: String) -> MigrateError {
        MigrateError::Failed {
            file: self.name.to_owned(),
            message,
        }
    }

    /// Runs the file in `conn`'s transaction; an error rolls it all back.
    fn serve(self, conn: &mut dyn Conn) -> Result<Ran, MigrateError> {
        conn.limit_until(self.deadline)?;
        // Schema changes wait for the whole file, and a second process
        // running the same file waits here and then finds it done.
        conn.lock(LockKey::Schema)?;
        let file = [SqlValue::Text(self.name.to_owned())];
        let recorded = conn
            .first_row("SELECT 1 FROM _migrations WHERE file = ?1", &file)?
            .is_some();
        if recorded == (self.direction == Direction::Up) {
            return Ok(Ran::AlreadyDone);
        }
        let _ = self.go.send(());
        loop {
            match self.inbox.recv() {
                Ok(Msg::Op { op, args, reply }) => {
                    let answer = self.call(conn, &op, args)?;
                    let _ = reply.send(answer);
                }
                Ok(Msg::Done(Ok(()))) => break,
                Ok(Msg::Done(Err(message))) => return Err(self.failed(message)),
                Err(_) => return Err(self.failed("the migration runtime stopped".to_owned())),
            }
        }
        conn.limit_until(self.deadline)?;
        match self.direction {
            Direction::Up => conn.execute(
                "INSERT INTO _migrations (file, applied) VALUES (?1, ?2)",
                &[file[0].clone(), SqlValue::Text(crate::clock::now())],
            ),
            Direction::Down => conn.execute("DELETE FROM _migrations WHERE file = ?1", &file),
        }?;
        // Whatever raw SQL did, the schema must still load.
        crate::schema::read_snapshot(conn).map_err(|e| self.failed(e.to_string()))?;
        Ok(Ran::Done)
    }

    /// One host call in a savepoint of its own: rolled back alone when it
    /// fails (PostgreSQL would otherwise refuse every later statement). A
    /// call failing past the deadline fails the file as timed out.
    fn call(
        &self,
        conn: &mut dyn Conn,
        op: &str,
        args: Value,
    ) -> Result<Result<Value, String>, MigrateError> {
        conn.limit_until(self.deadline)?;
        conn.execute("SAVEPOINT migration_op", &[])?;
        let answer = host::run(conn, self.handle, op, args);
        if answer.is_ok() {
            conn.execute("RELEASE migration_op", &[])?;
            return Ok(answer);
        }
        if Instant::now() >= self.deadline {
            return Err(DbError::TimedOut.into());
        }
        conn.execute("ROLLBACK TO migration_op", &[])?;
        conn.execute("RELEASE migration_op", &[])?;
        Ok(answer)
    }
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
