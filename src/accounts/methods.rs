//! `auth-methods`: which ways of signing in a collection offers, from its
//! typed options (the OAuth2 entries carry a fresh PKCE pair and state).

use crate::schema::CompiledCollection;
use serde_json::{Value, json};

/// The `auth-methods` answer for a collection.
pub fn auth_methods(collection: &CompiledCollection) -> Value {
    let auth = &collection.auth;
    let password = &auth.password_auth;
    // A switched-off method reports no duration, as PocketBase does.
    let duration = |enabled: bool, secs: i64| if enabled { secs } else { 0 };
    let identity_fields = &password.identity_fields;
    let providers = crate::auth::oauth2::auth_methods_providers(collection);
    let legacy_providers: Vec<Value> = providers
        .iter()
        .cloned()
        .map(|mut p| {
            p["logo"] = json!("");
            p
        })
        .collect();
    json!({
        "password": {"identityFields": identity_fields, "enabled": password.enabled},
        "oauth2": {"enabled": auth.oauth2.enabled, "providers": providers},
        "mfa": {"enabled": auth.mfa.enabled, "duration": duration(auth.mfa.enabled, auth.mfa.duration)},
        "otp": {"enabled": auth.otp.enabled, "duration": duration(auth.otp.enabled, auth.otp.duration)},
        "authProviders": legacy_providers,
        "usernamePassword": identity_fields.iter().any(|f| f == "username"),
        "emailPassword": identity_fields.iter().any(|f| f == "email"),
    })
}
