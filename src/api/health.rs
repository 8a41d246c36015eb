//! `GET /api/health`.

use super::error::ApiError;
use crate::auth::Principal;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

pub async fn health(req: HttpRequest, who: Principal) -> Result<HttpResponse, ApiError> {
    let data = if who.is_superuser() {
        let ip = req
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        json!({"canBackup": false, "realIP": ip, "possibleProxyHeader": ""})
    } else {
        json!({})
    };
    super::respond::json(
        &req,
        json!({"message": "API is healthy.", "code": 200, "data": data}),
        false,
    )
}
