//! Server-side JavaScript hooks (PocketBase's `pb_hooks/*.pb.js`): custom
//! routes (`routerAdd`, `routerUse`) and record request hooks
//! (`onRecordCreateRequest` …) written against PocketBase's JSVM API, run by
//! an embedded QuickJS engine on a small pool of dedicated threads.
//!
//! This module owns loading (`loader`), the runtime pool and its limits
//! (`engine`) and the JavaScript API (`bindings`). It knows nothing about
//! HTTP: the API layer turns requests into event JSON, calls [`Hooks`], and
//! turns the [`Outcome`] into a response. Without a hooks directory there is
//! no `Hooks` at all, so nothing on the request path changes.

mod bindings;
mod engine;
mod loader;
pub mod migrations;
pub mod watch;

pub use bindings::{Host, MailerFactory, Reentry, SettingsSource};
pub use engine::Fault;
pub use loader::{HookFile, MAX_HOOK_FILE_BYTES, load as load_hook_files};

use crate::records::{self, RecordError, WriteHooks};
use crate::schema::CompiledCollection;
use futures_util::future::LocalBoxFuture;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// PocketBase's hook registrars (its `app.On…` methods, first letter
/// lowered). All are defined so PocketBase hook files load; only those in
/// [`SUPPORTED_HOOKS`] are ever triggered.
pub const PB_HOOK_NAMES: &[&str] = &[
    "onBackupCreate",
    "onBackupRestore",
    "onBatchRequest",
    "onBootstrap",
    "onCollectionAfterCreateError",
    "onCollectionAfterCreateSuccess",
    "onCollectionAfterDeleteError",
    "onCollectionAfterDeleteSuccess",
    "onCollectionAfterUpdateError",
    "onCollectionAfterUpdateSuccess",
    "onCollectionCreate",
    "onCollectionCreateExecute",
    "onCollectionCreateRequest",
    "onCollectionDelete",
    "onCollectionDeleteExecute",
    "onCollectionDeleteRequest",
    "onCollectionUpdate",
    "onCollectionUpdateExecute",
    "onCollectionUpdateRequest",
    "onCollectionValidate",
    "onCollectionViewRequest",
    "onCollectionsImportRequest",
    "onCollectionsListRequest",
    "onFileDownloadRequest",
    "onFileTokenRequest",
    "onMailerRecordAuthAlertSend",
    "onMailerRecordEmailChangeSend",
    "onMailerRecordOTPSend",
    "onMailerRecordPasswordResetSend",
    "onMailerRecordVerificationSend",
    "onMailerSend",
    "onModelAfterCreateError",
    "onModelAfterCreateSuccess",
    "onModelAfterDeleteError",
    "onModelAfterDeleteSuccess",
    "onModelAfterUpdateError",
    "onModelAfterUpdateSuccess",
    "onModelCreate",
    "onModelCreateExecute",
    "onModelDelete",
    "onModelDeleteExecute",
    "onModelUpdate",
    "onModelUpdateExecute",
    "onModelValidate",
    "onRealtimeConnectRequest",
    "onRealtimeMessageSend",
    "onRealtimeSubscribeRequest",
    "onRecordAfterCreateError",
    "onRecordAfterCreateSuccess",
    "onRecordAfterDeleteError",
    "onRecordAfterDeleteSuccess",
    "onRecordAfterUpdateError",
    "onRecordAfterUpdateSuccess",
    "onRecordAuthRefreshRequest",
    "onRecordAuthRequest",
    "onRecordAuthWithOAuth2Request",
    "onRecordAuthWithOTPRequest",
    "onRecordAuthWithPasswordRequest",
    "onRecordConfirmEmailChangeRequest",
    "onRecordConfirmPasswordResetRequest",
    "onRecordConfirmVerificationRequest",
    "onRecordCreate",
    "onRecordCreateExecute",
    "onRecordCreateRequest",
    "onRecordDelete",
    "onRecordDeleteExecute",
    "onRecordDeleteRequest",
    "onRecordEnrich",
    "onRecordRequestEmailChangeRequest",
    "onRecordRequestOTPRequest",
    "onRecordRequestPasswordResetRequest",
    "onRecordRequestVerificationRequest",
    "onRecordUpdate",
    "onRecordUpdateExecute",
    "onRecordUpdateRequest",
    "onRecordValidate",
    "onRecordViewRequest",
    "onRecordsListRequest",
    "onSettingsListRequest",
    "onSettingsReload",
    "onSettingsUpdateRequest",
    "onTerminate",
];

