//! Application settings in PocketBase's shape (meta, smtp, s3, backups,
//! batch, rateLimits, trustedProxy, logs, superuserIPs), persisted as one JSON
//! row in `_params`. PATCH merges partially, validates every section, and
//! stores; secrets are write-only. Each section's behaviour arrives with the
//! feature that uses it; the shape is complete from the start.

use crate::db::{Db, DbError};
use crate::validation::{FieldError, ValidationErrors};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const PARAMS_KEY: &str = "settings";

/// Why settings could not be read or saved.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid settings: {0}")]
    Invalid(ValidationErrors),
    #[error("malformed settings: {0}")]
    Format(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for SettingsError {
    fn from(e: rusqlite::Error) -> Self {
        SettingsError::Db(DbError::Sqlite(e))
    }
}

/// Every settings section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    pub meta: Meta,
    pub smtp: Smtp,
    pub s3: S3,
    pub backups: Backups,
    pub batch: Batch,
    pub rate_limits: RateLimits,
    pub trusted_proxy: TrustedProxy,
    pub logs: Logs,
    #[serde(rename = "superuserIPs")]
    pub superuser_ips: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Meta {
    pub app_name: String,
    #[serde(rename = "appURL")]
    pub app_url: String,
    pub sender_name: String,
    pub sender_address: String,
    pub hide_controls: bool,
    pub accent_color: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Smtp {
    pub enabled: bool,
    pub host: String,
    pub port: u32,
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    pub auth_method: String,
    pub tls: bool,
    pub local_name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct S3 {
    pub enabled: bool,
    pub bucket: String,
    pub region: String,
    pub endpoint: String,
    pub access_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret: String,
    pub force_path_style: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Backups {
    pub cron: String,
    pub cron_max_keep: u32,
    pub s3: S3,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Batch {
    pub enabled: bool,
    pub max_requests: u32,
    pub timeout: u32,
    pub max_body_size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct RateLimits {
    pub enabled: bool,
    pub rules: Vec<RateLimitRule>,
    #[serde(rename = "excludedIPs")]
    pub excluded_ips: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct RateLimitRule {
    pub label: String,
    pub audience: String,
    pub duration: u64,
    pub max_requests: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct TrustedProxy {
    pub headers: Vec<String>,
    pub use_leftmost_ip: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Logs {
    pub max_days: u32,
    pub min_level: i32,
    #[serde(rename = "logIP")]
    pub log_ip: bool,
    pub log_auth_id: bool,
    pub max_data_size: u64,
}

impl Default for Meta {
    fn default() -> Self {
        Self {
            app_name: "Acme".into(),
            app_url: "http://localhost:8090".into(),
            sender_name: "Support".into(),
            sender_address: "support@example.com".into(),
            hide_controls: false,
            accent_color: "#1055c9".into(),
        }
    }
}

impl Default for Smtp {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "smtp.example.com".into(),
            port: 587,
            username: String::new(),
            password: String::new(),
            auth_method: String::new(),
            tls: false,
            local_name: String::new(),
        }
    }
}

impl Default for Backups {
    fn default() -> Self {
        Self {
            cron: String::new(),
            cron_max_keep: 3,
            s3: S3::default(),
        }
    }
}

impl Default for Batch {
    fn default() -> Self {
        Self {
            enabled: false,
            max_requests: 50,
            timeout: 3,
            max_body_size: 0,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        let rule = |label: &str, duration, max_requests| RateLimitRule {
            label: label.into(),
            audience: String::new(),
            duration,
            max_requests,
        };
        Self {
            enabled: false,
            rules: vec![
                rule("*:auth", 3, 2),
                rule("*:create", 5, 20),
                rule("/api/batch", 1, 3),
                rule("/api/", 10, 300),
            ],
            excluded_ips: Vec::new(),
        }
    }
}

impl Default for Logs {
    fn default() -> Self {
        Self {
            max_days: 5,
            min_level: 0,
            log_ip: true,
            log_auth_id: false,
            max_data_size: 0,
        }
    }
}

impl Settings {
    /// The settings as API JSON, with secrets removed.
    pub fn to_public_json(&self) -> Value {
        let mut public = self.clone();
        public.smtp.password.clear();
        public.s3.secret.clear();
        public.backups.s3.secret.clear();
        serde_json::to_value(public).unwrap_or(Value::Null)
    }

    /// Checks every section; all problems are reported, nested by section.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let mut meta = ValidationErrors::new();
        if self.meta.app_name.trim().is_empty() {
            meta.add("appName", FieldError::required());
        } else if self.meta.app_name.chars().count() > 255 {
            meta.add(
                "appName",
                FieldError::new(
                    "validation_length_out_of_range",
                    "The length must be at most 255.",
                ),
            );
        }
        if self.meta.app_url.trim().is_empty() {
            meta.add("appURL", FieldError::required());
        } else if !self.meta.app_url.contains("://") {
            meta.add(
                "appURL",
                FieldError::new("validation_invalid_url", "Must be a valid url."),
            );
        }
        if self.meta.sender_address.is_empty() {
            meta.add("senderAddress", FieldError::required());
        } else if !self.meta.sender_address.contains('@') {
            meta.add(
                "senderAddress",
                FieldError::new("validation_is_email", "Must be a valid email address."),
            );
        }
        errors.nest("meta", meta);
        let mut smtp = ValidationErrors::new();
        if self.smtp.enabled {
            if self.smtp.host.trim().is_empty() {
                smtp.add("host", FieldError::required());
            }
            if !(1..=65_535).contains(&self.smtp.port) {
                smtp.add(
                    "port",
                    FieldError::new(
                        "validation_invalid_value",
                        "Must be a port between 1 and 65535.",
                    ),
                );
            }
        }
        if !["", "PLAIN", "LOGIN"].contains(&self.smtp.auth_method.as_str()) {
            smtp.add(
                "authMethod",
                FieldError::new("validation_in_invalid", "Must be PLAIN or LOGIN."),
            );
        }
        errors.nest("smtp", smtp);
        errors.nest("rateLimits", self.validate_rate_limits());
        errors.nest("superuserIPs", validate_ip_list(&self.superuser_ips));
        let mut backups = ValidationErrors::new();
        if !self.backups.cron.trim().is_empty()
            && crate::cron::parse(self.backups.cron.trim()).is_err()
        {
            backups.add(
                "cron",
                FieldError::new(
                    "validation_invalid_cron",
                    "Must be a cron expression of 5 fields.",
                ),
            );
        }
        if self.backups.cron_max_keep == 0 {
            backups.add(
                "cronMaxKeep",
                FieldError::new("validation_min_number_constraint", "Must be at least 1."),
            );
        }
        errors.nest("backups", backups);
        errors.into_result()
    }

    fn validate_rate_limits(&self) -> ValidationErrors {
        let mut rules = ValidationErrors::new();
        for (i, rule) in self.rate_limits.rules.iter().enumerate() {
            let mut e = ValidationErrors::new();
            if rule.label.trim().is_empty() {
                e.add("label", FieldError::required());
            } else if !valid_rate_label(&rule.label) {
                e.add(
                    "label",
                    FieldError::new("validation_match_invalid", "Invalid rate limit label."),
                );
            }
            if !["", "@guest", "@auth"].contains(&rule.audience.as_str()) {
                e.add(
                    "audience",
                    FieldError::new("validation_in_invalid", "Must be empty, @guest or @auth."),
                );
            }
            if rule.duration == 0 {
                e.add("duration", FieldError::required());
            }
            if rule.max_requests == 0 {
                e.add("maxRequests", FieldError::required());
            }
            rules.nest(i.to_string(), e);
        }
        let mut out = ValidationErrors::new();
        out.nest("rules", rules);
        out.nest(
            "excludedIPs",
            validate_ip_list(&self.rate_limits.excluded_ips),
        );
        out
    }
}

/// `"10.0.0.1"` → (10.0.0.1, 32); `"10.0.0.0/8"` → (10.0.0.0, 8); IPv6
/// alike. `None` for anything else (`superuserIPs`, `excludedIPs` entries).
pub fn parse_ip_or_subnet(entry: &str) -> Option<(std::net::IpAddr, u8)> {
    let entry = entry.trim();
    let (addr, bits) = match entry.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits.parse::<u8>().ok()?)),
        None => (entry, None),
    };
    let addr = addr.parse::<std::net::IpAddr>().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr, bits))
}

/// Errors for the entries of an address list that are neither an address
/// nor a CIDR subnet, keyed by index (PocketBase's code, typo included).
fn validate_ip_list(list: &[String]) -> ValidationErrors {
    let mut errors = ValidationErrors::new();
    for (i, entry) in list.iter().enumerate() {
        if entry.trim().is_empty() {
            errors.add(i.to_string(), FieldError::required());
        } else if parse_ip_or_subnet(entry).is_none() {
            errors.add(
                i.to_string(),
                FieldError::new(
                    "validation_invlaid_ip_or_subnet",
                    "invalid IP or CIDR subnet",
                ),
            );
        }
    }
    errors
}

fn valid_rate_label(label: &str) -> bool {
    let path_ok = |p: &str| p.starts_with('/') && p.chars().all(|c| c.is_ascii_graphic());
    if let Some((method, path)) = label.split_once(' ') {
        return ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&method)
            && path_ok(path);
    }
    if let Some((collection, action)) = label.split_once(':') {
        return !collection.is_empty()
            && collection
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '*')
            && !action.is_empty()
            && action.chars().all(|c| c.is_ascii_alphabetic());
    }
    path_ok(label)
}

