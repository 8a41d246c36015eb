//! The HTTP side of JavaScript hooks: custom routes from `routerAdd`, and the
//! one hook point of each record action (`around`), which hands the request
//! to the record request hooks with the action as their `e.next()`.
//!
//! Custom routes are registered after every built-in API route, so a
//! built-in route wins for a path both match (PocketBase refuses to start on
//! a duplicate instead; we keep serving and the custom route is unreachable).

mod enrich;
mod signup;

pub(super) use enrich::{Enrich, enrich, enrich_one};
pub(super) use signup::{SignUp, oauth2_sign_up};

use super::error::ApiError;
use super::extract::{AppState, read_object};
use super::ratelimit::{Action as Limit, limited};
use crate::auth::Principal;
use crate::hooks::{Action, Fault, HookError, Hooks, Outcome, Response};
use crate::schema::CompiledCollection;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};

/// Registers the hooks' custom routes (after the built-in ones).
pub fn configure(cfg: &mut web::ServiceConfig, hooks: &Hooks) {
    for (index, def) in hooks.routes().iter().enumerate() {
        let Some(path) = actix_path(&def.path) else {
            tracing::error!(target: "ferrobase::hooks", path = %def.path, "routerAdd: unsupported path pattern; route skipped");
            continue;
        };
        let route = match def.method.as_str() {
            "" | "*" | "ANY" => web::route(),
            m => match Method::from_bytes(m.as_bytes()) {
                Ok(method) => web::route().method(method),
                Err(_) => {
                    tracing::error!(target: "ferrobase::hooks", method = %m, "routerAdd: unknown method; route skipped");
                    continue;
                }
            },
        };
        let handler = route.to(
            move |req: HttpRequest,
                  who: Principal,
                  body: web::Payload,
                  state: web::Data<AppState>| {
                custom_route(index, req, who, body, state)
            },
        );
        cfg.route(&path, limited(handler, Limit::PathOnly).into_route());
    }
}

/// Schedules the hooks' `cronAdd` jobs. A job never replaces a built-in
/// one of the same id (PocketBase would; here that id is logged and skipped).
pub fn register_crons(crons: &crate::cron::Scheduler, hooks: &Hooks) {
    let taken: Vec<String> = crons.list().into_iter().map(|(id, _)| id).collect();
    for def in hooks.crons() {
        if taken.contains(&def.id) {
            tracing::error!(target: "ferrobase::hooks", job = %def.id, "cronAdd: a built-in job has this id; skipped");
            continue;
        }
        let (hooks, id) = (hooks.clone(), def.id.clone());
        let run: crate::cron::JobFn = Arc::new(move || {
            let (hooks, id) = (hooks.clone(), id.clone());
            Box::pin(async move { hooks.run_cron(&id).await })
        });
        if let Err(e) = crons.add(&def.id, &def.expression, run) {
            tracing::error!(target: "ferrobase::hooks", job = %def.id, error = %e, "cronAdd: not scheduled");
        }
    }
}

/// PocketBase's (Go `ServeMux`) pattern as actix's: `{name}` stays,
/// `{name...}` matches the rest, a trailing `{$}` is dropped. Patterns with
/// actix's own syntax (`{name:regex}`) are refused.
fn actix_path(pattern: &str) -> Option<String> {
    let pattern = pattern.strip_suffix("{$}").unwrap_or(pattern);
    if !pattern.starts_with('/') {
        return None;
    }
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        let name = &rest[open + 1..close];
        let (name, wildcard) = match name.strip_suffix("...") {
            Some(n) => (n, true),
            None => (name, false),
        };
        let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return None;
        }
        out.push('{');
        out.push_str(name);
        if wildcard {
            out.push_str(":.*");
        }
        out.push('}');
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

async fn custom_route(
    index: usize,
    req: HttpRequest,
    who: Principal,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(hooks) = state.hooks.clone() else {
        return Err(ApiError::not_found_default());
    };
    let body = read_object(&req, body, state.config.server.max_body_bytes).await?;
    let mut event = request_event(&req, &who, &state);
    event["body"] = Value::Object(body);
    let outcome = hooks.run_route(index, &event).await.map_err(fault)?;
    finish(outcome, None)
}

