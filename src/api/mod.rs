//! The HTTP API: actix handlers only, the route table, extractors and the
//! mapping of domain errors to PocketBase's error envelope. Handlers stay
//! thin: extract, call one domain function, shape the response.

mod auth;
mod backups;
mod batch;
mod batch_hooked;
mod batch_request;
mod client_ip;
mod collections;
mod crons;
pub mod error;
pub mod extract;
mod fields;
mod files;
mod health;
pub mod hooks;
mod install;
mod logs;
mod mailer;
pub mod metrics;
pub mod middleware;
pub mod multipart;
mod oauth2;
mod oauth2_redirect;
mod openapi;
mod public;
pub mod ratelimit;
pub mod realtime;
mod records;
mod request_logs;
mod respond;
pub(crate) mod settings;
mod sql;

pub use backups::schedule as backups_schedule;
pub use error::ApiError;
pub use extract::AppState;
pub use public::PublicFiles;

use actix_web::{HttpRequest, HttpResponse, Route, web};
use ratelimit::{Action, Limited, limited};

/// Unknown routes and wrong methods answer 404 in the envelope (never 405).
async fn not_found(req: HttpRequest) -> HttpResponse {
    let message = if req.match_info().as_str().starts_with("/api/") {
        "File not found."
    } else {
        "The requested resource wasn't found."
    };
    actix_web::ResponseError::error_response(&ApiError::not_found(message))
}

/// The JSON 404, itself behind the path-label rate limits, so probing
/// unknown URLs costs the same as calling known ones.
fn not_found_route() -> Route {
    limited(web::to(not_found), Action::PathOnly).into_route()
}

/// A resource whose unmatched methods fall through to the JSON 404. Its
/// routes come with their rate-limit action attached (`ratelimit::limited`).
fn resource(path: &str, routes: Vec<Limited>) -> actix_web::Resource {
    let mut r = web::resource(path).default_service(not_found_route());
    for route in routes {
        r = r.route(route.into_route());
    }
    r
}

/// A route limited by path labels only (no collection action).
fn plain(route: Route) -> Limited {
    limited(route, Action::PathOnly)
}

/// A group of routes under a static prefix: actix compares the prefix as a
/// string and only then tries the group's patterns (each dynamic pattern is a
/// regex), so a request is matched against a handful of patterns, not all.
fn scope(prefix: &str) -> actix_web::Scope {
    web::scope(prefix).default_service(not_found_route())
}

/// Registers every route. Within a group the busiest routes come first.
pub fn configure(cfg: &mut web::ServiceConfig) {
    configure_with_hooks(cfg, None);
}

/// [`configure`], with the hooks' custom routes after the built-in API
/// routes and before the admin UI and static files.
pub fn configure_with_hooks(cfg: &mut web::ServiceConfig, custom: Option<&crate::hooks::Hooks>) {
    cfg.service(collection_routes())
        .service(resource(
            "/api/realtime",
            vec![
                plain(web::get().to(realtime::connect)),
                plain(web::post().to(realtime::subscribe)),
            ],
        ))
        .service(resource(
            "/api/health",
            vec![
                plain(web::get().to(health::health)),
                plain(web::head().to(health::health)),
            ],
        ))
        .service(resource(
            "/api/batch",
            vec![plain(web::post().to(batch::batch))],
        ))
        .service(
            scope("/api/files")
                .service(resource(
                    "/{c}/{id}/{filename}",
                    vec![
                        limited(web::get().to(files::serve), Action::File),
                        limited(web::head().to(files::serve), Action::File),
                    ],
                ))
                .service(resource(
                    "/token",
                    vec![plain(web::post().to(files::token))],
                )),
        )
        .service(
            scope("/api/backups")
                .service(resource(
                    "",
                    vec![
                        plain(web::get().to(backups::list)),
                        plain(web::post().to(backups::create)),
                    ],
                ))
                .service(resource(
                    "/upload",
                    vec![plain(web::post().to(backups::upload))],
                ))
                .service(resource(
                    "/{key}",
                    vec![
                        plain(web::get().to(backups::download)),
                        plain(web::head().to(backups::download)),
                        plain(web::delete().to(backups::delete)),
                    ],
                ))
                .service(resource(
                    "/{key}/restore",
                    vec![plain(web::post().to(backups::restore))],
                )),
        )
        .service(
            scope("/api/crons")
                .service(resource("", vec![plain(web::get().to(crons::list))]))
                .service(resource("/{id}", vec![plain(web::post().to(crons::run))])),
        )
        .service(resource(
            "/api/metrics",
            vec![plain(web::get().to(metrics::metrics))],
        ))
        .service(
            scope("/api/logs")
                .service(resource(
                    "",
                    vec![
                        plain(web::get().to(logs::list)),
                        plain(web::delete().to(logs::delete_all)),
                    ],
                ))
                .service(resource("/stats", vec![plain(web::get().to(logs::stats))]))
                .service(resource("/{id}", vec![plain(web::get().to(logs::view))])),
        )
        .service(
            scope("/api/settings")
                .service(resource(
                    "",
                    vec![
                        plain(web::get().to(settings::get)),
                        plain(web::patch().to(settings::patch)),
                    ],
                ))
                .service(resource(
                    "/test/email",
                    vec![plain(web::post().to(settings::test_email))],
                ))
                .service(resource(
                    "/apple/generate-client-secret",
                    vec![plain(web::post().to(oauth2::apple_client_secret))],
                ))
                .service(resource(
                    "/test/s3",
                    vec![plain(web::post().to(settings::test_s3))],
                )),
        )
        .service(resource(
            "/api/oauth2-redirect",
            vec![
                plain(web::get().to(oauth2_redirect::from_query)),
                plain(web::post().to(oauth2_redirect::from_form)),
            ],
        ))
        .service(resource("/api/sql", vec![plain(web::post().to(sql::run))]))
        .service(resource(
            "/api/openapi.json",
            vec![plain(web::get().to(openapi::document))],
        ))
        .service(resource(
            "/api/openapi.yaml",
            vec![plain(web::get().to(openapi::document_yaml))],
        ))
        .service(resource(
            "/api/typegen",
            vec![plain(web::get().to(openapi::typegen))],
        ))
        .service(resource(
            "/api/_install",
            vec![plain(web::post().to(install::install))],
        ))
        .configure(|cfg| {
            if let Some(custom) = custom {
                hooks::configure(cfg, custom);
            }
        })
        .configure(|cfg| crate::admin_ui::configure(cfg, |r| plain(r).into_route()))
        // Last: static files take only what no route above matched.
        .route(
            "/{path:.*}",
            plain(web::get().to(public::serve)).into_route(),
        )
        .route(
            "/{path:.*}",
            plain(web::head().to(public::serve)).into_route(),
        )
        .default_service(not_found_route());
}

