//! `onBatchRequest` around `POST /api/batch`, as PocketBase triggers it:
//! the handlers see the validated requests as `e.batch` (`{method, url,
//! body, headers}` each) and may change them, answer themselves or throw;
//! `e.next()` runs the batch (its member hooks included) and answers it.
//!
//! The batch needs the HTTP request, which stays on this worker, while
//! `e.next()` is called on a hook thread. So `e.next()` hands the batch
//! back here over a channel and waits, and the batch runs here with the
//! hooks it triggers (member request, model and enrich hooks) sent to that
//! waiting hook thread ([`Reentry`]), which runs them re-entrantly on its
//! own runtime: a pool whose only free runtime is the one waiting in
//! `e.next()` cannot deadlock. A batch that fails makes `e.next()` throw
//! its error (uncaught, it is the answer, `data.requests…` included).

use super::batch::{execute, timed_out};
use super::error::ApiError;
use super::extract::AppState;
use super::hooks::{fault, request_event};
use super::respond;
use crate::auth::Principal;
use crate::hooks::{Action, HookError, Hooks, Outcome, Reentry, Response};
use crate::records::Upload;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// The hooks, when an `onBatchRequest` handler is loaded.
pub(super) fn wanted(state: &AppState) -> Option<Hooks> {
    state
        .hooks
        .clone()
        .filter(|h| h.wants("onBatchRequest", "", ""))
}

/// A validated batch: its requests, their files by index, its deadline.
pub(super) struct Incoming {
    pub requests: Vec<Value>,
    pub files: Vec<Vec<Upload>>,
    pub deadline: Instant,
}

/// `e.next()`'s call: the requests as the hooks left them, the waiting
/// hook thread, and where the answers go.
struct RunBatch {
    requests: Value,
    thread: Option<Reentry>,
    reply: oneshot::Sender<Result<Value, HookError>>,
}

pub(super) async fn run(
    req: &HttpRequest,
    who: &Principal,
    state: &web::Data<AppState>,
    hooks: Hooks,
    batch: Incoming,
) -> Result<HttpResponse, ApiError> {
    let Incoming {
        requests,
        mut files,
        deadline,
    } = batch;
    let mut event = request_event(req, who, state);
    event["collection"] = json!({"id": "", "name": "", "type": ""});
    event["fields"] = json!({"batch": requests.iter().map(internal).collect::<Vec<_>>()});
    event["action"] = json!("batch");
    let (calls, mut called) = mpsc::unbounded_channel::<RunBatch>();
    let action: Action = Box::new(move |fields| {
        Box::pin(async move {
            let requests = fields
                .and_then(|mut f| f.remove("requests"))
                .unwrap_or(Value::Null);
            let (reply, answer) = oneshot::channel();
            let call = RunBatch {
                requests,
                thread: Reentry::current(),
                reply,
            };
            calls.send(call).map_err(|_| HookError::internal())?;
            answer.await.map_err(|_| HookError::internal())?
        })
    });
    let outcome = hooks.run_record("onBatchRequest", &event, Some(action));
    let mut outcome = std::pin::pin!(outcome);
    let mut answers: Option<Value> = None;
    let outcome = loop {
        tokio::select! {
            outcome = &mut outcome => break outcome,
            Some(call) = called.recv() => {
                let files = std::mem::take(&mut files);
                let work = run_members(state, req, who, deadline, call.requests, files);
                let result = match call.thread {
                    Some(thread) => thread.scope(work).await,
                    None => work.await,
                };
                let result = result.map(Value::Array);
                if let Ok(value) = &result {
                    answers = Some(value.clone());
                }
                // Gone only when the hook thread gave up (its limit): logged there.
                let _ = call.reply.send(result.map_err(HookError::from));
            }
        }
    };
    finish(req, outcome.map_err(fault)?, answers)
}

/// The batch of `e.next()`: `requests` must still be a list of requests.
async fn run_members(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    who: &Principal,
    deadline: Instant,
    requests: Value,
    files: Vec<Vec<Upload>>,
) -> Result<Vec<Value>, ApiError> {
    let Value::Array(requests) = requests else {
        return Err(ApiError::bad_request("Invalid batch request data."));
    };
    if Instant::now() >= deadline {
        return Err(timed_out());
    }
    execute(state, req, who, deadline, &requests, files).await
}

/// One request as PocketBase's `core.InternalRequest` shows it to hooks.
fn internal(request: &Value) -> Value {
    json!({
        "method": request.get("method").cloned().unwrap_or(json!("")),
        "url": request.get("url").cloned().unwrap_or(json!("")),
        "body": request.get("body").cloned().unwrap_or(json!({})),
        "headers": request.get("headers").cloned().unwrap_or(json!({})),
    })
}

/// The answer: the batch's, the hook's own, or the hook's error.
fn finish(
    req: &HttpRequest,
    outcome: Outcome,
    answers: Option<Value>,
) -> Result<HttpResponse, ApiError> {
    match (outcome.response, outcome.error, answers) {
        (Some(Response::Action), error, Some(answers)) => {
            if let Some(e) = error {
                // PocketBase: the batch already answered; only logged.
                tracing::warn!(target: "ferrobase::hooks", status = e.status, message = %e.message, "onBatchRequest failed after e.next()");
            }
            respond::json(req, answers, false)
        }
        (_, Some(error), _) => Err(ApiError::from(error)),
        (Some(Response::Action), None, None) => Err(ApiError::from(HookError::internal())),
        (Some(response), None, _) => Ok(super::hooks::respond_with(response)),
        // Neither answered nor failed (e.next() never called): an empty 200, as Go does.
        (None, None, _) => Ok(HttpResponse::Ok().finish()),
    }
}