/// The hooks that are triggered so far.
pub const SUPPORTED_HOOKS: &[&str] = &[
    "onRecordCreate",
    "onRecordUpdate",
    "onRecordDelete",
    "onRecordAfterCreateSuccess",
    "onRecordAfterUpdateSuccess",
    "onRecordAfterDeleteSuccess",
    "onRecordAfterCreateError",
    "onRecordAfterUpdateError",
    "onRecordAfterDeleteError",
    "onRecordCreateRequest",
    "onRecordUpdateRequest",
    "onRecordDeleteRequest",
    "onRecordViewRequest",
    "onRecordsListRequest",
    "onRecordValidate",
    "onBatchRequest",
];

/// Limits of one invocation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_bytes: usize,
    pub timeout: Duration,
}

/// The write a record request hook's `e.next()` performs, given the
/// record's submitted or changed fields (`None`: the hooks never looked at
/// the record, so the fields the event carried); answers the record as the
/// API would.
pub type Action = Box<
    dyn FnOnce(Option<Map<String, Value>>) -> LocalBoxFuture<'static, Result<Value, HookError>>
        + Send,
>;

/// An error a hook answers with, in PocketBase's envelope terms.
#[derive(Debug, Clone, PartialEq)]
pub struct HookError {
    pub status: u16,
    pub message: String,
    pub data: Value,
}

const GENERIC_MESSAGE: &str = "Something went wrong while processing your request.";

impl HookError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
            data: json!({}),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: 404,
            message: message.into(),
            data: json!({}),
        }
    }

    /// A 500 for a hook that broke a limit or the engine (details are logged).
    pub fn internal() -> Self {
        Self {
            status: 500,
            message: GENERIC_MESSAGE.to_owned(),
            data: json!({}),
        }
    }

    /// An error a script threw. A status outside 400–599 becomes 400, and
    /// `data` from the script is reduced as PocketBase does (each leaf an
    /// opaque `validation_invalid_value`) unless it came from the server.
    fn from_script(status: &Value, message: &str, data: Value, safe: bool) -> Self {
        let status = status
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (400..=599).contains(s))
            .unwrap_or(400);
        let message = if message.trim().is_empty() {
            default_message(status).to_owned()
        } else {
            message.to_owned()
        };
        let data = if safe { data } else { safe_data(&data) };
        Self {
            status,
            message,
            data,
        }
    }
}

/// PocketBase's default message for a status without one (`http.StatusText`
/// for the common ones, the generic message otherwise).
fn default_message(status: u16) -> &'static str {
    match status {
        401 => "Missing or invalid authentication.",
        403 => "You are not allowed to perform this request.",
        404 => "The requested resource wasn't found.",
        429 => "Too Many Requests.",
        _ => GENERIC_MESSAGE,
    }
}

/// PocketBase's `safeErrorsData`: objects are walked, every other value
/// becomes `{"code":"validation_invalid_value","message":"Invalid value."}`.
fn safe_data(data: &Value) -> Value {
    let Value::Object(map) = data else {
        return json!({});
    };
    let out = map
        .iter()
        .map(|(k, v)| {
            let item = match v {
                Value::Object(m) if m.contains_key("$validation") => {
                    validation_item(&m["$validation"])
                }
                Value::Object(_) => safe_data(v),
                _ => json!({"code": "validation_invalid_value", "message": "Invalid value."}),
            };
            (k.clone(), item)
        })
        .collect();
    Value::Object(out)
}

/// A `new ValidationError(code, message)` in a script's error data: kept,
/// with the message as a sentence (PocketBase's `inflector.Sentenize`).
fn validation_item(v: &Value) -> Value {
    let (Some(code), Some(message)) = (
        v.get("code").and_then(Value::as_str),
        v.get("message").and_then(Value::as_str),
    ) else {
        return json!({"code": "validation_invalid_value", "message": "Invalid value."});
    };
    let message = message.trim();
    let mut chars = message.chars();
    let mut sentence: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !sentence.is_empty() && !sentence.ends_with(['.', '!', '?']) {
        sentence.push('.');
    }
    json!({"code": code, "message": sentence})
}

