//! OAuth2 login: the provider list of `auth-methods` (with a fresh PKCE
//! pair and state each time), the authorization-code exchange against a
//! provider's token and user-info endpoints. Which provider is which lives
//! in [`crate::schema::oauth2`] as data; this module only speaks the
//! protocol. Linking provider accounts to records is `accounts::oauth2`.

use super::AuthError;
use super::oauth2_user::{self as mapping, IdTokenCheck, str_at};
use crate::schema::oauth2::{EmailProof, ProviderConfig, ProviderSpec, UserSource};
use crate::schema::{CompiledCollection, autogen};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use std::time::Duration;

const VERIFIER_ALPHABET: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~";
/// Upper bound for each call to a provider (token and user info).
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest provider answer read (token or user info).
const MAX_PROVIDER_BODY: usize = 1 << 20;

/// The user as the provider describes them, plus the tokens it issued.
#[derive(Debug, Clone, Default)]
pub struct OAuth2User {
    pub id: String,
    pub name: String,
    pub username: String,
    /// Empty unless the provider vouches for the address.
    pub email: String,
    pub avatar_url: String,
    pub access_token: String,
    pub refresh_token: String,
    /// Token expiry as a PocketBase date string ("" when not given).
    pub expiry: String,
    pub raw: Value,
}

impl OAuth2User {
    /// The `meta` object of the auth response.
    pub fn meta(&self, is_new: bool) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "username": self.username,
            "email": self.email,
            "avatarURL": self.avatar_url,
            "avatarUrl": self.avatar_url,
            "accessToken": self.access_token,
            "refreshToken": self.refresh_token,
            "expiry": self.expiry,
            "rawUser": self.raw,
            "isNew": is_new,
        })
    }
}

/// The `oauth2` part of `auth-methods`: each enabled provider with a fresh
/// state and PKCE pair and its authorization URL (ending in `redirect_uri=`
/// so the client appends its own).
pub fn auth_methods_providers(collection: &CompiledCollection) -> Vec<Value> {
    if !collection.auth.oauth2.enabled {
        return Vec::new();
    }
    collection
        .auth
        .oauth2
        .providers
        .iter()
        .map(provider_entry)
        .collect()
}

fn provider_entry(provider: &ProviderConfig) -> Value {
    let state = autogen::random_string(autogen::ALPHANUMERIC, 30);
    let verifier = autogen::random_string(VERIFIER_ALPHABET, 43);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut query = vec![("client_id", provider.client_id.clone())];
    if provider.pkce {
        query.push(("code_challenge", challenge.clone()));
        query.push(("code_challenge_method", "S256".to_owned()));
    }
    query.push(("response_type", "code".to_owned()));
    let mut scopes = provider.spec.scopes.to_vec();
    if !id_token_email_mode(provider).is_empty() && !scopes.contains(&"openid") {
        scopes.push("openid");
    }
    query.push(("scope", scopes.join(" ")));
    query.push(("state", state.clone()));
    for (key, value) in provider.spec.auth_params {
        query.push((key, (*value).to_owned()));
    }
    let encoded = serde_urlencoded::to_string(&query).unwrap_or_default();
    let separator = if provider.auth_url.contains('?') {
        '&'
    } else {
        '?'
    };
    let auth_url = format!("{}{separator}{encoded}&redirect_uri=", provider.auth_url);
    let (challenge, method, verifier) = if provider.pkce {
        (challenge, "S256", verifier)
    } else {
        (String::new(), "", String::new())
    };
    json!({
        "name": provider.spec.name,
        "displayName": provider.display_name,
        "logo": crate::schema::oauth2::logo(provider.spec.name),
        "state": state,
        "authURL": auth_url,
        "authUrl": auth_url,
        "codeVerifier": verifier,
        "codeChallenge": challenge,
        "codeChallengeMethod": method,
    })
}

/// The enabled provider `name` of the collection.
pub fn provider(collection: &CompiledCollection, name: &str) -> Option<ProviderConfig> {
    collection
        .auth
        .oauth2
        .providers
        .iter()
        .find(|p| p.spec.name == name)
        .cloned()
}

