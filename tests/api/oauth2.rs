//! OAuth2 login against a real (small) OpenID Connect provider that each
//! test starts on loopback: authorize → code → token (PKCE checked) →
//! userinfo. Plus login alerts through the SMTP sink.

use crate::helpers::{TestApp, spawn_app, spawn_app_configured, spawn_app_with_mail, status_json};
use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENT_ID: &str = "ferrobase-test";
const CLIENT_SECRET: &str = "provider-secret";

/// An issued code: the PKCE challenge and redirect it was issued for, and whose it is.
struct Grant {
    challenge: String,
    redirect_uri: String,
    user: Value,
}

#[derive(Default)]
struct ProviderState {
    grants: HashMap<String, Grant>,
    tokens: HashMap<String, Value>,
    counter: u64,
}

type Shared = web::Data<Arc<Mutex<ProviderState>>>;

/// Users the provider knows, by the `login_hint` the test passes.
fn user_named(hint: &str) -> Value {
    match hint {
        "alice" => json!({"sub": "alice-123", "name": "Alice A.", "preferred_username": "alice",
                          "email": "alice@idp.test", "email_verified": true}),
        "bob" => {
            json!({"sub": "bob-456", "name": "Bob", "email": "bob@idp.test", "email_verified": true})
        }
        "victim" => json!({"sub": "victim-1", "name": "Victim",
                           "email": "victim@example.com", "email_verified": true}),
        "mallory" => json!({"sub": "mallory-666", "name": "Mallory",
                            "email": "mallory@idp.test", "email_verified": true}),
        // A Microsoft Graph `/me` answer whose `mail` a tenant admin set to
        // someone else's address (the nOAuth class): Graph never says it is verified.
        "graph-mallory" => json!({"id": "graph-666", "displayName": "Mallory",
                                  "mail": "victim@example.com",
                                  "userPrincipalName": "mallory@evil.onmicrosoft.com"}),
        // A provider answering the token request with an absurd `expires_in`.
        "huge-expiry" => json!({"sub": "huge-1", "name": "Huge", "email": "huge@idp.test",
                                "email_verified": true, "_expires_in": i64::MAX}),
        hint => provider_shaped(hint).unwrap_or_else(|| {
            json!({"sub": "eve-789", "name": "Eve", "email": "eve@idp.test", "email_verified": false})
        }),
    }
}

/// Users in the shape of a catalog provider's user-info answer. `_emails`
/// is what the provider's address list answers (404 without it);
/// `_header` a header the user-info request must carry.
fn provider_shaped(hint: &str) -> Option<Value> {
    Some(match hint {
        "gh-octo" => json!({"id": 583231, "login": "octocat", "name": "The Octocat",
                            "email": "public@victim.test", "avatar_url": "https://avatars.test/o.png",
                            "_emails": [{"email": "public@victim.test", "primary": false, "verified": false},
                                        {"email": "octo@gh.test", "primary": true, "verified": true}]}),
        "gh-unverified" => json!({"id": 9, "login": "nover", "email": "victim@example.com",
                                  "_emails": [{"email": "victim@example.com", "primary": true, "verified": false}]}),
        "gh-noscope" => json!({"id": 10, "login": "noscope", "email": "victim@example.com"}),
        "gl-confirmed" => json!({"id": 8, "username": "gl", "name": "GL", "email": "gl@gl.test",
                                 "confirmed_at": "2024-01-02T03:04:05Z"}),
        "gl-unconfirmed" => json!({"id": 81, "username": "gl2", "email": "victim@example.com",
                                   "confirmed_at": null}),
        "twitch-user" => {
            json!({"data": [{"id": "tw1", "login": "streamer", "display_name": "Streamer",
                                          "email": "tw@twitch.test", "profile_image_url": "https://p.test/t"}],
                                "_header": ["client-id", CLIENT_ID]})
        }
        "linear-user" => {
            json!({"data": {"viewer": {"id": "lin1", "name": "Lin", "displayName": "lin",
                                                   "email": "victim@example.com", "active": true}},
                                "_graphql": true})
        }
        "bitbucket-closed" => json!({"uuid": "{bb}", "username": "bb", "account_status": "closed",
                                     "_emails": {"values": [{"email": "bb@bb.test", "is_primary": true,
                                                             "is_confirmed": true}]}}),
        "bitbucket-user" => json!({"uuid": "{bb2}", "username": "bb2", "account_status": "active",
                                   "_emails": {"values": [{"email": "bb2@bb.test", "is_primary": true,
                                                           "is_confirmed": true}]}}),
        "gitee-user" => json!({"id": 11, "login": "gt", "email": "victim@example.com",
                               "_emails": [{"email": "gt@gitee.test", "state": "confirmed", "scope": ["primary"]}]}),
        "facebook-user" => json!({"id": "fb1", "name": "FB", "email": "victim@example.com"}),
        "twitch-empty" => json!({"data": []}),
        // Graph `/me` plus an id_token whose `email` the domain owner verified.
        "graph-edov" => json!({"id": "g-1", "displayName": "Edov", "mail": "victim@example.com",
                               "_id_token": {"aud": CLIENT_ID, "oid": "g-1", "email": "edov@ms.test",
                                             "xms_edov": true, "iat": chrono::Utc::now().timestamp()}}),
        // Hostile or broken user-info answers (`_respond` picks the answer).
        "hostile-huge"
        | "hostile-500"
        | "hostile-html"
        | "hostile-array"
        | "hostile-deep"
        | "hostile-noid"
        | "hostile-huge-emails" => {
            json!({"sub": "", "id": 5, "_respond": hint,
                   "_emails": [{"email": "x@x.test", "primary": true, "verified": true}]})
        }
        // Apple: no user-info endpoint; the user is the `id_token` the token
        // endpoint returns (`_id_token` claims, signed with the test key;
        // `_tamper` changes the claims after signing).
        "apple-user" | "apple-wrong-aud" | "apple-wrong-iss" | "apple-tampered"
        | "apple-unverified" => {
            let now = chrono::Utc::now().timestamp();
            let mut claims = json!({"iss": "https://appleid.apple.com", "aud": CLIENT_ID,
                                    "sub": format!("{hint}.001"), "email": format!("{hint}@apple.test"),
                                    "email_verified": "true", "iat": now, "exp": now + 600});
            match hint {
                "apple-wrong-aud" => claims["aud"] = json!("another-app"),
                "apple-wrong-iss" => claims["iss"] = json!("https://evil.test"),
                "apple-unverified" => claims["email_verified"] = json!("false"),
                _ => {}
            }
            json!({"_id_token": claims, "_tamper": hint == "apple-tampered"})
        }
        // OIDC users whose `picture` is served by the fake provider
        // (`http://PROVIDER` becomes its address when answered).
        "pic-ok" | "pic-text" | "pic-huge" | "pic-redirect" | "pic-to-admin" => {
            let path = match hint {
                "pic-ok" => "/avatar.png",
                "pic-text" => "/not-image",
                "pic-huge" => "/huge.png",
                "pic-redirect" => "/to-avatar",
                _ => "/to-admin",
            };
            json!({"sub": format!("{hint}-1"), "name": "Pic", "email": format!("{hint}@idp.test"),
                   "email_verified": true, "picture": format!("http://PROVIDER{path}")})
        }
        _ => return None,
    })
}

async fn authorize(state: Shared, query: web::Query<HashMap<String, String>>) -> HttpResponse {
    let q = query.into_inner();
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("client_id") != CLIENT_ID || get("response_type") != "code" {
        return HttpResponse::BadRequest().finish();
    }
    let mut s = state.lock().expect("provider state");
    s.counter += 1;
    let code = format!("code-{}", s.counter);
    let redirect_uri = get("redirect_uri");
    s.grants.insert(
        code.clone(),
        Grant {
            challenge: get("code_challenge"),
            redirect_uri: redirect_uri.clone(),
            user: user_named(&get("login_hint")),
        },
    );
    let location = format!("{redirect_uri}?code={code}&state={}", get("state"));
    HttpResponse::Found()
        .insert_header(("Location", location))
        .finish()
}

