//! The `Config` tree: built-in defaults, overlaid by a TOML file, then by
//! `FERROBASE_SECTION_KEY` environment variables, then by CLI flags (applied by
//! `cli`). Validated once at startup; every problem is reported together.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod database_url;
pub use database_url::{DatabaseUrl, redact_passwords, redact_url};

/// Prefix of environment overrides: `FERROBASE_SERVER_HTTP`, `FERROBASE_DATABASE_SYNCHRONOUS`, …
pub const ENV_PREFIX: &str = "FERROBASE_";
/// PocketBase's default request body limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Upper bound for the reader pool; more readers than this only add contention on 2–16 cores.
pub const MAX_READER_POOL_SIZE: u32 = 64;
/// PocketBase's default `--queryTimeout` (30 s), in milliseconds.
pub const DEFAULT_QUERY_TIMEOUT_MS: u64 = 30_000;
/// Longest accepted query timeout (one day): beyond it a runaway query is
/// as good as unlimited, and the deadline arithmetic stays far from overflow.
pub const MAX_QUERY_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

/// Everything the server needs to start.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub realtime: RealtimeConfig,
    pub public: PublicConfig,
    pub mail: MailConfig,
    pub hooks: HooksConfig,
    pub migrations: MigrationsConfig,
    /// Continuous replication of the databases by a supervised Litestream
    /// (off unless `replica` is set; see `crate::replication`).
    pub replication: ReplicationConfig,
    /// TEST ONLY: lets the OAuth2 avatar download reach loopback and
    /// private addresses, so tests can serve avatars from 127.0.0.1. Not
    /// read from `config.toml`, the environment or the CLI (`serde(skip)`):
    /// only code that builds a `Config` by hand (the test helpers) can set it.
    #[serde(skip)]
    pub oauth2_avatar_private_hosts: bool,
}

/// Outgoing mail besides the SMTP settings (those live in `/api/settings`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// The sendmail program used while `smtp.enabled` is off, as PocketBase
    /// does: "" = `/usr/sbin/sendmail` or `/usr/bin/sendmail` if present,
    /// "off" = none (mails are then not sent), else a path.
    pub sendmail: String,
}

/// HTTP listener and request limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub http: SocketAddr,
    /// Origins allowed by CORS; `["*"]` allows every origin.
    pub cors_origins: Vec<String>,
    /// Largest accepted request body in bytes (413 above it).
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([127, 0, 0, 1], 8090)),
            cors_origins: vec!["*".to_owned()],
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            workers: 0,
        }
    }
}

/// Where data lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Data directory: holds `data.db` and `storage/` (uploaded files).
    pub data_dir: PathBuf,
    /// Name of the environment variable holding the 32-byte key the settings
    /// are stored encrypted with (PocketBase's `--encryptionEnv`); "" = plain.
    pub encryption_env: String,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./fb_data"),
            encryption_env: String::new(),
        }
    }
}

/// Which database, and SQLite tuning. See the README for why
/// `synchronous = "FULL"` is the default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// "" = the embedded SQLite in the data dir; else a PostgreSQL URL
    /// (`postgres://user:pass@host:5432/db`). CLI: `--db URL`.
    pub url: DatabaseUrl,
    /// Read-only connections in the r2d2 pool, one reader thread each;
    /// 0 = two per CPU core, between 2 and 8 (see [`Self::readers`]).
    pub reader_pool_size: u32,
    /// How long a connection waits on a lock before giving up, in milliseconds.
    pub busy_timeout_ms: u64,
    /// `PRAGMA synchronous`: "NORMAL", "FULL" or "EXTRA" ("OFF" is refused).
    pub synchronous: String,
    /// Page cache per connection, in KiB.
    pub cache_size_kib: u32,
    /// Memory-mapped I/O window in bytes (0 disables it).
    pub mmap_size_bytes: u64,
    /// Longest a read job (or a grouped write job) may run its SQL before it
    /// is interrupted, in milliseconds (PocketBase's `--queryTimeout`).
    pub query_timeout_ms: u64,
    /// Log every SQL statement (text and time, never its bound values) at
    /// info level on the `ferrobase::sql` target. CLI: `--dev`.
    pub log_statements: bool,
    /// Who folds the WAL back into the database file: SQLite and Ferrobase
    /// (`Auto`), or an outside tool such as Litestream (`Off`). Forced to
    /// `Off` while `[replication]` is on (see [`Config::effective`]).
    pub wal_checkpoints: WalCheckpoints,
}

