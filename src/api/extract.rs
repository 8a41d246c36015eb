//! Request-side plumbing shared by handlers: the application state, the
//! [`Principal`] extractor, query-string and body parsing into the error
//! envelope (size limit → 413, malformed → 400).

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
    /// Realtime clients; every committed record write is published here.
    pub realtime: crate::realtime::Hub,
    /// The first-run install token (shared with [`crate::Application`], which prints it).
    pub install_tokens: Arc<crate::auth::install::InstallTokens>,
}

impl AppState {
    /// Where record writes go: database, file store, realtime hub.
    pub fn backend(&self) -> crate::records::Backend<'_> {
        crate::records::Backend {
            db: &self.db,
            store: &self.store,
            hub: &self.realtime,
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

/// 401/403 unless the requester is a superuser.
pub fn require_superuser(who: &Principal) -> Result<(), ApiError> {
    match who {
        Principal::Superuser { .. } => Ok(()),
        Principal::Anonymous => Err(ApiError::unauthorized(
            "The request requires valid record authorization token.",
        )),
        Principal::User { .. } => Err(ApiError::forbidden(
            "The authorized record is not allowed to perform this action.",
        )),
    }
}

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
/// JSON and url-encoded forms are accepted; an empty body is `{}`.
pub async fn read_object(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Map<String, Value>, ApiError> {
    if super::multipart::is_multipart(req) {
        // Forms without a place for files: file parts are read and dropped.
        let body = super::multipart::read_body(req, payload, limit, None, &|_| None);
        return Ok(Box::pin(body).await?.object);
    }
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad_request(super::error::GENERIC_MESSAGE))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| ApiError::bad_request(super::error::GENERIC_MESSAGE))?;
        return Ok(form_to_object(pairs));
    }
    if !content_type.starts_with("application/json") {
        return Err(ApiError::bad_request("Unsupported Content-Type."));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::bad_request(super::error::GENERIC_MESSAGE)),
    }
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
    use serde_json::json;

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