/// Merges `patch` into `base` recursively (objects merge, everything else replaces).
fn merge_json(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge_json(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// The current settings, shared by request handlers and replaced whole when
/// they are saved, so features read them without a database round trip.
#[derive(Debug, Default)]
pub struct SettingsCache(std::sync::RwLock<std::sync::Arc<Settings>>);

impl SettingsCache {
    /// A cache holding `settings`.
    pub fn new(settings: Settings) -> Self {
        Self(std::sync::RwLock::new(std::sync::Arc::new(settings)))
    }

    /// The current settings (one Arc clone).
    pub fn get(&self) -> std::sync::Arc<Settings> {
        match self.0.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Installs newly saved settings.
    pub fn set(&self, settings: Settings) {
        let settings = std::sync::Arc::new(settings);
        match self.0.write() {
            Ok(mut guard) => *guard = settings,
            Err(poisoned) => *poisoned.into_inner() = settings,
        }
    }
}

/// Reads the stored settings (defaults when none were saved).
pub async fn load(db: &Db) -> Result<Settings, SettingsError> {
    db.read(|conn| {
        let raw: Option<String> = conn
            .query_row(
                "SELECT value FROM _params WHERE id = ?1",
                [PARAMS_KEY],
                |r| r.get(0),
            )
            .optional()?;
        match raw {
            None => Ok(Settings::default()),
            Some(text) => {
                serde_json::from_str(&text).map_err(|e| SettingsError::Format(e.to_string()))
            }
        }
    })
    .await
}

/// Applies a partial update, validates, stores and returns the new settings.
pub async fn patch(db: &Db, patch: Value) -> Result<Settings, SettingsError> {
    if !patch.is_object() {
        return Err(SettingsError::Format("expected an object".into()));
    }
    db.write(move |conn| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let raw: Option<String> = tx
            .query_row(
                "SELECT value FROM _params WHERE id = ?1",
                [PARAMS_KEY],
                |r| r.get(0),
            )
            .optional()?;
        let current: Settings = match raw {
            None => Settings::default(),
            Some(text) => {
                serde_json::from_str(&text).map_err(|e| SettingsError::Format(e.to_string()))?
            }
        };
        let mut merged =
            serde_json::to_value(&current).map_err(|e| SettingsError::Format(e.to_string()))?;
        merge_json(&mut merged, &patch);
        let next: Settings =
            serde_json::from_value(merged).map_err(|e| SettingsError::Format(e.to_string()))?;
        next.validate().map_err(SettingsError::Invalid)?;
        let text =
            serde_json::to_string(&next).map_err(|e| SettingsError::Format(e.to_string()))?;
        let now = crate::clock::now();
        tx.execute(
            "INSERT INTO _params (id, value, created, updated) VALUES (?1, ?2, ?3, ?3) \
             ON CONFLICT(id) DO UPDATE SET value = excluded.value, updated = excluded.updated",
            params![PARAMS_KEY, text, now],
        )?;
        tx.commit()?;
        Ok(next)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_have_the_reference_shape_and_validate() {
        let s = Settings::default();
        s.validate().expect("defaults are valid");
        let v = s.to_public_json();
        assert_eq!(v["meta"]["appURL"], json!("http://localhost:8090"));
        assert_eq!(v["rateLimits"]["rules"][0]["label"], json!("*:auth"));
        assert_eq!(v["batch"]["maxRequests"], json!(50));
        assert!(
            v["smtp"].get("password").is_none(),
            "secrets are never returned"
        );
        assert!(v.get("superuserIPs").is_some());
    }

    #[test]
    fn address_lists_take_addresses_and_subnets_only() {
        for (entry, ok) in [
            ("10.0.0.1", true),
            ("10.0.0.0/8", true),
            (" 2001:db8::/32 ", true),
            ("::/0", true),
            ("10.0.0.0/33", false),
            ("10.0.0.0/x", false),
            ("localhost", false),
            ("", false),
        ] {
            let s = Settings {
                superuser_ips: vec![entry.into()],
                rate_limits: RateLimits {
                    excluded_ips: vec![entry.into()],
                    ..RateLimits::default()
                },
                ..Settings::default()
            };
            let result = s.validate();
            assert_eq!(result.is_ok(), ok, "{entry:?}");
            if !ok {
                let e = result.expect_err("invalid").to_json();
                assert!(e["superuserIPs"]["0"]["code"].is_string(), "{entry:?}: {e}");
                assert!(
                    e["rateLimits"]["excludedIPs"]["0"]["code"].is_string(),
                    "{entry:?}: {e}"
                );
            }
        }
    }

    #[test]
    fn invalid_sections_are_reported_nested() {
        let mut base = serde_json::to_value(Settings::default()).expect("json");
        merge_json(
            &mut base,
            &json!({"meta": {"appName": ""}, "rateLimits": {"rules": [{"label": "x y z", "duration": 1, "maxRequests": 1}]}}),
        );
        let s: Settings = serde_json::from_value(base).expect("shape");
        let e = s.validate().expect_err("invalid").to_json();
        assert_eq!(e["meta"]["appName"]["code"], json!("validation_required"));
        assert_eq!(
            e["rateLimits"]["rules"]["0"]["label"]["code"],
            json!("validation_match_invalid")
        );
    }
}