/// `database.wal_checkpoints`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WalCheckpoints {
    /// SQLite's automatic checkpoints (every 1000 WAL pages), a passive one
    /// in the nightly maintenance job and a truncating one at shutdown.
    #[default]
    Auto,
    /// None at all: `PRAGMA wal_autocheckpoint = 0` and no checkpoint by
    /// Ferrobase. Another program (Litestream) must checkpoint, or the WAL
    /// grows without bound.
    Off,
}

/// Default `replication.sync_interval_ms`: Litestream's own default (1 s).
pub const DEFAULT_REPLICATION_SYNC_INTERVAL_MS: u64 = 1_000;

/// `[replication]`: Litestream streaming `data.db` and `auxiliary.db` to a replica.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationConfig {
    /// Replica URL: "" (off), `file:///abs/path` or `s3://bucket/path`
    /// (any URL scheme Litestream accepts). Each database gets its own
    /// sub-path (`…/data.db`, `…/auxiliary.db`).
    pub replica: String,
    /// How often Litestream ships new WAL frames to the replica, in
    /// milliseconds; a lost machine loses about this much (plus the 100 ms
    /// WAL monitor interval, see `replication::yaml`).
    pub sync_interval_ms: u64,
    /// The `litestream` program: "" = the first `litestream` on PATH.
    pub litestream: PathBuf,
    /// Also replicate `auxiliary.db` (the request log).
    pub auxiliary: bool,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            replica: String::new(),
            sync_interval_ms: DEFAULT_REPLICATION_SYNC_INTERVAL_MS,
            litestream: PathBuf::new(),
            auxiliary: true,
        }
    }
}

impl ReplicationConfig {
    /// Whether a replica is configured.
    pub fn is_enabled(&self) -> bool {
        !self.replica.trim().is_empty()
    }
}

impl DatabaseConfig {
    /// The reader count to use: `reader_pool_size`, or when that is 0, two
    /// per CPU core between 2 and 8. Reads are short and CPU-bound; each
    /// extra reader keeps its own page cache and memory map, so more readers
    /// than cores add memory, not throughput (measured in benches/http).
    pub fn readers(&self) -> u32 {
        if self.reader_pool_size > 0 {
            return self.reader_pool_size;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        u32::try_from(cores * 2).unwrap_or(8).clamp(2, 8)
    }

    /// [`Self::query_timeout_ms`] as a duration.
    pub fn query_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.query_timeout_ms)
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: DatabaseUrl::default(),
            reader_pool_size: 0,
            busy_timeout_ms: 5_000,
            synchronous: "FULL".to_owned(),
            cache_size_kib: 16 * 1024,
            mmap_size_bytes: 256 * 1024 * 1024,
            query_timeout_ms: DEFAULT_QUERY_TIMEOUT_MS,
            log_statements: false,
            wal_checkpoints: WalCheckpoints::Auto,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: "info", "warn", "ferrobase=debug,actix_web=info", …
    pub level: String,
    /// Also print one line per HTTP request to stderr (off by default, like
    /// PocketBase outside `--dev`: the request log in `auxiliary.db` is the
    /// record, and a line per request costs about 4 % of read throughput).
    pub requests: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            requests: false,
        }
    }
}

/// `GET /api/metrics` access.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A bearer token that may read the metrics (besides superusers); empty = superusers only.
    pub token: String,
}