/// What a hook answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Json {
        status: u16,
        body: Value,
    },
    Text {
        status: u16,
        body: String,
        html: bool,
    },
    NoContent {
        status: u16,
    },
    Redirect {
        status: u16,
        url: String,
    },
    /// The record action ran (`e.next()`): answer with its result.
    Action,
}

#[derive(serde::Deserialize)]
struct RawResponse {
    status: u16,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    body: Value,
}

impl RawResponse {
    fn into_response(self) -> Response {
        let status = if (100..=599).contains(&self.status) {
            self.status
        } else {
            200
        };
        let text = |v: Value| match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        match self.kind.as_str() {
            "action" => Response::Action,
            "text" => Response::Text {
                status,
                body: text(self.body),
                html: false,
            },
            "html" => Response::Text {
                status,
                body: text(self.body),
                html: true,
            },
            "none" => Response::NoContent { status },
            "redirect" => Response::Redirect {
                status,
                url: text(self.body),
            },
            _ => Response::Json {
                status,
                body: self.body,
            },
        }
    }
}

/// The result of one invocation: the first response written (if any) and
/// the error it ended with (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub response: Option<Response>,
    pub error: Option<HookError>,
}

/// One `routerAdd` registration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RouteDef {
    pub method: String,
    pub path: String,
}

/// One `cronAdd` registration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct CronDef {
    pub id: String,
    pub expression: String,
}

/// What the hook files registered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub crons: Vec<CronDef>,
    pub routes: Vec<RouteDef>,
    /// Hook name → the collection filters of each handler.
    pub hooks: HashMap<String, Vec<Vec<String>>>,
}

impl Manifest {
    /// Whether any handler of `hook` applies to the collection `id`/`name`.
    pub fn wants(&self, hook: &str, id: &str, name: &str) -> bool {
        self.hooks.get(hook).is_some_and(|handlers| {
            handlers
                .iter()
                .any(|tags| tags.is_empty() || tags.iter().any(|t| t == id || t == name))
        })
    }
}

/// How long past its time limit a model hook may hold the writer (time
/// spent waiting on the database is not counted against the limit).
const SESSION_MARGIN: Duration = Duration::from_secs(5);

/// The model hooks (`onRecordCreate` …) as the write path calls them: on
/// this thread when it is a hook thread waiting in a host operation
/// (re-entrantly), else on the pool (`jobs`).
#[derive(Clone)]
pub(crate) struct ModelHooks {
    jobs: Option<crossbeam_channel::Sender<engine::Job>>,
    manifest: std::sync::Arc<Manifest>,
    timeout: Duration,
    map_error: fn(RecordError) -> HookError,
}

impl WriteHooks for ModelHooks {
    fn wants(&self, hook: &str, collection: &CompiledCollection) -> bool {
        self.manifest
            .wants(hook, &collection.id, collection.name.as_str())
    }

    fn session_limit(&self) -> Duration {
        self.timeout + SESSION_MARGIN
    }

    fn shared(&self) -> std::sync::Arc<dyn WriteHooks> {
        std::sync::Arc::new(self.clone())
    }

    fn run<'a>(
        &'a self,
        call: records::hooked::Invocation<'a>,
    ) -> LocalBoxFuture<'a, Result<(), RecordError>> {
        Box::pin(async move {
            let c = call.collection;
            let is_new = call.is_new;
            let unchanged = call
                .next
                .is_some()
                .then(|| changed_fields(&call.record, &call.changed, is_new));
            let event = json!({
                "collection": {
                    "id": c.id,
                    "name": c.name.as_str(),
                    "type": c.kind.as_str(),
                },
                "record": call.record,
                "changed": call.changed,
                "error": call.error,
                "action": if call.next.is_some() { "write" } else { "none" },
                "isNew": is_new,
            });
            let map_error = self.map_error;
            let action: Option<Action> = call.next.map(|next| -> Action {
                Box::new(move |fields| {
                    let fields = fields.or(unchanged).unwrap_or_default();
                    Box::pin(async move { next(fields).await.map_err(map_error) })
                })
            });
            let (job, outcome) = bindings::record_job(call.hook, &event, action, call.session);
            let sent = match bindings::reentry() {
                Some(inbox) => inbox.send(job).is_ok(),
                None => self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok()),
            };
            let outcome = match outcome.await {
                Ok(o) if sent => o,
                _ => Err(Fault::Gone),
            };
            match outcome {
                Ok(Outcome { error: None, .. }) => Ok(()),
                Ok(Outcome { error: Some(e), .. }) => Err(RecordError::Hook {
                    status: e.status,
                    message: e.message,
                    data: e.data,
                }),
                Err(fault) => {
                    tracing::error!(target: "ferrobase::hooks", hook = call.hook, error = %fault, "hook failed");
                    let e = HookError::internal();
                    Err(RecordError::Hook {
                        status: e.status,
                        message: e.message,
                        data: e.data,
                    })
                }
            }
        })
    }
}

