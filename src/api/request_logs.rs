//! Turns each finished `/api/` request into a log entry (method, url,
//! status, execution time, auth, client IP, user agent, referer, and the
//! error message and field details of a failed request), as PocketBase
//! records them, and queues it without waiting. Retention (`logs.maxDays`,
//! 0 = off), `minLevel`, `logIP` and `logAuthId` come from the settings.
//!
//! Query values that are credentials (file tokens, OAuth2 codes and states,
//! passwords, OTPs, bearer-ish `*token`/`*secret` keys) are replaced by
//! `[REDACTED]` in the stored url, message and referer; the log is readable
//! by every superuser and kept for days, a token in it is a token leaked.

use super::error::ApiError;
use super::extract::AppState;
use crate::auth::Principal;
use crate::logs::{LEVEL_ERROR, LEVEL_INFO};
use actix_web::HttpMessage;
use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::web;
use serde::Serialize;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::time::Duration;

/// Longest method kept in a log entry; clients may invent long ones.
const MAX_METHOD_CHARS: usize = 50;

/// Queues the log entry of a finished request (when logging is on).
pub fn record(res: &ServiceResponse<BoxBody>, elapsed: Duration) {
    let req = res.request();
    // The path as the router decoded it: `/%61pi/…` is an `/api/` request too.
    if !req.match_info().as_str().starts_with("/api/") {
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
    if level < options.min_level {
        return;
    }
    let header_text = |name: header::HeaderName| {
        let text = req
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        truncated(text, 512)
    };
    let referer = redacted_url(header_text(header::REFERER));
    // remoteIP is the TCP peer; userIP the client behind trusted proxies
    // (usually the same address, then formatted once).
    let (remote_ip, user_ip) = if options.log_ip {
        let peer = req.peer_addr().map(|a| a.ip().to_canonical());
        let user =
            super::client_ip::resolve(req.headers(), req.peer_addr(), &settings.trusted_proxy);
        let remote = peer.map(|ip| ip.to_string()).unwrap_or_default();
        let user = match user {
            Some(ip) if Some(ip) == peer => None,
            Some(ip) => Some(ip.to_string()),
            None => Some(String::new()),
        };
        (remote, user)
    } else {
        (String::new(), Some(String::new()))
    };
    let user_ip = user_ip.as_deref().unwrap_or(&remote_ip);
    let full_url = redacted_url(
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or_else(|| req.path()),
    );
    let url = truncated(&full_url, 2048);
    let extensions = req.extensions();
    let (auth, auth_id) = match extensions.get::<Principal>() {
        Some(Principal::Superuser { id }) => {
            (crate::schema::SUPERUSERS_NAME.to_owned(), id.as_str())
        }
        Some(Principal::User {
            collection_id, id, ..
        }) => (
            state
                .registry
                .get(collection_id)
                .map(|c| c.name.to_string())
                .unwrap_or_default(),
            id.as_str(),
        ),
        _ => (String::new(), ""),
    };
    let error = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>());
    let data = RequestData {
        auth: &auth,
        auth_id: (options.log_auth_id && !auth_id.is_empty()).then_some(auth_id),
        details: error
            .map(|e| field_messages(e.data()))
            .filter(|d| d.as_object().is_some_and(|d| !d.is_empty())),
        error: error.map(|e| e.message()),
        exec_time: elapsed.as_secs_f64() * 1000.0,
        method: truncated(req.method().as_str(), MAX_METHOD_CHARS),
        referer: &referer,
        remote_ip: &remote_ip,
        status,
        kind: "request",
        url,
        user_agent: header_text(header::USER_AGENT),
        user_ip,
    };
    let method = truncated(req.method().as_str(), MAX_METHOD_CHARS);
    SCRATCH.with_borrow_mut(|Scratch { json, message }| {
        json.clear();
        if serde_json::to_writer(&mut *json, &data).is_err() {
            return; // plain strings and numbers: cannot fail
        }
        let Ok(text) = std::str::from_utf8(json) else {
            return; // serde_json writes UTF-8
        };
        message.clear();
        message.push_str(method);
        message.push(' ');
        message.push_str(url);
        let text = crate::logs::cap_data(text, options.max_data_size);
        state.logs.log(level, message, &text);
    });
}

