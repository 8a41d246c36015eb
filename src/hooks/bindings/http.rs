//! `$http.send`: an outgoing HTTP request from a hook, treated like any
//! server-side fetch of a URL a user may influence. Only http(s); every
//! address the host resolves to must be public unless `[hooks]
//! http_allow_private` (the SSRF guard of `accounts::avatar`, so no
//! loopback, private, link-local or cloud-metadata address); the connection
//! is pinned to the checked address; redirects are followed by hand and
//! each hop checked again (credentials dropped when the host changes); the
//! host must be in `[hooks] http_allow` when that list is not empty; the
//! whole exchange is bounded by the request's timeout (PocketBase's 120 s
//! default), never past the hook's remaining time, and the response by
//! [`MAX_HTTP_RESPONSE_BYTES`].

use super::Host;
use crate::accounts::avatar::is_forbidden;
use crate::hooks::HookError;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::time::Duration;

/// PocketBase's default `timeout` of `$http.send`, in seconds.
const DEFAULT_TIMEOUT_SECS: f64 = 120.0;
/// Largest response body read.
pub const MAX_HTTP_RESPONSE_BYTES: usize = 2 * 1024 * 1024;
/// Redirect hops followed (each checked like the first URL).
const MAX_REDIRECTS: usize = 5;

#[derive(Deserialize)]
pub(super) struct SendArgs {
    url: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    headers: Map<String, Value>,
    #[serde(default)]
    timeout: f64,
}

fn refused(message: impl Into<String>) -> HookError {
    HookError::bad_request(message)
}

/// How long the request may take: its timeout, within what the hook has left.
pub(super) fn budget(args: &SendArgs, remaining: Duration) -> Duration {
    let secs = if args.timeout.is_finite() && args.timeout > 0.0 {
        args.timeout
    } else {
        DEFAULT_TIMEOUT_SECS
    };
    Duration::from_secs_f64(secs.min(DEFAULT_TIMEOUT_SECS * 10.0)).min(remaining)
}

/// The one address to connect to for `url` (see the module doc).
async fn checked_addr(host: &Host, url: &reqwest::Url) -> Result<SocketAddr, HookError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused("Only http and https URLs can be requested."));
    }
    let name = url.host_str().unwrap_or_default();
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if !host.http_allow.is_empty() && !host.http_allow.iter().any(|h| h.eq_ignore_ascii_case(bare))
    {
        return Err(refused(format!(
            "The host {bare:?} is not in [hooks] http_allow."
        )));
    }
    let port = url
        .port_or_known_default()
        .ok_or_else(|| refused("The URL has no port."))?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|_| refused(format!("The host {bare:?} does not resolve.")))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| refused(format!("The host {bare:?} does not resolve.")))?;
    if !host.http_allow_private && addrs.iter().any(|a| is_forbidden(a.ip())) {
        return Err(refused(
            "The URL resolves to a loopback, private or link-local address \
             (allowed only with [hooks] http_allow_private).",
        ));
    }
    Ok(first)
}

/// Sends the request (redirects followed and checked); the response as
/// `$http.send` answers it.
pub(super) async fn send(host: &Host, args: SendArgs, limit: Duration) -> Result<Value, HookError> {
    tokio::time::timeout(limit, exchange(host, args, limit))
        .await
        .map_err(|_| refused("The request timed out."))?
}

async fn exchange(host: &Host, args: SendArgs, limit: Duration) -> Result<Value, HookError> {
    let mut url = reqwest::Url::parse(&args.url).map_err(|_| refused("The URL is not valid."))?;
    let mut method = if args.method.is_empty() {
        reqwest::Method::GET
    } else {
        reqwest::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| refused("The method is not valid."))?
    };
    let mut body = Some(args.body);
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &args.headers {
        let value = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| refused(format!("Invalid header name {name:?}.")))?;
        let value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|_| refused(format!("Invalid value of header {name}.")))?;
        headers.insert(name, value);
    }
    for _ in 0..=MAX_REDIRECTS {
        let addr = checked_addr(host, &url).await?;
        let name = url.host_str().unwrap_or_default().to_owned();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(limit)
            .resolve(&name, addr)
            .no_proxy()
            .user_agent(concat!("ferrobase/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| HookError::internal())?;
        let mut request = client
            .request(method.clone(), url.clone())
            .headers(headers.clone());
        if let Some(b) = body.as_ref().filter(|b| !b.is_empty()) {
            request = request.body(b.clone());
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| refused(format!("The request failed: {}", e.without_url())))?;
        let status = response.status();
        if status.is_redirection()
            && let Some(next) = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|loc| url.join(loc).ok())
        {
            if next.host_str() != url.host_str() {
                // As browsers and Go do: credentials stay with their host.
                headers.remove(reqwest::header::AUTHORIZATION);
                headers.remove(reqwest::header::COOKIE);
            }
            if status == reqwest::StatusCode::SEE_OTHER
                || (matches!(status.as_u16(), 301 | 302) && method == reqwest::Method::POST)
            {
                method = reqwest::Method::GET;
                body = None;
            }
            url = next;
            continue;
        }
        let mut out_headers = Map::new();
        for (k, v) in response.headers() {
            let entry = out_headers
                .entry(k.as_str().to_owned())
                .or_insert_with(|| json!([]));
            if let (Value::Array(list), Ok(v)) = (entry, v.to_str()) {
                list.push(json!(v));
            }
        }
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| refused(format!("Reading the response failed: {}", e.without_url())))?
        {
            if bytes.len() + chunk.len() > MAX_HTTP_RESPONSE_BYTES {
                return Err(refused(format!(
                    "The response is larger than {MAX_HTTP_RESPONSE_BYTES} bytes."
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let parsed = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
        return Ok(json!({
            "statusCode": status.as_u16(),
            "headers": out_headers,
            "raw": raw,
            "json": parsed,
            "body": bytes,
        }));
    }
    Err(refused("Too many redirects."))
}
