//! The HTTP API: actix handlers only, the route table, extractors and the
//! mapping of domain errors to PocketBase's error envelope. Handlers stay
//! thin: extract, call one domain function, shape the response.

mod auth;
mod backups;
mod batch;
mod collections;
mod crons;
pub mod error;
pub mod extract;
mod fields;
mod files;
mod health;
mod install;
mod logs;
mod mailer;
pub mod metrics;
pub mod middleware;
mod multipart;
mod oauth2;
mod oauth2_redirect;
pub mod ratelimit;
pub mod realtime;
mod records;
mod request_logs;
mod respond;
mod settings;

pub use backups::schedule as backups_schedule;
pub use error::ApiError;
pub use extract::AppState;

use actix_web::{HttpRequest, HttpResponse, Route, web};

/// Unknown routes and wrong methods answer 404 in the envelope (never 405).
async fn not_found(req: HttpRequest) -> HttpResponse {
    let message = if req.path().starts_with("/api/") {
        "File not found."
    } else {
        "The requested resource wasn't found."
    };
    actix_web::ResponseError::error_response(&ApiError::not_found(message))
}

/// A resource whose unmatched methods fall through to the JSON 404.
fn resource(path: &str, routes: Vec<Route>) -> actix_web::Resource {
    let mut r = web::resource(path).default_service(web::to(not_found));
    for route in routes {
        r = r.route(route);
    }
    r
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource(
        "/api/health",
        vec![
            web::get().to(health::health),
            web::head().to(health::health),
        ],
    ))
    .service(resource(
        "/api/backups",
        vec![
            web::get().to(backups::list),
            web::post().to(backups::create),
        ],
    ))
    .service(resource(
        "/api/backups/upload",
        vec![web::post().to(backups::upload)],
    ))
    .service(resource(
        "/api/backups/{key}",
        vec![
            web::get().to(backups::download),
            web::head().to(backups::download),
            web::delete().to(backups::delete),
        ],
    ))
    .service(resource(
        "/api/backups/{key}/restore",
        vec![web::post().to(backups::restore)],
    ))
    .service(resource("/api/crons", vec![web::get().to(crons::list)]))
    .service(resource(
        "/api/crons/{id}",
        vec![web::post().to(crons::run)],
    ))
    .service(resource(
        "/api/metrics",
        vec![web::get().to(metrics::metrics)],
    ))
    .service(resource(
        "/api/logs",
        vec![
            web::get().to(logs::list),
            web::delete().to(logs::delete_all),
        ],
    ))
    .service(resource(
        "/api/logs/stats",
        vec![web::get().to(logs::stats)],
    ))
    .service(resource("/api/logs/{id}", vec![web::get().to(logs::view)]))
    .service(resource(
        "/api/settings/test/email",
        vec![web::post().to(settings::test_email)],
    ))
    .service(resource(
        "/api/settings/test/s3",
        vec![web::post().to(settings::test_s3)],
    ))
    .service(resource(
        "/api/settings",
        vec![
            web::get().to(settings::get),
            web::patch().to(settings::patch),
        ],
    ))
    .service(resource(
        "/api/collections",
        vec![
            web::get().to(collections::list),
            web::post().to(collections::create),
        ],
    ))
    .service(resource(
        "/api/collections/meta/scaffolds",
        vec![web::get().to(collections::scaffolds)],
    ))
    .service(resource(
        "/api/collections/{c}",
        vec![
            web::get().to(collections::view),
            web::patch().to(collections::update),
            web::delete().to(collections::delete),
        ],
    ))
    .service(resource(
        "/api/collections/{c}/truncate",
        vec![web::delete().to(collections::truncate)],
    ))
    .service(resource(
        "/api/collections/{c}/records",
        vec![
            web::get().to(records::list),
            web::post().to(records::create),
        ],
    ))
    .service(resource(
        "/api/collections/{c}/records/{id}",
        vec![
            web::get().to(records::view),
            web::patch().to(records::update),
            web::delete().to(records::delete),
        ],
    ))
    .service(resource(
        "/api/collections/{c}/auth-with-password",
        vec![web::post().to(auth::with_password)],
    ))
    .service(resource(
        "/api/collections/{c}/auth-refresh",
        vec![web::post().to(auth::refresh)],
    ))
    .service(resource(
        "/api/collections/{c}/auth-methods",
        vec![web::get().to(auth::methods)],
    ))
    .service(resource(
        "/api/collections/{c}/request-otp",
        vec![web::post().to(auth::request_otp)],
    ))
    .service(resource(
        "/api/collections/{c}/auth-with-otp",
        vec![web::post().to(auth::with_otp)],
    ))
    .service(resource(
        "/api/oauth2-redirect",
        vec![
            web::get().to(oauth2_redirect::from_query),
            web::post().to(oauth2_redirect::from_form),
        ],
    ))
    .service(resource(
        "/api/collections/{c}/auth-with-oauth2",
        vec![web::post().to(oauth2::with_oauth2)],
    ))
    .service(resource(
        "/api/collections/{c}/request-verification",
        vec![web::post().to(auth::request_verification)],
    ))
    .service(resource(
        "/api/collections/{c}/confirm-verification",
        vec![web::post().to(auth::confirm_verification)],
    ))
    .service(resource(
        "/api/collections/{c}/request-password-reset",
        vec![web::post().to(auth::request_password_reset)],
    ))
    .service(resource(
        "/api/collections/{c}/confirm-password-reset",
        vec![web::post().to(auth::confirm_password_reset)],
    ))
    .service(resource(
        "/api/collections/{c}/request-email-change",
        vec![web::post().to(auth::request_email_change)],
    ))
    .service(resource(
        "/api/collections/{c}/confirm-email-change",
        vec![web::post().to(auth::confirm_email_change)],
    ))
    .service(resource(
        "/api/collections/{c}/impersonate/{id}",
        vec![web::post().to(auth::impersonate)],
    ))
    .service(resource("/api/batch", vec![web::post().to(batch::batch)]))
    .service(resource(
        "/api/files/token",
        vec![web::post().to(files::token)],
    ))
    .service(resource(
        "/api/files/{c}/{id}/{filename}",
        vec![web::get().to(files::serve), web::head().to(files::serve)],
    ))
    .service(resource(
        "/api/realtime",
        vec![
            web::get().to(realtime::connect),
            web::post().to(realtime::subscribe),
        ],
    ))
    .service(resource(
        "/api/_install",
        vec![web::post().to(install::install)],
    ))
    .service(resource(
        "/api/collections/meta/validate",
        vec![web::post().to(collections::validate)],
    ))
    .configure(crate::admin_ui::configure)
    .default_service(web::to(not_found));
}