/// Up to 3 redirects, each within the origin of the first URL: a token
/// request carries the code, the PKCE verifier and the client secret, and a
/// provider (or whatever answers for it) must not forward them elsewhere.
/// A redirect elsewhere is answered as it came, which fails the login.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > 3 {
            attempt.error("too many redirects")
        } else if same_origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .redirect(same_origin_redirects())
            .user_agent(concat!("ferrobase/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default()
    })
}

async fn json_body(response: reqwest::Response) -> Option<Value> {
    if !response.status().is_success() {
        return None;
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_PROVIDER_BODY as u64)
    {
        return None;
    }
    let bytes = response.bytes().await.ok()?;
    if bytes.len() > MAX_PROVIDER_BODY {
        return None;
    }
    if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
        return Some(value);
    }
    // Some providers (GitHub without Accept) answer form-encoded tokens.
    let pairs: Map<String, Value> = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()?
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    Some(Value::Object(pairs))
}

/// Exchanges an authorization code for tokens, then fetches the user.
pub async fn exchange(
    provider: &ProviderConfig,
    code: &str,
    code_verifier: &str,
    redirect_url: &str,
) -> Result<OAuth2User, AuthError> {
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_url),
    ];
    if !code_verifier.is_empty() {
        params.push(("code_verifier", code_verifier));
    }
    // Client authentication as RFC 6749 (2.3.1) prefers it, HTTP Basic, then
    // in the body for providers that only take that (as Go's oauth2 does).
    let basic = format!(
        "{}:{}",
        form_escape(&provider.client_id),
        form_escape(&provider.client_secret)
    );
    let mut token = request_token(provider, &params, Some(&basic)).await;
    if token.is_none() {
        params.push(("client_id", provider.client_id.as_str()));
        params.push(("client_secret", provider.client_secret.as_str()));
        token = request_token(provider, &params, None).await;
    }
    let token = token.ok_or(AuthError::OAuth2Token)?;
    let access_token = str_at(&token, "/access_token");
    if access_token.is_empty() {
        return Err(AuthError::OAuth2Token);
    }
    let raw = fetch_user(provider, &token, &access_token).await?;
    if !mapping::is_active(provider.spec, &raw) {
        tracing::info!(
            provider = provider.spec.name,
            "provider account is not active"
        );
        return Err(AuthError::OAuth2User);
    }
    let mut user = map_user(provider.spec, raw);
    if user.id.is_empty() {
        return Err(AuthError::OAuth2User);
    }
    if let EmailProof::Lookup(lookup) = provider.spec.user.email_verified {
        let url = mapping::lookup_url(&lookup, &provider.user_info_url);
        let list = fetch_email_list(&url, &access_token).await?;
        user.email = mapping::email_from_list(&lookup, &list);
    }
    let mode = id_token_email_mode(provider);
    if !mode.is_empty() {
        let check = IdTokenCheck {
            client_id: &provider.client_id,
            issuers: &[],
            require_exp: false,
        };
        let claims =
            mapping::unverified_claims(&str_at(&token, "/id_token"), &check).unwrap_or(Value::Null);
        user.email = mapping::id_token_email(mode, &claims, &user.id);
    }
    user.access_token = access_token;
    user.refresh_token = str_at(&token, "/refresh_token");
    user.expiry = token
        .pointer("/expires_in")
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
        .filter(|secs| *secs > 0)
        // The provider's number: out of chrono's range means no expiry, not a panic.
        .and_then(chrono::Duration::try_seconds)
        .and_then(|d| chrono::Utc::now().checked_add_signed(d))
        .map(|at| at.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    Ok(user)
}

/// The `extra.idTokenEmailClaim` of a provider that honours it, else "".
fn id_token_email_mode(provider: &ProviderConfig) -> &str {
    if !provider.spec.id_token_email {
        return "";
    }
    provider
        .extra
        .get("idTokenEmailClaim")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A list of the user's addresses (GitHub's `/user/emails`). A 401/403/404
/// (the scope was not granted) means no email, as in PocketBase; any other
/// failure fails the login.
async fn fetch_email_list(url: &str, access_token: &str) -> Result<Value, AuthError> {
    let response = http()
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .bearer_auth(access_token)
        .send()
        .await
        .map_err(|_| AuthError::OAuth2User)?;
    if matches!(response.status().as_u16(), 401 | 403 | 404) {
        return Ok(Value::Null);
    }
    json_body(response).await.ok_or(AuthError::OAuth2User)
}

