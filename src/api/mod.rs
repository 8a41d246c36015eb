//! The HTTP API: actix handlers only, the route table, extractors and the
//! mapping of domain errors to PocketBase's error envelope. Handlers stay
//! thin: extract, call one domain function, shape the response.

mod auth;
mod backups;
mod batch;
mod client_ip;
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
pub mod multipart;
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

/// A group of routes under a static prefix: actix compares the prefix as a
/// string and only then tries the group's patterns (each dynamic pattern is a
/// regex), so a request is matched against a handful of patterns, not all.
fn scope(prefix: &str) -> actix_web::Scope {
    web::scope(prefix).default_service(web::to(not_found))
}

/// Registers every route. Within a group the busiest routes come first.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(collection_routes())
        .service(resource(
            "/api/realtime",
            vec![
                web::get().to(realtime::connect),
                web::post().to(realtime::subscribe),
            ],
        ))
        .service(resource(
            "/api/health",
            vec![
                web::get().to(health::health),
                web::head().to(health::health),
            ],
        ))
        .service(resource("/api/batch", vec![web::post().to(batch::batch)]))
        .service(
            scope("/api/files")
                .service(resource(
                    "/{c}/{id}/{filename}",
                    vec![web::get().to(files::serve), web::head().to(files::serve)],
                ))
                .service(resource("/token", vec![web::post().to(files::token)])),
        )
        .service(
            scope("/api/backups")
                .service(resource(
                    "",
                    vec![
                        web::get().to(backups::list),
                        web::post().to(backups::create),
                    ],
                ))
                .service(resource("/upload", vec![web::post().to(backups::upload)]))
                .service(resource(
                    "/{key}",
                    vec![
                        web::get().to(backups::download),
                        web::head().to(backups::download),
                        web::delete().to(backups::delete),
                    ],
                ))
                .service(resource(
                    "/{key}/restore",
                    vec![web::post().to(backups::restore)],
                )),
        )
        .service(
            scope("/api/crons")
                .service(resource("", vec![web::get().to(crons::list)]))
                .service(resource("/{id}", vec![web::post().to(crons::run)])),
        )
        .service(resource(
            "/api/metrics",
            vec![web::get().to(metrics::metrics)],
        ))
        .service(
            scope("/api/logs")
                .service(resource(
                    "",
                    vec![
                        web::get().to(logs::list),
                        web::delete().to(logs::delete_all),
                    ],
                ))
                .service(resource("/stats", vec![web::get().to(logs::stats)]))
                .service(resource("/{id}", vec![web::get().to(logs::view)])),
        )
        .service(
            scope("/api/settings")
                .service(resource(
                    "",
                    vec![
                        web::get().to(settings::get),
                        web::patch().to(settings::patch),
                    ],
                ))
                .service(resource(
                    "/test/email",
                    vec![web::post().to(settings::test_email)],
                ))
                .service(resource(
                    "/test/s3",
                    vec![web::post().to(settings::test_s3)],
                )),
        )
        .service(resource(
            "/api/oauth2-redirect",
            vec![
                web::get().to(oauth2_redirect::from_query),
                web::post().to(oauth2_redirect::from_form),
            ],
        ))
        .service(resource(
            "/api/_install",
            vec![web::post().to(install::install)],
        ))
        .configure(crate::admin_ui::configure)
        .default_service(web::to(not_found));
}

/// `/api/collections/...`: records first, then collections, then auth flows.
fn collection_routes() -> actix_web::Scope {
    let single = |path: &str, route: Route| resource(path, vec![route]);
    scope("/api/collections")
        .service(resource(
            "/{c}/records/{id}",
            vec![
                web::get().to(records::view),
                web::patch().to(records::update),
                web::delete().to(records::delete),
            ],
        ))
        .service(resource(
            "/{c}/records",
            vec![
                web::get().to(records::list),
                web::post().to(records::create),
            ],
        ))
        .service(resource(
            "",
            vec![
                web::get().to(collections::list),
                web::post().to(collections::create),
            ],
        ))
        .service(resource(
            "/meta/scaffolds",
            vec![web::get().to(collections::scaffolds)],
        ))
        .service(single(
            "/meta/validate",
            web::post().to(collections::validate),
        ))
        .service(resource(
            "/{c}",
            vec![
                web::get().to(collections::view),
                web::patch().to(collections::update),
                web::delete().to(collections::delete),
            ],
        ))
        .service(resource(
            "/{c}/truncate",
            vec![web::delete().to(collections::truncate)],
        ))
        .service(single(
            "/{c}/auth-with-password",
            web::post().to(auth::with_password),
        ))
        .service(single("/{c}/auth-refresh", web::post().to(auth::refresh)))
        .service(resource(
            "/{c}/auth-methods",
            vec![web::get().to(auth::methods)],
        ))
        .service(single(
            "/{c}/request-otp",
            web::post().to(auth::request_otp),
        ))
        .service(single("/{c}/auth-with-otp", web::post().to(auth::with_otp)))
        .service(single(
            "/{c}/auth-with-oauth2",
            web::post().to(oauth2::with_oauth2),
        ))
        .service(single(
            "/{c}/request-verification",
            web::post().to(auth::request_verification),
        ))
        .service(single(
            "/{c}/confirm-verification",
            web::post().to(auth::confirm_verification),
        ))
        .service(single(
            "/{c}/request-password-reset",
            web::post().to(auth::request_password_reset),
        ))
        .service(single(
            "/{c}/confirm-password-reset",
            web::post().to(auth::confirm_password_reset),
        ))
        .service(single(
            "/{c}/request-email-change",
            web::post().to(auth::request_email_change),
        ))
        .service(single(
            "/{c}/confirm-email-change",
            web::post().to(auth::confirm_email_change),
        ))
        .service(single(
            "/{c}/impersonate/{id}",
            web::post().to(auth::impersonate),
        ))
}
