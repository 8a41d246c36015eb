//! Request-side plumbing shared by handlers: the application state, the
//! [`Principal`] and [`Superuser`] extractors, [`JsonBody`], query-string
//! and body parsing into the error envelope (size limit → 413, malformed
//! → 400).

use super::error::ApiError;
use crate::auth::{self, Principal};
use crate::config::Config;
use crate::db::Db;
use crate::records::Caller;
use crate::schema::{CompiledCollection, Registry};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Everything handlers share.
pub struct AppState {
    pub db: Db,
    pub registry: Registry,
    pub config: Arc<Config>,
    /// Failed-login counts per client IP.
    pub login_throttle: crate::auth::throttle::LoginThrottle,
    /// The settings as last saved.
    pub settings: crate::settings::SettingsCache,
    /// Request counts for the settings' rate limits.
    pub rate_limiter: super::ratelimit::RateLimiter,
    /// Request logs (auxiliary.db).
    pub logs: crate::logs::Logger,
    /// Scheduled jobs (`/api/crons`).
    pub crons: crate::cron::Scheduler,
    /// Restart requests (after a backup restore).
    pub lifecycle: crate::lifecycle::Lifecycle,
    /// Request counters and latency histograms (`/api/metrics`).
    pub metrics: super::metrics::HttpMetrics,
    /// Where uploaded files are kept.
    pub store: crate::files::Store,
    /// The same store, as the switch the `s3` settings flip.
    pub storage: Arc<crate::files::Switch>,
    /// Realtime clients; every committed record write is published here.
    pub realtime: crate::realtime::Hub,
    /// The first-run install token (shared with [`crate::Application`], which prints it).
    pub install_tokens: Arc<crate::auth::install::InstallTokens>,
    /// JavaScript hooks (`pb_hooks`); `None` when there are none.
    pub hooks: Option<crate::hooks::Hooks>,
    /// `/api/openapi.json`, cached per schema snapshot.
    pub openapi: crate::openapi::Cache,
    /// On PostgreSQL, the listener that links this node to the others
    /// (`/api/health` reports it); `None` on SQLite.
    pub nodes: Option<crate::nodes::Link>,
}

impl AppState {
    /// Where record writes go: database, file store, realtime hub.
    pub fn backend(&self) -> crate::records::Backend<'_> {
        crate::records::Backend {
            db: &self.db,
            store: &self.store,
            hub: &self.realtime,
            hooks: self
                .hooks
                .as_ref()
                .map(|h| h as &dyn crate::records::WriteHooks),
            session: None,
        }
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        use actix_web::HttpMessage;
        if let Some(known) = req.extensions().get::<Principal>().cloned() {
            return Box::pin(async move { Ok(known) });
        }
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let request = req.clone();
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let (Some(state), Some(header)) = (state, header) else {
                return Ok(Principal::Anonymous);
            };
            if header.trim().is_empty() {
                return Ok(Principal::Anonymous);
            }
            let principal = auth::resolve_token(&state.db, &state.registry, &header).await;
            // Kept for later extractors and the request log.
            request.extensions_mut().insert(principal.clone());
            Ok(principal)
        })
    }
}

/// The records module's view of the requester and the request.
pub fn caller(who: &Principal, req: &HttpRequest) -> Caller {
    let (auth, auth_fields) = match who {
        Principal::Anonymous => (None, Default::default()),
        Principal::User {
            collection_id,
            collection_name,
            id,
            fields,
        } => (
            Some((collection_id.clone(), collection_name.clone(), id.clone())),
            fields.clone(),
        ),
        Principal::Superuser { id } => (
            Some((
                crate::schema::SUPERUSERS_ID.to_owned(),
                crate::schema::SUPERUSERS_NAME.to_owned(),
                id.clone(),
            )),
            Default::default(),
        ),
    };
    let headers = req
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            let key = name.as_str().to_ascii_lowercase().replace('-', "_");
            value.to_str().ok().map(|v| (key, v.to_owned()))
        })
        .collect();
    Caller {
        superuser: who.is_superuser(),
        auth,
        auth_fields,
        method: req.method().as_str().to_owned(),
        context: "default",
        query: query_map(req).unwrap_or_default(),
        headers,
        body: None,
    }
}

/// A request made by a superuser. Extracting it refuses everyone else as
/// PocketBase does: 401 without a (valid) token, 403 for other records. A
/// handler taking it says in its signature that it is superuser-only.
#[derive(Debug, Clone)]
pub struct Superuser(Principal);

impl Superuser {
    /// Who the superuser is.
    pub fn principal(&self) -> &Principal {
        &self.0
    }
}

impl FromRequest for Superuser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let who = Principal::from_request(req, payload);
        Box::pin(async move {
            match who.await? {
                who @ Principal::Superuser { .. } => Ok(Superuser(who)),
                Principal::Anonymous => Err(ApiError::unauthorized(
                    "The request requires valid record authorization token.",
                )),
                Principal::User { .. } => Err(ApiError::forbidden(
                    "The authorized record is not allowed to perform this action.",
                )),
            }
        })
    }
}

