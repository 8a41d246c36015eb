//! The host operations behind `$app`, `console`, `sleep`, `$os.getenv` and
//! `e.next()`. `$app` calls run as the superuser (no collection rules), as
//! PocketBase's do, but through the same validation and write path as the
//! API. Every answer is `{"ok": value}` or `{"err": {status, message, data}}`;
//! the prelude turns the latter into a thrown `ApiError`.

use super::{Invocation, http, wait, wait_counted};
use crate::hooks::HookError;
use crate::records::{self, Backend, Caller, ListQuery, MAX_PER_PAGE, RecordError, session};
use crate::schema::CompiledCollection;
use rquickjs::Ctx;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Longest name of an environment variable `$os.getenv` looks up.
const MAX_ENV_NAME_BYTES: usize = 256;

pub(super) fn dispatch(ctx: &Ctx<'_>, inv: &Invocation, op: &str, args: &str) -> String {
    let answer = match serde_json::from_str::<Value>(args) {
        Ok(args) => run(ctx, inv, op, args),
        Err(_) => Err(HookError::bad_request("Invalid host call arguments.")),
    };
    match answer {
        Ok(value) => json!({ "ok": value }).to_string(),
        Err(e) => {
            json!({ "err": {"status": e.status, "message": e.message, "data": e.data} }).to_string()
        }
    }
}

#[derive(Deserialize)]
struct LogArgs {
    level: String,
    message: String,
}

#[derive(Deserialize)]
struct ById {
    c: String,
    id: String,
}

#[derive(Deserialize)]
struct ByFilter {
    c: String,
    filter: String,
    sort: String,
    limit: i64,
    offset: i64,
    #[serde(default)]
    params: Map<String, Value>,
}

#[derive(Deserialize)]
struct WithData {
    c: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    data: Map<String, Value>,
}

fn parse<T: for<'de> Deserialize<'de>>(args: Value) -> Result<T, HookError> {
    serde_json::from_value(args)
        .map_err(|e| HookError::bad_request(format!("Invalid arguments: {e}")))
}

fn run(ctx: &Ctx<'_>, inv: &Invocation, op: &str, args: Value) -> Result<Value, HookError> {
    match op {
        "log" => {
            let LogArgs { level, message } = parse(args)?;
            match level.as_str() {
                "error" => tracing::error!(target: "ferrobase::hooks", "{message}"),
                "warn" => tracing::warn!(target: "ferrobase::hooks", "{message}"),
                "debug" => tracing::debug!(target: "ferrobase::hooks", "{message}"),
                _ => tracing::info!(target: "ferrobase::hooks", "{message}"),
            }
            Ok(Value::Null)
        }
        "sleep" => {
            let ms = args.as_f64().unwrap_or(0.0).max(0.0);
            // Never past the deadline: the interrupt then ends the script.
            let wanted = Duration::from_secs_f64((ms / 1000.0).min(1e6));
            let remaining = inv.remaining();
            std::thread::sleep(wanted.min(remaining));
            if wanted >= remaining {
                // The script is out of time: whatever it does next, the
                // invocation ends as timed out.
                inv.expire();
                return Err(HookError::internal());
            }
            Ok(Value::Null)
        }
        "getenv" => {
            let name = args.as_str().unwrap_or_default();
            if name.is_empty() || name.len() > MAX_ENV_NAME_BYTES || name.contains(['=', '\0']) {
                return Ok(json!(""));
            }
            Ok(json!(std::env::var(name).unwrap_or_default()))
        }
        "collection" => {
            let name = args.as_str().unwrap_or_default();
            Ok(collection(inv, name)?.to_json())
        }
        "findRecordById" => {
            let ById { c, id } = parse(args)?;
            let collection = collection(inv, &c)?;
            let host = &inv.host;
            inv.paused(|| {
                host.handle.block_on(records::view_as_owner(
                    &host.db,
                    collection,
                    Caller::superuser(),
                    id,
                ))
            })
            .map_err(host.map_error)
        }
        "findRecordsByFilter" => find_by_filter(inv, parse(args)?),
        "sendMail" => send_mail(ctx, inv, parse(args)?),
        "dbQuery" => {
            let prepared = super::query::prepare(parse(args)?)?;
            let db = inv.host.db.clone();
            wait(ctx, inv, super::query::query(&db, prepared)).map_err(inv.host.map_error)
        }
        "txBegin" => {
            let limit = inv.limit.get() + Duration::from_secs(5);
            session::push(session::Session::begin(&inv.host.db, limit));
            Ok(json!(session::depth()))
        }
        "txEnd" => {
            let TxEnd { depth, commit } = parse(args)?;
            if depth == 0 || session::depth() != depth {
                return Err(HookError::bad_request("runInTransaction: unbalanced end."));
            }
            let (store, hub) = (inv.host.store.clone(), inv.host.hub.clone());
            let mut ended = Ok(());
            for s in session::truncate(depth - 1) {
                let (store, hub) = (&store, &hub);
                ended = ended.and(wait(ctx, inv, s.end(commit, store, hub)));
            }
            ended.map(|()| Value::Null).map_err(inv.host.map_error)
        }
        "httpSend" => {
            let args: http::SendArgs = parse(args)?;
            // Counted against the hook's time: a request never outlives it.
            let limit = http::budget(&args, inv.remaining());
            wait_counted(ctx, inv, http::send(&inv.host, args, limit))
        }
        "create" | "update" | "delete" => write(ctx, inv, op, parse(args)?),
        "next" => {
            let data = match args {
                // The record was never read: the fields the event carried.
                Value::Null => None,
                Value::Object(data) => Some(data),
                _ => {
                    return Err(HookError::bad_request(
                        "e.next() expects the record's fields.",
                    ));
                }
            };
            let Some(action) = inv.action.borrow_mut().take() else {
                // A second e.next() (or one outside a write): nothing more to do.
                return Ok(Value::Null);
            };
            wait(ctx, inv, action(data))
        }
        other => super::reads::run(ctx, inv, other, args.clone())
            .or_else(|| super::mails::run(ctx, inv, other, args.clone()))
            .or_else(|| super::security::run(other, args))
            .unwrap_or_else(|| {
                Err(HookError::bad_request(format!(
                    "Unknown host operation {op:?}."
                )))
            }),
    }
}

