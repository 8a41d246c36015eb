//! Application settings in PocketBase's shape (meta, smtp, s3, backups,
//! batch, rateLimits, trustedProxy, logs, superuserIPs), persisted as one JSON
//! row in `_params`. PATCH merges partially, validates every section, and
//! stores; secrets are write-only. Every key is either applied by the
//! feature that reads it or refused by [`validate`] (the backups' S3 switch,
//! until backups have an S3 backend; files on S3 are `s3`). With
//! `--encryptionEnv` the stored JSON is sealed ([`seal`]).

mod ip_list;
mod seal;
mod validate;

pub use ip_list::{in_list, parse_ip_or_subnet};
pub use seal::{Seal, SealError};
pub use validate::MAX_SAFE_JSON_INT;

use crate::db::{Conn, Db, DbError, LockKey};
use crate::rules::SqlValue;
use crate::validation::ValidationErrors;
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
    #[error(transparent)]
    Sealed(#[from] SealError),
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
    /// Not in PocketBase: who may read `/api/openapi.json`.
    pub openapi: OpenApi,
}

/// `openapi.public`: whether non-superusers get the document (trimmed to
/// what their rules could admit); superusers always do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct OpenApi {
    pub public: bool,
}

impl Default for OpenApi {
    fn default() -> Self {
        Self { public: true }
    }
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
    pub port: u64,
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

impl S3 {
    /// The connection settings the file storage's S3 client takes.
    pub fn storage_config(&self) -> crate::files::S3Config {
        crate::files::S3Config {
            bucket: self.bucket.clone(),
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            access_key: self.access_key.clone(),
            secret: self.secret.clone(),
            force_path_style: self.force_path_style,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Backups {
    pub cron: String,
    pub cron_max_keep: u64,
    pub s3: S3,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Batch {
    pub enabled: bool,
    pub max_requests: u64,
    pub timeout: u64,
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
    /// PocketBase's spelling; early Ferrobase stored `useLeftmostIp`, still read.
    #[serde(rename = "useLeftmostIP", alias = "useLeftmostIp")]
    pub use_leftmost_ip: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Logs {
    pub max_days: u64,
    pub min_level: i64,
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
pub struct SettingsCache(std::sync::RwLock<std::sync::Arc<Settings>>, Seal);

impl SettingsCache {
    /// A cache holding `settings`, which are stored sealed with `seal`.
    pub fn new(settings: Settings, seal: Seal) -> Self {
        Self(std::sync::RwLock::new(std::sync::Arc::new(settings)), seal)
    }

    /// The key the settings are stored with.
    pub fn seal(&self) -> &Seal {
        &self.1
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

/// The stored settings row: `None` when none was saved yet.
fn read_stored(
    conn: &mut dyn Conn,
    seal: &Seal,
) -> Result<Option<(Settings, bool)>, SettingsError> {
    let row = conn.first_row(
        "SELECT value FROM _params WHERE id = ?1",
        &[SqlValue::Text(PARAMS_KEY.into())],
    )?;
    let text = match row.and_then(|r| r.into_iter().next()) {
        None | Some(SqlValue::Null) => return Ok(None),
        Some(SqlValue::Text(text)) => text,
        Some(other) => {
            return Err(SettingsError::Format(format!(
                "the stored settings are not text: {other:?}"
            )));
        }
    };
    let opened = seal.open(&text)?;
    let settings =
        serde_json::from_str(opened.json()).map_err(|e| SettingsError::Format(e.to_string()))?;
    Ok(Some((settings, matches!(opened, seal::Opened::Sealed(_)))))
}

/// Writes `settings` as the stored row, sealed when `seal` has a key.
fn store(conn: &mut dyn Conn, seal: &Seal, settings: &Settings) -> Result<(), SettingsError> {
    let text = serde_json::to_string(settings).map_err(|e| SettingsError::Format(e.to_string()))?;
    let value = seal.seal(&text)?;
    let now = crate::clock::now();
    conn.execute(
        "INSERT INTO _params (id, value, created, updated) VALUES (?1, ?2, ?3, ?3) \
         ON CONFLICT(id) DO UPDATE SET value = excluded.value, updated = excluded.updated",
        &[
            SqlValue::Text(PARAMS_KEY.into()),
            SqlValue::Text(value),
            SqlValue::Text(now.as_str().to_owned()),
        ],
    )?;
    Ok(())
}

/// Reads the stored settings (defaults when none were saved). Fails, never
/// falls back to defaults, when they are sealed and `seal` cannot open them.
/// Settings stored in plain JSON while `seal` has a key are sealed now, so
/// turning encryption on takes effect at the next start.
pub async fn load(db: &Db, seal: &Seal) -> Result<Settings, SettingsError> {
    let seal = seal.clone();
    db.write_conn(move |conn| {
        conn.lock(LockKey::Settings)?;
        Ok(match read_stored(conn, &seal)? {
            None => Settings::default(),
            Some((settings, sealed)) => {
                if seal.is_on() && !sealed {
                    store(conn, &seal, &settings)?;
                    tracing::info!("stored settings were plain JSON; now encrypted");
                }
                settings
            }
        })
    })
    .await
}

/// `current` with `patch` merged in, checked as [`patch`] checks it, not saved
/// (the S3 section is tried out before it is saved).
pub fn merged(current: &Settings, patch: &Value) -> Result<Settings, SettingsError> {
    let mut merged =
        serde_json::to_value(current).map_err(|e| SettingsError::Format(e.to_string()))?;
    merge_json(&mut merged, patch);
    let out_of_range = validate::check_numbers(&merged);
    if !out_of_range.is_empty() {
        return Err(SettingsError::Invalid(out_of_range));
    }
    let next: Settings =
        serde_json::from_value(merged).map_err(|e| SettingsError::Format(e.to_string()))?;
    next.validate().map_err(SettingsError::Invalid)?;
    Ok(next)
}

/// Applies a partial update, validates, stores and returns the new
/// settings, under the settings lock (so a concurrent patch on PostgreSQL
/// is never lost between its read and its write).
pub async fn patch(db: &Db, seal: &Seal, patch: Value) -> Result<Settings, SettingsError> {
    if !patch.is_object() {
        return Err(SettingsError::Format("expected an object".into()));
    }
    let seal = seal.clone();
    db.write_conn(move |conn| {
        conn.lock(LockKey::Settings)?;
        let current = read_stored(conn, &seal)?
            .map(|(s, _)| s)
            .unwrap_or_default();
        let next = merged(&current, &patch)?;
        store(conn, &seal, &next)?;
        // The other nodes reload their settings once this commits.
        crate::db::notify::announce(conn, crate::db::notify::Cache::Settings)?;
        Ok(next)
    })
    .await
}

#[cfg(test)]
mod backends;

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
    fn use_leftmost_ip_is_written_in_pocketbases_casing_and_the_old_one_still_reads() {
        for stored in [
            json!({"trustedProxy": {"useLeftmostIP": true}}),
            json!({"trustedProxy": {"useLeftmostIp": true}}),
        ] {
            let s: Settings = serde_json::from_value(stored.clone()).expect("reads");
            assert!(s.trusted_proxy.use_leftmost_ip, "{stored}");
            let out = s.to_public_json();
            assert_eq!(out["trustedProxy"]["useLeftmostIP"], json!(true), "{out}");
            assert!(out["trustedProxy"].get("useLeftmostIp").is_none(), "{out}");
        }
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
