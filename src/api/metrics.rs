//! `GET /api/metrics` in the Prometheus text format: requests by route
//! template, method and status; latency histograms per route; the writer's
//! queue depth and group-commit sizes; reader-pool waits; request-log
//! queue; database and WAL sizes. Readable by superusers, or with the
//! bearer token of `[metrics] token`.

use super::error::ApiError;
use super::extract::AppState;
use crate::auth::Principal;
use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::{Method, header};
use actix_web::{HttpRequest, HttpResponse, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FileLabels {
    file: String,
}

/// The HTTP metrics, updated by the request middleware.
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(|| {
                // 0.25 ms .. ~8 s.
                Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
            }),
        }
    }
}

impl HttpMetrics {
    /// Counts a finished request under its route template (never the raw
    /// path, so ids do not explode the label space) and a method from a
    /// fixed set. Every label has a bounded set of values: routes come from
    /// the route table, statuses from our own responses.
    pub fn observe(&self, res: &ServiceResponse<BoxBody>, elapsed: Duration) {
        let req = res.request();
        let route = req
            .match_pattern()
            .unwrap_or_else(|| "(unmatched)".to_owned());
        let method = method_label(req.method()).to_owned();
        self.requests
            .get_or_create(&RequestLabels {
                method: method.clone(),
                route: route.clone(),
                status: res.status().as_u16(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { method, route })
            .observe(elapsed.as_secs_f64());
    }
}

/// The method as a label from a fixed set: clients may send any token as a
/// method, and each distinct label value is a series kept forever.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn allowed(req: &HttpRequest, who: &Principal, state: &AppState) -> bool {
    if who.is_superuser() {
        return true;
    }
    let token = &state.config.metrics.token;
    !token.is_empty()
        && req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let g = Gauge::<f64, AtomicU64>::default();
    g.set(value);
    registry.register(name, help, g);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

/// SQLite's writer, readers and file sizes (`data.db`, `auxiliary.db`).
fn register_sqlite(registry: &mut Registry, state: &AppState) {
    let db = state.db.stats();
    gauge(
        registry,
        "db_writer_queue_depth",
        "Writes waiting for the writer thread",
        db.writer_queue_depth as f64,
    );
    counter(
        registry,
        "db_group_commits",
        "Group commits (one transaction and sync each)",
        db.group_commits,
    );
    counter(
        registry,
        "db_grouped_writes",
        "Record writes committed in groups",
        db.grouped_jobs,
    );
    counter(
        registry,
        "db_exclusive_writes",
        "Writes that had the writer to themselves",
        db.exclusive_jobs,
    );
    counter(registry, "db_reads", "Reads on the reader pool", db.reads);
    gauge(
        registry,
        "db_reader_wait_seconds",
        "Total time reads waited for a free reader",
        db.read_wait_seconds,
    );
    let sizes = Family::<FileLabels, Gauge>::default();
    let (data, wal) = state.db.file_sizes();
    let (aux, aux_wal) = state.logs.db().file_sizes();
    for (file, bytes) in [
        ("data.db", data),
        ("data.db-wal", wal),
        ("auxiliary.db", aux),
        ("auxiliary.db-wal", aux_wal),
    ] {
        sizes
            .get_or_create(&FileLabels { file: file.into() })
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
    registry.register("db_file_size_bytes", "Database and WAL file sizes", sizes);
}

/// PostgreSQL's connection counters (issue 21), only when serving from it.
fn register_postgres(registry: &mut Registry, pg: crate::db::postgres::PgStatsSnapshot) {
    counter(
        registry,
        "db_pg_jobs",
        "Jobs run on PostgreSQL connections",
        pg.jobs,
    );
    gauge(
        registry,
        "db_pg_wait_seconds",
        "Total time jobs waited for a free PostgreSQL connection",
        pg.wait_micros as f64 / 1e6,
    );
    counter(
        registry,
        "db_pg_retries",
        "PostgreSQL transactions run again after a deadlock or serialization failure",
        pg.retries,
    );
    counter(
        registry,
        "db_pg_deadlocks",
        "PostgreSQL deadlocks met",
        pg.deadlocks,
    );
    counter(
        registry,
        "db_pg_serialization_failures",
        "PostgreSQL serialization failures met",
        pg.serialization_failures,
    );
    counter(
        registry,
        "db_pg_reconnects",
        "PostgreSQL connections opened again after being lost",
        pg.reconnects,
    );
}

pub async fn metrics(
    req: HttpRequest,
    who: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !allowed(&req, &who, &state) {
        return Err(match who {
            Principal::Anonymous => {
                ApiError::unauthorized("The request requires valid record authorization token.")
            }
            _ => {
                ApiError::forbidden("The authorized record is not allowed to perform this action.")
            }
        });
    }
    let mut registry = Registry::with_prefix("ferrobase");
    registry.register(
        "http_requests",
        "HTTP requests by route template, method and status",
        state.metrics.requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "HTTP request latency by route template and method",
        state.metrics.latency.clone(),
    );
    // Each engine's own counters: PostgreSQL has no writer thread or files.
    match state.db.postgres_stats() {
        Some(pg) => register_postgres(&mut registry, pg),
        None => register_sqlite(&mut registry, &state),
    }
    counter(
        &mut registry,
        "logs_written",
        "Request log entries written",
        state.logs.written(),
    );
    counter(
        &mut registry,
        "logs_dropped",
        "Request log entries dropped because the queue was full",
        state.logs.dropped(),
    );
    gauge(
        &mut registry,
        "logs_queued",
        "Request log entries waiting to be written",
        state.logs.queued() as f64,
    );
    gauge(
        &mut registry,
        "realtime_clients",
        "Connected realtime (SSE) clients",
        state.realtime.client_count() as f64,
    );
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &registry).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_map_to_a_fixed_set_of_labels() {
        for (method, label) in [
            ("GET", "GET"),
            ("PATCH", "PATCH"),
            ("OPTIONS", "OPTIONS"),
            ("TRACE", "other"),
            ("get", "other"),
            ("XABCDEFGHIJ", "other"),
        ] {
            let m = Method::from_bytes(method.as_bytes()).expect("method");
            assert_eq!(method_label(&m), label, "{method}");
        }
    }
}