/// The request as hooks see it (`e.request`, `e.requestInfo()`, `e.auth`).
/// `e.realIP()` is the client address as every other check resolves it
/// (`client_ip`: the trusted proxy headers, else the peer), so a hook's
/// `superuserIPs` check agrees with the REST endpoints'.
pub(super) fn request_event(req: &HttpRequest, who: &Principal, state: &AppState) -> Value {
    let headers: Map<String, Value> = req
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            let key = name.as_str().to_ascii_lowercase().replace('-', "_");
            value
                .to_str()
                .ok()
                .map(|v| (key, Value::String(v.to_owned())))
        })
        .collect();
    let query: Map<String, Value> = super::extract::query_map(req)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let params: Map<String, Value> = req
        .match_info()
        .iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    json!({
        "method": req.method().as_str(),
        "path": req.path(),
        "rawQuery": req.query_string(),
        "query": query,
        "headers": headers,
        "params": params,
        "remoteIp": super::client_ip::of(req, state).map(|ip| ip.to_string()).unwrap_or_default(),
        "auth": auth_record(who),
    })
}

/// The authenticated record as `e.auth` sees it.
fn auth_record(who: &Principal) -> Value {
    match who {
        Principal::Anonymous => Value::Null,
        Principal::User {
            collection_id,
            collection_name,
            id,
            fields,
        } => {
            let mut record = fields.clone();
            record.remove("password");
            record.remove("tokenKey");
            record.insert("id".into(), json!(id));
            record.insert("collectionId".into(), json!(collection_id));
            record.insert("collectionName".into(), json!(collection_name));
            Value::Object(record)
        }
        Principal::Superuser { id } => json!({
            "id": id,
            "collectionId": crate::schema::SUPERUSERS_ID,
            "collectionName": crate::schema::SUPERUSERS_NAME,
        }),
    }
}

/// A limit or engine failure: 500, details in the log.
pub(super) fn fault(f: Fault) -> ApiError {
    tracing::error!(target: "ferrobase::hooks", error = %f, "hook failed");
    ApiError::from(HookError::internal())
}

/// The response of an outcome; `action` is the record action's result
/// when a record hook called `e.next()`.
fn finish(outcome: Outcome, action: Option<ActionResult>) -> Result<HttpResponse, ApiError> {
    match (outcome.response, outcome.error) {
        (Some(Response::Action), error) => {
            if let Some(e) = error {
                // PocketBase: the response was already written; only logged.
                tracing::warn!(target: "ferrobase::hooks", status = e.status, message = %e.message, "hook failed after e.next()");
            }
            let Some(result) = action else {
                return Err(ApiError::internal(
                    "hook answered with an action it did not have",
                ));
            };
            result()
        }
        (Some(response), error) => {
            if let Some(e) = error {
                tracing::warn!(target: "ferrobase::hooks", status = e.status, message = %e.message, "hook failed after answering");
            }
            Ok(respond(response))
        }
        (None, Some(error)) => Err(ApiError::from(error)),
        // Neither answered nor failed (e.next() never called): an empty 200, as Go does.
        (None, None) => Ok(HttpResponse::Ok().finish()),
    }
}

/// A hook's own answer as the HTTP response.
pub(super) fn respond_with(response: Response) -> HttpResponse {
    respond(response)
}

fn respond(response: Response) -> HttpResponse {
    let status = |s: u16| StatusCode::from_u16(s).unwrap_or(StatusCode::OK);
    match response {
        Response::Json { status: s, body } => HttpResponse::build(status(s)).json(body),
        Response::Text {
            status: s,
            body,
            html,
        } => HttpResponse::build(status(s))
            .content_type(if html {
                "text/html; charset=utf-8"
            } else {
                "text/plain; charset=utf-8"
            })
            .body(body),
        Response::NoContent { status: s } => HttpResponse::build(status(s)).finish(),
        Response::Redirect { status: s, url } => HttpResponse::build(status(s))
            .insert_header((header::LOCATION, url))
            .finish(),
        Response::Action => HttpResponse::InternalServerError().finish(),
    }
}

/// How a record action's result becomes the response.
pub(super) type ActionResult = Box<dyn FnOnce() -> Result<HttpResponse, ApiError>>;

