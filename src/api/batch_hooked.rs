//! `POST /api/batch` when record hooks are loaded: each member goes through
//! its request hook (`onRecordCreateRequest` …) and the model hooks
//! (`onRecordCreate` …) as it would when sent alone, inside ONE write
//! session, the batch's transaction. A member that fails, or whose hook
//! throws (before or after `e.next()`), rolls back the whole batch and is
//! named with the answer it would get alone, as PocketBase does.
//!
//! `onRecordAfter…Success` hooks wait for the commit (PocketBase defers
//! them inside a transaction); when the batch rolls back, the members
//! already written get their `onRecordAfter…Error` hooks instead.
//!
//! Members run one after another. PocketBase nests the next member inside
//! the previous member's `e.next()`; here a request hook's code after
//! `e.next()` runs before the next member's hooks. What is written, what
//! rolls back and which member is blamed are the same.

use super::batch::{self, Failed, Resolved, Shape, Target};
use super::error::ApiError;
use super::extract::AppState;
use super::hooks::{collection_ref, fault, request_event};
use crate::auth::Principal;
use crate::hooks::{Action, HookError, Hooks, Response};
use crate::records::{self, AfterCommit, Backend, Upload, WriteHooks, session::Session};
use actix_web::{HttpRequest, web};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The hooks that send a batch down this path when any handler is loaded.
const BATCH_HOOKS: &[&str] = &[
    "onRecordCreateRequest",
    "onRecordUpdateRequest",
    "onRecordDeleteRequest",
    "onRecordCreate",
    "onRecordUpdate",
    "onRecordDelete",
    "onRecordAfterCreateSuccess",
    "onRecordAfterUpdateSuccess",
    "onRecordAfterDeleteSuccess",
    "onRecordAfterCreateError",
    "onRecordAfterUpdateError",
    "onRecordAfterDeleteError",
    "onRecordValidate",
];

/// The hooks when any record write hook is loaded (else the plain batch runs).
pub(super) fn wanted(state: &AppState) -> Option<Hooks> {
    state
        .hooks
        .as_ref()
        .filter(|h| BATCH_HOOKS.iter().any(|name| h.has(name)))
        .cloned()
}

/// What one member answered.
enum Answered {
    /// The write ran: the record (or `null` after a delete), shaped after the commit.
    Written {
        status: u16,
        record: Value,
        shape: Box<Shape>,
    },
    /// A hook answered itself.
    Own { status: u16, body: Value },
}

/// Why the batch did not commit.
enum Stop {
    Member(Failed),
    Timeout,
}

/// What every member shares.
pub(super) struct Batch<'a> {
    pub state: &'a web::Data<AppState>,
    pub req: &'a HttpRequest,
    pub who: &'a Principal,
    pub base: &'a records::Caller,
    pub deadline: Instant,
}

/// Runs the members in one session; answers their results once it committed.
pub(super) async fn run(
    batch: &Batch<'_>,
    hooks: Hooks,
    requests: &[Value],
    mut files: Vec<Vec<Upload>>,
) -> Result<Vec<Value>, ApiError> {
    let state = batch.state;
    let limit = batch
        .deadline
        .saturating_duration_since(Instant::now())
        .saturating_add(hooks.session_limit());
    let session = Session::begin_in(None, &state.db, limit);
    let inner: Arc<dyn WriteHooks> = Arc::new(hooks.clone());
    let after = Arc::new(AfterCommit::new(inner, state.registry.snapshot()));
    let mut answers = Vec::with_capacity(requests.len());
    let mut stop = None;
    for (index, request) in requests.iter().enumerate() {
        if Instant::now() >= batch.deadline {
            stop = Some(Stop::Timeout);
            break;
        }
        let uploads = files.get_mut(index).map(std::mem::take).unwrap_or_default();
        let ctx = Member {
            hooks: &hooks,
            session: &session,
            after: &after,
        };
        match ctx.run(batch, request, uploads).await {
            Ok(answer) => answers.push(answer),
            Err(e) => {
                stop = Some(Stop::Member(batch::failed(index, e)));
                break;
            }
        }
    }
    if stop.is_none() && Instant::now() >= batch.deadline {
        stop = Some(Stop::Timeout);
    }
    let ended = session
        .end(stop.is_none(), &state.store, &state.realtime)
        .await;
    after
        .flush(stop.is_none() && ended.is_ok(), "Batch transaction failed.")
        .await;
    match stop {
        Some(Stop::Timeout) => return Err(batch::timed_out()),
        Some(Stop::Member(f)) => return Err(batch::batch_failed(f)),
        None => ended?,
    }
    let mut results = Vec::with_capacity(answers.len());
    for answer in answers {
        results.push(match answer {
            Answered::Written {
                status,
                record: record @ Value::Object(_),
                shape,
            } => json!({"status": status, "body": (*shape).answer(state, record).await?}),
            Answered::Written { status, record, .. } => json!({"status": status, "body": record}),
            Answered::Own { status, body } => json!({"status": status, "body": body}),
        });
    }
    Ok(results)
}

/// The session a member's writes join and the hooks that see them.
struct Member<'a> {
    hooks: &'a Hooks,
    session: &'a Arc<Session>,
    after: &'a Arc<AfterCommit>,
}

