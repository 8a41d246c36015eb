//! The admin panel: the files of `admin-ui/dist` compiled into the binary
//! with rust-embed and served under `/_/`. Vite names every built asset by
//! its content hash (`assets/index-3f2a….js`), so those are cached forever;
//! `index.html` (which names the current assets) is revalidated on each load.
//! Any other path under `/_/` is a client-side route and gets `index.html`.
//! Building the UI is Node's job (`admin-ui/`); this module only serves bytes.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Route, web};
use rust_embed::{EmbeddedFile, RustEmbed};

#[derive(RustEmbed)]
#[folder = "admin-ui/dist/"]
struct Dist;

/// Where the panel lives; must match Vite's `base` in `admin-ui/vite.config.ts`.
pub const MOUNT: &str = "/_/";

/// Hashed build output: safe to cache for a year (`immutable`).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Entry points and unhashed files: always revalidate (cheap with the ETag).
const REVALIDATE: &str = "no-cache";
/// Vite's output folder for hashed files.
const HASHED_PREFIX: &str = "assets/";

/// Registers `/_` (redirect) and `/_/{path}`, each route passed through
/// `wrap` (the API attaches its rate limiter there).
pub fn configure(cfg: &mut web::ServiceConfig, wrap: impl Fn(Route) -> Route) {
    cfg.route("/_", wrap(web::get().to(redirect)))
        .route("/_", wrap(web::head().to(redirect)))
        .route("/_/{tail:.*}", wrap(web::get().to(serve)))
        .route("/_/{tail:.*}", wrap(web::head().to(serve)));
}

async fn redirect() -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, MOUNT))
        .finish()
}

async fn serve(req: HttpRequest, tail: web::Path<String>) -> HttpResponse {
    let path = tail.into_inner();
    let path = path.trim_start_matches('/');
    match Dist::get(path).filter(|_| !path.is_empty()) {
        Some(file) => respond(&req, path, file),
        // A missing hashed asset is a stale page asking for an old build:
        // answer 404 rather than HTML the browser would try to run as a script.
        None if path.starts_with(HASHED_PREFIX) => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("Not found"),
        None => match Dist::get("index.html") {
            Some(index) => respond(&req, "index.html", index),
            None => HttpResponse::NotFound()
                .content_type("text/plain; charset=utf-8")
                .body("The admin UI was not built into this binary."),
        },
    }
}

fn respond(req: &HttpRequest, path: &str, file: EmbeddedFile) -> HttpResponse {
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let cache = if path.starts_with(HASHED_PREFIX) {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut builder = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    builder
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static(cache)))
        .insert_header((header::ETAG, etag));
    if not_modified {
        return builder.finish();
    }
    builder
        .insert_header((header::CONTENT_TYPE, content_type(&file)))
        .body(file.data.into_owned())
}

/// The guessed MIME type, with a charset for text so browsers never sniff.
fn content_type(file: &EmbeddedFile) -> String {
    let mime = file.metadata.mimetype();
    let texty = mime.starts_with("text/")
        || mime == "application/javascript"
        || mime == "text/javascript"
        || mime == "application/json"
        || mime == "image/svg+xml";
    if texty && !mime.contains("charset") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_panel_is_embedded_with_an_index_and_hashed_assets() {
        assert!(Dist::get("index.html").is_some(), "index.html embedded");
        assert!(
            Dist::iter().any(|p| p.starts_with(HASHED_PREFIX) && p.ends_with(".js")),
            "a hashed script embedded"
        );
    }
}
