//! `GET /api/health`. On PostgreSQL it is also the readiness check for a
//! load balancer: 503 (in the error envelope) while the database does not
//! answer or the node's realtime listener is not connected.

use super::client_ip;
use super::error::ApiError;
use super::extract::AppState;
use crate::auth::Principal;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use std::time::Duration;

/// How long the readiness query may take before the node counts as not ready.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a database answer counts: a failure is always probed again,
/// so a database that stops answering is seen within this.
pub const READINESS_KEPT: Duration = Duration::from_secs(1);

/// Superusers also see the client IP as resolved (to check `trustedProxy`),
/// a proxy header the request carries while none is trusted, whether
/// Litestream replication is `off`, `running` or `down`, and on PostgreSQL
/// whether this node leads the cron jobs (`cronLeader`).
pub async fn health(
    req: HttpRequest,
    who: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if let Some(link) = &state.nodes {
        ready(&state, link).await?;
    }
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
        let mut data = json!({"canBackup": false, "realIP": ip, "possibleProxyHeader": hint,
               "replication": replication});
        // Not in PocketBase: on PostgreSQL, whether this node runs the cron jobs.
        if let Some(leader) = state.crons.is_leader() {
            data["cronLeader"] = json!(leader);
        }
        data
    } else {
        json!({})
    };
    super::respond::json(
        &req,
        json!({"message": "API is healthy.", "code": 200, "data": data}),
        false,
    )
}

/// On PostgreSQL: the database answers within [`READINESS_TIMEOUT`] (or did
/// less than [`READINESS_KEPT`] ago) and the listener that brings the other
/// nodes' changes is connected.
async fn ready(state: &AppState, link: &crate::nodes::Link) -> Result<(), ApiError> {
    let unavailable =
        |message: &str| ApiError::from_parts(StatusCode::SERVICE_UNAVAILABLE, message, json!({}));
    if !link.is_connected() {
        return Err(unavailable(
            "The node is not ready: its realtime listener is not connected.",
        ));
    }
    if link.answered_within(READINESS_KEPT) {
        return Ok(());
    }
    let probe = state
        .db
        .read_conn::<_, crate::db::DbError>(|c| c.integer("SELECT 1", &[]));
    match tokio::time::timeout(READINESS_TIMEOUT, probe).await {
        Ok(Ok(1)) => {
            link.note_answered();
            Ok(())
        }
        _ => Err(unavailable(
            "The node is not ready: the database does not answer.",
        )),
    }
}