impl Member<'_> {
    /// One member: its request hook around its write, or the write alone.
    async fn run(
        &self,
        batch: &Batch<'_>,
        request: &Value,
        uploads: Vec<Upload>,
    ) -> Result<Answered, ApiError> {
        let Resolved {
            target,
            collection,
            caller,
            body,
            method,
            path,
            shape,
        } = batch::resolve(
            batch.state,
            batch.req,
            batch.who,
            batch.base,
            request,
            Some(self.session),
        )
        .await?;
        let (hook, status, stored_id) = match &target {
            Target::Create => ("onRecordCreateRequest", 200, None),
            Target::Update(id) => ("onRecordUpdateRequest", 200, Some(id.clone())),
            Target::Delete(id) => ("onRecordDeleteRequest", 204, Some(id.clone())),
        };
        let c = collection.clone();
        let slot: Arc<Mutex<Option<Value>>> = Arc::default();
        let write = self.write(
            batch.state,
            target,
            collection,
            caller,
            uploads,
            slot.clone(),
        );
        if !self.hooks.wants(hook, &c.id, c.name.as_str()) {
            let record = write(body).await?;
            return Ok(Answered::Written {
                status,
                record,
                shape: Box::new(shape),
            });
        }
        let mut record = match stored_id {
            Some(id) => stored(self.session, &c, &id).await?,
            None => Map::new(),
        };
        record.extend(body.clone());
        let mut event = request_event(batch.req, batch.who, batch.state);
        event["method"] = json!(method);
        event["path"] = json!(path);
        event["query"] = json!(shape.query());
        event["rawQuery"] = json!("");
        event["changed"] = json!(body.keys().collect::<Vec<_>>());
        event["body"] = Value::Object(body.clone());
        event["collection"] = collection_ref(&c);
        event["record"] = Value::Object(record);
        event["action"] = json!("write");
        event["isNew"] = json!(hook == "onRecordCreateRequest");
        let action: Action = Box::new(move |fields| {
            Box::pin(async move { write(fields.unwrap_or(body)).await.map_err(HookError::from) })
        });
        let outcome = self
            .hooks
            .run_record_in(hook, &event, Some(action), Some(self.session.clone()))
            .await
            .map_err(fault)?;
        // Inside a batch a hook's error fails the member even after
        // `e.next()`: the batch has not answered yet (PocketBase alike).
        if let Some(e) = outcome.error {
            return Err(ApiError::from(e));
        }
        Ok(match outcome.response {
            Some(Response::Action) => Answered::Written {
                status,
                record: slot
                    .lock()
                    .ok()
                    .and_then(|mut s| s.take())
                    .unwrap_or(Value::Null),
                shape: Box::new(shape),
            },
            Some(Response::Json { status, body }) => Answered::Own { status, body },
            Some(Response::Text { status, body, .. }) => Answered::Own {
                status,
                body: Value::String(body),
            },
            Some(Response::NoContent { status } | Response::Redirect { status, .. }) => {
                Answered::Own {
                    status,
                    body: Value::Null,
                }
            }
            // No answer and no error: an empty 200, as PocketBase records it.
            None => Answered::Own {
                status: 200,
                body: Value::Null,
            },
        })
    }

    /// The member's write, in the batch's session: answers the record as
    /// its caller sees it (`null` after a delete) and keeps it in `slot`.
    fn write(
        &self,
        state: &web::Data<AppState>,
        target: Target,
        collection: Arc<crate::schema::CompiledCollection>,
        caller: records::Caller,
        uploads: Vec<Upload>,
        slot: Arc<Mutex<Option<Value>>>,
    ) -> impl FnOnce(
        Map<String, Value>,
    ) -> futures_util::future::LocalBoxFuture<'static, Result<Value, ApiError>>
    + Send
    + 'static {
        let (st, session, after) = (state.clone(), self.session.clone(), self.after.clone());
        move |fields| {
            Box::pin(async move {
                let backend = Backend {
                    db: &st.db,
                    store: &st.store,
                    hub: &st.realtime,
                    hooks: Some(&*after as &dyn WriteHooks),
                    session: Some(&session),
                };
                let (snapshot, c) = (st.registry.snapshot(), collection);
                let value = match target {
                    Target::Create => {
                        records::create(backend, snapshot, c, caller, fields, uploads).await
                    }
                    Target::Update(id) => {
                        records::update(backend, snapshot, c, caller, id, fields, uploads).await
                    }
                    Target::Delete(id) => records::delete(backend, snapshot, c, caller, id)
                        .await
                        .map(|()| Value::Null),
                }?;
                if let Ok(mut s) = slot.lock() {
                    *s = Some(value.clone());
                }
                Ok(value)
            })
        }
    }
}

/// The stored record a request hook sees before an update or delete (as
/// the batch left it so far); a missing one is the member's 404 (the write
/// would answer the same).
async fn stored(
    session: &Arc<Session>,
    collection: &Arc<crate::schema::CompiledCollection>,
    id: &str,
) -> Result<Map<String, Value>, ApiError> {
    let (c, id) = (collection.clone(), id.to_owned());
    let found = session
        .run_conn(move |conn, _| records::view_conn(conn, &c, &id))
        .await?;
    match found {
        Some(Value::Object(record)) => Ok(record),
        _ => Err(ApiError::not_found_default()),
    }
}
