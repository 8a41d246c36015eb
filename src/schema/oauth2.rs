//! OAuth2 providers as data: the catalog of known providers (endpoints,
//! scopes and where each field of their user-info answer lives), and the
//! `oauth2` option of auth collections that configures them (client id and
//! secret, optional endpoint overrides). No provider gets a code branch of
//! its own; adding one is adding a row to [`CATALOG`]
//! (`oauth2_catalog.rs`).

use crate::validation::{FieldError, ValidationErrors};
use serde_json::{Map, Value};
use std::sync::OnceLock;

pub use super::oauth2_catalog::CATALOG;

/// A text value read from a provider's user JSON.
#[derive(Debug, Clone, Copy)]
pub enum Text {
    /// Not provided.
    None,
    /// The string (or number, as text) at a JSON pointer.
    At(&'static str),
    /// The first non-empty of these.
    FirstOf(&'static [&'static str]),
    /// The non-empty ones joined with a space (first and last name).
    Joined(&'static [&'static str]),
    /// The part before `@` (mailcow's username is a mailbox).
    BeforeAt(&'static str),
    /// `{}` in the template filled in order; empty if any part is empty.
    Template(&'static str, &'static [&'static str]),
    /// The inner text only while the boolean at the pointer has this value.
    When(&'static str, bool, &'static Text),
}

/// Where the fields of a provider's user-info JSON live.
#[derive(Debug, Clone, Copy)]
pub struct UserMapping {
    pub id: Text,
    pub name: Text,
    pub username: Text,
    pub email: Text,
    pub avatar_url: Text,
    /// Whether the provider vouches for `email` (see [`EmailProof`]).
    pub email_verified: EmailProof,
    /// A value that must hold or the login is refused (a suspended account).
    pub active: Option<(&'static str, Expect)>,
}

/// What a value in the provider's JSON must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    True,
    Str(&'static str),
    Num(i64),
    /// An array holding this string.
    Contains(&'static str),
}

/// What makes a provider's email trustworthy. Only a trusted email links
/// a provider account to the record with that address or verifies one, so
/// this decides who can take over an account by email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailProof {
    /// The provider documents that it only returns verified addresses.
    Always,
    /// A boolean (or `"true"`) at this JSON pointer says it is verified.
    Flag(&'static str),
    /// Every one of these booleans must be true.
    Flags(&'static [&'static str]),
    /// An RFC 3339 time at this pointer says when it was confirmed (GitLab).
    Timestamp(&'static str),
    /// The address comes from a list of the user's addresses instead.
    Lookup(EmailLookup),
    /// No documented proof (Microsoft Graph's `mail`, Facebook, …): the
    /// address is dropped, never trusted.
    Never,
}

/// A second request for the user's addresses (GitHub's `/user/emails`): the
/// first entry meeting every requirement is the email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailLookup {
    pub url: LookupUrl,
    /// JSON pointer to the array ("" when the answer is the array).
    pub list: &'static str,
    /// Key of the address in each entry.
    pub email: &'static str,
    pub require: &'static [(&'static str, Expect)],
}

/// Where the address list lives, relative to the user-info URL (so an
/// overridden user-info URL, a self-hosted Gitea, moves it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupUrl {
    /// Appended to the user-info URL.
    Append(&'static str),
    /// Replaces the last path segment of the user-info URL.
    Sibling(&'static str),
}

/// How the user is fetched after the token exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSource {
    /// GET the user-info URL with these extra headers (`{client_id}` is
    /// replaced by the client id).
    Get(&'static [(&'static str, &'static str)]),
    /// POST this GraphQL body as JSON to the user-info URL.
    GraphQl(&'static str),
    /// The claims of the token answer's `id_token`, its signature checked
    /// against the JWKS at this URL (`extra.jwksURL` overrides it) and its
    /// issuer against this one.
    IdToken {
        jwks: &'static str,
        issuer: &'static str,
    },
    /// OIDC: the user-info URL when one is configured, else the `id_token`
    /// claims (checked against `extra.jwksURL` and `extra.issuers` if set).
    UserInfoOrIdToken,
}

/// A provider known to the server.
#[derive(Debug, Clone, Copy)]
pub struct ProviderSpec {
    pub name: &'static str,
    pub display_name: &'static str,
    /// Position in `oauth2-providers` (ties sorted by name).
    pub order: u32,
    /// Default endpoints; empty where the collection must configure them (OIDC).
    pub auth_url: &'static str,
    pub token_url: &'static str,
    pub user_info_url: &'static str,
    pub scopes: &'static [&'static str],
    /// Extra query parameters of the authorization URL.
    pub auth_params: &'static [(&'static str, &'static str)],
    pub pkce: bool,
    /// Microsoft: `extra.idTokenEmailClaim` may pick a verified email claim
    /// of the `id_token` (and adds the `openid` scope) — see
    /// `auth::oauth2_user::id_token_email`.
    pub id_token_email: bool,
    pub source: UserSource,
    pub user: UserMapping,
}

/// The provider's logo: an inline SVG badge of our own (its initials on a
/// colour derived from the name, `oauth2_logos.json`); "" if none. PocketBase
/// serves the brands' artwork here; the shape of the answer is the same.
pub fn logo(name: &str) -> &'static str {
    static LOGOS: OnceLock<Map<String, Value>> = OnceLock::new();
    LOGOS
        .get_or_init(|| serde_json::from_str(include_str!("oauth2_logos.json")).unwrap_or_default())
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `GET /api/collections/meta/oauth2-providers`: every provider by order,
/// then name, with its display name and logo.
pub fn catalog_list() -> Vec<Value> {
    let mut all: Vec<&ProviderSpec> = CATALOG.iter().collect();
    all.sort_by(|a, b| a.order.cmp(&b.order).then(a.name.cmp(b.name)));
    all.into_iter()
        .map(|p| serde_json::json!({"name": p.name, "displayName": p.display_name, "logo": logo(p.name)}))
        .collect()
}

/// The catalog entry named `name`.
pub fn spec(name: &str) -> Option<&'static ProviderSpec> {
    CATALOG.iter().find(|p| p.name == name)
}

/// One provider as a collection configures it, catalog defaults filled in.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub spec: &'static ProviderSpec,
    pub client_id: String,
    pub client_secret: String,
    pub display_name: String,
    pub auth_url: String,
    pub token_url: String,
    pub user_info_url: String,
    pub pkce: bool,
    /// Provider-specific settings (`jwksURL`, `issuers` for OIDC).
    pub extra: Value,
}