/// Realtime (SSE) streams.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealtimeConfig {
    /// Most realtime streams open at once from one client address (an IPv6
    /// client counts per /64); more get 429. 0 = no limit.
    pub max_streams_per_ip: usize,
}

/// Default of `realtime.max_streams_per_ip`: plenty for one household or
/// office behind NAT (a browser tab holds one stream), little for a flood.
pub const DEFAULT_MAX_REALTIME_STREAMS_PER_IP: usize = 100;

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            max_streams_per_ip: DEFAULT_MAX_REALTIME_STREAMS_PER_IP,
        }
    }
}

/// Static files served at `/` (PocketBase's `pb_public`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublicConfig {
    /// Directory served at `/`; empty = `pb_public` beside the data dir
    /// (see [`Config::public_dir`]). CLI: `--publicDir`.
    pub dir: PathBuf,
    /// Answer a GET for a missing file with the root `index.html` (for
    /// single-page apps with client-side routes). CLI: `--indexFallback`.
    pub index_fallback: bool,
}

impl Default for PublicConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            index_fallback: true,
        }
    }
}

/// Server-side JavaScript hooks (PocketBase's `pb_hooks`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    /// Directory of `*.pb.js` files; empty = `pb_hooks` beside the data dir
    /// (see [`Config::hooks_dir`]). CLI: `--hooksDir`.
    pub dir: PathBuf,
    /// JavaScript runtimes (threads) running hooks at once.
    pub pool_size: usize,
    /// Memory one runtime may hold while running a hook, in MiB.
    pub memory_limit_mb: usize,
    /// Longest a hook may run JavaScript per request, in milliseconds.
    pub timeout_ms: u64,
    /// Whether `$http.send` may reach loopback, private and link-local
    /// addresses (off: the SSRF guard refuses them).
    pub http_allow_private: bool,
    /// Hosts `$http.send` may reach; empty = any (public) host.
    pub http_allow: Vec<String>,
    /// Restart with the new files when the hooks directory changes (after
    /// checking they load). CLI: `--hooksWatch[=false]`.
    pub watch: bool,
}

/// Default `[hooks] pool_size`: PocketBase's `--hooksPool` default. A
/// runtime holding a hooked write waits for its commit, so the pool also
/// bounds how many hooked writes share one group commit; each costs about
/// 0.6 MiB.
pub const DEFAULT_HOOKS_POOL_SIZE: usize = 15;
/// Largest `[hooks] pool_size`.
pub const MAX_HOOKS_POOL_SIZE: usize = 64;
/// Default `[hooks] memory_limit_mb`.
pub const DEFAULT_HOOKS_MEMORY_LIMIT_MB: usize = 64;
/// Largest `[hooks] memory_limit_mb` (4 GiB).
pub const MAX_HOOKS_MEMORY_LIMIT_MB: usize = 4096;
/// Default `[hooks] timeout_ms`.
pub const DEFAULT_HOOKS_TIMEOUT_MS: u64 = 5_000;

impl Default for HooksConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            pool_size: DEFAULT_HOOKS_POOL_SIZE,
            memory_limit_mb: DEFAULT_HOOKS_MEMORY_LIMIT_MB,
            timeout_ms: DEFAULT_HOOKS_TIMEOUT_MS,
            http_allow_private: false,
            http_allow: Vec::new(),
            watch: true,
        }
    }
}

/// JavaScript schema migrations (PocketBase's `pb_migrations`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MigrationsConfig {
    /// Directory of `*.js` migration files; empty = `pb_migrations` beside
    /// the data dir (see [`Config::migrations_dir`]). CLI: `--migrationsDir`.
    pub dir: PathBuf,
    /// Write a migration file for every collection change made through the
    /// API (PocketBase's default). CLI: `--automigrate[=false]`.
    pub automigrate: bool,
    /// Longest one migration file may run (its JavaScript and its SQL
    /// together), in milliseconds; past it the file is rolled back.
    pub timeout_ms: u64,
}

