//! An auth collection's options as typed values, parsed once when the
//! collection is compiled into the registry. The stored JSON map on
//! [`Collection`] stays the wire and storage form; everything that *acts* on
//! an option (login, OTP, MFA, OAuth2, token signing, rules) reads these
//! structs instead of walking the JSON. Validation of option values happens
//! when a collection is saved (`auth_defaults`, `oauth2`); parsing here is
//! lenient: a section that does not deserialize falls back to its defaults
//! and is logged, so one odd stored value cannot take the server down.

use super::collection::{Collection, CollectionType};
use super::oauth2::ProviderConfig;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Default lifetime of an auth token in seconds (PocketBase: 7 days).
const DEFAULT_AUTH_TOKEN_SECS: i64 = 604_800;
/// Default lifetime of a password reset, email change, … token when its
/// option carries no duration.
const DEFAULT_PURPOSE_TOKEN_SECS: i64 = 1_800;
/// Default OTP lifetime in seconds.
const DEFAULT_OTP_SECS: i64 = 180;
/// Default OTP length in characters.
const DEFAULT_OTP_LENGTH: u64 = 8;
/// Default MFA session lifetime in seconds.
const DEFAULT_MFA_SECS: i64 = 1_800;

/// `passwordAuth`: whether identity/password login is on, and with which fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PasswordAuthConfig {
    pub enabled: bool,
    pub identity_fields: Vec<String>,
}

impl Default for PasswordAuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            identity_fields: vec!["email".to_owned()],
        }
    }
}

/// `otp`: one-time codes sent by email.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OtpConfig {
    pub enabled: bool,
    /// Seconds a code stays valid.
    pub duration: i64,
    /// Characters in a code (bounds are checked when the collection is saved).
    pub length: u64,
}

impl Default for OtpConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            duration: DEFAULT_OTP_SECS,
            length: DEFAULT_OTP_LENGTH,
        }
    }
}

/// `mfa`: a second, different method must finish a login within `duration`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MfaConfig {
    pub enabled: bool,
    pub duration: i64,
    /// Empty: MFA applies to every account; else to those the rule admits.
    pub rule: String,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            duration: DEFAULT_MFA_SECS,
            rule: String::new(),
        }
    }
}

/// `authAlert`: mail the account when a login comes from a new origin.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthAlertConfig {
    pub enabled: bool,
}

/// One token kind's lifetime and signing secret (`authToken`, `fileToken`, …).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TokenConfig {
    /// Seconds a token stays valid.
    pub duration: i64,
    pub secret: String,
}

impl TokenConfig {
    fn with_duration(duration: i64) -> Self {
        Self {
            duration,
            secret: String::new(),
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self::with_duration(DEFAULT_PURPOSE_TOKEN_SECS)
    }
}

// The secret stays out of debug output (and so out of logs).
impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

/// `oauth2`: providers with catalog defaults filled in, and the record fields
/// that sign-up copies provider data into.
#[derive(Clone, Default)]
pub struct OAuth2Config {
    pub enabled: bool,
    pub providers: Vec<ProviderConfig>,
    /// (`id` | `name` | `username` | `avatarURL`, record field), non-empty fields only.
    pub mapped_fields: Vec<(String, String)>,
}

// Provider client secrets stay out of debug output: names only.
impl std::fmt::Debug for OAuth2Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.providers.iter().map(|p| p.spec.name).collect();
        f.debug_struct("OAuth2Config")
            .field("enabled", &self.enabled)
            .field("providers", &names)
            .field("mapped_fields", &self.mapped_fields)
            .finish()
    }
}

/// Every auth option, typed. Base collections get [`AuthOptions::default`].
#[derive(Debug, Clone, Default)]
pub struct AuthOptions {
    /// `None`: nobody may sign in (fail closed); `Some("")`: everyone.
    pub auth_rule: Option<String>,
    /// `None` (or blank): only superusers manage accounts.
    pub manage_rule: Option<String>,
    pub password_auth: PasswordAuthConfig,
    pub otp: OtpConfig,
    pub mfa: MfaConfig,
    pub oauth2: OAuth2Config,
    pub auth_alert: AuthAlertConfig,
    pub auth_token: TokenConfig,
    pub password_reset_token: TokenConfig,
    pub email_change_token: TokenConfig,
    pub verification_token: TokenConfig,
    pub file_token: TokenConfig,
}

impl AuthOptions {
    /// Parses the stored options of `collection` (defaults for base collections).
    pub fn parse(collection: &Collection) -> Self {
        if collection.kind != CollectionType::Auth {
            return Self::default();
        }
        let options = &collection.options;
        let name = collection.name.as_str();
        let rule = |key: &str| options.get(key).and_then(Value::as_str).map(str::to_owned);
        let oauth2: OAuth2Switch = section(name, options, "oauth2", OAuth2Switch::default);
        Self {
            auth_rule: rule("authRule"),
            manage_rule: rule("manageRule"),
            password_auth: section(name, options, "passwordAuth", Default::default),
            otp: section(name, options, "otp", Default::default),
            mfa: section(name, options, "mfa", Default::default),
            oauth2: OAuth2Config {
                enabled: oauth2.enabled,
                providers: super::oauth2::providers(options),
                mapped_fields: super::oauth2::mapped_fields(options),
            },
            auth_alert: section(name, options, "authAlert", Default::default),
            auth_token: section(name, options, "authToken", || {
                TokenConfig::with_duration(DEFAULT_AUTH_TOKEN_SECS)
            }),
            password_reset_token: section(name, options, "passwordResetToken", Default::default),
            email_change_token: section(name, options, "emailChangeToken", Default::default),
            verification_token: section(name, options, "verificationToken", Default::default),
            file_token: section(name, options, "fileToken", Default::default),
        }
    }
}