/// A request body bound to `T` as PocketBase binds a handler's body: JSON
/// (`null` and an empty body are `{}`), url-encoded forms with each value
/// parsed as the field's type (`"3600"` is a number only where `T` wants
/// one), or multipart fields, all within `server.max_body_bytes` (413 past
/// it). A body that does not bind — malformed, not an object, a value of
/// the wrong type — is PocketBase's 400 "An error occurred while loading
/// the submitted data.", never a silently dropped value. The body is read
/// before the handler runs but its verdict is taken by [`JsonBody::bind`],
/// so a handler answers its own checks first (unknown collection, disabled
/// method), in PocketBase's order.
#[derive(Debug)]
pub struct JsonBody<T>(Result<T, ApiError>);

impl<T> JsonBody<T> {
    /// The bound body, or the 400/413 it earned.
    pub fn bind(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(DEFAULT_BODY_BYTES, |s| s.config.server.max_body_bytes);
        let body = web::Payload::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let bound = match body.await {
                Ok(body) => bind_body(&req, body, limit).await,
                Err(_) => Err(ApiError::bad_request(super::error::GENERIC_MESSAGE)),
            };
            Ok(JsonBody(bound))
        })
    }
}

/// Reads and binds a body for [`JsonBody`].
async fn bind_body<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let unbound = |e: &dyn std::fmt::Display| {
        tracing::debug!(reason = %e, "body does not bind to the expected shape");
        ApiError::bad_request(LOADING_FAILED)
    };
    if super::multipart::is_multipart(req) {
        let object = read_object(req, payload, limit).await?;
        return serde_json::from_value(Value::Object(object)).map_err(|e| unbound(&e));
    }
    let bytes = read_bytes(payload, limit).await?;
    let content_type = content_type(req);
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return serde_urlencoded::from_bytes(&bytes).map_err(|e| unbound(&e));
    }
    if !bytes.is_empty() && !content_type.starts_with("application/json") {
        return Err(ApiError::bad_request("Unsupported Content-Type."));
    }
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|e| unbound(&e))?
    };
    match value {
        Value::Null => serde_json::from_value(Value::Object(Map::new())),
        object @ Value::Object(_) => serde_json::from_value(object),
        _ => return Err(ApiError::bad_request(LOADING_FAILED)),
    }
    .map_err(|e| unbound(&e))
}

/// For a body's text fields: JSON `null` is the empty string, as it is for
/// PocketBase's Go structs; any other non-text value does not bind.
pub fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::Deserialize;
    Option::<String>::deserialize(d).map(Option::unwrap_or_default)
}

/// PocketBase's message for a body that does not bind to the handler's shape.
pub const LOADING_FAILED: &str = "An error occurred while loading the submitted data.";

/// Body limit of [`JsonBody`] when no application state is registered (tests).
const DEFAULT_BODY_BYTES: usize = 1024 * 1024;

/// The query string as a map (last value wins); malformed → 400.
pub fn query_map(req: &HttpRequest) -> Result<HashMap<String, String>, ApiError> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|_| ApiError::bad_request(super::error::GENERIC_MESSAGE))
}

/// Looks up the collection of a record route; unknown → "Missing collection context.".
pub fn record_collection(
    state: &AppState,
    id_or_name: &str,
) -> Result<Arc<CompiledCollection>, ApiError> {
    state
        .registry
        .get(id_or_name)
        .ok_or_else(ApiError::missing_collection)
}

/// Reads the request body into a JSON object, enforcing `limit` while reading.
/// JSON and url-encoded forms are accepted; an empty body and JSON `null`
/// are `{}` (as PocketBase reads them); anything else that is not an object
/// is the generic 400.
pub async fn read_object(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Map<String, Value>, ApiError> {
    read_object_or(req, payload, limit, super::error::GENERIC_MESSAGE).await
}

/// [`read_object`] with the endpoint's own message for a body that is not
/// a JSON object (PocketBase words it per endpoint).
pub async fn read_object_or(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    unreadable: &'static str,
) -> Result<Map<String, Value>, ApiError> {
    if super::multipart::is_multipart(req) {
        // Forms without a place for files: file parts are read and dropped.
        let body = super::multipart::read_body(req, payload, limit, None, &|_| None);
        return Ok(Box::pin(body).await?.object);
    }
    let bytes = read_bytes(payload, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let content_type = content_type(req);
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&bytes).map_err(|_| ApiError::bad_request(unreadable))?;
        return Ok(form_to_object(pairs));
    }
    if !content_type.starts_with("application/json") {
        return Err(ApiError::bad_request("Unsupported Content-Type."));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        _ => Err(ApiError::bad_request(unreadable)),
    }
}