/// Default `[migrations] timeout_ms`: a minute (a migration may rewrite a
/// large table; it runs once, before the server serves).
pub const DEFAULT_MIGRATIONS_TIMEOUT_MS: u64 = 60_000;

impl Default for MigrationsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            automigrate: true,
            timeout_ms: DEFAULT_MIGRATIONS_TIMEOUT_MS,
        }
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Parse(String),
    #[error("invalid config:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

impl Config {
    /// Loads defaults < `path` (or `./config.toml` when present) < environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// Like [`Config::load`], with the environment passed in (for tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match resolve_file(path) {
            Some(file) => read_table(&file)?,
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(redact_passwords(&e.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    /// A config for integration tests: loopback on a random port, data in `data_dir`.
    pub fn for_tests(data_dir: &Path) -> Self {
        let mut config = Config::default();
        config.server.http = SocketAddr::from(([127, 0, 0, 1], 0));
        config.server.workers = 2;
        config.storage.data_dir = data_dir.to_path_buf();
        // Inside the test's own dir, never a shared /tmp/pb_public.
        config.public.dir = data_dir.join("pb_public");
        config.hooks.dir = data_dir.join("pb_hooks");
        config.migrations.dir = data_dir.join("pb_migrations");
        // Other tests' collection changes should not write files.
        config.migrations.automigrate = false;
        // In-process test apps are not restarted by a serve loop.
        config.hooks.watch = false;
        config.database.reader_pool_size = 4;
        config.log.requests = false;
        config
    }

    /// Root of stored files: `DATA_DIR/storage/COLLECTION_ID/RECORD_ID/NAME`.
    pub fn storage_dir(&self) -> PathBuf {
        self.storage.data_dir.join("storage")
    }

    /// The static files directory: `public.dir`, or `pb_public` beside the
    /// data dir (PocketBase keeps `pb_public` beside `pb_data`).
    pub fn public_dir(&self) -> PathBuf {
        if !self.public.dir.as_os_str().is_empty() {
            return self.public.dir.clone();
        }
        let data_dir = &self.storage.data_dir;
        match data_dir.parent() {
            Some(parent) if data_dir.file_name().is_some() => parent.join("pb_public"),
            _ => data_dir.join("..").join("pb_public"),
        }
    }

    /// The hooks directory: `hooks.dir`, or `pb_hooks` beside the data dir
    /// (PocketBase: `<dataDir>/../pb_hooks`).
    pub fn hooks_dir(&self) -> PathBuf {
        if !self.hooks.dir.as_os_str().is_empty() {
            return self.hooks.dir.clone();
        }
        let data_dir = &self.storage.data_dir;
        match data_dir.parent() {
            Some(parent) if data_dir.file_name().is_some() => parent.join("pb_hooks"),
            _ => data_dir.join("..").join("pb_hooks"),
        }
    }

    /// The migrations directory: `migrations.dir`, or `pb_migrations`
    /// beside the data dir (PocketBase: `<dataDir>/../pb_migrations`).
    pub fn migrations_dir(&self) -> PathBuf {
        if !self.migrations.dir.as_os_str().is_empty() {
            return self.migrations.dir.clone();
        }
        let data_dir = &self.storage.data_dir;
        match data_dir.parent() {
            Some(parent) if data_dir.file_name().is_some() => parent.join("pb_migrations"),
            _ => data_dir.join("..").join("pb_migrations"),
        }
    }

    /// The config as it runs: with replication on, Ferrobase leaves WAL
    /// checkpoints to Litestream (two checkpointers fight: a truncating
    /// checkpoint behind Litestream's back makes it lose its place in the WAL).
    pub fn effective(mut self) -> Self {
        if self.replication.is_enabled() {
            self.database.wal_checkpoints = WalCheckpoints::Off;
        }
        self
    }

    /// Path of the main database file.
    pub fn db_path(&self) -> PathBuf {
        self.storage.data_dir.join("data.db")
    }

    /// Checks every value, collecting all problems.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.server.max_body_bytes == 0 {
            problems.push("server.max_body_bytes: must be greater than 0".to_owned());
        }
        if self.server.cors_origins.iter().any(|o| o.trim().is_empty()) {
            problems.push("server.cors_origins: entries must not be empty".to_owned());
        }
        if let Some(problem) = self.database.url.problem() {
            problems.push(format!("database.url: {problem}"));
        }
        if self.database.reader_pool_size > MAX_READER_POOL_SIZE {
            problems.push(format!(
                "database.reader_pool_size: must be between 0 (automatic) and {MAX_READER_POOL_SIZE}, got {}",
                self.database.reader_pool_size
            ));
        }
        if !(1..=MAX_QUERY_TIMEOUT_MS).contains(&self.database.query_timeout_ms) {
            problems.push(format!(
                "database.query_timeout_ms: must be between 1 and {MAX_QUERY_TIMEOUT_MS}, got {}",
                self.database.query_timeout_ms
            ));
        }
        if !["NORMAL", "FULL", "EXTRA"].contains(&self.database.synchronous.to_uppercase().as_str())
        {
            problems.push(format!(
                "database.synchronous: must be NORMAL, FULL or EXTRA, got {:?}",
                self.database.synchronous
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            problems.push(format!(
                "log.level: not a valid log filter: {:?}",
                self.log.level
            ));
        }
        if self.migrations.timeout_ms == 0 {
            problems.push("migrations.timeout_ms: must be at least 1".to_owned());
        }
        if !(1..=MAX_HOOKS_POOL_SIZE).contains(&self.hooks.pool_size) {
            problems.push(format!(
                "hooks.pool_size: must be between 1 and {MAX_HOOKS_POOL_SIZE}, got {}",
                self.hooks.pool_size
            ));
        }
        if !(1..=MAX_HOOKS_MEMORY_LIMIT_MB).contains(&self.hooks.memory_limit_mb) {
            problems.push(format!(
                "hooks.memory_limit_mb: must be between 1 and {MAX_HOOKS_MEMORY_LIMIT_MB}, got {}",
                self.hooks.memory_limit_mb
            ));
        }
        if !(1..=MAX_QUERY_TIMEOUT_MS).contains(&self.hooks.timeout_ms) {
            problems.push(format!(
                "hooks.timeout_ms: must be between 1 and {MAX_QUERY_TIMEOUT_MS}, got {}",
                self.hooks.timeout_ms
            ));
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            problems.push("storage.data_dir: must not be empty".to_owned());
        }
        if self.replication.is_enabled() {
            let replica = self.replication.replica.trim();
            if !replica.contains("://") {
                problems.push(format!(
                    "replication.replica: must be a URL such as file:///var/replica or s3://bucket/path, got {replica:?}"
                ));
            }
            if self.replication.sync_interval_ms < 100 {
                problems.push(format!(
                    "replication.sync_interval_ms: must be at least 100, got {}",
                    self.replication.sync_interval_ms
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

fn resolve_file(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from("config.toml")).filter(|p| p.is_file()),
    }
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // The parser quotes the offending line, which may hold a database URL.
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Parse(redact_passwords(&format!("{}: {e}", path.display()))))
}

/// Overlays `FERROBASE_SECTION_KEY` variables onto `table`. Known keys are taken from the
/// defaults, so an unknown `FERROBASE_*` variable is reported instead of silently ignored.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let defaults =
        toml::Table::try_from(Config::default()).map_err(|e| ConfigError::Parse(e.to_string()))?;
    let mut known = Vec::new();
    for (section, keys) in &defaults {
        if let toml::Value::Table(keys) = keys {
            for key in keys.keys() {
                known.push((section.clone(), key.clone()));
            }
        }
    }
    let mut problems = Vec::new();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some((section, key)) = known
            .iter()
            .find(|(s, k)| rest.eq_ignore_ascii_case(&format!("{s}_{k}")))
        else {
            problems.push(format!("{name}: not a known setting"));
            continue;
        };
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(t) => {
                t.insert(key.clone(), env_value(&raw));
            }
            _ => problems.push(format!("{section}: must be a table")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// An env value is read as a TOML value when it is one (`8`, `true`, `["a"]`), else as text.
fn env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid_and_durable() {
        let config = Config::load_with_env(Some(Path::new("/nonexistent/none.toml")), vec![]);
        assert!(config.is_err(), "an explicit missing file is an error");
        let config = Config::default();
        config.validate().expect("defaults validate");
        assert_eq!(config.database.synchronous, "FULL");
    }

    #[test]
    fn environment_overrides_file_and_defaults() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[database]\nreader_pool_size = 3\nsynchronous = \"NORMAL\"\n",
        )
        .expect("write");
        let config = Config::load_with_env(
            Some(&file),
            env(&[
                ("FERROBASE_DATABASE_READER_POOL_SIZE", "5"),
                ("FERROBASE_SERVER_HTTP", "0.0.0.0:9000"),
            ]),
        )
        .expect("loads");
        assert_eq!(config.database.reader_pool_size, 5, "env beats file");
        assert_eq!(config.database.synchronous, "NORMAL", "file beats default");
        assert_eq!(config.server.http.port(), 9000);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let err = Config::load_with_env(
            None,
            env(&[
                ("FERROBASE_DATABASE_READER_POOL_SIZE", "65"),
                ("FERROBASE_DATABASE_SYNCHRONOUS", "OFF"),
                ("FERROBASE_DATABASE_QUERY_TIMEOUT_MS", "0"),
            ]),
        )
        .expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("database.reader_pool_size"), "{text}");
        assert!(text.contains("database.synchronous"), "{text}");
        assert!(text.contains("database.query_timeout_ms"), "{text}");
    }

    #[test]
    fn automatic_reader_count_is_two_per_core_within_bounds() {
        let auto = DatabaseConfig::default();
        assert_eq!(auto.reader_pool_size, 0);
        assert!((2..=8).contains(&auto.readers()), "{}", auto.readers());
        let fixed = DatabaseConfig {
            reader_pool_size: 3,
            ..DatabaseConfig::default()
        };
        assert_eq!(fixed.readers(), 3);
    }

    #[test]
    fn query_timeout_defaults_to_pocketbases_thirty_seconds_and_env_overrides_it() {
        assert_eq!(
            DatabaseConfig::default().query_timeout(),
            std::time::Duration::from_secs(30)
        );
        let config =
            Config::load_with_env(None, env(&[("FERROBASE_DATABASE_QUERY_TIMEOUT_MS", "250")]))
                .expect("loads");
        assert_eq!(config.database.query_timeout_ms, 250);
    }

    #[test]
    fn database_url_comes_from_the_file_then_the_environment() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[database]\nurl = \"postgres://file@h/db\"\n").expect("write");
        let from_file = Config::load_with_env(Some(&file), vec![]).expect("file");
        let from_env = Config::load_with_env(
            Some(&file),
            env(&[("FERROBASE_DATABASE_URL", "postgresql://env:pw@h:5433/db")]),
        )
        .expect("env");
        let default = Config::load_with_env(None, vec![]).expect("default");

        assert_eq!(
            from_file.database.url.postgres(),
            Some("postgres://file@h/db")
        );
        assert_eq!(
            from_env.database.url.postgres(),
            Some("postgresql://env:pw@h:5433/db"),
            "env beats file"
        );
        assert_eq!(default.database.url.postgres(), None, "empty: SQLite");
    }