/// The part of `oauth2` that serde reads; providers and mapped fields go
/// through `schema::oauth2`, which fills in the provider catalog.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OAuth2Switch {
    enabled: bool,
}

/// Deserializes `options[key]`, or `default()` when it is missing or malformed.
fn section<T: DeserializeOwned>(
    collection: &str,
    options: &Map<String, Value>,
    key: &str,
    default: impl FnOnce() -> T,
) -> T {
    let Some(raw) = options.get(key).filter(|v| !v.is_null()) else {
        return default();
    };
    match T::deserialize(raw) {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::warn!(collection, option = key, error = %e, "auth option is malformed; using defaults");
            default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn auth_collection(extra: Value) -> Collection {
        let mut input = json!({"name": "members", "type": "auth"});
        if let (Some(base), Value::Object(more)) = (input.as_object_mut(), extra) {
            base.extend(more);
        }
        Collection::from_create(&input).expect("valid auth collection")
    }

    #[test]
    fn a_new_auth_collection_parses_to_its_documented_defaults() {
        let options = AuthOptions::parse(&auth_collection(json!({})));

        assert_eq!(options.auth_rule.as_deref(), Some(""), "authRule is open");
        assert_eq!(options.manage_rule, None, "manageRule is superusers-only");
        assert!(options.password_auth.enabled, "password login is on");
        assert_eq!(options.password_auth.identity_fields, ["email"]);
        assert!(!options.otp.enabled && options.otp.duration == 180 && options.otp.length == 8);
        assert!(!options.mfa.enabled && options.mfa.duration == 600);
        assert!(!options.oauth2.enabled && options.oauth2.providers.is_empty());
        assert!(options.auth_alert.enabled, "login alerts are on");
        assert_eq!(
            options.auth_token.duration, 432_000,
            "PocketBase: 5 days for a new collection"
        );
        assert_eq!(options.file_token.duration, 180);
        assert!(
            options.auth_token.secret.len() >= 30,
            "each token kind carries its generated secret"
        );
    }

    #[test]
    fn saved_values_reach_the_typed_fields() {
        let collection = auth_collection(json!({
            "authRule": "verified = true",
            "manageRule": "@request.auth.id != ''",
            "passwordAuth": {"enabled": false, "identityFields": ["username", "email"]},
            "otp": {"enabled": true, "duration": 60, "length": 6},
            "mfa": {"enabled": true, "duration": 900, "rule": "verified = true"},
            "authToken": {"duration": 10},
        }));

        let options = AuthOptions::parse(&collection);

        assert_eq!(options.auth_rule.as_deref(), Some("verified = true"));
        assert_eq!(
            options.manage_rule.as_deref(),
            Some("@request.auth.id != ''")
        );
        assert!(!options.password_auth.enabled);
        assert_eq!(options.password_auth.identity_fields, ["username", "email"]);
        assert!(options.otp.enabled && options.otp.duration == 60 && options.otp.length == 6);
        assert!(options.mfa.enabled && options.mfa.duration == 900);
        assert_eq!(options.mfa.rule, "verified = true");
        assert_eq!(options.auth_token.duration, 10);
    }

    #[test]
    fn malformed_or_missing_sections_fall_back_to_defaults_and_a_missing_auth_rule_stays_closed() {
        let mut collection = auth_collection(json!({}));
        for (key, value, why) in [
            (
                "otp",
                json!({"enabled": "yes"}),
                "a string where a bool belongs",
            ),
            ("mfa", json!([1, 2]), "an array where an object belongs"),
            ("passwordAuth", Value::Null, "null"),
        ] {
            collection.options.insert(key.into(), value);
            let options = AuthOptions::parse(&collection);
            assert!(!options.otp.enabled, "otp after {key} = {why}");
            assert!(!options.mfa.enabled, "mfa after {key} = {why}");
        }
        collection.options.remove("authRule");

        let options = AuthOptions::parse(&collection);

        assert_eq!(options.auth_rule, None, "no authRule must mean nobody");
        assert!(!options.password_auth.enabled, "a null section is off");
    }

    #[test]
    fn base_collections_have_no_auth_options() {
        let base = Collection::from_create(&json!({"name": "posts"})).expect("valid");
        let options = AuthOptions::parse(&base);
        assert_eq!(options.auth_rule, None);
        assert!(!options.password_auth.enabled);
    }

    #[test]
    fn token_secrets_stay_out_of_debug_output() {
        let options = AuthOptions::parse(&auth_collection(json!({})));
        let secret = options.auth_token.secret.clone();
        assert!(!format!("{options:?}").contains(&secret));
    }
}