fn collection(inv: &Invocation, name: &str) -> Result<Arc<CompiledCollection>, HookError> {
    inv.host
        .registry
        .get(name)
        .ok_or_else(|| HookError::not_found("Missing collection context."))
}

fn find_by_filter(inv: &Invocation, args: ByFilter) -> Result<Value, HookError> {
    let collection = collection(inv, &args.c)?;
    let (offset, limit) = (args.offset.max(0), args.limit.clamp(0, MAX_PER_PAGE));
    let limit = if limit == 0 { MAX_PER_PAGE } else { limit };
    // The list action pages by page number; an offset that is not a whole
    // number of pages is read as one larger first page and cut.
    let (page, per_page, skip) = if offset % limit == 0 {
        (offset / limit + 1, limit, 0)
    } else {
        (1, (offset + limit).min(MAX_PER_PAGE), offset)
    };
    let query = ListQuery {
        page,
        per_page,
        sort: args.sort,
        filter: args.filter,
        skip_total: true,
    };
    let host = &inv.host;
    let page = inv
        .paused(|| {
            host.handle.block_on(records::list_with_params(
                &host.db,
                host.registry.snapshot(),
                collection,
                Caller::superuser(),
                query,
                &args.params,
            ))
        })
        .map_err(host.map_error)?;
    let items: Vec<Value> = page
        .items
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect();
    Ok(Value::Array(items))
}

fn write(ctx: &Ctx<'_>, inv: &Invocation, op: &str, args: WithData) -> Result<Value, HookError> {
    let collection = collection(inv, &args.c)?;
    let host = &inv.host;
    let model = inv.model();
    let backend = Backend {
        db: &host.db,
        store: &host.store,
        hub: &host.hub,
        hooks: model.as_ref().map(|m| m as &dyn records::WriteHooks),
        session: None,
    };
    let snapshot = host.registry.snapshot();
    let caller = Caller::superuser();
    let result: Result<Value, RecordError> = wait(ctx, inv, async move {
        match op {
            "create" => {
                records::create(backend, snapshot, collection, caller, args.data, Vec::new()).await
            }
            "update" => {
                records::update(
                    backend,
                    snapshot,
                    collection,
                    caller,
                    args.id,
                    args.data,
                    Vec::new(),
                )
                .await
            }
            _ => records::delete(backend, snapshot, collection, caller, args.id)
                .await
                .map(|()| Value::Null),
        }
    });
    result.map_err(host.map_error)
}

#[derive(Deserialize)]
struct TxEnd {
    depth: usize,
    commit: bool,
}

#[derive(Deserialize)]
struct MailArgs {
    to: Vec<String>,
    subject: String,
    html: String,
}

/// Most recipients of one `send` (to, cc and bcc together).
const MAX_MAIL_RECIPIENTS: usize = 50;

/// `$app.newMailClient().send(message)`: one mail per recipient, from the
/// settings' sender (a hook cannot send as another address).
fn send_mail(ctx: &Ctx<'_>, inv: &Invocation, args: MailArgs) -> Result<Value, HookError> {
    if args.to.is_empty() || args.to.len() > MAX_MAIL_RECIPIENTS {
        return Err(HookError::bad_request(format!(
            "A mail needs 1 to {MAX_MAIL_RECIPIENTS} recipients."
        )));
    }
    let mailer = inv
        .host
        .mailer
        .get()
        .and_then(|make| make())
        .ok_or_else(|| HookError::bad_request("Mail cannot be sent yet."))?;
    let mail = crate::mail::RenderedMail {
        subject: args.subject,
        html: args.html,
    };
    let failures: Vec<String> = wait(ctx, inv, async {
        let mut failures = Vec::new();
        for to in &args.to {
            if let Err(e) = mailer.send(to, &mail).await {
                failures.push(format!("{to}: {e}"));
            }
        }
        failures
    });
    if failures.is_empty() {
        Ok(Value::Null)
    } else {
        tracing::warn!(target: "ferrobase::hooks", failures = %failures.join("; "), "hook mail not sent");
        Err(HookError::bad_request("Failed to send the mail."))
    }
}