/// The whole body, refused with 413 as soon as it passes `limit`.
async fn read_bytes(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad_request(super::error::GENERIC_MESSAGE))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The request's Content-Type, lowercased ("" when absent).
fn content_type(req: &HttpRequest) -> String {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Form fields with PocketBase's inference: repeated keys become arrays,
/// `true`/`false` become booleans and exact numbers become numbers.
pub(super) fn form_to_object(pairs: Vec<(String, String)>) -> Map<String, Value> {
    let mut map: Map<String, Value> = Map::new();
    for (key, raw) in pairs {
        let value = infer(&raw);
        match map.get_mut(&key) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => *existing = Value::Array(vec![existing.clone(), value]),
            None => {
                map.insert(key, value);
            }
        }
    }
    map
}

fn infer(raw: &str) -> Value {
    match raw {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(n) = raw.parse::<f64>()
        && n.is_finite()
    {
        // Only text that round-trips exactly is a number: "12" yes, "012" or "1e3" no.
        let number = crate::records::value::number_json(n);
        let canonical = number.to_string();
        if canonical == raw {
            return number;
        }
    }
    Value::String(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::HttpMessage;
    use actix_web::ResponseError;
    use actix_web::test::TestRequest;
    use serde_json::json;

    async fn superuser_status(who: Option<Principal>) -> Result<(), u16> {
        let (req, mut payload) = TestRequest::default().to_http_parts();
        if let Some(who) = who {
            req.extensions_mut().insert(who);
        }
        Superuser::from_request(&req, &mut payload)
            .await
            .map(|_| ())
            .map_err(|e| e.status_code().as_u16())
    }

    #[actix_web::test]
    async fn the_superuser_extractor_refuses_guests_with_401_and_records_with_403() {
        let user = Principal::User {
            collection_id: "_pb_users_auth_".into(),
            collection_name: "users".into(),
            id: "u1".into(),
            fields: Default::default(),
        };
        for (who, expected, why) in [
            (None, Err(401), "no token"),
            (Some(Principal::Anonymous), Err(401), "invalid token"),
            (Some(user), Err(403), "a regular record"),
            (
                Some(Principal::Superuser { id: "s1".into() }),
                Ok(()),
                "a superuser",
            ),
        ] {
            assert_eq!(superuser_status(who).await, expected, "{why}");
        }
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Typed {
        name: String,
        #[serde(default)]
        count: u32,
    }

    async fn json_body(content_type: &str, body: &str) -> Result<Typed, (u16, String)> {
        let (req, mut payload) = TestRequest::post()
            .insert_header(("Content-Type", content_type))
            .set_payload(body.to_owned())
            .to_http_parts();
        JsonBody::<Typed>::from_request(&req, &mut payload)
            .await
            .and_then(JsonBody::bind)
            .map_err(|e| {
                (
                    e.status_code().as_u16(),
                    e.envelope()["message"].to_string(),
                )
            })
    }

    #[actix_web::test]
    async fn json_body_reads_typed_bodies_and_refuses_the_rest_in_the_envelope() {
        let too_big = format!("{{\"name\": \"{}\"}}", "x".repeat(DEFAULT_BODY_BYTES));
        assert_eq!(
            json_body("application/json", r#"{"name": "a", "count": 2}"#).await,
            Ok(Typed {
                name: "a".into(),
                count: 2
            })
        );
        assert_eq!(
            json_body("application/x-www-form-urlencoded", "name=b").await,
            Ok(Typed {
                name: "b".into(),
                count: 0
            }),
            "forms are read as read_object reads them"
        );
        for (content_type, body, status, why) in [
            ("application/json", r#"{"name": 1}"#, 400, "wrong type"),
            ("application/json", r#"{"count": 1}"#, 400, "missing field"),
            (
                "application/json",
                r#"{"name": "a", "count": -1}"#,
                400,
                "out of range",
            ),
            ("application/json", "{not json", 400, "malformed"),
            ("application/json", "[1]", 400, "not an object"),
            (
                "application/json",
                too_big.as_str(),
                413,
                "past the body limit",
            ),
        ] {
            let got = json_body(content_type, body).await;
            assert_eq!(got.as_ref().map_err(|e| e.0), Err(status), "{why}: {got:?}");
        }
        let (_, message) = json_body("application/json", r#"{"name": 1}"#)
            .await
            .expect_err("wrong type");
        assert_eq!(message, format!("{LOADING_FAILED:?}"), "{message}");
    }

    #[test]
    fn form_values_are_inferred_like_pocketbase() {
        let map = form_to_object(vec![
            ("n".into(), "12".into()),
            ("f".into(), "-1.5".into()),
            ("z".into(), "012".into()),
            ("b".into(), "true".into()),
            ("t".into(), "a".into()),
            ("t".into(), "b".into()),
        ]);
        assert_eq!(
            Value::Object(map),
            json!({"n": 12, "f": -1.5, "z": "012", "b": true, "t": ["a", "b"]})
        );
    }
}