    #[test]
    fn a_bad_database_url_is_refused_naming_the_key_without_its_password() {
        let dir = tempfile::tempdir().expect("tmp");
        let unquoted = dir.path().join("unquoted.toml");
        std::fs::write(
            &unquoted,
            "[database]\nurl = postgres://app:hunter22@h/db\n",
        )
        .expect("write");
        for (outcome, said, why) in [
            (
                Config::load_with_env(
                    None,
                    env(&[("FERROBASE_DATABASE_URL", "mysql://app:hunter22@h/db")]),
                ),
                "database.url: must start with postgres://",
                "another engine",
            ),
            (
                Config::load_with_env(
                    None,
                    env(&[(
                        "FERROBASE_DATABASE_URL",
                        "postgres://app:hunter22@h:70000/db",
                    )]),
                ),
                "database.url: not a valid URL (invalid port number)",
                "a URL that does not parse",
            ),
            (
                Config::load_with_env(Some(&unquoted), vec![]),
                "unquoted.toml",
                "a TOML error quoting the line",
            ),
        ] {
            let text = outcome.expect_err(why).to_string();
            assert!(text.contains(said), "{why}: {text}");
            assert!(
                !text.contains("hunter22"),
                "{why}: the password leaked: {text}"
            );
        }
    }

    #[test]
    fn unknown_environment_key_is_rejected() {
        let err = Config::load_with_env(None, env(&[("FERROBASE_SERVER_NOPE", "1")]))
            .expect_err("unknown key");
        assert!(err.to_string().contains("FERROBASE_SERVER_NOPE"));
    }

