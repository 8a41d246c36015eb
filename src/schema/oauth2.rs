//! OAuth2 providers as data: the catalog of known providers (endpoints,
//! scopes and where each field of their user-info answer lives), and the
//! `oauth2` option of auth collections that configures them (client id and
//! secret, optional endpoint overrides). No provider gets a code branch of
//! its own; adding one is adding a row to [`CATALOG`].

use crate::validation::{FieldError, ValidationErrors};
use serde_json::{Map, Value};

/// Where the fields of a provider's user-info JSON live (JSON pointers).
#[derive(Debug, Clone, Copy)]
pub struct UserMapping {
    pub id: &'static str,
    pub name: &'static str,
    pub username: &'static str,
    pub email: &'static str,
    pub avatar_url: &'static str,
    /// Whether the provider vouches for `email` (see [`EmailProof`]).
    pub email_verified: EmailProof,
    /// Path appended to the user-info URL of a list of the user's addresses
    /// (`[{email, verified, primary}]`, GitHub's `/user/emails`) whose
    /// primary verified one is the email; "" when `email` is used instead.
    pub verified_emails: &'static str,
}

/// What makes a provider's email trustworthy. Only a trusted email links
/// a provider account to the record with that address or verifies one, so
/// this decides who can take over an account by email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailProof {
    /// The provider only ever returns addresses it has verified.
    Always,
    /// A boolean (or `"true"`) at this JSON pointer says it is verified.
    Flag(&'static str),
    /// The address is whatever the account's owner or admin typed
    /// (Microsoft Graph's `mail`): never trusted, so it is dropped.
    Never,
}

/// A provider known to the server.
#[derive(Debug, Clone, Copy)]
pub struct ProviderSpec {
    pub name: &'static str,
    pub display_name: &'static str,
    /// Default endpoints; empty where the collection must configure them (OIDC).
    pub auth_url: &'static str,
    pub token_url: &'static str,
    pub user_info_url: &'static str,
    pub scopes: &'static [&'static str],
    pub pkce: bool,
    pub user: UserMapping,
}

const OIDC_USER: UserMapping = UserMapping {
    id: "/sub",
    name: "/name",
    username: "/preferred_username",
    email: "/email",
    avatar_url: "/picture",
    email_verified: EmailProof::Flag("/email_verified"),
    verified_emails: "",
};

const fn oidc(name: &'static str) -> ProviderSpec {
    ProviderSpec {
        name,
        display_name: "OpenID Connect",
        auth_url: "",
        token_url: "",
        user_info_url: "",
        scopes: &["openid", "email", "profile"],
        pkce: true,
        user: OIDC_USER,
    }
}

/// Every provider a collection may enable.
pub const CATALOG: &[ProviderSpec] = &[
    ProviderSpec {
        name: "google",
        display_name: "Google",
        auth_url: "https://accounts.google.com/o/oauth2/v2/auth",
        token_url: "https://oauth2.googleapis.com/token",
        user_info_url: "https://www.googleapis.com/oauth2/v3/userinfo",
        scopes: &[
            "https://www.googleapis.com/auth/userinfo.profile",
            "https://www.googleapis.com/auth/userinfo.email",
        ],
        pkce: true,
        user: UserMapping {
            username: "",
            ..OIDC_USER
        },
    },
    ProviderSpec {
        name: "github",
        display_name: "GitHub",
        auth_url: "https://github.com/login/oauth/authorize",
        token_url: "https://github.com/login/oauth/access_token",
        user_info_url: "https://api.github.com/user",
        scopes: &["read:user", "user:email"],
        pkce: true,
        user: UserMapping {
            id: "/id",
            name: "/name",
            username: "/login",
            // `/user`'s email is whatever the user made public, verified or
            // not; only the primary verified address of `/user/emails` counts
            // (as in PocketBase).
            email: "",
            avatar_url: "/avatar_url",
            email_verified: EmailProof::Always,
            verified_emails: "/emails",
        },
    },
    ProviderSpec {
        name: "gitlab",
        display_name: "GitLab",
        auth_url: "https://gitlab.com/oauth/authorize",
        token_url: "https://gitlab.com/oauth/token",
        user_info_url: "https://gitlab.com/api/v4/user",
        scopes: &["read_user"],
        pkce: true,
        user: UserMapping {
            id: "/id",
            name: "/name",
            username: "/username",
            email: "/email",
            avatar_url: "/avatar_url",
            email_verified: EmailProof::Always,
            verified_emails: "",
        },
    },
    ProviderSpec {
        name: "discord",
        display_name: "Discord",
        auth_url: "https://discord.com/api/oauth2/authorize",
        token_url: "https://discord.com/api/oauth2/token",
        user_info_url: "https://discord.com/api/users/@me",
        scopes: &["identify", "email"],
        pkce: true,
        user: UserMapping {
            id: "/id",
            name: "/global_name",
            username: "/username",
            email: "/email",
            avatar_url: "",
            email_verified: EmailProof::Flag("/verified"),
            verified_emails: "",
        },
    },
    ProviderSpec {
        name: "microsoft",
        display_name: "Microsoft",
        auth_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        user_info_url: "https://graph.microsoft.com/v1.0/me",
        scopes: &["User.Read"],
        pkce: true,
        user: UserMapping {
            id: "/id",
            name: "/displayName",
            username: "",
            // Graph's `mail` is not a verified address: a tenant admin can
            // set it to anyone's (nOAuth). PocketBase trusts it by default;
            // we never do, so it neither links nor verifies an account.
            email: "/mail",
            avatar_url: "",
            email_verified: EmailProof::Never,
            verified_emails: "",
        },
    },
    ProviderSpec {
        name: "facebook",
        display_name: "Facebook",
        auth_url: "https://www.facebook.com/v17.0/dialog/oauth",
        token_url: "https://graph.facebook.com/v17.0/oauth/access_token",
        user_info_url: "https://graph.facebook.com/me?fields=name,email,picture.type(large)",
        scopes: &["email"],
        pkce: true,
        user: UserMapping {
            id: "/id",
            name: "/name",
            username: "",
            email: "/email",
            avatar_url: "/picture/data/url",
            email_verified: EmailProof::Always,
            verified_emails: "",
        },
    },
    oidc("oidc"),
    oidc("oidc2"),
    oidc("oidc3"),
];

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
            if url.is_empty() {
                if default == Some("") {
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