/// The fields `e.next()` writes when no hook touched the record: the
/// changed ones, without `id` once the record exists (the prelude's
/// `Record.__changes`). A record being created keeps a submitted `id`.
fn changed_fields(record: &Value, changed: &[String], is_new: bool) -> Map<String, Value> {
    let persisted = !is_new
        && record
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| !id.is_empty());
    changed
        .iter()
        .filter(|k| !(persisted && k.as_str() == "id"))
        .filter_map(|k| Some((k.clone(), record.get(k)?.clone())))
        .collect()
}

impl WriteHooks for Hooks {
    fn wants(&self, hook: &str, collection: &CompiledCollection) -> bool {
        self.model.wants(hook, collection)
    }

    fn session_limit(&self) -> Duration {
        self.model.session_limit()
    }

    fn shared(&self) -> std::sync::Arc<dyn WriteHooks> {
        self.model.shared()
    }

    fn run<'a>(
        &'a self,
        call: records::hooked::Invocation<'a>,
    ) -> LocalBoxFuture<'a, Result<(), RecordError>> {
        self.model.run(call)
    }
}

/// The editor declarations of the JavaScript API (`pb_data/types.d.ts`).
pub const TYPES_D_TS: &str = include_str!("types.d.ts");

/// Writes [`TYPES_D_TS`] to `<data_dir>/types.d.ts` (where PocketBase's
/// files reference it) when it differs. Returns whether it wrote.
pub fn write_types(data_dir: &Path) -> std::io::Result<bool> {
    let path = data_dir.join("types.d.ts");
    if std::fs::read_to_string(&path).is_ok_and(|current| current == TYPES_D_TS) {
        return Ok(false);
    }
    std::fs::write(path, TYPES_D_TS)?;
    Ok(true)
}

/// Why the hooks could not start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(String);

/// The loaded hooks and the pool that runs them. Cheap to clone.
#[derive(Clone)]
pub struct Hooks {
    jobs: crossbeam_channel::Sender<engine::Job>,
    manifest: std::sync::Arc<Manifest>,
    model: ModelHooks,
}

impl Hooks {
    /// Loads `dir`'s hook files and starts `pool_size` runtimes. `None` when
    /// there are no hook files (no threads are started). An error names the
    /// file and line of a script that fails to evaluate.
    pub async fn start(
        dir: &Path,
        limits: Limits,
        pool_size: usize,
        host: Host,
    ) -> Result<Option<Self>, LoadError> {
        let files = loader::load(dir).map_err(LoadError)?;
        if files.is_empty() {
            return Ok(None);
        }
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        tracing::info!(target: "ferrobase::hooks", dir = %dir.display(), files = ?names, "loading hooks");
        let (timeout, map_error) = (limits.timeout, host.map_error);
        let (jobs, manifest) = engine::start(files, limits, host, pool_size)
            .await
            .map_err(LoadError)?;
        for job in &manifest.crons {
            crate::cron::parse(&job.expression)
                .map_err(|e| LoadError(format!("cronAdd({:?}): {e}", job.id)))?;
        }
        for name in manifest.hooks.keys() {
            if !SUPPORTED_HOOKS.contains(&name.as_str()) {
                tracing::warn!(target: "ferrobase::hooks", hook = %name, "this hook is not supported yet; its handlers never run");
            }
        }
        let manifest = std::sync::Arc::new(manifest);
        let model = ModelHooks {
            jobs: Some(jobs.clone()),
            manifest: manifest.clone(),
            timeout,
            map_error,
        };
        Ok(Some(Self {
            jobs,
            manifest,
            model,
        }))
    }

