//! Static files at `/` from the public dir (PocketBase's `pb_public`):
//! content types and caching headers, directories and redirects, the
//! index.html fallback, `/api/*` never shadowed, and path escapes (`..`
//! in every encoding, backslashes, NUL, dotfiles, symlinks out, long paths)
//! sent as raw bytes, since an HTTP client would normalise them first.

use crate::helpers::{TestApp, spawn_app, spawn_app_configured, status_json};
use reqwest::Method;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "SECRET-OUTSIDE-THE-PUBLIC-DIR";
const INDEX: &str = "<!doctype html><title>spa</title>";

fn write(path: &Path, body: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, body).expect("write");
}

/// A public dir with an index, a stylesheet, a docs folder, dotfiles,
/// and symlinks that point inside and outside it.
fn site(app: &TestApp) -> std::path::PathBuf {
    let public = app.data_dir.join("pb_public");
    write(&public.join("index.html"), INDEX);
    write(&public.join("style.css"), "body{}");
    write(&public.join("docs/index.html"), "docs index");
    write(
        &public.join("evil.example/index.html"),
        "a folder named like a host",
    );
    write(&public.join(".env"), SECRET);
    write(&public.join(".git/config"), SECRET);
    write(&public.join("docs/.hidden"), SECRET);
    write(&public.join(".well-known/security.txt"), "Contact: x");
    write(&public.join("api/x"), SECRET);
    write(&app.data_dir.join("secret.txt"), SECRET);
    std::os::unix::fs::symlink(app.data_dir.join("secret.txt"), public.join("leak"))
        .expect("symlink");
    std::os::unix::fs::symlink(&app.data_dir, public.join("dirleak")).expect("symlink");
    std::os::unix::fs::symlink(public.join("style.css"), public.join("alias.css"))
        .expect("symlink");
    public
}

/// Sends `GET {target}` byte for byte and returns (status, headers+body).
async fn raw_get(app: &TestApp, target: &[u8]) -> (u16, String) {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = b"GET ".to_vec();
    request.extend_from_slice(target);
    request.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(&request).await.expect("send");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(
        read.is_ok(),
        "the server answers {:?}",
        String::from_utf8_lossy(target)
    );
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("request")
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn files_are_served_with_their_type_and_validators() {
    let app = spawn_app().await;
    site(&app);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    let css = get(&app, "/style.css").await;
    let etag = header(&css, "etag").expect("ETag");
    let modified = header(&css, "last-modified").expect("Last-Modified");
    let content_type = header(&css, "content-type");
    let cache_control = header(&css, "cache-control");
    let disposition = header(&css, "content-disposition");
    let body = css.text().await.expect("body");
    let by_etag = no_redirects
        .get(format!("{}/style.css", app.base))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("conditional");
    let by_date = no_redirects
        .get(format!("{}/style.css", app.base))
        .header("If-Modified-Since", &modified)
        .send()
        .await
        .expect("conditional");
    let head = app
        .client
        .head(format!("{}/style.css", app.base))
        .send()
        .await
        .expect("head");
    let range = app
        .client
        .get(format!("{}/style.css", app.base))
        .header("Range", "bytes=0-3")
        .send()
        .await
        .expect("range");
    let root = get(&app, "/").await;
    let well_known = get(&app, "/.well-known/security.txt").await;
    let alias = get(&app, "/alias.css").await;

    assert_eq!(body, "body{}");
    assert!(content_type.is_some_and(|t| t.starts_with("text/css")));
    assert_eq!(cache_control, None, "PocketBase sets no Cache-Control here");
    assert_eq!(disposition, None, "PocketBase sends no Content-Disposition");
    assert_eq!(by_etag.status(), 304, "If-None-Match");
    assert_eq!(by_date.status(), 304, "If-Modified-Since");
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "content-length").as_deref(), Some("6"));
    assert_eq!(
        head.text().await.expect("head body"),
        "",
        "HEAD has no body"
    );
    assert_eq!(range.status(), 206);
    assert_eq!(range.text().await.expect("range body"), "body");
    assert_eq!(root.status(), 200);
    assert!(header(&root, "content-type").is_some_and(|t| t.starts_with("text/html")));
    assert_eq!(root.text().await.expect("root"), INDEX);
    assert_eq!(well_known.status(), 200, ".well-known is served");
    assert_eq!(
        alias.status(),
        200,
        "a symlink that stays inside is followed"
    );
}

#[tokio::test]
async fn directories_and_index_files_redirect_as_pocketbase_does() {
    let app = spawn_app().await;
    site(&app);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    for (path, status, location, why) in [
        ("/docs", 301, Some("/docs/"), "directory without a slash"),
        ("/docs/", 200, None, "directory serves its index.html"),
        (
            "/docs/index.html",
            301,
            Some("/docs/"),
            "index.html is dropped",
        ),
        (
            "/style.css/",
            301,
            Some("/style.css"),
            "file with a trailing slash",
        ),
        (
            "//evil.example",
            301,
            Some("/evil.example/"),
            "no open redirect",
        ),
    ] {
        let response = client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("request");

        assert_eq!(response.status(), status, "{why}");
        assert_eq!(header(&response, "location").as_deref(), location, "{why}");
    }
}