/// A worker thread's buffers for the entry being built, reused from one
/// request to the next (the queue copies the texts).
#[derive(Default)]
struct Scratch {
    json: Vec<u8>,
    message: String,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// The `data` of a request log entry, serialized straight to JSON text with
/// the keys in PocketBase's (alphabetical) order; borrowed, so logging a
/// request copies nothing but the final text.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestData<'a> {
    auth: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    exec_time: f64,
    method: &'a str,
    referer: &'a str,
    #[serde(rename = "remoteIP")]
    remote_ip: &'a str,
    status: u16,
    #[serde(rename = "type")]
    kind: &'static str,
    url: &'a str,
    user_agent: &'a str,
    #[serde(rename = "userIP")]
    user_ip: &'a str,
}

/// What stands in for a secret query value.
const REDACTED: &str = "[REDACTED]";

/// Whether a query key (already decoded, any case) names a credential.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    const EXACT: [&str; 5] = ["code", "state", "otp", "key", "apikey"];
    const SUFFIXES: [&str; 4] = ["token", "password", "secret", "passwordconfirm"];
    EXACT.contains(&key.as_str()) || SUFFIXES.iter().any(|s| key.ends_with(s))
}

/// `url` with the values of credential query keys (see [`is_secret_key`])
/// replaced; everything else is kept byte for byte.
fn redacted_url(url: &str) -> Cow<'_, str> {
    let Some((path, query)) = url.split_once('?') else {
        return Cow::Borrowed(url);
    };
    let mut changed = false;
    let pairs: Vec<Cow<'_, str>> = query
        .split('&')
        .map(|pair| {
            let raw_key = pair.split_once('=').map_or(pair, |(k, _)| k);
            // Keys are compared decoded, so `%74oken=` is a token too.
            let key = serde_urlencoded::from_str::<Vec<(String, String)>>(raw_key)
                .ok()
                .and_then(|mut kv| kv.pop())
                .map_or_else(|| raw_key.to_owned(), |(k, _)| k);
            if pair.contains('=') && is_secret_key(&key) {
                changed = true;
                Cow::Owned(format!("{raw_key}={REDACTED}"))
            } else {
                Cow::Borrowed(pair)
            }
        })
        .collect();
    if !changed {
        return Cow::Borrowed(url);
    }
    Cow::Owned(format!("{path}?{}", pairs.join("&")))
}

/// At most `max` characters of `text`, cut at a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_query_values_are_redacted_and_the_rest_kept() {
        for (url, expected) in [
            ("/api/health", "/api/health"),
            ("/api/health?a=1&b=2", "/api/health?a=1&b=2"),
            (
                "/api/files/c/r/f.png?token=abc&thumb=0x0",
                "/api/files/c/r/f.png?token=[REDACTED]&thumb=0x0",
            ),
            ("/x?%74oken=abc", "/x?%74oken=[REDACTED]"),
            (
                "/x?Token=abc&TOKEN=d",
                "/x?Token=[REDACTED]&TOKEN=[REDACTED]",
            ),
            (
                "/api/oauth2-redirect?code=c&state=s",
                "/api/oauth2-redirect?code=[REDACTED]&state=[REDACTED]",
            ),
            (
                "/x?refresh_token=r&id_token=i",
                "/x?refresh_token=[REDACTED]&id_token=[REDACTED]",
            ),
            (
                "/x?oldPassword=p&passwordConfirm=q",
                "/x?oldPassword=[REDACTED]&passwordConfirm=[REDACTED]",
            ),
            ("/x?token", "/x?token"),
            ("/x?token=&q=%ZZ", "/x?token=[REDACTED]&q=%ZZ"),
            (
                "/x?tokenish=1&filter=token%3D1",
                "/x?tokenish=1&filter=token%3D1",
            ),
        ] {
            assert_eq!(redacted_url(url), expected, "{url}");
        }
    }
}