/// Client id and secret from HTTP Basic (RFC 6749, 2.3.1, which our server
/// tries first) or else from the form.
fn client_credentials(
    req: &actix_web::HttpRequest,
    form: &HashMap<String, String>,
) -> (String, String) {
    let basic = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    match basic.as_deref().and_then(|b| b.split_once(':')) {
        Some((id, secret)) => (id.to_owned(), secret.to_owned()),
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    }
}

async fn token(
    state: Shared,
    req: actix_web::HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let f = form.into_inner();
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    if client_credentials(&req, &f) != (CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned()) {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    }
    let mut s = state.lock().expect("provider state");
    let Some(grant) = s.grants.remove(&get("code")) else {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}));
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(get("code_verifier").as_bytes()));
    if get("grant_type") != "authorization_code"
        // Providers without PKCE (Linear, Bitbucket, VK) get no challenge.
        || (!grant.challenge.is_empty() && challenge != grant.challenge)
        || get("redirect_uri") != grant.redirect_uri
    {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}));
    }
    s.counter += 1;
    let access = format!("access-{}", s.counter);
    let expires_in = grant
        .user
        .get("_expires_in")
        .cloned()
        .unwrap_or(json!(3600));
    let id_token = grant.user.get("_id_token").map(|claims| {
        let token = sign_id_token(claims);
        if grant.user["_tamper"] == json!(true) {
            // Same header and signature, other claims: a forged token.
            let mut forged = claims.clone();
            forged["sub"] = json!("victim.001");
            let parts: Vec<&str> = token.split('.').collect();
            let body = URL_SAFE_NO_PAD.encode(forged.to_string());
            format!("{}.{body}.{}", parts[0], parts[2])
        } else {
            token
        }
    });
    s.tokens.insert(access.clone(), grant.user);
    let mut answer = json!({"access_token": access, "refresh_token": "r1",
                            "token_type": "Bearer", "expires_in": expires_in});
    if let Some(id_token) = id_token {
        answer["id_token"] = json!(id_token);
    }
    HttpResponse::Ok().json(answer)
}

async fn userinfo(state: Shared, req: actix_web::HttpRequest) -> HttpResponse {
    let bearer = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let Some(user) = state
        .lock()
        .expect("provider state")
        .tokens
        .get(&bearer)
        .cloned()
    else {
        return HttpResponse::Unauthorized().finish();
    };
    if let Some([name, value]) = user["_header"].as_array().map(Vec::as_slice) {
        let sent = req
            .headers()
            .get(name.as_str().unwrap_or_default())
            .and_then(|v| v.to_str().ok());
        if sent != value.as_str() {
            return HttpResponse::BadRequest().json(json!({"error": "missing header"}));
        }
    }
    match user["_respond"].as_str() {
        Some("hostile-huge") => {
            let filler = "x".repeat(2 * 1024 * 1024);
            return HttpResponse::Ok().json(json!({"sub": "huge", "email": "h@x.test",
                                                  "email_verified": true, "pad": filler}));
        }
        Some("hostile-500") => {
            return HttpResponse::InternalServerError().json(json!({"error": "boom"}));
        }
        Some("hostile-html") => {
            return HttpResponse::Ok()
                .content_type("text/html")
                .body("<html>login</html>");
        }
        Some("hostile-array") => return HttpResponse::Ok().json(json!([{"sub": "a"}])),
        Some("hostile-deep") => {
            let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
            return HttpResponse::Ok()
                .content_type("application/json")
                .body(deep);
        }
        Some("hostile-noid") => {
            return HttpResponse::Ok().json(json!({"name": "No Id", "email": "n@x.test",
                                                  "email_verified": true}));
        }
        _ => {}
    }
    let is_post = req.method() == actix_web::http::Method::POST;
    if user["_graphql"] == json!(true) && !is_post {
        return HttpResponse::MethodNotAllowed().finish();
    }
    let host = req.connection_info().host().to_owned();
    let answer = user
        .to_string()
        .replace("http://PROVIDER", &format!("http://{host}"));
    HttpResponse::Ok()
        .content_type("application/json")
        .body(answer)
}

/// A P-256 key made for these tests only (signs the fake `id_token`s).
const TEST_EC_KEY_DER_B64: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgC/TL7bFGxWVf+J7UdZZ0CZ3RD8Gop3LuaCM+dZpawUahRANCAATCLxdwLbvN9JyAWtn87QN4W6khow5lfJCf8Am65D7echRCtViI6I1SOScJF9ZZlHVRWA/8RAdktAz66MWzjD14";

fn sign_id_token(claims: &Value) -> String {
    let der = base64::engine::general_purpose::STANDARD
        .decode(TEST_EC_KEY_DER_B64)
        .expect("der");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ec_der(&der),
    )
    .expect("signs")
}

/// The JWKS holding the test key's public half.
async fn jwks() -> HttpResponse {
    HttpResponse::Ok().json(
        json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256",
        "use": "sig", "x": "wi8XcC27zfScgFrZ_O0DeFupIaMOZXyQn_AJuuQ-3nI",
        "y": "FEK1WIjojVI5JwkX1lmUdVFYD_xEB2S0DProxbOMPXg"}]}),
    )
}

/// A 1×1 PNG.
const AVATAR_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

fn png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(AVATAR_PNG)
        .expect("png")
}

async fn avatar_png() -> HttpResponse {
    HttpResponse::Ok().content_type("image/png").body(png())
}

async fn huge_png() -> HttpResponse {
    let mut body = png();
    body.resize(6 * 1024 * 1024, 0);
    HttpResponse::Ok().content_type("image/png").body(body)
}

async fn not_image() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/png")
        .body("<html>admin</html>")
}

async fn to_avatar() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", "/avatar.png"))
        .finish()
}

/// A redirect to a private address (the metadata service).
async fn to_admin() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", "http://169.254.169.254/latest/meta-data/"))
        .finish()
}

/// A same-origin 307 to the real token endpoint (the body goes along).
async fn token_moved() -> HttpResponse {
    HttpResponse::TemporaryRedirect()
        .insert_header(("Location", "/token"))
        .finish()
}

/// A 307 to another origin, given as `?to=` (a provider gone rogue, or a
/// compromised proxy in front of it).
async fn token_away(query: web::Query<HashMap<String, String>>) -> HttpResponse {
    HttpResponse::TemporaryRedirect()
        .insert_header(("Location", query.get("to").cloned().unwrap_or_default()))
        .finish()
}

/// A server on another port that keeps every request body it receives.
async fn start_collector() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shared = web::Data::new(seen.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(shared.clone()).default_service(web::to(
            |seen: web::Data<Arc<Mutex<Vec<String>>>>, body: web::Bytes| async move {
                if let Ok(mut seen) = seen.lock() {
                    seen.push(String::from_utf8_lossy(&body).into_owned());
                }
                HttpResponse::Ok().json(json!({"access_token": "stolen", "token_type": "Bearer"}))
            },
        ))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("collector binds");
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    (format!("http://127.0.0.1:{port}"), seen)
}

/// The user's address list (`/userinfo/emails`, `/emails`): `_emails`, or 404.
async fn emails(state: Shared, req: actix_web::HttpRequest) -> HttpResponse {
    let bearer = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    match state.lock().expect("provider state").tokens.get(&bearer) {
        Some(user) if user["_respond"] == json!("hostile-huge-emails") => {
            let many: Vec<Value> = (0..40_000)
                .map(|i| json!({"email": format!("e{i}@x.test"), "primary": false, "verified": true}))
                .collect();
            HttpResponse::Ok().json(many)
        }
        Some(user) if user.get("_emails").is_some() => HttpResponse::Ok().json(&user["_emails"]),
        Some(_) => HttpResponse::NotFound().finish(),
        None => HttpResponse::Unauthorized().finish(),
    }
}