/// The write a record handler performs, as a hook's `e.next()` can run it:
/// takes the record's fields, answers the record (or `null` after a delete).
pub(super) type Write = Box<
    dyn FnOnce(
            Map<String, Value>,
        ) -> futures_util::future::LocalBoxFuture<'static, Result<Value, ApiError>>
        + Send,
>;

/// The request and how the written record becomes its response.
pub(super) type Answer = (
    HttpRequest,
    Box<dyn FnOnce(Value) -> Result<HttpResponse, ApiError>>,
);

/// Whether any handler of `hook` applies to `collection`.
pub(super) fn applies(state: &AppState, hook: &str, collection: &CompiledCollection) -> bool {
    state
        .hooks
        .as_ref()
        .is_some_and(|h| h.wants(hook, &collection.id, collection.name.as_str()))
}

/// What the hook sees of the record before the action.
pub(super) struct Before {
    pub hook: &'static str,
    /// The record as `e.record` shows it (body merged in for create/update).
    pub record: Value,
    /// The fields the request submitted (sent to the action unless a hook changes more).
    pub body: Map<String, Value>,
}

/// The single hook point of a record write: runs `write` directly when no
/// hook applies, else hands it to the hooks as `e.next()`. `answer` turns
/// the written record into the response.
pub(super) async fn around(
    state: &AppState,
    who: &Principal,
    collection: &CompiledCollection,
    before: Before,
    write: Write,
    answer: Answer,
) -> Result<HttpResponse, ApiError> {
    let hooks = match &state.hooks {
        Some(h) if h.wants(before.hook, &collection.id, collection.name.as_str()) => h.clone(),
        _ => return answer.1(write(before.body).await?),
    };
    let req = &answer.0;
    let slot: Arc<Mutex<Option<Value>>> = Arc::default();
    let written = slot.clone();
    let mut event = request_event(req, who, state);
    event["changed"] = json!(before.body.keys().collect::<Vec<_>>());
    event["body"] = Value::Object(before.body.clone());
    event["collection"] = collection_ref(collection);
    event["record"] = before.record;
    event["action"] = json!("write");
    event["isNew"] = json!(before.hook == "onRecordCreateRequest");
    // What `e.next()` writes when no hook read the record.
    let submitted = before.body;
    let action: Action = Box::new(move |fields| {
        Box::pin(async move {
            let fields = fields.unwrap_or(submitted);
            let value = write(fields).await.map_err(HookError::from)?;
            if let Ok(mut s) = written.lock() {
                *s = Some(value.clone());
            }
            Ok(value)
        })
    });
    let outcome = hooks
        .run_record(before.hook, &event, Some(action))
        .await
        .map_err(fault)?;
    let result: ActionResult = Box::new(move || {
        let value = slot.lock().ok().and_then(|mut s| s.take());
        answer.1(value.unwrap_or(Value::Null))
    });
    finish(outcome, Some(result))
}

/// The single hook point of a read (view or list): the hooks see the
/// result in `e.record` / `e.result`, and `e.next()` answers with it.
pub(super) async fn around_read(
    state: &AppState,
    req: &HttpRequest,
    who: &Principal,
    collection: &CompiledCollection,
    hook: &'static str,
    key: &'static str,
    value: Value,
) -> Result<(Option<HttpResponse>, Value), ApiError> {
    let hooks = match &state.hooks {
        Some(h) if h.wants(hook, &collection.id, collection.name.as_str()) => h.clone(),
        _ => return Ok((None, value)),
    };
    let mut event = request_event(req, who, state);
    event["collection"] = collection_ref(collection);
    event[key] = value;
    event["action"] = json!("respond");
    let outcome = hooks.run_record(hook, &event, None).await.map_err(fault)?;
    finish(outcome, None).map(|r| (Some(r), Value::Null))
}