#[tokio::test]
async fn missing_paths_fall_back_to_the_index_only_when_enabled() {
    let with = spawn_app().await;
    site(&with);
    let without = spawn_app_configured(|c| c.public.index_fallback = false).await;
    site(&without);

    let spa = get(&with, "/app/settings/profile").await;
    let (status, body) = status_json(get(&without, "/app/settings/profile").await).await;
    let (post_status, post_body) =
        status_json(with.request(Method::POST, "/app/x", None, None).await).await;

    assert_eq!(spa.status(), 200);
    assert_eq!(spa.text().await.expect("body"), INDEX);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["status"], 404, "the JSON envelope: {body}");
    assert_eq!(
        post_status, 404,
        "only GET and HEAD are static: {post_body}"
    );
}

#[tokio::test]
async fn api_paths_are_never_shadowed_by_static_files() {
    let app = spawn_app().await;
    site(&app);

    for path in [
        "/api/unknown",
        "/api/x",
        "/api",
        "/api/",
        "/api/collections/nope/nope",
    ] {
        let response = get(&app, path).await;
        let content_type = header(&response, "content-type");
        let (status, body) = status_json(response).await;

        assert_eq!(status, 404, "{path}: {body}");
        assert!(content_type.is_some_and(|t| t.contains("json")), "{path}");
        assert_eq!(body["status"], 404, "{path}: {body}");
        assert!(!body.to_string().contains(SECRET), "{path}");
    }
    for target in [&b"/%61pi/x"[..], b"//api/x", b"/%61%70%69/x"] {
        let (status, answer) = raw_get(&app, target).await;
        assert_eq!(status, 404, "{answer}");
        assert!(
            !answer.contains(SECRET),
            "an encoded /api/ is still the API: {answer}"
        );
    }
    let health = get(&app, "/api/health").await;
    assert_eq!(health.status(), 200, "real API routes still answer");
}

#[tokio::test]
async fn no_path_reaches_outside_the_public_dir_or_into_hidden_files() {
    for fallback in [true, false] {
        let app = spawn_app_configured(move |c| c.public.index_fallback = fallback).await;
        site(&app);
        let absolute = app.data_dir.join("secret.txt");
        let long = format!("/{}", "a".repeat(5000));
        let deep = "/a".repeat(3000);
        let targets: Vec<(Vec<u8>, &str)> = vec![
            (b"/../secret.txt".to_vec(), "dot-dot"),
            (b"/docs/../../secret.txt".to_vec(), "dot-dot after a folder"),
            (b"/%2e%2e/secret.txt".to_vec(), "encoded dot-dot"),
            (b"/%2E%2E/secret.txt".to_vec(), "upper-case encoded dot-dot"),
            (
                b"/%2e%2e%2fsecret.txt".to_vec(),
                "encoded dot-dot and slash",
            ),
            (b"/..%2fsecret.txt".to_vec(), "encoded slash"),
            (b"/..%5csecret.txt".to_vec(), "encoded backslash"),
            (b"/..\\secret.txt".to_vec(), "raw backslash"),
            (b"/%252e%252e/secret.txt".to_vec(), "double-encoded dot-dot"),
            (b"/.%2e/secret.txt".to_vec(), "half-encoded dot-dot"),
            (
                format!("/{}", absolute.display()).into_bytes(),
                "absolute path",
            ),
            (
                format!("/%2f{}", absolute.display()).into_bytes(),
                "encoded absolute path",
            ),
            (b"/index.html%00.css".to_vec(), "NUL"),
            (b"/.env".to_vec(), "dotfile"),
            (b"/%2eenv".to_vec(), "encoded dotfile"),
            (b"/.git/config".to_vec(), "hidden folder"),
            (b"/docs/.hidden".to_vec(), "nested dotfile"),
            (b"/leak".to_vec(), "symlink to a file outside"),
            (
                b"/docs/../../../../../../etc/hostname".to_vec(),
                "dot-dot to /etc",
            ),
            (
                b"/dirleak/secret.txt".to_vec(),
                "symlink to a folder outside",
            ),
            (
                b"/dirleak/data.db".to_vec(),
                "the database through a symlink",
            ),
            (long.into_bytes(), "5000-byte name"),
            (deep.into_bytes(), "6000-byte path"),
        ];
        for (target, why) in targets {
            let (status, answer) = raw_get(&app, &target).await;

            assert!(
                !answer.contains(SECRET),
                "{why} (fallback {fallback}) leaked: {answer}"
            );
            assert_ne!(status, 0, "{why}: an HTTP answer");
            assert!(status < 500, "{why} (fallback {fallback}): {status}");
            if !fallback {
                assert!([400, 404].contains(&status), "{why}: refused, got {status}");
            }
        }
    }
}

#[tokio::test]
async fn without_a_public_dir_unknown_paths_keep_the_json_404() {
    let app = spawn_app().await;

    let (status, body) = status_json(get(&app, "/whatever").await).await;

    assert_eq!(status, 404);
    assert_eq!(body["status"], 404, "{body}");
}
