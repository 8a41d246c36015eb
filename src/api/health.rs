//! `GET /api/health`.

use super::client_ip;
use super::error::ApiError;
use super::extract::AppState;
use crate::auth::Principal;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

/// Superusers also see the client IP as resolved (to check `trustedProxy`),
/// a proxy header the request carries while none is trusted, and whether
/// Litestream replication is `off`, `running` or `down`.
pub async fn health(
    req: HttpRequest,
    who: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let data = if who.is_superuser() {
        let settings = state.settings.get();
        let ip = client_ip::resolve(req.headers(), req.peer_addr(), &settings.trusted_proxy)
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        let hint = client_ip::possible_proxy_header(req.headers(), &settings.trusted_proxy);
        // Not in PocketBase: whether the supervised Litestream runs.
        let replication = match crate::replication::health() {
            None => "off",
            Some(true) => "running",
            Some(false) => "down",
        };
        json!({"canBackup": false, "realIP": ip, "possibleProxyHeader": hint,
               "replication": replication})
    } else {
        json!({})
    };
    super::respond::json(
        &req,
        json!({"message": "API is healthy.", "code": 200, "data": data}),
        false,
    )
}