/// `onRecordAuthRequest` around an auth response `body` (`{token, record,
/// meta?}`): `None` when no handler applies (the caller answers `body`).
/// A handler that throws refuses the login; one that answers itself wins.
pub(super) async fn auth_request(
    req: &HttpRequest,
    state: &AppState,
    collection: &CompiledCollection,
    body: &Value,
    auth_method: &str,
) -> Result<Option<HttpResponse>, ApiError> {
    let hook = "onRecordAuthRequest";
    let hooks = match &state.hooks {
        Some(h) if h.wants(hook, &collection.id, collection.name.as_str()) => h.clone(),
        _ => return Ok(None),
    };
    let mut event = request_event(req, &Principal::Anonymous, state);
    event["collection"] = collection_ref(collection);
    event["record"] = body["record"].clone();
    event["token"] = body["token"].clone();
    event["meta"] = body.get("meta").cloned().unwrap_or(Value::Null);
    event["authMethod"] = json!(auth_method);
    event["action"] = json!("auth");
    let outcome = hooks.run_record(hook, &event, None).await.map_err(fault)?;
    finish(outcome, None).map(Some)
}

/// The hook of a login method ("password", "otp", "oauth2").
fn auth_method_hook(method: &str) -> Option<&'static str> {
    match method {
        "password" => Some("onRecordAuthWithPasswordRequest"),
        "otp" => Some("onRecordAuthWithOTPRequest"),
        "oauth2" => Some("onRecordAuthWithOAuth2Request"),
        _ => None,
    }
}

/// Whether the hook of login `method` applies to `collection`.
pub(super) fn wants_auth(state: &AppState, collection: &CompiledCollection, method: &str) -> bool {
    auth_method_hook(method).is_some_and(|hook| applies(state, hook, collection))
}

/// `onRecordAuthWith…Request` once the method's own check passed (before
/// MFA and the token): `e.record` is the record logging in, `fields` the
/// method's own (`e.identity`, `e.password`, `e.otpId`, `e.providerName`).
/// A handler that throws refuses the login.
pub(super) async fn auth_method_gate(
    req: &HttpRequest,
    state: &AppState,
    collection: &Arc<CompiledCollection>,
    record_id: &str,
    method: &str,
    fields: Value,
) -> Result<(), ApiError> {
    let Some(hook) = auth_method_hook(method).filter(|h| applies(state, h, collection)) else {
        return Ok(());
    };
    let Some(hooks) = state.hooks.clone() else {
        return Ok(());
    };
    let record = crate::records::view_as_owner(
        &state.db,
        collection.clone(),
        crate::records::Caller::superuser(),
        record_id.to_owned(),
    )
    .await?;
    let mut event = request_event(req, &Principal::Anonymous, state);
    event["collection"] = collection_ref(collection);
    event["record"] = record;
    event["fields"] = fields;
    event["action"] = json!("none");
    let outcome = hooks.run_record(hook, &event, None).await.map_err(fault)?;
    match outcome.error {
        Some(e) => Err(ApiError::from(e)),
        None => Ok(()),
    }
}

pub(super) fn collection_ref(collection: &CompiledCollection) -> Value {
    json!({
        "id": collection.id,
        "name": collection.name.as_str(),
        "type": collection.kind.as_str(),
    })
}

impl From<HookError> for ApiError {
    fn from(e: HookError) -> Self {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::from_parts(status, e.message, e.data)
    }
}

impl From<ApiError> for HookError {
    fn from(e: ApiError) -> Self {
        HookError {
            status: e.status().as_u16(),
            message: e.message().to_owned(),
            data: e.data().clone(),
        }
    }
}

/// The API's status and message for a record error (for `$app` calls).
pub fn map_record_error(e: crate::records::RecordError) -> HookError {
    HookError::from(ApiError::from(e))
}

#[cfg(test)]
mod tests {
    use super::actix_path;

    #[test]
    fn pocketbase_patterns_become_actix_patterns_and_regexes_are_refused() {
        for (pattern, expected, why) in [
            ("/hello/{name}", Some("/hello/{name}"), "a plain parameter"),
            ("/files/{path...}", Some("/files/{path:.*}"), "a wildcard"),
            ("/exact/{$}", Some("/exact/"), "an exact match"),
            ("/x/{id:\\d+}", None, "actix regex syntax"),
            ("/x/{a b}", None, "a space in the name"),
            ("/x/{open", None, "an unclosed brace"),
            ("relative", None, "no leading slash"),
        ] {
            assert_eq!(
                actix_path(pattern).as_deref(),
                expected,
                "{pattern} ({why})"
            );
        }
    }
}