    /// The `cronAdd` jobs, in registration order.
    pub fn crons(&self) -> &[CronDef] {
        &self.manifest.crons
    }

    /// Runs the `cronAdd` job `id` (under the time limit). A job that
    /// throws or breaks a limit is logged; the scheduler goes on.
    pub async fn run_cron(&self, id: &str) {
        let outcome = self
            .submit(engine::Call::Cron { id: id.to_owned() }, None)
            .await;
        match outcome {
            Ok(Outcome { error: None, .. }) => {}
            Ok(Outcome { error: Some(e), .. }) => {
                tracing::error!(target: "ferrobase::hooks", job = %id, status = e.status, message = %e.message, "cron job failed");
            }
            Err(fault) => {
                tracing::error!(target: "ferrobase::hooks", job = %id, error = %fault, "cron job failed");
            }
        }
    }

    /// The custom routes, in registration order.
    pub fn routes(&self) -> &[RouteDef] {
        &self.manifest.routes
    }

    /// Whether any handler of `hook` applies to the collection `id`/`name`.
    pub fn wants(&self, hook: &str, id: &str, name: &str) -> bool {
        self.manifest.wants(hook, id, name)
    }

    /// Whether `hook` has any handler at all.
    pub fn has(&self, hook: &str) -> bool {
        self.manifest.hooks.contains_key(hook)
    }

    /// Runs custom route `index` with `event` (see the prelude's `baseEvent`).
    pub async fn run_route(&self, index: usize, event: &Value) -> Result<Outcome, Fault> {
        self.submit(
            engine::Call::Route {
                index,
                event: event.to_string(),
            },
            None,
        )
        .await
    }

    /// Runs the handlers of record hook `hook` for `event`; `action` is the
    /// write `e.next()` performs (`None` for view and list, which answer
    /// with the event's record or result).
    pub async fn run_record(
        &self,
        hook: &'static str,
        event: &Value,
        action: Option<Action>,
    ) -> Result<Outcome, Fault> {
        self.run_record_in(hook, event, action, None).await
    }

    /// [`Hooks::run_record`] with the handlers' writes (theirs and
    /// `e.next()`'s) joining `session` (a batch's transaction).
    pub(crate) async fn run_record_in(
        &self,
        hook: &'static str,
        event: &Value,
        action: Option<Action>,
        session: Option<std::sync::Arc<crate::records::session::Session>>,
    ) -> Result<Outcome, Fault> {
        let call = engine::Call::Record {
            hook,
            event: engine::RecordEvent::split(event),
        };
        self.submit_in(call, action, session).await
    }

    /// Runs `onRecordEnrich` over `event.records`; answers them as shown.
    pub async fn run_enrich(&self, event: &Value) -> Result<Outcome, Fault> {
        self.submit(
            engine::Call::Enrich {
                event: event.to_string(),
            },
            None,
        )
        .await
    }

    async fn submit(&self, call: engine::Call, action: Option<Action>) -> Result<Outcome, Fault> {
        self.submit_in(call, action, None).await
    }

    async fn submit_in(
        &self,
        call: engine::Call,
        action: Option<Action>,
        session: Option<std::sync::Arc<crate::records::session::Session>>,
    ) -> Result<Outcome, Fault> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let job = engine::Job {
            call,
            action,
            session,
            reply,
        };
        // On a hook thread waiting in `e.next()` (a create answer enriched
        // inside the write), the job runs there: the pool may have no
        // other runtime free.
        let sent = match bindings::reentry() {
            Some(inbox) => inbox.send(job).is_ok(),
            None => self.jobs.send(job).is_ok(),
        };
        if !sent {
            return Err(Fault::Gone);
        }
        outcome.await.map_err(|_| Fault::Gone)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_d_ts_is_written_once_and_rewritten_when_it_differs() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(write_types(dir.path()).expect("first"), "written");
        assert!(
            !write_types(dir.path()).expect("second"),
            "unchanged: not rewritten"
        );
        std::fs::write(dir.path().join("types.d.ts"), "stale").expect("edit");
        assert!(write_types(dir.path()).expect("third"), "stale: rewritten");
        let written = std::fs::read_to_string(dir.path().join("types.d.ts")).expect("read");
        assert_eq!(written, TYPES_D_TS);
    }
}