/// The user JSON: from the user-info endpoint as the provider wants it
/// asked, or from the token answer's `id_token`.
async fn fetch_user(
    provider: &ProviderConfig,
    token: &Value,
    access_token: &str,
) -> Result<Value, AuthError> {
    let request = match provider.spec.source {
        UserSource::Get(headers) => {
            let mut request = http().get(&provider.user_info_url);
            for (name, value) in headers {
                request = request.header(*name, value.replace("{client_id}", &provider.client_id));
            }
            request
        }
        UserSource::GraphQl(body) => http()
            .post(&provider.user_info_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body),
        UserSource::UserInfoOrIdToken if !provider.user_info_url.is_empty() => {
            http().get(&provider.user_info_url)
        }
        UserSource::UserInfoOrIdToken => return id_token_user(provider, token, "", false).await,
        UserSource::IdToken { jwks, issuer } => {
            return id_token_user(provider, token, jwks, true)
                .await
                .and_then(|claims| {
                    let iss = claims.get("iss").and_then(Value::as_str);
                    if iss == Some(issuer) {
                        Ok(claims)
                    } else {
                        Err(AuthError::OAuth2User)
                    }
                });
        }
    };
    let response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .bearer_auth(access_token)
        .send()
        .await
        .map_err(|_| AuthError::OAuth2User)?;
    json_body(response).await.ok_or(AuthError::OAuth2User)
}

