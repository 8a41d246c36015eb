//! Static files at `/` from the public directory (PocketBase's `pb_public`,
//! `--publicDir`), for GET and HEAD paths no API or admin route takes.
//! `/api` and everything under it keep the API's JSON 404 and are never
//! looked up on disk; `/_/` is the admin panel's (`admin_ui`).
//!
//! As PocketBase: a directory serves its `index.html` (after a redirect to
//! the trailing-slash URL), `/x/index.html` redirects to `/x/`, a file URL
//! with a trailing slash redirects to the bare one, and with
//! `index_fallback` a missing file answers with the root `index.html`.
//! Content-Type, ETag, Last-Modified, conditional GET and ranges come from
//! actix-files' `NamedFile`; like PocketBase no Cache-Control is set.
//!
//! Safer than PocketBase (whose `os.DirFS` follows symlinks anywhere and
//! serves dotfiles): a path is percent-decoded once and refused when it has
//! a NUL, a backslash, a `..` or any hidden segment (`.env`, `.git/`; only
//! `.well-known/` is served), and the file is opened at its canonical path
//! only if that still lies inside the public directory, so a symlink cannot
//! reach out of it.

use super::not_found;
use actix_files::NamedFile;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use std::path::{Path, PathBuf};

/// Longest request path looked up on disk, in bytes; longer ones are
/// missing files (Linux refuses paths past 4096 bytes anyway).
pub const MAX_PATH_BYTES: usize = 2048;
/// The file a directory (and the fallback) serves.
const INDEX: &str = "index.html";
/// The one hidden folder that is served (ACME challenges, app links).
const WELL_KNOWN: &str = ".well-known";

/// The public directory and whether missing files fall back to `index.html`.
pub struct PublicFiles {
    root: PathBuf,
    index_fallback: bool,
}

impl PublicFiles {
    pub fn new(root: PathBuf, index_fallback: bool) -> Self {
        Self {
            root,
            index_fallback,
        }
    }
}

/// What a request path names, once checked.
enum Found {
    File(PathBuf),
    /// Redirect to this URL path (canonical form of a directory or file).
    Redirect(String),
    Missing,
}

pub async fn serve(req: HttpRequest, public: web::Data<PublicFiles>) -> HttpResponse {
    let raw = req.uri().path().to_owned();
    if is_api(&raw) {
        return not_found(req).await;
    }
    let root = public.root.clone();
    let fallback = public.index_fallback;
    let found = web::block(move || resolve(&root, &raw, fallback)).await;
    match found {
        Ok(Found::File(path)) => match NamedFile::open_async(&path).await {
            Ok(file) => file.disable_content_disposition().into_response(&req),
            Err(_) => not_found(req).await,
        },
        Ok(Found::Redirect(location)) => HttpResponse::MovedPermanently()
            .insert_header((header::LOCATION, location))
            .finish(),
        Ok(Found::Missing) | Err(_) => not_found(req).await,
    }
}

/// Looks `raw` (the request's URL path, still percent-encoded) up under `root`.
fn resolve(root: &Path, raw: &str, fallback: bool) -> Found {
    let Ok(root) = root.canonicalize() else {
        return Found::Missing;
    };
    let found = lookup(&root, raw);
    match found {
        Found::Missing if fallback => match inside(&root, &root.join(INDEX)) {
            Some(index) if index.is_file() => Found::File(index),
            _ => Found::Missing,
        },
        other => other,
    }
}

fn lookup(root: &Path, raw: &str) -> Found {
    if raw.len() > MAX_PATH_BYTES {
        return Found::Missing;
    }
    let Some(segments) = segments(raw) else {
        return Found::Missing;
    };
    let Some(path) = inside(
        root,
        &segments.iter().fold(root.to_path_buf(), |p, s| p.join(s)),
    ) else {
        return Found::Missing;
    };
    let slash = raw.ends_with('/');
    if path.is_dir() {
        if !slash {
            return Found::Redirect(safe_redirect(&format!("{raw}/")));
        }
        return match inside(root, &path.join(INDEX)) {
            Some(index) if index.is_file() => Found::File(index),
            _ => Found::Missing,
        };
    }
    if !path.is_file() {
        return Found::Missing;
    }
    if slash {
        let bare = raw.trim_end_matches('/');
        if !bare.is_empty() {
            return Found::Redirect(safe_redirect(bare));
        }
    } else if raw.ends_with(&format!("/{INDEX}")) {
        let stripped = &raw[..raw.len() - INDEX.len()];
        return Found::Redirect(safe_redirect(stripped));
    }
    Found::File(path)
}