/// `/api/collections/...`: records first, then collections, then auth flows.
fn collection_routes() -> actix_web::Scope {
    let single = |path: &str, route: Limited| resource(path, vec![route]);
    scope("/api/collections")
        .service(resource(
            "/{c}/records/{id}",
            vec![
                limited(web::get().to(records::view), Action::View),
                limited(web::patch().to(records::update), Action::Update),
                limited(web::delete().to(records::delete), Action::Delete),
            ],
        ))
        .service(resource(
            "/{c}/records",
            vec![
                limited(web::get().to(records::list), Action::List),
                limited(web::post().to(records::create), Action::Create),
            ],
        ))
        .service(single(
            "/{c}/aggregate",
            limited(web::get().to(records::aggregate), Action::List),
        ))
        .service(resource(
            "",
            vec![
                plain(web::get().to(collections::list)),
                plain(web::post().to(collections::create)),
            ],
        ))
        .service(resource(
            "/meta/scaffolds",
            vec![plain(web::get().to(collections::scaffolds))],
        ))
        .service(resource(
            "/meta/oauth2-providers",
            vec![plain(web::get().to(collections::oauth2_providers))],
        ))
        .service(single(
            "/meta/dry-run-view",
            plain(web::post().to(collections::dry_run_view)),
        ))
        .service(single("/import", plain(web::put().to(collections::import))))
        .service(single(
            "/meta/validate",
            plain(web::post().to(collections::validate)),
        ))
        .service(resource(
            "/{c}",
            vec![
                plain(web::get().to(collections::view)),
                plain(web::patch().to(collections::update)),
                plain(web::delete().to(collections::delete)),
            ],
        ))
        .service(resource(
            "/{c}/truncate",
            vec![plain(web::delete().to(collections::truncate))],
        ))
        .service(single(
            "/{c}/auth-with-password",
            limited(
                web::post().to(auth::with_password),
                Action::AuthWithPassword,
            ),
        ))
        .service(single(
            "/{c}/auth-refresh",
            limited(web::post().to(auth::refresh), Action::AuthRefresh),
        ))
        .service(resource(
            "/{c}/auth-methods",
            vec![limited(
                web::get().to(auth::methods),
                Action::ListAuthMethods,
            )],
        ))
        .service(single(
            "/{c}/request-otp",
            limited(web::post().to(auth::request_otp), Action::RequestOtp),
        ))
        .service(single(
            "/{c}/auth-with-otp",
            limited(web::post().to(auth::with_otp), Action::AuthWithOtp),
        ))
        .service(single(
            "/{c}/auth-with-oauth2",
            limited(web::post().to(oauth2::with_oauth2), Action::AuthWithOAuth2),
        ))
        .service(single(
            "/{c}/request-verification",
            limited(
                web::post().to(auth::request_verification),
                Action::RequestVerification,
            ),
        ))
        .service(single(
            "/{c}/confirm-verification",
            limited(
                web::post().to(auth::confirm_verification),
                Action::ConfirmVerification,
            ),
        ))
        .service(single(
            "/{c}/request-password-reset",
            limited(
                web::post().to(auth::request_password_reset),
                Action::RequestPasswordReset,
            ),
        ))
        .service(single(
            "/{c}/confirm-password-reset",
            limited(
                web::post().to(auth::confirm_password_reset),
                Action::ConfirmPasswordReset,
            ),
        ))
        .service(single(
            "/{c}/request-email-change",
            limited(
                web::post().to(auth::request_email_change),
                Action::RequestEmailChange,
            ),
        ))
        .service(single(
            "/{c}/confirm-email-change",
            limited(
                web::post().to(auth::confirm_email_change),
                Action::ConfirmEmailChange,
            ),
        ))
        .service(single(
            "/{c}/impersonate/{id}",
            plain(web::post().to(auth::impersonate)),
        ))
}