/// Starts the provider; returns its base URL.
pub(crate) async fn start_provider() -> String {
    let state = web::Data::new(Arc::new(Mutex::new(ProviderState::default())));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/authorize", web::get().to(authorize))
            .route("/token", web::post().to(token))
            .route("/userinfo", web::get().to(userinfo))
            .route("/userinfo", web::post().to(userinfo))
            .route("/userinfo/emails", web::get().to(emails))
            .route("/emails", web::get().to(emails))
            .route("/jwks", web::get().to(jwks))
            .route("/avatar.png", web::get().to(avatar_png))
            .route("/huge.png", web::get().to(huge_png))
            .route("/not-image", web::get().to(not_image))
            .route("/to-avatar", web::get().to(to_avatar))
            .route("/to-admin", web::get().to(to_admin))
            .route("/token-moved", web::post().to(token_moved))
            .route("/token-away", web::post().to(token_away))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("provider binds");
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    format!("http://127.0.0.1:{port}")
}

pub(crate) async fn enable_oidc(app: &TestApp, provider: &str) {
    let (status, body) = status_json(
        app.update_collection(
            "users",
            json!({"oauth2": {"enabled": true, "providers": [{
                "name": "oidc", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                "displayName": "Test IdP",
                "authURL": format!("{provider}/authorize"),
                "tokenURL": format!("{provider}/token"),
                "userInfoURL": format!("{provider}/userinfo"),
            }]}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["oauth2"]["providers"][0].get("clientSecret").is_none(),
        "secrets are write-only: {body}"
    );
}

/// Enables the fake provider twice, as `oidc` and `oidc2` (two "providers"
/// for tests about links from another provider).
async fn enable_two_oidc(app: &TestApp, provider: &str) {
    let entry = |name: &str| {
        json!({"name": name, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
               "displayName": "Test IdP",
               "authURL": format!("{provider}/authorize"),
               "tokenURL": format!("{provider}/token"),
               "userInfoURL": format!("{provider}/userinfo")})
    };
    let (status, body) = status_json(
        app.update_collection(
            "users",
            json!({"oauth2": {"enabled": true, "providers": [entry("oidc"), entry("oidc2")]}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Walks the provider's authorize step as a browser would; returns (code, verifier, redirect).
async fn authorize_as(app: &TestApp, hint: &str) -> (String, String, String) {
    authorize_with(app, 0, hint).await
}

/// [`authorize_as`] through the `index`th enabled provider.
async fn authorize_with(app: &TestApp, index: usize, hint: &str) -> (String, String, String) {
    let (_, methods) = status_json(
        app.request(
            Method::GET,
            "/api/collections/users/auth-methods",
            None,
            None,
        )
        .await,
    )
    .await;
    let provider = &methods["oauth2"]["providers"][index];
    let redirect = format!("{}/api/oauth2-redirect", app.base);
    let url = format!(
        "{}{}&login_hint={hint}",
        provider["authURL"].as_str().expect("authURL"),
        redirect
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = client.get(&url).send().await.expect("authorize");
    assert_eq!(resp.status(), 302, "authorize {url}");
    let location = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let code = location
        .split("code=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("code in the redirect")
        .to_owned();
    let verifier = provider["codeVerifier"]
        .as_str()
        .expect("verifier")
        .to_owned();
    (code, verifier, redirect)
}

async fn oauth2_login(app: &TestApp, body: Value) -> (u16, Value) {
    status_json(
        app.request(
            Method::POST,
            "/api/collections/users/auth-with-oauth2",
            None,
            Some(body),
        )
        .await,
    )
    .await
}

/// A whole OAuth2 login through provider `name` (`oidc` is index 0, `oidc2`
/// index 1) as the provider's user `hint`, optionally as a logged-in record
/// and with `createData`.
pub(crate) async fn oauth2_flow(
    app: &TestApp,
    provider: &str,
    hint: &str,
    token: Option<&str>,
    create_data: Value,
) -> (u16, Value) {
    let index = if provider == "oidc2" { 1 } else { 0 };
    let (code, verifier, redirect) = authorize_with(app, index, hint).await;
    status_json(
        app.request(
            Method::POST,
            "/api/collections/users/auth-with-oauth2",
            token,
            Some(
                json!({"provider": provider, "code": code, "codeVerifier": verifier,
                        "redirectURL": redirect, "createData": create_data}),
            ),
        )
        .await,
    )
    .await
}

/// Signs up through the public create endpoint, as an attacker would.
async fn guest_sign_up(app: &TestApp, email: &str, password: &str) -> Value {
    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/records",
            None,
            Some(json!({"email": email, "password": password, "passwordConfirm": password})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "sign-up: {body}");
    body
}

/// Status of a password login.
async fn password_login(app: &TestApp, email: &str, password: &str) -> u16 {
    app.request(
        Method::POST,
        "/api/collections/users/auth-with-password",
        None,
        Some(json!({"identity": email, "password": password})),
    )
    .await
    .status()
    .as_u16()
}

/// Status of `auth-refresh` with `token`.
async fn refresh_status(app: &TestApp, token: &str) -> u16 {
    app.request(
        Method::POST,
        "/api/collections/users/auth-refresh",
        Some(token),
        None,
    )
    .await
    .status()
    .as_u16()
}

/// The (provider, providerId) links of record `id`.
async fn links_of(app: &TestApp, id: &str) -> Vec<(String, String)> {
    let filter = format!("recordRef = '{id}'");
    let (status, links) = status_json(
        app.list_records(
            "_externalAuths",
            &[("filter", filter.as_str())],
            Some(&app.superuser_token.clone()),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{links}");
    let mut out: Vec<(String, String)> = links["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|l| {
                    (
                        l["provider"].as_str().unwrap_or_default().to_owned(),
                        l["providerId"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[tokio::test]
async fn a_password_pre_set_by_an_attacker_dies_when_the_victim_signs_in_with_oauth2() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    enable_oidc(&app, &provider).await;
    let planted = guest_sign_up(&app, "victim@example.com", "attacker-pass-1").await;
    let attacker_token = app
        .login_as("users", "victim@example.com", "attacker-pass-1")
        .await;

    let (status, body) = oauth2_flow(&app, "oidc", "victim", None, json!({})).await;
    let password_after = password_login(&app, "victim@example.com", "attacker-pass-1").await;
    let token_after = refresh_status(&app, &attacker_token).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["record"]["id"], planted["id"], "linked by email");
    assert_eq!(body["record"]["verified"], true, "{body}");
    assert_eq!(password_after, 400, "the attacker's password must be reset");
    assert_eq!(
        token_after, 401,
        "the attacker's tokens must die (tokenKey rotated)"
    );
}

#[tokio::test]
async fn an_oauth2_link_planted_by_an_attacker_is_dropped_when_the_victim_signs_in() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    enable_two_oidc(&app, &provider).await;

    // Mallory signs up with her own provider account but the victim's email.
    let (planted_status, planted) = oauth2_flow(
        &app,
        "oidc2",
        "mallory",
        None,
        json!({"email": "victim@example.com"}),
    )
    .await;
    let attacker_token = planted["token"].as_str().unwrap_or_default().to_owned();
    let (status, victim) = oauth2_flow(&app, "oidc", "victim", None, json!({})).await;
    let victim_id = victim["record"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let links = links_of(&app, &victim_id).await;
    let (again_status, again) = oauth2_flow(&app, "oidc2", "mallory", None, json!({})).await;
    let token_after = refresh_status(&app, &attacker_token).await;

    assert_eq!(planted_status, 200, "{planted}");
    assert_eq!(
        planted["record"]["verified"], false,
        "createData.email is not the provider's email: {planted}"
    );
    assert_eq!(status, 200, "{victim}");
    assert_eq!(victim["record"]["id"], planted["record"]["id"]);
    assert_eq!(victim["record"]["verified"], true);
    assert_eq!(
        links,
        vec![("oidc".to_owned(), "victim-1".to_owned())],
        "only the victim's own link survives"
    );
    assert_eq!(again_status, 200, "{again}");
    assert_ne!(
        again["record"]["id"], victim["record"]["id"],
        "mallory's provider account must no longer open the victim's record"
    );
    assert_eq!(token_after, 401, "mallory's earlier token must die");
}

#[tokio::test]
async fn only_the_exact_provider_email_verifies_a_new_account() {
    for (create_email, verified, why) in [
        ("someone-else@example.com", false, "another address"),
        (
            "Alice@IDP.test",
            false,
            "the provider's address in another case",
        ),
        ("", true, "blank falls back to the provider's address"),
        ("alice@idp.test", true, "the provider's address itself"),
    ] {
        let app = spawn_app().await;
        let provider = start_provider().await;
        enable_oidc(&app, &provider).await;

        let (status, body) =
            oauth2_flow(&app, "oidc", "alice", None, json!({"email": create_email})).await;

        assert_eq!(status, 200, "{why}: {body}");
        assert_eq!(body["record"]["verified"], verified, "{why}: {body}");
    }
}

#[tokio::test]
async fn linking_oauth2_to_your_own_unverified_account_keeps_your_password() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    enable_oidc(&app, &provider).await;
    let own = guest_sign_up(&app, "own@example.com", "own-pass-123").await;
    let token = app
        .login_as("users", "own@example.com", "own-pass-123")
        .await;

    let (status, body) = oauth2_flow(&app, "oidc", "alice", Some(&token), json!({})).await;
    let password_after = password_login(&app, "own@example.com", "own-pass-123").await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["record"]["id"], own["id"]);
    assert_eq!(
        body["record"]["verified"], false,
        "the provider's email is another address"
    );
    assert_eq!(password_after, 200, "the caller's own password stays");
}

#[tokio::test]
async fn an_oauth2_email_lookup_matches_the_email_index_case_rule() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    enable_oidc(&app, &provider).await;
    let other = guest_sign_up(&app, "ALICE@idp.test", "other-pass-123").await;

    let (status, body) = oauth2_flow(&app, "oidc", "alice", None, json!({})).await;

    // The default email index is case-sensitive (as in PocketBase), so
    // "ALICE@idp.test" is another account: no link, a new record.
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["record"]["id"], other["id"], "{body}");
    assert_eq!(
        password_login(&app, "ALICE@idp.test", "other-pass-123").await,
        200,
        "the other account is untouched"
    );
}

#[tokio::test]
async fn first_login_signs_up_and_the_second_reuses_the_account() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    enable_oidc(&app, &provider).await;

    let (code, verifier, redirect) = authorize_as(&app, "alice").await;
    let (status, first) = oauth2_login(
        &app,
        json!({"provider": "oidc", "code": code, "codeVerifier": verifier,
               "redirectURL": redirect, "createData": {"emailVisibility": true}}),
    )
    .await;
    let (code2, verifier2, redirect2) = authorize_as(&app, "alice").await;
    let (status2, second) = oauth2_login(
        &app,
        json!({"provider": "oidc", "code": code2, "codeVerifier": verifier2, "redirectURL": redirect2}),
    )
    .await;
    let (_, links) = status_json(
        app.su(Method::GET, "/api/collections/_externalAuths/records", None)
            .await,
    )
    .await;

    assert_eq!(status, 200, "{first}");
    assert_eq!(first["meta"]["isNew"], true);
    assert_eq!(first["meta"]["email"], "alice@idp.test");
    assert_eq!(first["meta"]["rawUser"]["sub"], "alice-123");
    assert_eq!(first["record"]["email"], "alice@idp.test");
    assert_eq!(first["record"]["verified"], true);
    assert_eq!(first["record"]["emailVisibility"], true);
    assert_eq!(first["record"]["name"], "Alice A.", "mappedFields.name");
    assert!(first["token"].as_str().is_some_and(|t| t.len() > 20));
    assert_eq!(status2, 200, "{second}");
    assert_eq!(second["meta"]["isNew"], false);
    assert_eq!(second["record"]["id"], first["record"]["id"]);
    assert_eq!(links["totalItems"], 1);
    assert_eq!(links["items"][0]["providerId"], "alice-123");
}

#[tokio::test]
async fn an_existing_account_with_the_same_verified_email_is_linked() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    enable_oidc(&app, &provider).await;
    let existing = app
        .create_record_ok(
            "users",
            json!({"email": "bob@idp.test", "password": "bob-pass-123", "passwordConfirm": "bob-pass-123"}),
        )
        .await;

    let (code, verifier, redirect) = authorize_as(&app, "bob").await;
    let (status, body) = oauth2_login(
        &app,
        json!({"provider": "oidc", "code": code, "codeVerifier": verifier, "redirectURL": redirect}),
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["record"]["id"], existing["id"]);
    assert_eq!(body["meta"]["isNew"], false);
    assert_eq!(
        body["record"]["verified"], true,
        "the provider vouched for the email"
    );
}

#[tokio::test]
async fn an_unverified_provider_email_neither_links_nor_verifies() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    enable_oidc(&app, &provider).await;
    let existing = app
        .create_record_ok(
            "users",
            json!({"email": "eve@idp.test", "password": "eve-pass-123", "passwordConfirm": "eve-pass-123"}),
        )
        .await;

    let (code, verifier, redirect) = authorize_as(&app, "eve").await;
    let (status, body) = oauth2_login(
        &app,
        json!({"provider": "oidc", "code": code, "codeVerifier": verifier, "redirectURL": redirect}),
    )
    .await;

    let (_, links) = status_json(
        app.su(Method::GET, "/api/collections/_externalAuths/records", None)
            .await,
    )
    .await;
    let (_, after) = status_json(
        app.get_record(
            "users",
            existing["id"].as_str().unwrap_or_default(),
            Some(&app.superuser_token.clone()),
        )
        .await,
    )
    .await;

    // Without a trusted email there is no account to link and none can be
    // created (email is required): no takeover, nothing written.
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["data"]["email"]["code"], "validation_required");
    assert_eq!(links["totalItems"], 0);
    assert_eq!(after["verified"], false);
}

#[tokio::test]
async fn bad_codes_verifiers_and_providers_are_rejected_and_create_nothing() {
    let app = spawn_app().await;
    let provider = start_provider().await;

    let (disabled, _) = oauth2_login(&app, json!({"provider": "oidc", "code": "x"})).await;
    enable_oidc(&app, &provider).await;
    let (missing, missing_body) = oauth2_login(&app, json!({})).await;
    let (unknown, unknown_body) =
        oauth2_login(&app, json!({"provider": "github", "code": "x"})).await;
    let (bad_code, bad_code_body) = oauth2_login(
        &app,
        json!({"provider": "oidc", "code": "never-issued", "codeVerifier": "v", "redirectURL": "http://x"}),
    )
    .await;
    let (code, _, redirect) = authorize_as(&app, "alice").await;
    let (bad_verifier, _) = oauth2_login(
        &app,
        json!({"provider": "oidc", "code": code, "codeVerifier": "not-the-verifier", "redirectURL": redirect}),
    )
    .await;
    let (_, users) = status_json(
        app.su(Method::GET, "/api/collections/users/records", None)
            .await,
    )
    .await;
    let (bad_config, bad_config_body) = status_json(
        app.update_collection(
            "users",
            json!({"oauth2": {"providers": [{"name": "nope", "clientId": "a", "clientSecret": "b"}]}}),
        )
        .await,
    )
    .await;

    assert_eq!(disabled, 403);
    assert_eq!(missing, 400);
    assert_eq!(missing_body["data"]["code"]["code"], "validation_required");
    assert_eq!(unknown, 400);
    assert_eq!(
        unknown_body["data"]["provider"]["code"],
        "validation_invalid_provider"
    );
    assert_eq!(bad_code, 400);
    assert_eq!(bad_code_body["message"], "Failed to fetch OAuth2 token.");
    assert_eq!(bad_verifier, 400, "PKCE is enforced end to end");
    assert_eq!(users["totalItems"], 0);
    assert_eq!(bad_config, 400);
    assert_eq!(
        bad_config_body["data"]["oauth2"]["providers"]["0"]["name"]["code"],
        "validation_missing_provider"
    );
}

#[tokio::test]
async fn the_token_request_follows_redirects_only_within_the_providers_origin() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    let (collector, seen) = start_collector().await;

    for (token_url, expected, why) in [
        (
            format!("{provider}/token-moved"),
            200,
            "a same-origin redirect is followed",
        ),
        (
            format!("{provider}/token-away?to={collector}/steal"),
            400,
            "a redirect to another origin is not followed",
        ),
    ] {
        let (status, body) = status_json(
            app.update_collection(
                "users",
                json!({"oauth2": {"enabled": true, "providers": [{
                    "name": "oidc", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                    "authURL": format!("{provider}/authorize"),
                    "tokenURL": token_url,
                    "userInfoURL": format!("{provider}/userinfo"),
                }]}}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = oauth2_flow(&app, "oidc", "alice", None, json!({})).await;
        assert_eq!(status, expected, "{why}: {body}");
    }
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        seen.is_empty(),
        "the client secret and code never reach another origin: {seen:?}"
    );
}

#[tokio::test]
async fn a_login_from_a_new_origin_sends_an_alert_once() {
    let (app, sink) = spawn_app_with_mail().await;
    let password = "alert-pass-123";
    app.create_record_ok(
        "users",
        json!({"email": "alert@example.com", "password": password, "passwordConfirm": password}),
    )
    .await;
    let login = |agent: &'static str| {
        let client = reqwest::Client::builder()
            .user_agent(agent)
            .build()
            .expect("client");
        let url = format!("{}/api/collections/users/auth-with-password", app.base);
        async move {
            client
                .post(url)
                .json(&json!({"identity": "alert@example.com", "password": password}))
                .send()
                .await
                .expect("login")
                .status()
                .as_u16()
        }
    };

    let statuses = [
        login("laptop-browser").await,
        login("laptop-browser").await,
        login("phone-app").await,
        login("phone-app").await,
    ];
    let alert = sink
        .wait_for("alert@example.com", Duration::from_secs(5))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(statuses, [200; 4]);
    let alert = alert.expect("an alert for the new origin");
    assert!(alert.decoded().contains("phone-app"), "{}", alert.decoded());
    assert_eq!(
        sink.count_for("alert@example.com"),
        1,
        "first login and repeated origins send nothing"
    );
}

#[tokio::test]
async fn a_deleted_accounts_links_and_sessions_do_not_pass_to_a_new_record_with_its_id() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    enable_oidc(&app, &provider).await;
    let (status, first) = oauth2_flow(&app, "oidc", "alice", None, json!({})).await;
    assert_eq!(status, 200, "{first}");
    let old_id = first["record"]["id"].as_str().expect("id").to_owned();

    let deleted = app.delete_record("users", &old_id).await.status();
    let mut leftovers = Vec::new();
    for table in ["_externalAuths", "_mfas", "_otps", "_authOrigins"] {
        let filter = format!("recordRef = '{old_id}'");
        let (_, rows) = status_json(
            app.list_records(
                table,
                &[("filter", filter.as_str())],
                Some(&app.superuser_token.clone()),
            )
            .await,
        )
        .await;
        leftovers.push((table, rows["totalItems"].clone()));
    }
    // Someone else signs up and picks the freed id.
    let (reuse_status, reused) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/records",
            None,
            Some(json!({"id": old_id, "email": "newcomer@example.com",
                        "password": "newcomer-123", "passwordConfirm": "newcomer-123"})),
        )
        .await,
    )
    .await;
    let (again_status, again) = oauth2_flow(&app, "oidc", "alice", None, json!({})).await;

    assert_eq!(deleted, 204);
    for (table, total) in leftovers {
        assert_eq!(
            total, 0,
            "{table} rows of the deleted record must go with it"
        );
    }
    assert_eq!(reuse_status, 200, "{reused}");
    assert_eq!(again_status, 200, "{again}");
    assert_ne!(
        again["record"]["id"], old_id,
        "alice's provider account must not open the newcomer's record"
    );
}

#[tokio::test]
async fn oauth2_login_answers_403_when_the_auth_rule_refuses_the_account() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    enable_oidc(&app, &provider).await;
    let (status, body) = status_json(
        app.update_collection("users", json!({"authRule": "name != 'Alice A.'"}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let mut answers = Vec::new();
    for hint in ["alice", "bob"] {
        let (code, verifier, redirect) = authorize_as(&app, hint).await;
        answers.push(
            oauth2_login(
                &app,
                json!({"provider": "oidc", "code": code, "codeVerifier": verifier,
                       "redirectURL": redirect}),
            )
            .await,
        );
    }

    let (alice, alice_body) = &answers[0];
    let (bob, bob_body) = &answers[1];
    assert_eq!(
        *alice, 403,
        "alice's mapped name fails the rule: {alice_body}"
    );
    assert_eq!(
        alice_body["message"],
        "The request doesn't satisfy the collection requirements to authenticate."
    );
    assert!(alice_body.get("token").is_none(), "{alice_body}");
    assert_eq!(*bob, 200, "bob passes the rule: {bob_body}");
}

/// Replaces the `users` collection's `updated` autodate by `touched`, so no
/// field of that name is left (as on an auth collection made through the API).
async fn rename_updated_to_touched(app: &TestApp) {
    let (_, users) = status_json(app.su(Method::GET, "/api/collections/users", None).await).await;
    let mut fields: Vec<Value> = users["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter(|f| f["name"] != "updated")
        .cloned()
        .collect();
    fields.push(json!({"name": "touched", "type": "autodate", "onCreate": true, "onUpdate": true}));
    let (status, body) = status_json(
        app.update_collection("users", json!({"fields": fields}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["fields"]
            .as_array()
            .is_some_and(|f| f.iter().all(|f| f["name"] != "updated")),
        "{body}"
    );
}

#[tokio::test]
async fn an_oauth2_link_works_on_an_auth_collection_without_an_updated_field() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    enable_oidc(&app, &provider).await;
    rename_updated_to_touched(&app).await;
    let planted = guest_sign_up(&app, "victim@example.com", "attacker-pass-1").await;
    tokio::time::sleep(Duration::from_millis(5)).await;

    let (status, body) = oauth2_flow(&app, "oidc", "victim", None, json!({})).await;
    let (signup_status, signup) = oauth2_flow(&app, "oidc", "alice", None, json!({})).await;
    let password_after = password_login(&app, "victim@example.com", "attacker-pass-1").await;
    let token = app.superuser_token.clone();
    let id = planted["id"].as_str().expect("id");
    let (_, after) = status_json(app.get_record("users", id, Some(&token)).await).await;

    assert_eq!(status, 200, "linking an existing account: {body}");
    assert_eq!(body["record"]["id"], planted["id"], "linked by email");
    assert_eq!(body["record"]["verified"], true, "{body}");
    assert_eq!(password_after, 400, "the attacker's password must be reset");
    assert_ne!(
        after["touched"], planted["touched"],
        "the link must stamp the on-update autodate: {after}"
    );
    assert!(after.get("updated").is_none(), "{after}");
    assert_eq!(signup_status, 200, "signing up a new account: {signup}");
    assert_eq!(signup["record"]["verified"], true, "{signup}");
}

/// Enables the fake provider under a catalog name other than OIDC, with
/// its endpoints pointed at the fake.
async fn enable_as(app: &TestApp, provider: &str, name: &str) {
    let (status, body) = status_json(
        app.update_collection(
            "users",
            json!({"oauth2": {"enabled": true, "providers": [{
                "name": name, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                "authURL": format!("{provider}/authorize"),
                "tokenURL": format!("{provider}/token"),
                "userInfoURL": format!("{provider}/userinfo"),
            }]}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_microsoft_mail_neither_links_to_nor_verifies_the_account_with_that_address() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    enable_as(&app, &provider, "microsoft").await;
    let victim = app
        .create_record_ok(
            "users",
            json!({"email": "victim@example.com", "password": "victim-pass-1", "passwordConfirm": "victim-pass-1"}),
        )
        .await;
    let victim_id = victim["id"].as_str().expect("id").to_owned();
    let (status, _) = status_json(
        app.update_record("users", &victim_id, json!({"verified": true}))
            .await,
    )
    .await;
    assert_eq!(status, 200);

    let (status, body) = oauth2_flow(&app, "microsoft", "graph-mallory", None, json!({})).await;

    assert_ne!(
        status, 200,
        "no session from an unverified Graph mail: {body}"
    );
    assert_ne!(
        body["record"]["id"].as_str(),
        Some(victim_id.as_str()),
        "never the victim's account: {body}"
    );
    assert!(
        links_of(&app, &victim_id).await.is_empty(),
        "no link planted on the victim"
    );
    let (_, links) = status_json(
        app.su(Method::GET, "/api/collections/_externalAuths/records", None)
            .await,
    )
    .await;
    assert_eq!(links["totalItems"], 0, "nothing linked: {links}");
}

#[tokio::test]
async fn an_absurd_expires_in_from_the_provider_does_not_break_the_login() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    enable_oidc(&app, &provider).await;

    let (status, body) = oauth2_flow(&app, "oidc", "huge-expiry", None, json!({})).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["record"]["email"], "huge@idp.test");
}

/// Rows of each auth bookkeeping table that point at record `id`.
async fn auth_state_of(app: &TestApp, id: &str) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for table in ["_externalAuths", "_mfas", "_otps", "_authOrigins"] {
        let filter = format!("recordRef = '{id}'");
        let (status, rows) = status_json(
            app.list_records(
                table,
                &[("filter", filter.as_str())],
                Some(&app.superuser_token.clone()),
            )
            .await,
        )
        .await;
        assert_eq!(status, 200, "{table}: {rows}");
        out.push((table, rows["totalItems"].as_i64().unwrap_or(-1)));
    }
    out
}

#[tokio::test]
async fn a_deleted_auth_collections_links_codes_and_origins_do_not_pass_to_its_successor() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    let (status, created) = status_json(
        app.create_collection(
            json!({"name": "members", "type": "auth", "id": "pbc_members_001",
                                     "createRule": "", "viewRule": ""}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let (status, body) = status_json(
        app.update_collection(
            "members",
            json!({"otp": {"enabled": true},
                   "oauth2": {"enabled": true, "providers": [{
                       "name": "oidc", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                       "authURL": format!("{provider}/authorize"),
                       "tokenURL": format!("{provider}/token"),
                       "userInfoURL": format!("{provider}/userinfo")}]}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Alice signs up through OAuth2 (a link and an origin), then asks for a code.
    let (_, methods) = status_json(
        app.request(
            Method::GET,
            "/api/collections/members/auth-methods",
            None,
            None,
        )
        .await,
    )
    .await;
    let p = &methods["oauth2"]["providers"][0];
    let redirect = format!("{}/api/oauth2-redirect", app.base);
    let url = format!(
        "{}{redirect}&login_hint=alice",
        p["authURL"].as_str().expect("authURL")
    );
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let location = no_redirects
        .get(&url)
        .send()
        .await
        .expect("authorize")
        .headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let code = location
        .split("code=")
        .nth(1)
        .and_then(|r| r.split('&').next())
        .expect("code");
    let (status, login) = status_json(
        app.request(
            Method::POST,
            "/api/collections/members/auth-with-oauth2",
            None,
            Some(
                json!({"provider": "oidc", "code": code, "codeVerifier": p["codeVerifier"],
                        "redirectURL": redirect}),
            ),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let id = login["record"]["id"].as_str().expect("id").to_owned();
    let otp = app
        .request(
            Method::POST,
            "/api/collections/members/request-otp",
            None,
            Some(json!({"email": "alice@idp.test"})),
        )
        .await;
    assert_eq!(otp.status(), 200);
    let before = auth_state_of(&app, &id).await;
    assert!(
        before.iter().filter(|(_, n)| *n > 0).count() >= 3,
        "link, code and origin exist: {before:?}"
    );

    let deleted = app
        .su(Method::DELETE, "/api/collections/members", None)
        .await
        .status();
    let (status, again) = status_json(
        app.create_collection(
            json!({"name": "members", "type": "auth", "id": "pbc_members_001",
                                     "createRule": ""}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{again}");
    let successor = app
        .request(
            Method::POST,
            "/api/collections/members/records",
            None,
            Some(json!({"id": id, "email": "newcomer@example.com",
                        "password": "newcomer-123", "passwordConfirm": "newcomer-123"})),
        )
        .await
        .status();

    assert_eq!(deleted, 204);
    assert_eq!(successor, 200, "the id is free again");
    for (table, total) in auth_state_of(&app, &id).await {
        assert_eq!(
            total, 0,
            "{table}: nothing inherited from the deleted collection"
        );
    }
}

#[tokio::test]
async fn truncating_an_auth_collection_drops_its_links_codes_and_origins() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    enable_oidc(&app, &provider).await;
    let (status, _) = status_json(
        app.update_collection("users", json!({"otp": {"enabled": true}}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, login) = oauth2_flow(&app, "oidc", "alice", None, json!({})).await;
    assert_eq!(status, 200, "{login}");
    let id = login["record"]["id"].as_str().expect("id").to_owned();
    let otp = app
        .request(
            Method::POST,
            "/api/collections/users/request-otp",
            None,
            Some(json!({"email": "alice@idp.test"})),
        )
        .await;
    assert_eq!(otp.status(), 200);
    let before = auth_state_of(&app, &id).await;
    assert!(
        before.iter().filter(|(_, n)| *n > 0).count() >= 3,
        "{before:?}"
    );

    let truncated = app
        .su(Method::DELETE, "/api/collections/users/truncate", None)
        .await
        .status();

    assert_eq!(truncated, 204);
    for (table, total) in auth_state_of(&app, &id).await {
        assert_eq!(total, 0, "{table}: gone with the truncated records");
    }
}

#[tokio::test]
async fn each_provider_shape_logs_in_and_trusts_the_email_exactly_per_its_catalog_row() {
    // (catalog name, fake user, expected status, email on the record, verified, why)
    let chosen = "chosen@client.test";
    for (name, hint, status, email, verified, why) in [
        (
            "github",
            "gh-octo",
            200,
            "octo@gh.test",
            true,
            "primary verified from /user/emails",
        ),
        (
            "github",
            "gh-unverified",
            200,
            chosen,
            false,
            "primary but unverified",
        ),
        (
            "github",
            "gh-noscope",
            200,
            chosen,
            false,
            "no /user/emails: the public email is not trusted",
        ),
        (
            "gitlab",
            "gl-confirmed",
            200,
            "gl@gl.test",
            true,
            "confirmed_at set",
        ),
        (
            "gitlab",
            "gl-unconfirmed",
            200,
            chosen,
            false,
            "confirmed_at null",
        ),
        (
            "twitch",
            "twitch-user",
            200,
            "tw@twitch.test",
            true,
            "Client-Id sent, Helix email",
        ),
        (
            "linear",
            "linear-user",
            200,
            chosen,
            false,
            "GraphQL POST; Linear has no verified flag",
        ),
        (
            "bitbucket",
            "bitbucket-user",
            200,
            "bb2@bb.test",
            true,
            "confirmed primary from /emails",
        ),
        (
            "gitee",
            "gitee-user",
            200,
            "gt@gitee.test",
            true,
            "confirmed primary from the sibling /emails",
        ),
        (
            "facebook",
            "facebook-user",
            200,
            chosen,
            false,
            "no verified flag",
        ),
        (
            "bitbucket",
            "bitbucket-closed",
            400,
            "",
            false,
            "a closed account is refused",
        ),
        (
            "twitch",
            "twitch-empty",
            400,
            "",
            false,
            "no user in the answer",
        ),
    ] {
        let app = spawn_app().await;
        let provider = start_provider().await;
        enable_as(&app, &provider, name).await;
        let (code, verifier, redirect) = authorize_with(&app, 0, hint).await;
        // Without a trusted email the client must choose one (email is required).
        let create_data = if verified {
            json!({})
        } else {
            json!({"email": chosen})
        };

        let (got, body) = oauth2_login(
            &app,
            json!({"provider": name, "code": code, "codeVerifier": verifier,
                   "redirectURL": redirect, "createData": create_data}),
        )
        .await;

        assert_eq!(got, status, "{name}/{hint} ({why}): {body}");
        let (_, users) = status_json(
            app.su(Method::GET, "/api/collections/users/records", None)
                .await,
        )
        .await;
        if status != 200 {
            assert_eq!(
                users["totalItems"], 0,
                "{name}/{hint} ({why}): nothing created"
            );
            assert_eq!(
                body["status"], 400,
                "{name}/{hint}: PocketBase's envelope {body}"
            );
            continue;
        }
        assert_eq!(body["record"]["email"], email, "{name}/{hint} ({why})");
        assert_eq!(
            body["record"]["verified"], verified,
            "{name}/{hint} ({why})"
        );
        let trusted = if verified { email } else { "" };
        assert_eq!(
            body["meta"]["email"], trusted,
            "{name}/{hint} ({why}): meta.email"
        );
        assert_eq!(body["meta"]["isNew"], true, "{name}/{hint}");
        assert!(
            !body["meta"]["id"].as_str().unwrap_or_default().is_empty(),
            "{name}/{hint}: provider id mapped {body}"
        );
    }
}

#[tokio::test]
async fn the_provider_list_is_for_superusers_and_matches_pocketbase() {
    let app = spawn_app().await;
    let user = app
        .create_record_ok(
            "users",
            json!({"email": "u@x.test", "password": "user-pass-123", "passwordConfirm": "user-pass-123"}),
        )
        .await;
    let _ = user;
    let (_, auth) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/auth-with-password",
            None,
            Some(json!({"identity": "u@x.test", "password": "user-pass-123"})),
        )
        .await,
    )
    .await;
    let user_token = auth["token"].as_str().unwrap_or_default().to_owned();
    let path = "/api/collections/meta/oauth2-providers";

    let (guest, guest_body) = status_json(app.request(Method::GET, path, None, None).await).await;
    let (as_user, _) = status_json(
        app.request(Method::GET, path, Some(&user_token), None)
            .await,
    )
    .await;
    let (as_su, list) = status_json(app.su(Method::GET, path, None).await).await;

    assert_eq!((guest, as_user, as_su), (401, 403, 200), "{guest_body}");
    assert_eq!(guest_body["data"], json!({}));
    let items = list.as_array().expect("an array");
    assert_eq!(items.len(), 32, "{list}");
    assert_eq!(items[0]["name"], "apple");
    assert_eq!(
        items[31],
        json!({"name": "oidc3", "displayName": "OIDC", "logo": items[31]["logo"]})
    );
    assert!(
        items
            .iter()
            .all(|p| p["logo"].as_str().is_some_and(|l| l.starts_with("<svg")))
    );
}

#[tokio::test]
async fn auth_methods_show_the_providers_logo() {
    let app = spawn_app().await;
    let provider = start_provider().await;
    enable_as(&app, &provider, "github").await;

    let (_, methods) = status_json(
        app.request(
            Method::GET,
            "/api/collections/users/auth-methods",
            None,
            None,
        )
        .await,
    )
    .await;

    let github = &methods["oauth2"]["providers"][0];
    assert_eq!(github["displayName"], "GitHub");
    assert!(
        github["logo"]
            .as_str()
            .is_some_and(|l| l.starts_with("<svg")),
        "{github}"
    );
}

#[tokio::test]
async fn the_provider_avatar_is_downloaded_into_the_mapped_file_field_only_when_safe() {
    // (fake user, loopback allowed for this test server, avatar stored, why)
    for (hint, allow_loopback, stored, why) in [
        ("pic-ok", true, true, "an image from an allowed host"),
        (
            "pic-redirect",
            true,
            true,
            "a redirect to an image, each hop checked",
        ),
        (
            "pic-ok",
            false,
            false,
            "loopback is refused in production (SSRF)",
        ),
        ("pic-text", true, false, "not an image"),
        ("pic-huge", true, false, "over the field's maxSize"),
        (
            "pic-to-admin",
            true,
            false,
            "a redirect to a link-local address",
        ),
    ] {
        let app =
            spawn_app_configured(move |c| c.oauth2_avatar_private_hosts = allow_loopback).await;
        let provider = start_provider().await;
        enable_oidc(&app, &provider).await;

        let (status, body) = oauth2_flow(&app, "oidc", hint, None, json!({})).await;

        assert_eq!(
            status, 200,
            "{hint} ({why}): the sign-up never fails on the avatar {body}"
        );
        let avatar = body["record"]["avatar"].as_str().unwrap_or_default();
        assert_eq!(!avatar.is_empty(), stored, "{hint} ({why}): {body}");
        if stored {
            let id = body["record"]["id"].as_str().unwrap_or_default();
            let file = app
                .client
                .get(format!("{}/api/files/users/{id}/{avatar}", app.base))
                .send()
                .await
                .expect("file");
            assert_eq!(file.status(), 200, "{hint}: the avatar is served");
            assert_eq!(
                file.bytes().await.expect("bytes").as_ref(),
                png().as_slice()
            );
        }
    }
}

#[tokio::test]
async fn apple_signs_in_only_with_an_id_token_signed_by_its_jwks_for_this_client() {
    // (fake user, accepted, email trusted, why)
    for (hint, accepted, trusted, why) in [
        (
            "apple-user",
            true,
            true,
            "signed, this client, Apple's issuer",
        ),
        (
            "apple-unverified",
            true,
            false,
            "email_verified is \"false\"",
        ),
        ("apple-wrong-aud", false, false, "a token for another app"),
        ("apple-wrong-iss", false, false, "not Apple's issuer"),
        (
            "apple-tampered",
            false,
            false,
            "claims changed after signing",
        ),
    ] {
        let app = spawn_app().await;
        let provider = start_provider().await;
        let (status, body) = status_json(
            app.update_collection(
                "users",
                json!({"oauth2": {"enabled": true, "providers": [{
                    "name": "apple", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                    "authURL": format!("{provider}/authorize"),
                    "tokenURL": format!("{provider}/token"),
                    "extra": {"jwksURL": format!("{provider}/jwks")},
                }]}}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (code, verifier, redirect) = authorize_with(&app, 0, hint).await;

        let (status, body) = oauth2_login(
            &app,
            json!({"provider": "apple", "code": code, "codeVerifier": verifier,
                   "redirectURL": redirect, "createData": {"email": "chosen@client.test"}}),
        )
        .await;

        let (_, users) = status_json(
            app.su(Method::GET, "/api/collections/users/records", None)
                .await,
        )
        .await;
        if !accepted {
            assert_eq!(status, 400, "{hint} ({why}): {body}");
            assert_eq!(body["message"], "Failed to fetch OAuth2 user.", "{hint}");
            assert_eq!(users["totalItems"], 0, "{hint} ({why}): nothing created");
            continue;
        }
        assert_eq!(status, 200, "{hint} ({why}): {body}");
        assert_eq!(body["meta"]["id"], format!("{hint}.001"), "{hint}");
        let email = if trusted {
            format!("{hint}@apple.test")
        } else {
            String::new()
        };
        assert_eq!(body["meta"]["email"], email, "{hint} ({why})");
    }
}

#[tokio::test]
async fn oidc_without_a_user_info_url_reads_the_id_token_for_this_client_only() {
    for (hint, issuers, accepted, why) in [
        ("apple-user", json!([]), true, "this client's token"),
        (
            "apple-wrong-aud",
            json!([]),
            false,
            "another client's token",
        ),
        (
            "apple-user",
            json!(["https://idp.test"]),
            false,
            "an issuer not in extra.issuers",
        ),
        (
            "apple-tampered",
            json!([]),
            true,
            "no jwksURL: the server's own TLS exchange is trusted, as OIDC allows",
        ),
    ] {
        let app = spawn_app().await;
        let provider = start_provider().await;
        let (status, body) = status_json(
            app.update_collection(
                "users",
                json!({"oauth2": {"enabled": true, "providers": [{
                    "name": "oidc", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                    "authURL": format!("{provider}/authorize"),
                    "tokenURL": format!("{provider}/token"),
                    "extra": {"issuers": issuers},
                }]}}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");

        let (status, body) = oauth2_flow(&app, "oidc", hint, None, json!({})).await;

        assert_eq!(status == 200, accepted, "{hint} ({why}): {body}");
    }
}

#[tokio::test]
async fn broken_or_hostile_provider_answers_get_a_clear_400_and_create_nothing() {
    for (name, hint, why) in [
        ("oidc", "hostile-huge", "a 2 MiB user-info answer"),
        ("oidc", "hostile-500", "a provider error"),
        ("oidc", "hostile-html", "not JSON"),
        ("oidc", "hostile-array", "a JSON array"),
        ("oidc", "hostile-deep", "JSON nested 100,000 deep"),
        ("oidc", "hostile-noid", "no user id"),
        ("github", "hostile-huge-emails", "a 2 MiB address list"),
    ] {
        let app = spawn_app().await;
        let provider = start_provider().await;
        enable_as(&app, &provider, name).await;
        let (code, verifier, redirect) = authorize_with(&app, 0, hint).await;

        let (status, body) = oauth2_login(
            &app,
            json!({"provider": name, "code": code, "codeVerifier": verifier,
                   "redirectURL": redirect, "createData": {"email": "c@client.test"}}),
        )
        .await;

        assert_eq!(status, 400, "{hint} ({why}): {body}");
        assert_eq!(
            body["status"], 400,
            "{hint}: PocketBase's error envelope {body}"
        );
        assert_eq!(
            body["message"], "Failed to fetch OAuth2 user.",
            "{hint} ({why})"
        );
        let (_, users) = status_json(
            app.su(Method::GET, "/api/collections/users/records", None)
                .await,
        )
        .await;
        assert_eq!(users["totalItems"], 0, "{hint} ({why}): nothing created");
    }
}

#[tokio::test]
async fn superusers_alone_can_generate_an_apple_client_secret() {
    let app = spawn_app().await;
    let path = "/api/settings/apple/generate-client-secret";
    let key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgC/TL7bFGxWVf+J7U\ndZZ0CZ3RD8Gop3LuaCM+dZpawUahRANCAATCLxdwLbvN9JyAWtn87QN4W6khow5l\nfJCf8Am65D7echRCtViI6I1SOScJF9ZZlHVRWA/8RAdktAz66MWzjD14\n-----END PRIVATE KEY-----";
    let good = json!({"clientId": "com.example.app", "teamId": "ABCDE12345", "keyId": "KEY1234567",
                      "privateKey": key, "duration": 3600});

    let (guest, _) = status_json(
        app.request(Method::POST, path, None, Some(good.clone()))
            .await,
    )
    .await;
    let (ok, secret) = status_json(app.su(Method::POST, path, Some(good.clone())).await).await;
    let (bad, bad_body) = status_json(
        app.su(
            Method::POST,
            path,
            Some(json!({"teamId": "x", "duration": 99_999_999})),
        )
        .await,
    )
    .await;
    let mut wrong_key = good.clone();
    wrong_key["privateKey"] = json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----");
    let (broken, broken_body) =
        status_json(app.su(Method::POST, path, Some(wrong_key)).await).await;
    let (typed, _) = status_json(
        app.su(Method::POST, path, Some(json!({"duration": "soon"})))
            .await,
    )
    .await;

    assert_eq!(guest, 401);
    assert_eq!(ok, 200, "{secret}");
    assert_eq!(
        secret["secret"].as_str().map(|s| s.split('.').count()),
        Some(3),
        "{secret}"
    );
    assert_eq!(bad, 400, "{bad_body}");
    assert_eq!(bad_body["message"], "Invalid client secret data.");
    assert_eq!(
        bad_body["data"]["teamId"]["code"],
        "validation_length_invalid"
    );
    assert_eq!(
        bad_body["data"]["duration"]["code"],
        "validation_max_less_equal_than_required"
    );
    assert_eq!(bad_body["data"]["clientId"]["code"], "validation_required");
    assert_eq!(broken, 400, "{broken_body}");
    assert_eq!(typed, 400);
}

#[tokio::test]
async fn microsoft_trusts_an_id_token_email_only_in_a_verified_claim_mode() {
    for (mode, trusted, why) in [
        ("email_and_xms_edov", "edov@ms.test", "email with xms_edov"),
        ("any_verified", "edov@ms.test", "falls back to xms_edov"),
        ("verified_primary_email", "", "no such claim"),
        ("email", "", "the bare email claim is not verified"),
        ("", "", "Graph mail is never trusted"),
    ] {
        let app = spawn_app().await;
        let provider = start_provider().await;
        let (status, body) = status_json(
            app.update_collection(
                "users",
                json!({"oauth2": {"enabled": true, "providers": [{
                    "name": "microsoft", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                    "authURL": format!("{provider}/authorize"),
                    "tokenURL": format!("{provider}/token"),
                    "userInfoURL": format!("{provider}/userinfo"),
                    "extra": {"idTokenEmailClaim": mode},
                }]}}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (_, methods) = status_json(
            app.request(
                Method::GET,
                "/api/collections/users/auth-methods",
                None,
                None,
            )
            .await,
        )
        .await;
        let auth_url = methods["oauth2"]["providers"][0]["authURL"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            auth_url.contains("openid"),
            !mode.is_empty(),
            "{mode}: openid scope {auth_url}"
        );

        let create_data = if trusted.is_empty() {
            json!({"email": "c@client.test"})
        } else {
            json!({})
        };

        let (status, body) = oauth2_flow(&app, "microsoft", "graph-edov", None, create_data).await;

        assert_eq!(status, 200, "{mode}: {body}");
        assert_eq!(body["meta"]["email"], trusted, "{mode} ({why})");
        assert_eq!(
            body["record"]["verified"],
            !trusted.is_empty(),
            "{mode} ({why})"
        );
    }
}