/// The claims of the token answer's `id_token`: signature checked against
/// the JWKS (`extra.jwksURL`, else `default_jwks`; OIDC without either
/// trusts its own TLS connection to the token endpoint), audience, times
/// and `extra.issuers`.
async fn id_token_user(
    provider: &ProviderConfig,
    token: &Value,
    default_jwks: &str,
    require_exp: bool,
) -> Result<Value, AuthError> {
    let id_token = str_at(token, "/id_token");
    let extra = |key: &str| provider.extra.get(key).cloned().unwrap_or(Value::Null);
    let issuers: Vec<String> = match extra("issuers") {
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let check = IdTokenCheck {
        client_id: &provider.client_id,
        issuers: &issuers,
        require_exp,
    };
    let jwks_url = match extra("jwksURL") {
        Value::String(url) if !url.is_empty() => url,
        _ => default_jwks.to_owned(),
    };
    let claims = if jwks_url.is_empty() {
        mapping::unverified_claims(&id_token, &check)
    } else {
        let response = http()
            .get(&jwks_url)
            .send()
            .await
            .map_err(|_| AuthError::OAuth2User)?;
        let keys = json_body(response).await.ok_or(AuthError::OAuth2User)?;
        let jwks = serde_json::from_value(keys).map_err(|_| AuthError::OAuth2User)?;
        mapping::verified_claims(&id_token, &jwks, &check)
    };
    claims.map_err(|e| {
        tracing::info!(provider = provider.spec.name, error = %e, "id_token refused");
        AuthError::OAuth2User
    })
}

/// One call to the token endpoint; `None` unless it answers 2xx with JSON.
async fn request_token(
    provider: &ProviderConfig,
    params: &[(&str, &str)],
    basic_credentials: Option<&str>,
) -> Option<Value> {
    let mut request = http()
        .post(&provider.token_url)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(params);
    if let Some(credentials) = basic_credentials {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        request = request.header(reqwest::header::AUTHORIZATION, format!("Basic {encoded}"));
    }
    json_body(request.send().await.ok()?).await
}

/// `application/x-www-form-urlencoded` escaping (for Basic credentials).
fn form_escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Maps a provider's user JSON through its catalog entry.
fn map_user(spec: &ProviderSpec, raw: Value) -> OAuth2User {
    let m = mapping::map_user(spec, &raw);
    OAuth2User {
        id: m.id,
        name: m.name,
        username: m.username,
        email: m.email,
        avatar_url: m.avatar_url,
        raw,
        ..OAuth2User::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::oauth2::spec;

    #[test]
    fn an_unverified_oidc_email_is_not_trusted() {
        let oidc = spec("oidc").expect("oidc is in the catalog");
        let user = map_user(
            oidc,
            json!({"sub": "u1", "email": "a@b.c", "email_verified": false, "name": "A"}),
        );
        assert_eq!((user.id.as_str(), user.email.as_str()), ("u1", ""));
        let user = map_user(
            oidc,
            json!({"sub": "u1", "email": "a@b.c", "email_verified": true}),
        );
        assert_eq!(user.email, "a@b.c");
    }

    #[test]
    fn each_provider_trusts_its_email_only_on_the_documented_proof() {
        let with = json!({"sub": "u", "id": "u", "email": "a@b.c", "mail": "a@b.c",
                          "email_verified": true, "verified": true});
        let without = json!({"sub": "u", "id": "u", "email": "a@b.c", "mail": "a@b.c",
                             "email_verified": false, "verified": false});
        for (name, trusted_with, trusted_without, why) in [
            ("google", true, false, "email_verified"),
            ("oidc", true, false, "email_verified"),
            ("discord", true, false, "verified"),
            (
                "microsoft",
                false,
                false,
                "Graph mail is never verified (nOAuth)",
            ),
            (
                "facebook",
                false,
                false,
                "no documented verified flag (PocketBase trusts it)",
            ),
        ] {
            let spec = spec(name).expect("in the catalog");
            let got = |raw: &Value| !map_user(spec, raw.clone()).email.is_empty();
            assert_eq!(got(&with), trusted_with, "{name} ({why}) with proof");
            assert_eq!(
                got(&without),
                trusted_without,
                "{name} ({why}) without proof"
            );
        }
    }

    #[test]
    fn only_a_primary_verified_address_counts() {
        for (list, expected, why) in [
            (
                json!([{"email": "pub@x.test", "primary": true, "verified": false},
                       {"email": "other@x.test", "primary": false, "verified": true}]),
                "",
                "primary unverified, verified not primary",
            ),
            (
                json!([{"email": "a@x.test", "primary": false, "verified": true},
                       {"email": "b@x.test", "primary": true, "verified": true}]),
                "b@x.test",
                "the primary verified one",
            ),
            (
                json!([{"email": "c@x.test", "primary": "true", "verified": "true"}]),
                "",
                "strings are not booleans",
            ),
            (json!({"email": "d@x.test"}), "", "not a list"),
            (json!([]), "", "empty"),
        ] {
            let EmailProof::Lookup(lookup) = spec("github").expect("github").user.email_verified
            else {
                panic!("github looks its email up");
            };
            assert_eq!(mapping::email_from_list(&lookup, &list), expected, "{why}");
        }
    }

    #[test]
    fn github_does_not_trust_the_public_profile_email() {
        let github = spec("github").expect("github is in the catalog");
        let user = map_user(
            github,
            json!({"id": 7, "login": "octo", "email": "victim@example.com"}),
        );
        assert_eq!(user.email, "", "only /user/emails decides");
    }

    #[test]
    fn basic_credentials_are_form_escaped() {
        assert_eq!(form_escape("a b:c/d~e"), "a+b%3Ac%2Fd~e");
    }

    #[test]
    fn numeric_ids_become_strings() {
        let github = spec("github").expect("github is in the catalog");
        let user = map_user(
            github,
            json!({"id": 42, "login": "octo", "avatar_url": "https://x/a.png"}),
        );
        assert_eq!(
            (
                user.id.as_str(),
                user.username.as_str(),
                user.avatar_url.as_str()
            ),
            ("42", "octo", "https://x/a.png")
        );
    }

    #[test]
    fn the_auth_url_carries_a_challenge_of_the_verifier() {
        let provider = ProviderConfig {
            spec: spec("oidc").expect("oidc"),
            client_id: "cid".into(),
            client_secret: "s".into(),
            display_name: "IdP".into(),
            auth_url: "http://127.0.0.1:9/auth".into(),
            token_url: String::new(),
            user_info_url: String::new(),
            pkce: true,
            extra: Value::Null,
        };
        let entry = provider_entry(&provider);
        let verifier = entry["codeVerifier"].as_str().unwrap_or_default();
        assert_eq!(verifier.len(), 43);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let url = entry["authURL"].as_str().unwrap_or_default();
        assert!(url.starts_with("http://127.0.0.1:9/auth?client_id=cid&code_challenge="));
        assert!(url.contains(&challenge));
        assert!(url.ends_with("&redirect_uri="));
        assert_eq!(entry["state"].as_str().map(str::len), Some(30));
    }
}
