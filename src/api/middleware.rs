//! Cross-cutting HTTP behaviour: CORS (PocketBase's defaults: any origin,
//! 204 preflight echoing the requested headers), security headers, the
//! `superuserIPs` allow-list for requests carrying a superuser token, one
//! structured log line per request with a request id, and (several nodes on
//! PostgreSQL) caches brought up to date before an API request runs.

use super::error::ApiError;
use super::extract::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use std::sync::Arc;
use std::time::Instant;

/// Allowed origins; `*` allows all.
#[derive(Clone)]
pub struct CorsPolicy(pub Arc<Vec<String>>);

impl CorsPolicy {
    fn allow_value(&self, origin: &str) -> Option<String> {
        if self.0.iter().any(|o| o == "*") {
            Some("*".to_owned())
        } else if self.0.iter().any(|o| o == origin) {
            Some(origin.to_owned())
        } else {
            None
        }
    }
}

const ALLOWED_METHODS: &str = "GET,HEAD,PUT,PATCH,POST,DELETE";

pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let policy = req.app_data::<web::Data<CorsPolicy>>().cloned();
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let allow = match (&policy, &origin) {
        (Some(p), Some(o)) => p.allow_value(o),
        _ => None,
    };
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut resp = HttpResponse::NoContent();
        resp.insert_header((
            header::VARY,
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ));
        if let Some(allow) = allow {
            resp.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, allow));
            resp.insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS));
            if let Some(h) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                resp.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone()));
            }
        }
        return Ok(req.into_response(resp.finish()));
    }
    let mut res = next.call(req).await?.map_into_boxed_body();
    let headers = res.headers_mut();
    headers.insert(header::VARY, header::HeaderValue::from_static("Origin"));
    if let Some(allow) = allow.and_then(|a| header::HeaderValue::from_str(&a).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    }
    Ok(res)
}

/// Adds PocketBase's security headers to every response.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Stored files may be embedded by other pages (PocketBase drops the header there).
    let is_file = req.match_info().as_str().starts_with("/api/files/");
    let mut res = next.call(req).await?.map_into_boxed_body();
    let is_file = is_file && res.status().is_success();
    let headers = res.headers_mut();
    for (name, value) in [
        ("x-xss-protection", "1; mode=block"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "SAMEORIGIN"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        if is_file && name == "x-frame-options" {
            continue;
        }
        headers.insert(
            header::HeaderName::from_static(name),
            header::HeaderValue::from_static(value),
        );
    }
    Ok(res)
}

/// On PostgreSQL: the schema and settings caches are made as new as the
/// database's before an API request runs (`nodes::Link::ensure_fresh`), so
/// a change committed on another node applies here at once. Not for
/// `/api/health`, which must answer while the database does not.
pub async fn fresh_caches(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let path = req.path();
    if path.starts_with("/api/") && path != "/api/health" {
        let link = req
            .app_data::<web::Data<AppState>>()
            .and_then(|state| state.nodes.clone());
        if let Some(link) = link {
            link.ensure_fresh().await;
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Refuses every request authorized as a superuser from an address outside
/// `settings.superuserIPs` (when the list is not empty), as PocketBase does:
/// 403 in the envelope, before any handler runs. Logins that would hand out
/// a superuser token are refused where the token is issued (`api::auth`).
pub async fn superuser_ips(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>().cloned() {
        let settings = state.settings.get();
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.trim().is_empty())
            .map(str::to_owned);
        if let (false, Some(header)) = (settings.superuser_ips.is_empty(), header) {
            let who = crate::auth::resolve_token(&state.db, &state.registry, &header).await;
            // Kept for the `Principal` extractor and the limiter: one lookup per request.
            req.extensions_mut().insert(who.clone());
            let ip =
                super::client_ip::resolve(req.headers(), req.peer_addr(), &settings.trusted_proxy);
            if who.is_superuser() && !settings.allows_superuser_from(ip) {
                let refusal = ApiError::forbidden("You are not allowed to perform this request.");
                return Ok(req.into_response(refusal.error_response()));
            }
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Whether to log each request (from config).
#[derive(Clone, Copy)]
pub struct RequestLogging(pub bool);

/// Tags the request with an id (`X-Request-Id`) and logs one line when it completes.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let enabled = req
        .app_data::<web::Data<RequestLogging>>()
        .is_some_and(|l| l.0);
    let request_id = crate::schema::autogen::random_string("0123456789abcdef", 16);
    let method = req.method().clone();
    let path = req.path().to_owned();
    let started = Instant::now();
    let mut res = next.call(req).await?.map_into_boxed_body();
    super::request_logs::record(&res, started.elapsed());
    if let Ok(v) = header::HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), v);
    }
    if enabled {
        tracing::info!(
            request_id = %request_id,
            method = %method,
            path = %path,
            status = res.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
    Ok(res)
}

/// The server drops a request's future when its client hangs up (see
/// `app.rs`), which interrupts a read still running for it in the database.
/// A write must not stop half way (committed, but its files not moved into
/// place or its realtime events not sent), so a request with an unsafe
/// method runs to completion on its own task even after its client left.
pub async fn finish_writes(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method().is_safe() {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let task = actix_web::rt::spawn(async move {
        next.call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body)
    });
    task.await.map_err(super::error::ApiError::internal)?
}