    #[test]
    fn wrong_type_in_file_names_the_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[server]\nmax_body_bytes = \"lots\"\n").expect("write");
        let err = Config::load_with_env(Some(&file), vec![]).expect_err("bad type");
        assert!(err.to_string().contains("max_body_bytes"), "{err}");
    }

    #[test]
    fn the_public_dir_defaults_to_pb_public_beside_the_data_dir() {
        for (data_dir, explicit, expected, why) in [
            ("./fb_data", "", "./pb_public", "relative default"),
            ("/var/lib/fb/data", "", "/var/lib/fb/pb_public", "absolute"),
            ("fb_data", "", "pb_public", "bare name"),
            ("/", "", "/../pb_public", "root has no parent"),
            (
                "/var/lib/fb/data",
                "/srv/site",
                "/srv/site",
                "public.dir wins",
            ),
        ] {
            let mut config = Config::default();
            config.storage.data_dir = PathBuf::from(data_dir);
            config.public.dir = PathBuf::from(explicit);
            assert_eq!(config.public_dir(), PathBuf::from(expected), "{why}");
        }
    }

    #[test]
    fn replication_forces_wal_checkpoints_off_and_only_then() {
        let mut config = Config::default();
        assert_eq!(
            config.clone().effective().database.wal_checkpoints,
            WalCheckpoints::Auto,
            "without a replica Ferrobase keeps checkpointing"
        );
        config.replication.replica = "file:///replica".into();
        assert_eq!(
            config.effective().database.wal_checkpoints,
            WalCheckpoints::Off,
            "with a replica Litestream owns checkpoints"
        );
    }

    #[test]
    fn replication_keys_are_checked_only_when_a_replica_is_set() {
        for (replica, interval, problem, why) in [
            ("", 1, None, "off: the interval is not looked at"),
            ("file:///r", 1_000, None, "a file URL"),
            (
                "s3://bucket/path",
                100,
                None,
                "an S3 URL at the smallest interval",
            ),
            (
                "/var/replica",
                1_000,
                Some("replication.replica"),
                "a bare path",
            ),
            (
                "file:///r",
                99,
                Some("replication.sync_interval_ms"),
                "interval too small",
            ),
        ] {
            let mut config = Config::default();
            config.replication.replica = replica.into();
            config.replication.sync_interval_ms = interval;
            let outcome = config.validate();
            match problem {
                None => assert!(outcome.is_ok(), "{why}: {outcome:?}"),
                Some(key) => assert!(
                    matches!(&outcome, Err(ConfigError::Invalid(p)) if p.iter().any(|p| p.starts_with(key))),
                    "{why}: {outcome:?}"
                ),
            }
        }
    }
}