fn text<'a>(obj: &'a Map<String, Value>, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn or_default(configured: &str, default: &str) -> String {
    if configured.is_empty() {
        default.to_owned()
    } else {
        configured.to_owned()
    }
}

/// Whether the collection's `oauth2` option is enabled.
pub fn enabled(options: &Map<String, Value>) -> bool {
    options
        .get("oauth2")
        .and_then(|o| o.get("enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The configured providers of an auth collection's options (stored
/// options are validated on save, so unknown names are simply skipped).
pub fn providers(options: &Map<String, Value>) -> Vec<ProviderConfig> {
    let Some(list) = options
        .get("oauth2")
        .and_then(|o| o.get("providers"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter_map(Value::as_object)
        .filter_map(|p| {
            let spec = spec(text(p, "name"))?;
            Some(ProviderConfig {
                spec,
                client_id: text(p, "clientId").to_owned(),
                client_secret: text(p, "clientSecret").to_owned(),
                display_name: or_default(text(p, "displayName"), spec.display_name),
                auth_url: or_default(text(p, "authURL"), spec.auth_url),
                token_url: or_default(text(p, "tokenURL"), spec.token_url),
                user_info_url: or_default(text(p, "userInfoURL"), spec.user_info_url),
                pkce: p.get("pkce").and_then(Value::as_bool).unwrap_or(spec.pkce),
                extra: p.get("extra").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

/// The record fields that OAuth2 user data is copied into on sign-up
/// (`mappedFields`: `id`, `name`, `username`, `avatarURL` → field name).
pub fn mapped_fields(options: &Map<String, Value>) -> Vec<(String, String)> {
    options
        .get("oauth2")
        .and_then(|o| o.get("mappedFields"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .filter(|(_, field)| !field.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && !url.chars().any(char::is_whitespace)
}

/// Merges a submitted `oauth2` option into the stored one and validates it.
/// A provider submitted without `clientSecret` keeps its stored secret.
pub fn apply(current: &mut Map<String, Value>, input: &Map<String, Value>) -> ValidationErrors {
    let mut errors = ValidationErrors::new();
    for (key, value) in input {
        match key.as_str() {
            "enabled" => match value {
                Value::Bool(_) => {
                    current.insert(key.clone(), value.clone());
                }
                _ => errors.add(
                    key.clone(),
                    FieldError::new("validation_invalid_value", "Must be a boolean."),
                ),
            },
            "mappedFields" => match value.as_object() {
                Some(map) if map.values().all(Value::is_string) => {
                    current.insert(key.clone(), value.clone());
                }
                _ => errors.add(
                    key.clone(),
                    FieldError::new("validation_invalid_value", "Must be an object of strings."),
                ),
            },
            "providers" => match value.as_array() {
                Some(list) => {
                    let stored = current.get("providers").cloned().unwrap_or(Value::Null);
                    let (merged, provider_errors) = merge_providers(&stored, list);
                    if provider_errors.is_empty() {
                        current.insert(key.clone(), Value::Array(merged));
                    } else {
                        errors.nest(key.clone(), provider_errors);
                    }
                }
                None => errors.add(
                    key.clone(),
                    FieldError::new("validation_invalid_value", "Must be an array."),
                ),
            },
            _ => {}
        }
    }
    errors
}

fn merge_providers(stored: &Value, submitted: &[Value]) -> (Vec<Value>, ValidationErrors) {
    let stored_secret = |name: &str| {
        stored
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .find(|p| text(p, "name") == name)
            .map(|p| text(p, "clientSecret").to_owned())
            .unwrap_or_default()
    };
    let mut errors = ValidationErrors::new();
    let mut merged = Vec::new();
    let mut seen = Vec::new();
    for (index, raw) in submitted.iter().enumerate() {
        let mut item = ValidationErrors::new();
        let Some(obj) = raw.as_object() else {
            item.add(
                "name",
                FieldError::new("validation_invalid_value", "Must be an object."),
            );
            errors.nest(index.to_string(), item);
            continue;
        };
        let name = text(obj, "name");
        let spec = spec(name);
        if spec.is_none() || seen.contains(&name) {
            item.add(
                "name",
                FieldError::new(
                    "validation_missing_provider",
                    format!("Invalid or missing provider with name {name}."),
                )
                .with_params(serde_json::json!({"name": name})),
            );
        }
        seen.push(name);
        if text(obj, "clientId").is_empty() {
            item.add("clientId", FieldError::required());
        }
        let mut secret = text(obj, "clientSecret").to_owned();
        if secret.is_empty() {
            secret = stored_secret(name);
        }
        if secret.is_empty() {
            item.add("clientSecret", FieldError::required());
        }
        for (key, default) in [
            ("authURL", spec.map(|s| s.auth_url)),
            ("tokenURL", spec.map(|s| s.token_url)),
            ("userInfoURL", spec.map(|s| s.user_info_url)),
        ] {
            let url = text(obj, key);
            // Apple and OIDC can read the user from the `id_token` instead.
            let optional = key == "userInfoURL"
                && spec.is_some_and(|s| {
                    matches!(
                        s.source,
                        UserSource::IdToken { .. } | UserSource::UserInfoOrIdToken
                    )
                });
            if url.is_empty() {
                if default == Some("") && !optional {
                    item.add(key, FieldError::required());
                }
            } else if !is_http_url(url) {
                item.add(
                    key,
                    FieldError::new("validation_is_url", "Must be a valid URL."),
                );
            }
        }
        if obj
            .get("pkce")
            .is_some_and(|v| !v.is_null() && !v.is_boolean())
        {
            item.add(
                "pkce",
                FieldError::new("validation_invalid_value", "Must be a boolean or null."),
            );
        }
        if !item.is_empty() {
            errors.nest(index.to_string(), item);
            continue;
        }
        let mut out = obj.clone();
        out.insert("clientSecret".into(), Value::String(secret));
        out.entry("extra")
            .or_insert_with(|| Value::Object(Map::new()));
        merged.push(Value::Object(out));
    }
    (merged, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn unknown_providers_and_missing_credentials_are_reported_per_item() {
        let mut current = obj(json!({"enabled": false, "providers": []}));
        let input =
            obj(json!({"providers": [{"name": "nope", "clientId": "a"}, {"name": "github"}]}));
        let errors = apply(&mut current, &input).to_json();
        assert_eq!(
            errors["providers"]["0"]["name"]["code"],
            "validation_missing_provider"
        );
        assert_eq!(
            errors["providers"]["1"]["clientId"]["code"],
            "validation_required"
        );
        assert_eq!(current["providers"], json!([]));
    }

    #[test]
    fn an_omitted_secret_keeps_the_stored_one() {
        let mut current = obj(
            json!({"providers": [{"name": "github", "clientId": "a", "clientSecret": "s3cret"}]}),
        );
        let input =
            obj(json!({"enabled": true, "providers": [{"name": "github", "clientId": "b"}]}));
        assert!(apply(&mut current, &input).is_empty());
        let options = obj(json!({ "oauth2": current }));
        let stored = &providers(&options)[0];
        assert_eq!(stored.client_id, "b");
        assert_eq!(stored.client_secret, "s3cret");
        assert_eq!(
            stored.token_url,
            "https://github.com/login/oauth/access_token"
        );
    }

    #[test]
    fn the_provider_list_is_pocketbases_in_order_and_every_provider_has_a_logo() {
        // The names and order PocketBase 0.40.6 answers on
        // GET /api/collections/meta/oauth2-providers.
        let pocketbase = "apple google microsoft yandex facebook instagram2 github gitlab \
            bitbucket gitee gitea discord twitter kakao vk linear notion monday lark box spotify \
            trakt twitch patreon strava wakatime livechat mailcow planningcenter oidc oidc2 oidc3";
        let list = catalog_list();
        let names: Vec<&str> = list.iter().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(names, pocketbase.split_whitespace().collect::<Vec<_>>());
        for p in &list {
            let logo = p["logo"].as_str().unwrap_or_default();
            assert!(logo.starts_with("<svg"), "{} has a logo", p["name"]);
            assert_eq!(
                p.as_object().map(Map::len),
                Some(3),
                "name, displayName, logo only"
            );
        }
        assert_eq!(list[29]["displayName"], "OIDC");
    }

    #[test]
    fn oidc_needs_its_endpoints() {
        let mut current = Map::new();
        let input = obj(
            json!({"providers": [{"name": "oidc", "clientId": "a", "clientSecret": "b", "tokenURL": "ftp://x"}]}),
        );
        let errors = apply(&mut current, &input).to_json();
        assert_eq!(
            errors["providers"]["0"]["authURL"]["code"],
            "validation_required"
        );
        assert_eq!(
            errors["providers"]["0"]["tokenURL"]["code"],
            "validation_is_url"
        );
    }
}
