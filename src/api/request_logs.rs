//! Turns each finished `/api/` request into a log entry (method, url,
//! status, execution time, auth, client IP, user agent, referer, and the
//! error message and field details of a failed request), as PocketBase
//! records them, and queues it without waiting. Retention (`logs.maxDays`,
//! 0 = off), `minLevel`, `logIP` and `logAuthId` come from the settings.

use super::error::ApiError;
use super::extract::AppState;
use crate::auth::Principal;
use crate::logs::{LEVEL_ERROR, LEVEL_INFO, LogEntry};
use actix_web::HttpMessage;
use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::web;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Queues the log entry of a finished request (when logging is on).
pub fn record(res: &ServiceResponse<BoxBody>, elapsed: Duration) {
    let req = res.request();
    if !req.path().starts_with("/api/") {
        return;
    }
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return;
    };
    state.metrics.observe(res, elapsed);
    let settings = state.settings.get();
    let options = &settings.logs;
    if options.max_days == 0 {
        return;
    }
    let status = res.status().as_u16();
    let level = if status >= 400 {
        LEVEL_ERROR
    } else {
        LEVEL_INFO
    };
    if level < i64::from(options.min_level) {
        return;
    }
    let header_text = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(512)
            .collect::<String>()
    };
    let ip = if options.log_ip {
        req.peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let url = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or_else(|| req.path())
        .chars()
        .take(2048)
        .collect::<String>();
    let mut data = Map::new();
    let (auth, auth_id) = match req.extensions().get::<Principal>() {
        Some(Principal::Superuser { id }) => {
            (crate::schema::SUPERUSERS_NAME.to_owned(), id.clone())
        }
        Some(Principal::User {
            collection_id, id, ..
        }) => (
            state
                .registry
                .get(collection_id)
                .map(|c| c.name.to_string())
                .unwrap_or_default(),
            id.clone(),
        ),
        _ => (String::new(), String::new()),
    };
    data.insert("auth".into(), json!(auth));
    if options.log_auth_id && !auth_id.is_empty() {
        data.insert("authId".into(), json!(auth_id));
    }
    data.insert("execTime".into(), json!(elapsed.as_secs_f64() * 1000.0));
    data.insert("method".into(), json!(req.method().as_str()));
    data.insert("referer".into(), json!(header_text(header::REFERER)));
    data.insert("remoteIP".into(), json!(ip));
    data.insert("status".into(), json!(status));
    data.insert("type".into(), json!("request"));
    data.insert("url".into(), json!(url));
    data.insert("userAgent".into(), json!(header_text(header::USER_AGENT)));
    data.insert("userIP".into(), json!(ip));
    if let Some(error) = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
    {
        data.insert("error".into(), json!(error.message()));
        let details = field_messages(error.data());
        if details.as_object().is_some_and(|d| !d.is_empty()) {
            data.insert("details".into(), details);
        }
    }
    let message = format!("{} {}", req.method(), url);
    state
        .logs
        .log(LogEntry::now(level, message, Value::Object(data)));
}

/// `{"field": {"code", "message"}}` → `{"field": "message"}`, nested alike.
fn field_messages(data: &Value) -> Value {
    match data {
        Value::Object(map) => match map.get("message") {
            Some(Value::String(m)) if map.contains_key("code") => json!(m),
            _ => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), field_messages(v)))
                    .collect(),
            ),
        },
        other => other.clone(),
    }
}