/// The path's segments, percent-decoded once; `None` when any is unsafe
/// (`..`, hidden, NUL, backslash, not UTF-8, bad escape).
fn segments(raw: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for encoded in raw.split('/') {
        let segment = String::from_utf8(percent_decode(encoded)?).ok()?;
        if segment.is_empty() || segment == "." {
            continue;
        }
        let hidden = segment.starts_with('.') && segment != WELL_KNOWN;
        // A decoded `/` (from %2F) would split differently than the router saw.
        if hidden || segment.contains(['\0', '\\', '/']) {
            return None;
        }
        out.push(segment);
    }
    Some(out)
}

/// Whether the path is `/api` or under it, also when spelt `/%61pi/` or
/// `//api/` (the router decodes and the segments ignore empty ones).
fn is_api(raw: &str) -> bool {
    raw.split('/')
        .find(|s| !s.is_empty())
        .and_then(percent_decode)
        .is_some_and(|first| first == b"api")
}

/// `%XX` decoded once; `None` on a malformed escape.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// `path` with every symlink resolved, if it exists and stays under `root`
/// (itself canonical).
fn inside(root: &Path, path: &Path) -> Option<PathBuf> {
    let real = path.canonicalize().ok()?;
    real.starts_with(root).then_some(real)
}

/// Collapses leading slashes and backslashes into one `/`, so a redirect
/// can never point at another host (`//evil.example/`), as PocketBase does.
fn safe_redirect(path: &str) -> String {
    let rest = path.trim_start_matches(['/', '\\']);
    format!("/{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_segments_are_refused_and_safe_ones_decoded_once() {
        for (raw, expected, why) in [
            ("/a/b.txt", Some(vec!["a", "b.txt"]), "plain"),
            ("/a%20b", Some(vec!["a b"]), "escaped space"),
            (
                "/%252e%252e/x",
                Some(vec!["%2e%2e", "x"]),
                "double-encoded stays literal",
            ),
            ("/./a//b", Some(vec!["a", "b"]), "dot and empty segments"),
            (
                "/.well-known/x",
                Some(vec![".well-known", "x"]),
                "well-known",
            ),
            ("/../etc/passwd", None, "dot-dot"),
            ("/%2e%2e/etc/passwd", None, "encoded dot-dot"),
            ("/a%2f..%2f..%2fetc", None, "encoded slash"),
            ("/a%5c..%5cetc", None, "encoded backslash"),
            ("/a\\b", None, "backslash"),
            ("/a%00.html", None, "NUL"),
            ("/.env", None, "dotfile"),
            ("/.git/config", None, "hidden folder"),
            ("/a/.htpasswd", None, "nested dotfile"),
            ("/%ff", None, "not UTF-8"),
            ("/%zz", None, "bad escape"),
            ("/%2", None, "short escape"),
        ] {
            let expected: Option<Vec<String>> =
                expected.map(|v| v.into_iter().map(str::to_owned).collect());
            assert_eq!(segments(raw), expected, "{why}: {raw}");
        }
    }

    #[test]
    fn every_spelling_of_the_api_prefix_is_left_to_the_api() {
        for (raw, api) in [
            ("/api", true),
            ("/api/", true),
            ("/api/x", true),
            ("/%61pi/x", true),
            ("/%61%70%69", true),
            ("//api/x", true),
            ("/apis", false),
            ("/x/api", false),
            ("/", false),
        ] {
            assert_eq!(is_api(raw), api, "{raw}");
        }
    }

    #[test]
    fn redirects_never_leave_the_host() {
        for (path, expected) in [
            ("//evil.example/", "/evil.example/"),
            ("/\\evil.example", "/evil.example"),
            ("/docs/", "/docs/"),
        ] {
            assert_eq!(safe_redirect(path), expected, "{path}");
        }
    }
}
