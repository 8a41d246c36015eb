//! The command line: `serve`, `superuser create|update|upsert|delete|otp|ips`,
//! `migrate status|up`, `backup`, `db check`, `typegen` (from the data dir
//! or a server's `--url`), `search reindex`.
//! Flags take PocketBase's forms (`--http=ADDR`, `--dir=DIR`) so scripts
//! written for it work unchanged. Every command opens its database through
//! `backend` (SQLite, or PostgreSQL with `--db`/`database.url`); the
//! commands that cannot run on PostgreSQL yet are refused up front.

use crate::app::Application;
use crate::auth;
use crate::backend::{self, OnEmpty, Unported};
use crate::config::{Config, DatabaseUrl, MAX_QUERY_TIMEOUT_MS};
use crate::db::Db;
use crate::tls::{TlsFlags, TlsOptions};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The log filter of `--dev`: our debug logs, everyone else's info.
const DEV_LOG_LEVEL: &str = "info,ferrobase=debug";

/// The largest `--queryTimeout`, in whole seconds.
const MAX_QUERY_TIMEOUT_SECS: u64 = MAX_QUERY_TIMEOUT_MS / 1000;

/// Ferrobase: a Backend-as-a-Service in one binary, speaking PocketBase's API.
#[derive(Debug, Parser)]
#[command(
    name = "ferrobase",
    version,
    about,
    propagate_version = true,
    disable_version_flag = true
)]
pub struct Cli {
    /// Print version (`-v` as PocketBase, `-V` as clap's default).
    #[arg(short = 'v', short_alias = 'V', long, action = clap::ArgAction::Version)]
    pub version: (),
    /// Config file (default: ./config.toml when present).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides storage.data_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The database: postgres://user:pass@host:5432/db for PostgreSQL (in
    /// progress: not every command runs on it yet), "" for the embedded
    /// SQLite in --dir (overrides database.url and FERROBASE_DATABASE_URL;
    /// prefer those for a URL with a password: a command line is visible
    /// to other users of the machine).
    #[arg(long = "db", global = true, value_name = "URL")]
    pub db: Option<String>,
    /// Longest a query may run, in seconds (overrides database.query_timeout_ms;
    /// PocketBase's flag, default 30).
    #[arg(long = "queryTimeout", global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=MAX_QUERY_TIMEOUT_SECS))]
    pub query_timeout: Option<u64>,
    /// Directory of static files served at / (overrides public.dir;
    /// default: pb_public beside the data dir).
    #[arg(long = "publicDir", global = true, value_name = "DIR")]
    pub public_dir: Option<PathBuf>,
    /// Directory of JavaScript hooks, *.pb.js (overrides hooks.dir;
    /// default: pb_hooks beside the data dir; PocketBase's flag).
    #[arg(long = "hooksDir", global = true, value_name = "DIR")]
    pub hooks_dir: Option<PathBuf>,
    /// JavaScript runtimes (threads) running hooks at once (overrides
    /// hooks.pool_size; PocketBase's flag).
    #[arg(long = "hooksPool", global = true, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=crate::config::MAX_HOOKS_POOL_SIZE as i64))]
    pub hooks_pool: Option<u16>,
    /// Restart with the new hook files when pb_hooks changes, after checking
    /// they load; `--hooksWatch=false` turns it off (overrides hooks.watch;
    /// PocketBase's flag, on by default).
    #[arg(long = "hooksWatch", global = true, value_name = "BOOL",
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub hooks_watch: Option<bool>,
    /// Directory of JavaScript migrations, *.js (overrides migrations.dir;
    /// default: pb_migrations beside the data dir; PocketBase's flag).
    #[arg(long = "migrationsDir", global = true, value_name = "DIR")]
    pub migrations_dir: Option<PathBuf>,
    /// Write a migration file for every collection change made through the
    /// API; `--automigrate=false` turns it off (overrides migrations.automigrate).
    #[arg(long = "automigrate", global = true, value_name = "BOOL",
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub automigrate: Option<bool>,
    /// Serve the root index.html for missing static paths (single-page
    /// apps); `--indexFallback=false` turns it off (overrides public.index_fallback).
    #[arg(long = "indexFallback", global = true, value_name = "BOOL",
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub index_fallback: Option<bool>,
    /// Development mode: every SQL statement (without its bound values) and
    /// every request is logged to stderr, and ferrobase's debug logs too.
    #[arg(long, global = true)]
    pub dev: bool,
    /// Environment variable holding the 32-character key the settings are
    /// stored encrypted with (overrides storage.encryption_env; PocketBase's flag).
    #[arg(long = "encryptionEnv", global = true, value_name = "VAR")]
    pub encryption_env: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the HTTP server (HTTPS with certificates from Let's Encrypt when
    /// domains are given, as PocketBase's `serve example.com`).
    Serve {
        /// Domains to get ACME certificates for and serve over HTTPS; the
        /// listeners then default to 0.0.0.0:80 (redirects) and 0.0.0.0:443.
        #[arg(value_name = "DOMAIN")]
        domains: Vec<String>,
        /// Address to listen on, e.g. 127.0.0.1:8090 (port 0 picks a free one).
        /// With HTTPS on: the plain-HTTP listener that redirects to HTTPS.
        #[arg(long, value_name = "ADDR")]
        http: Option<SocketAddr>,
        /// Address of the HTTPS listener (needs domains or --tls-cert).
        #[arg(long, value_name = "ADDR")]
        https: Option<SocketAddr>,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key)
        /// instead of ACME; re-read when it changes.
        #[arg(long = "tls-cert", value_name = "FILE")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long = "tls-key", value_name = "FILE")]
        tls_key: Option<PathBuf>,
        /// ACME directory URL (default: Let's Encrypt production).
        #[arg(long = "acme-directory", value_name = "URL")]
        acme_directory: Option<String>,
        /// A PEM CA certificate to trust for the ACME directory (test CAs).
        #[arg(long = "acme-ca-root", value_name = "FILE")]
        acme_ca_root: Option<PathBuf>,
        /// Contact email given to the ACME CA (expiry notices).
        #[arg(long = "acme-email", value_name = "EMAIL")]
        acme_email: Option<String>,
        /// CORS allowed origins, comma-separated (overrides
        /// server.cors_origins; PocketBase's default is *).
        #[arg(long, value_name = "ORIGINS", value_delimiter = ',')]
        origins: Option<Vec<String>>,
    },
    /// Manage superuser accounts.
    Superuser {
        #[command(subcommand)]
        action: SuperuserAction,
    },
    /// Inspect, apply or revert migrations (the embedded system ones and
    /// the JavaScript files in pb_migrations).
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Create or restore backups (zip of data.db and the stored files).
    Backup {
        #[command(subcommand)]
        action: BackupAction,
    },
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
    /// Typed client definitions from the data dir's collections, or from a
    /// running server with --url (TypeScript in pocketbase-typegen's shape
    /// for the JS SDK, or Dart record classes for the Dart SDK).
    Typegen {
        /// Target language.
        #[arg(long, value_name = "LANG", default_value = "ts", value_parser = ["ts", "dart"])]
        lang: String,
        /// Write here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Ask this server (its GET /api/typegen) instead of reading --dir.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// A superuser token for --url.
        #[arg(
            long,
            value_name = "TOKEN",
            env = "TYPEGEN_TOKEN",
            hide_env_values = true
        )]
        token: Option<String>,
    },
    /// Full-text search maintenance.
    Search {
        #[command(subcommand)]
        action: SearchAction,
    },
    /// Rebuild the data dir (--dir) from a Litestream replica: data.db and
    /// auxiliary.db, checked with PRAGMA integrity_check before they are
    /// moved in. Uploaded files (storage/) are not in the replica.
    Restore {
        /// The replica URL ([replication] replica), e.g. file:///var/replica or s3://bucket/path.
        #[arg(long, value_name = "REPLICA")]
        from: String,
        /// Restore the state at this RFC 3339 time (default: the latest).
        #[arg(long, value_name = "TIME")]
        timestamp: Option<String>,
        /// Replace a data dir that is not empty (it is kept as DIR.pre-restore-<time>).
        #[arg(long)]
        force: bool,
    },
    /// Where uploaded files are kept (local disk or the `s3` settings' bucket).
    Storage {
        #[command(subcommand)]
        action: StorageAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum StorageAction {
    /// Copy every stored file to the other backend, verify counts and sizes,
    /// then switch the `s3.enabled` setting (the server must be stopped;
    /// nothing is deleted at the source; run again to resume).
    Migrate {
        /// Where files should be kept from now on.
        #[arg(long, value_enum)]
        to: StorageTarget,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StorageTarget {
    S3,
    Local,
}

#[derive(Debug, Subcommand)]
pub enum BackupAction {
    /// Write DATA_DIR/backups/NAME (default pb_backup_<time>.zip); works
    /// while a server runs on the same data dir.
    Create {
        /// Archive name, [a-z0-9_-]+.zip.
        name: Option<String>,
    },
    /// Replace the data dir's database and files with an archive's (the
    /// server must be stopped; the replaced data is kept in .pre-restore-*).
    Restore {
        /// Path of the zip archive.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum SearchAction {
    /// Rebuild the full-text index of every collection with searchable
    /// fields (or of one) from its table; the server must be stopped.
    Reindex {
        /// Only this collection (name or id).
        #[arg(long, value_name = "NAME")]
        collection: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbAction {
    /// Run SQLite's integrity check on data.db, or on PostgreSQL check the
    /// system tables, functions and every collection's table and columns
    /// (exit status 1 on problems).
    Check,
    /// Copy a data dir (schema, records, system tables, request logs) into an
    /// empty PostgreSQL database in one transaction and verify every table's
    /// row count; the server must be stopped. Uploaded files stay where they are.
    Copy {
        /// The data dir to copy (default: --dir).
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
        /// postgres://user:pass@host:5432/db (libpq's sslmode and sslrootcert
        /// are understood; TLS through rustls always verifies the server);
        /// default: database.url (--db).
        #[arg(long, value_name = "URL")]
        to: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SuperuserAction {
    /// Create a superuser, or set the password of an existing one.
    Upsert {
        /// Email address of the superuser.
        email: String,
        /// Password (at least 8 characters).
        password: String,
    },
    /// Create a new superuser (fails if the email is taken).
    Create {
        /// Email address of the superuser.
        email: String,
        /// Password (at least 8 characters).
        password: String,
    },
    /// Change the password of an existing superuser (its tokens stop working).
    Update {
        /// Email address of the superuser.
        email: String,
        /// New password (at least 8 characters).
        password: String,
    },
    /// Delete a superuser (the last one cannot be deleted).
    Delete {
        /// Email address of the superuser.
        email: String,
    },
    /// Create a one-time password for a superuser (OTP must be enabled on
    /// _superusers); prints its id and code.
    Otp {
        /// Email address of the superuser.
        email: String,
    },
    /// Set the superuser IPs allow-list (IPs or subnets, space separated;
    /// none clears it). A running server applies it at its next start.
    Ips {
        /// IPs or CIDR subnets, e.g. 127.0.0.1 10.0.0.0/24.
        ips: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// List migrations and whether each is applied.
    Status,
    /// Apply pending migrations (also done automatically on start).
    Up,
    /// Revert the last N applied JavaScript migrations (default 1), newest first.
    Down {
        #[arg(default_value_t = 1)]
        count: usize,
    },
    /// Write a blank migration file, <unix-ts>_NAME.js.
    Create { name: String },
    /// Write a migration file with a snapshot of every non-system collection.
    Collections,
    /// Forget applied JavaScript migrations whose file no longer exists.
    HistorySync,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow_like::Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    let dir_given = cli.dir.is_some();
    if let Some(dir) = cli.dir {
        config.storage.data_dir = dir;
    }
    if let Some(url) = cli.db {
        config.database.url = DatabaseUrl::new(url);
    }
    if let Some(dir) = cli.public_dir {
        config.public.dir = dir;
    }
    if let Some(dir) = cli.hooks_dir {
        config.hooks.dir = dir;
    }
    if let Some(n) = cli.hooks_pool {
        config.hooks.pool_size = usize::from(n);
    }
    if let Some(on) = cli.hooks_watch {
        config.hooks.watch = on;
    }
    if let Some(dir) = cli.migrations_dir {
        config.migrations.dir = dir;
    }
    if let Some(on) = cli.automigrate {
        config.migrations.automigrate = on;
    }
    if let Some(fallback) = cli.index_fallback {
        config.public.index_fallback = fallback;
    }
    if let Some(var) = cli.encryption_env {
        config.storage.encryption_env = var;
    }
    if let Some(secs) = cli.query_timeout {
        // Bounded by the parser, so the product cannot overflow.
        config.database.query_timeout_ms = secs * 1000;
    }
    let mut tls = None;
    if let Command::Serve {
        domains,
        http,
        https,
        origins,
        tls_cert,
        tls_key,
        acme_directory,
        acme_ca_root,
        acme_email,
    } = &cli.command
    {
        tls = TlsOptions::from_flags(TlsFlags {
            domains: domains.clone(),
            http: *http,
            https: *https,
            tls_cert: tls_cert.clone(),
            tls_key: tls_key.clone(),
            acme_directory: acme_directory.clone(),
            acme_ca_root: acme_ca_root.clone(),
            acme_email: acme_email.clone(),
        })?;
        match (&tls, http) {
            // The application listens on the HTTPS address.
            (Some(tls), _) => config.server.http = tls.https,
            (None, Some(addr)) => config.server.http = *addr,
            (None, None) => {}
        }
        if let Some(origins) = origins {
            config.server.cors_origins = origins.iter().map(|o| o.trim().to_owned()).collect();
        }
    }
    if cli.dev {
        config.log.requests = true;
        config.database.log_statements = true;
        config.log.level = DEV_LOG_LEVEL.to_owned();
    }
    // Flags are checked like the file and the environment were.
    config.validate()?;
    if let Some(command) = unported(&cli.command) {
        backend::refuse_on_postgres(&config, command)?;
    }
    let config = config.effective();
    init_tracing(&config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { .. } => serve(config, tls).await,
            Command::Superuser { action } => superuser(config, action).await,
            Command::Migrate { action } => migrate(config, action).await,
            Command::Db {
                action: DbAction::Check,
            } => db_check(&config).await,
            Command::Db {
                action: DbAction::Copy { from, to },
            } => {
                // Without --to, the configured PostgreSQL database.
                let Some(to) = to.or_else(|| config.database.url.postgres().map(str::to_owned))
                else {
                    return Err(
                        "pass --to postgres://… (or set database.url / --db to the target)".into(),
                    );
                };
                db_copy(from.unwrap_or(config.storage.data_dir), to).await
            }
            Command::Backup { action } => backup(config, action).await,
            Command::Typegen {
                lang,
                out,
                url: Some(url),
                token,
            } => {
                if dir_given {
                    return Err("pass --url or --dir, not both".into());
                }
                typegen_from_server(&url, token.as_deref(), &lang, out.as_deref()).await
            }
            Command::Typegen {
                lang,
                out,
                url: None,
                ..
            } => typegen(&config, &lang, out.as_deref()).await,
            Command::Search {
                action: SearchAction::Reindex { collection },
            } => search_reindex(config, collection).await,
            Command::Restore {
                from,
                timestamp,
                force,
            } => restore(&config, &from, timestamp.as_deref(), force).await,
            Command::Storage {
                action: StorageAction::Migrate { to },
            } => storage_migrate(config, to).await,
        }
    })
}

/// The commands that do not run on PostgreSQL yet (see [`Unported`]).
fn unported(command: &Command) -> Option<Unported> {
    match command {
        Command::Backup { .. } => Some(Unported::Backup),
        Command::Restore { .. } => Some(Unported::Restore),
        Command::Search { .. } => Some(Unported::SearchReindex),
        Command::Serve { .. }
        | Command::Superuser { .. }
        | Command::Migrate { .. }
        | Command::Db { .. }
        | Command::Typegen { .. }
        | Command::Storage { .. } => None,
    }
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Litestream copies the SQLite files, which PostgreSQL leaves empty.
const REPLICATION_ON_POSTGRES: &str = "replication.replica is set, but Litestream copies the \
     embedded SQLite files and database.url is PostgreSQL: leave [replication] off and use \
     PostgreSQL's own replication or your provider's point-in-time recovery";

async fn serve(config: Config, tls: Option<TlsOptions>) -> anyhow_like::Result<()> {
    if backend::is_postgres(&config) && config.replication.is_enabled() {
        return Err(REPLICATION_ON_POSTGRES.into());
    }
    let data_dir = config.storage.data_dir.clone();
    let (server_config, redirect) = match &tls {
        Some(opts) => {
            let started = crate::tls::start(opts, &data_dir).await?;
            let https_port = started.redirect.https_port.clone();
            // Up before the first order: the CA's HTTP-01 check comes here.
            let (server, bound) = crate::tls::redirect::serve(opts.http, started.redirect)?;
            tokio::spawn(server);
            (Some(started.server_config), Some((bound, https_port)))
        }
        None => (None, None),
    };
    let app = Application::build_with_tls(config.clone(), server_config.clone()).await?;
    if let Some((_, https_port)) = &redirect {
        // `--https 127.0.0.1:0`: redirects name the port actually bound.
        https_port.store(app.port(), std::sync::atomic::Ordering::Relaxed);
    }
    let addr = SocketAddr::new(config.server.http.ip(), app.port());
    let base = match &tls {
        Some(opts) => opts.base_url(app.port()),
        None => format!("http://{addr}"),
    };
    // The first line is machine-read by tests and scripts: keep its shape.
    let mut banner =
        format!("Server started at {base}\n├─ REST API:  {base}/api/\n└─ Dashboard: {base}/_/\n");
    if let Some((bound, _)) = redirect {
        banner.push_str(&format!(
            "HTTPS on {addr}; http://{bound} redirects to it\n"
        ));
    }
    if let Some(token) = app.issue_install_token().await? {
        banner.push_str(&format!(
            "\nNo superuser exists yet. Open this one-time link (valid {} minutes) to create one:\n  {base}/_/#/pbinstal/{token}\nor use: ferrobase superuser upsert EMAIL PASSWORD --dir={}\n",
            crate::auth::install::INSTALL_TOKEN_TTL.as_secs() / 60,
            data_dir.display()
        ));
    }
    let mut replication = start_replication(&config).await?;
    announce(&banner);
    let mut app = app;
    // A backup restore asks for a restart: build the app again (which
    // applies the staged restore) on the same address.
    while app.run_until_signal().await? == crate::lifecycle::Stopped::Restart {
        // Litestream must not watch data.db while a restore replaces it.
        if let Some(running) = replication.take() {
            running.stop().await;
        }
        let mut config = config.clone();
        config.server.http = addr;
        app = Application::build_with_tls(config.clone(), server_config.clone()).await?;
        replication = start_replication(&config).await?;
        tracing::info!("server restarted at {base}");
    }
    // After the server: Litestream ships the last commits, then exits.
    if let Some(running) = replication {
        running.stop().await;
    }
    Ok(())
}

/// Starts the supervised Litestream when `[replication]` is set; a missing
/// program or a replica Litestream rejects stops `serve` with one line.
async fn start_replication(
    config: &Config,
) -> anyhow_like::Result<Option<crate::replication::Replication>> {
    if !config.replication.is_enabled() {
        return Ok(None);
    }
    let running =
        crate::replication::Replication::start(&config.replication, &config.storage.data_dir)
            .await?;
    Ok(Some(running))
}

async fn restore(
    config: &Config,
    from: &str,
    timestamp: Option<&str>,
    force: bool,
) -> anyhow_like::Result<()> {
    let data_dir = &config.storage.data_dir;
    let restored = crate::replication::restore::run(crate::replication::restore::Request {
        litestream: &config.replication.litestream,
        replica: from,
        timestamp,
        data_dir,
        force,
    })
    .await?;
    let aux = if restored.auxiliary {
        " and auxiliary.db"
    } else {
        ""
    };
    println!(
        "Restored data.db{aux} from {from} into {} (integrity check ok).",
        data_dir.display()
    );
    if let Some(previous) = restored.previous {
        println!("The replaced data dir is kept at {}.", previous.display());
    }
    println!(
        "Uploaded files (storage/) are not in the replica: copy them back or use S3 file storage."
    );
    Ok(())
}

async fn superuser(config: Config, action: SuperuserAction) -> anyhow_like::Result<()> {
    let db = backend::open(&config, OnEmpty::Initialise).await?;
    use auth::{AuthError, SaveMode};
    match action {
        SuperuserAction::Upsert { email, password } => {
            auth::save_superuser(&db, &email, &password, SaveMode::Upsert).await?;
            println!("Successfully saved superuser {email:?}!");
        }
        SuperuserAction::Create { email, password } => {
            auth::save_superuser(&db, &email, &password, SaveMode::Create).await?;
            println!("Successfully created new superuser {email:?}!");
        }
        SuperuserAction::Update { email, password } => {
            match auth::save_superuser(&db, &email, &password, SaveMode::Update).await {
                Err(AuthError::NoSuchSuperuser) => {
                    return Err(format!("superuser with email {email:?} doesn't exist").into());
                }
                other => other?,
            };
            println!("Successfully changed superuser {email:?} password!");
        }
        SuperuserAction::Delete { email } => match auth::delete_superuser(&db, &email).await {
            // PocketBase treats this as done, not as a failure.
            Err(AuthError::NoSuchSuperuser) => {
                println!("superuser {email:?} is missing or already deleted");
            }
            other => {
                other?;
                println!("Successfully deleted superuser {email:?}!");
            }
        },
        SuperuserAction::Otp { email } => {
            let otp = match auth::superuser_otp(&db, &email).await {
                Err(AuthError::NoSuchSuperuser) => {
                    return Err(format!("superuser with email {email:?} doesn't exist").into());
                }
                other => other?,
            };
            println!(
                "Successfully created OTP for superuser {email:?}:\n├─ Id:    {}\n├─ Pass:  {}\n└─ Valid: {}s",
                otp.id, otp.code, otp.valid_secs
            );
        }
        SuperuserAction::Ips { ips } => {
            let seal = crate::settings::Seal::from_env(&config.storage.encryption_env)
                .map_err(crate::settings::SettingsError::from)?;
            let saved =
                crate::settings::patch(&db, &seal, serde_json::json!({ "superuserIPs": ips }))
                    .await?
                    .superuser_ips;
            if saved.is_empty() {
                println!("Successfully cleared SuperuserIPs setting!");
            } else {
                println!("Successfully updated SuperuserIPs setting:");
                for (i, ip) in saved.iter().enumerate() {
                    let branch = if i + 1 == saved.len() {
                        "└─"
                    } else {
                        "├─"
                    };
                    println!("{branch} {ip}");
                }
            }
        }
    }
    Ok(())
}

async fn migrate(config: Config, action: MigrateAction) -> anyhow_like::Result<()> {
    use crate::hooks::migrations;
    let options = migrations::Options::from_config(&config);
    if let MigrateAction::Create { name } = &action {
        let file = migrations::create(&options.dir, name)?;
        println!("Created {}", options.dir.join(file).display());
        return Ok(());
    }
    let postgres = backend::is_postgres(&config);
    // One process per data dir: migrations must not race a running server.
    // (On PostgreSQL the data dir holds no database.)
    let _lock = if postgres {
        None
    } else {
        Some(crate::db::DataDirLock::acquire(&config.storage.data_dir, crate::db::LOCK_WAIT).await?)
    };
    // Opening the database applies the pending system migrations.
    let db = backend::open(&config, OnEmpty::Initialise).await?;
    if !postgres {
        // JS migrations may save records: old index insert triggers must go first.
        crate::search::index::upgrade(&db).await?;
    }
    match action {
        MigrateAction::Up => {
            let applied = migrations::up(&db, &options).await?;
            for name in &applied {
                println!("Applied {name}");
            }
            if applied.is_empty() {
                println!("No new migrations to apply.");
            }
        }
        MigrateAction::Down { count } => {
            let reverted = migrations::down(&db, &options, count).await?;
            for name in &reverted {
                println!("Reverted {name}");
            }
            if reverted.is_empty() {
                println!("No migrations to revert.");
            }
        }
        MigrateAction::Collections => {
            let file = migrations::snapshot(&db, &options.dir).await?;
            println!("Created {}", options.dir.join(file).display());
        }
        MigrateAction::HistorySync => {
            let dropped = migrations::history_sync(&db, &options).await?;
            println!(
                "Removed {} applied migration(s) without a file.",
                dropped.len()
            );
        }
        MigrateAction::Status | MigrateAction::Create { .. } => {}
    }
    for m in db.migration_status().await? {
        match m.applied {
            Some(at) => println!("applied  {}  ({at})", m.name),
            None => println!("pending  {}", m.name),
        }
    }
    for (name, applied) in migrations::status(&db, &options).await? {
        match applied {
            Some(at) => println!("applied  {name}  ({at})"),
            None => println!("pending  {name}"),
        }
    }
    Ok(())
}

/// Prints the startup banner. A closed stdout (nobody reading) must not
/// stop the server, so a failed write is only logged.
fn announce(banner: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(banner.as_bytes()).and_then(|()| out.flush()) {
        tracing::warn!(error = %e, "could not print the startup banner");
    }
}

/// A progress bar on stderr when it is a terminal, else nothing.
fn progress_bar(label: &'static str) -> Option<&'static indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0).with_message(label);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    // One bar per command run; leaking it gives the 'static the worker needs.
    Some(Box::leak(Box::new(bar)))
}

async fn backup(config: Config, action: BackupAction) -> anyhow_like::Result<()> {
    let data_dir = config.storage.data_dir.clone();
    match action {
        BackupAction::Create { name } => {
            let key = name.unwrap_or_else(|| crate::backups::default_key("pb_backup_", ""));
            let db = Db::open(&data_dir, &config.database)?;
            let bar = progress_bar("backing up");
            let report: Option<crate::backups::Progress<'static>> = match bar {
                Some(bar) => Some(Box::leak(Box::new(move |done: u64, total: u64| {
                    bar.set_length(total);
                    bar.set_position(done);
                }))),
                None => None,
            };
            let info = crate::backups::create(&db, &data_dir, &key, report).await?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            println!(
                "Created {} ({} bytes)",
                crate::backups::dir(&data_dir).join(&info.key).display(),
                info.size
            );
        }
        BackupAction::Restore { file } => {
            let _lock = crate::db::DataDirLock::try_acquire(&data_dir)?;
            let bar = progress_bar("restoring");
            let report = |done: u64, total: u64| {
                if let Some(bar) = bar {
                    bar.set_length(total);
                    bar.set_position(done);
                }
            };
            crate::backups::stage_restore(&data_dir, &file, Some(&report))?;
            crate::backups::apply_staged_restore(&data_dir)?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            println!("Restored {} into {}", file.display(), data_dir.display());
        }
    }
    Ok(())
}

/// `storage migrate --to s3|local`: copies from the other backend (the
/// bucket comes from the saved `s3` settings, enabled or not), verifies,
/// then saves `s3.enabled` for the target.
async fn storage_migrate(config: Config, to: StorageTarget) -> anyhow_like::Result<()> {
    use crate::files::{LocalStorage, S3Storage, Storage};
    let data_dir = config.storage.data_dir.clone();
    let _lock = crate::db::DataDirLock::try_acquire(&data_dir)?;
    let db = backend::open(&config, OnEmpty::Initialise).await?;
    let seal = crate::settings::Seal::from_env(&config.storage.encryption_env)
        .map_err(crate::settings::SettingsError::from)?;
    let settings = crate::settings::load(&db, &seal).await?;
    let local = LocalStorage::open(&config.storage_dir())?;
    let s3 = S3Storage::connect(&settings.s3.storage_config(), local.staging_dir())
        .map_err(|e| format!("the s3 settings cannot be used: {e}"))?;
    s3.probe()
        .await
        .map_err(|e| format!("the s3 bucket cannot be used: {e}"))?;
    let (local, s3): (crate::files::Store, crate::files::Store) =
        (std::sync::Arc::new(local), std::sync::Arc::new(s3));
    let (from, target) = match to {
        StorageTarget::S3 => (local, s3),
        StorageTarget::Local => (s3, local),
    };
    let bar = progress_bar("copying files");
    let copied = crate::files::run_blocking(move || {
        crate::files::copy_all(from.as_ref(), target.as_ref(), &|done, total| {
            if let Some(bar) = bar {
                bar.set_length(total);
                bar.set_position(done);
            }
        })
    })
    .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let enabled = to == StorageTarget::S3;
    crate::settings::patch(&db, &seal, serde_json::json!({"s3": {"enabled": enabled}})).await?;
    println!(
        "Copied {} file(s) ({} bytes), {} already there; all verified. Files are now kept {}.",
        copied.copied,
        copied.bytes,
        copied.present,
        if enabled {
            "in the S3 bucket"
        } else {
            "on the local disk"
        }
    );
    Ok(())
}

/// `db check`: SQLite's integrity check of `data.db`, or on PostgreSQL the
/// tables, functions and columns Ferrobase needs; exit status 1 on problems.
async fn db_check(config: &Config) -> anyhow_like::Result<()> {
    let (findings, label) = if backend::is_postgres(config) {
        let db = backend::open(config, OnEmpty::Refuse).await?;
        let problems = backend::check::postgres(&db).await?;
        let label = format!("check of {}", config.database.url.redacted());
        (problems, label)
    } else {
        let found = Db::integrity_check(&config.storage.data_dir)?;
        let problems = found.into_iter().filter(|f| f != "ok").collect();
        (problems, "integrity check".to_owned())
    };
    if findings.is_empty() {
        println!("{label}: ok");
        return Ok(());
    }
    for finding in &findings {
        println!("{finding}");
    }
    Err(format!("{label} found {} problem(s)", findings.len()).into())
}

/// `db copy`: under the data dir's lock (no server may write meanwhile), on
/// a thread of its own (the PostgreSQL client blocks).
async fn db_copy(from: PathBuf, to: String) -> anyhow_like::Result<()> {
    if !from.join("data.db").is_file() {
        return Err(crate::dbcopy::CopyError::NoDatabase(from).into());
    }
    let _lock = crate::db::DataDirLock::try_acquire(&from)?;
    let target = crate::db::postgres::redacted(&to);
    let report = tokio::task::spawn_blocking(move || crate::dbcopy::copy(&from, &to))
        .await
        .map_err(|e| format!("the copy stopped: {e}"))??;
    for (table, rows) in &report.tables {
        println!("Copied {table}: {rows} row(s), count verified");
    }
    for view in &report.views {
        println!("Created view {view}");
    }
    println!("Copied into {target}.");
    Ok(())
}

/// `typegen`: reads the collections of an existing database (never creates one).
async fn typegen(config: &Config, lang: &str, out: Option<&Path>) -> anyhow_like::Result<()> {
    let lang = crate::typegen::Lang::parse(lang).ok_or("unknown --lang")?;
    let db = backend::open(config, OnEmpty::Refuse).await?;
    let snapshot = db.read_conn(|c| crate::schema::read_snapshot(c)).await?;
    let text = crate::typegen::generate(&snapshot, lang);
    write_out(out, &text)
}

/// The longest `typegen --url` waits for the server.
const TYPEGEN_URL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `typegen --url`: the server's `GET /api/typegen?lang=…`, which needs a
/// superuser token.
async fn typegen_from_server(
    url: &str,
    token: Option<&str>,
    lang: &str,
    out: Option<&Path>,
) -> anyhow_like::Result<()> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err("--url needs a superuser token (--token or TYPEGEN_TOKEN)".into());
    };
    let base = url::Url::parse(url).map_err(|e| format!("--url {url:?}: {e}"))?;
    let mut endpoint = base.join("api/typegen").map_err(|e| e.to_string())?;
    endpoint.query_pairs_mut().append_pair("lang", lang);
    let response = reqwest::Client::builder()
        .timeout(TYPEGEN_URL_TIMEOUT)
        .build()?
        .get(endpoint)
        .header("Authorization", token)
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        return Err(format!("{url} answered {status}: {text}").into());
    }
    write_out(out, &text)
}

fn write_out(out: Option<&Path>, text: &str) -> anyhow_like::Result<()> {
    match out {
        Some(path) => std::fs::write(path, text)?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(())
}

/// `search reindex`: rebuilds full-text indexes under the data dir lock,
/// then checkpoints the WAL (TRUNCATE) unless Litestream owns it.
async fn search_reindex(config: Config, only: Option<String>) -> anyhow_like::Result<()> {
    let _lock =
        crate::db::DataDirLock::acquire(&config.storage.data_dir, crate::db::LOCK_WAIT).await?;
    let db = Db::open(&config.storage.data_dir, &config.database)?;
    let done = db
        .write(move |conn| crate::search::reindex_all(conn, only.as_deref()))
        .await?;
    // A rebuild rewrites the whole index into the WAL; fold it into the main
    // file and truncate it, rather than leave a WAL as big as the index.
    db.checkpoint().await?;
    for (name, rows) in &done {
        println!("Reindexed {name}: {rows} record(s)");
    }
    if done.is_empty() {
        println!("No collection has searchable fields.");
    }
    Ok(())
}

/// A boxed error for the CLI's top level, printed with its message.
mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_timeout_flag_takes_pocketbases_spellings_and_refuses_zero() {
        for (args, expected, why) in [
            (
                &["ferrobase", "serve", "--queryTimeout=5"][..],
                Some(5),
                "= form",
            ),
            (
                &["ferrobase", "serve", "--queryTimeout", "7"][..],
                Some(7),
                "spaced form",
            ),
            (
                &["ferrobase", "--queryTimeout=9", "serve"][..],
                Some(9),
                "before the command",
            ),
            (&["ferrobase", "serve"][..], None, "absent: config decides"),
        ] {
            let cli = Cli::try_parse_from(args).expect(why);
            assert_eq!(cli.query_timeout, expected, "{why}");
        }
        for (args, why) in [
            (
                &["ferrobase", "serve", "--queryTimeout=0"][..],
                "zero would fail every query",
            ),
            (&["ferrobase", "serve", "--queryTimeout=-1"][..], "negative"),
            (
                &["ferrobase", "serve", "--queryTimeout=86401"][..],
                "over a day",
            ),
            (
                &["ferrobase", "serve", "--queryTimeout=soon"][..],
                "not a number",
            ),
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{why} must be refused");
        }
    }

    #[test]
    fn public_dir_flags_take_pocketbases_spellings() {
        for (args, dir, fallback, why) in [
            (
                &["ferrobase", "serve"][..],
                None,
                None,
                "absent: config decides",
            ),
            (
                &["ferrobase", "serve", "--publicDir=/srv/site"][..],
                Some("/srv/site"),
                None,
                "= form",
            ),
            (
                &["ferrobase", "--publicDir", "site", "serve"][..],
                Some("site"),
                None,
                "before the command",
            ),
            (
                &["ferrobase", "serve", "--indexFallback=false"][..],
                None,
                Some(false),
                "turned off",
            ),
            (
                &["ferrobase", "serve", "--indexFallback"][..],
                None,
                Some(true),
                "bare flag",
            ),
        ] {
            let cli = Cli::try_parse_from(args).expect(why);
            assert_eq!(cli.public_dir, dir.map(PathBuf::from), "{why}");
            assert_eq!(cli.index_fallback, fallback, "{why}");
        }
        assert!(
            Cli::try_parse_from(["ferrobase", "serve", "--indexFallback=maybe"]).is_err(),
            "not a boolean"
        );
    }

    #[test]
    fn db_flag_takes_both_spellings_anywhere_and_an_empty_value() {
        for (args, expected, why) in [
            (
                &["ferrobase", "--db", "postgres://h/db", "db", "check"][..],
                Some("postgres://h/db"),
                "before the command",
            ),
            (
                &["ferrobase", "superuser", "ips", "--db=postgres://h/db"][..],
                Some("postgres://h/db"),
                "= form after it",
            ),
            (
                &["ferrobase", "migrate", "status", "--db="][..],
                Some(""),
                "empty: the embedded SQLite",
            ),
            (&["ferrobase", "serve"][..], None, "absent: config decides"),
        ] {
            let cli = Cli::try_parse_from(args).expect(why);
            assert_eq!(cli.db.as_deref(), expected, "{why}");
        }
    }

    #[test]
    fn exactly_the_commands_without_a_postgres_path_are_refused_there() {
        for (args, refused) in [
            (&["ferrobase", "serve"][..], None),
            (
                &["ferrobase", "backup", "create"][..],
                Some(Unported::Backup),
            ),
            (
                &["ferrobase", "restore", "--from", "file:///r"][..],
                Some(Unported::Restore),
            ),
            (&["ferrobase", "migrate", "up"][..], None),
            (&["ferrobase", "migrate", "down", "2"][..], None),
            (
                &["ferrobase", "search", "reindex"][..],
                Some(Unported::SearchReindex),
            ),
            (&["ferrobase", "migrate", "status"][..], None),
            (&["ferrobase", "migrate", "history-sync"][..], None),
            (&["ferrobase", "superuser", "otp", "a@b.c"][..], None),
            (&["ferrobase", "db", "check"][..], None),
            (&["ferrobase", "typegen"][..], None),
            (&["ferrobase", "storage", "migrate", "--to", "s3"][..], None),
        ] {
            let cli = Cli::try_parse_from(args).expect("parses");
            assert_eq!(unported(&cli.command), refused, "{args:?}");
        }
    }

    #[test]
    fn version_answers_to_pocketbases_short_flag_and_clap_s() {
        for args in [
            &["ferrobase", "-v"][..],
            &["ferrobase", "-V"][..],
            &["ferrobase", "--version"][..],
        ] {
            let err = Cli::try_parse_from(args).expect_err("prints the version");
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::DisplayVersion,
                "{args:?}"
            );
        }
    }

    #[test]
    fn serve_takes_domains_and_the_https_flags() {
        let cli = Cli::try_parse_from([
            "ferrobase",
            "serve",
            "ferro.test",
            "api.ferro.test",
            "--http=127.0.0.1:8080",
            "--https",
            "127.0.0.1:8443",
            "--acme-directory=https://ca.test/dir",
            "--acme-ca-root",
            "ca.pem",
            "--acme-email=ops@ferro.test",
        ])
        .expect("ACME flags");
        let Command::Serve {
            domains,
            http,
            https,
            acme_directory,
            acme_ca_root,
            acme_email,
            tls_cert,
            ..
        } = cli.command
        else {
            panic!("serve")
        };
        assert_eq!(domains, ["ferro.test", "api.ferro.test"]);
        assert_eq!(http, Some(SocketAddr::from(([127, 0, 0, 1], 8080))));
        assert_eq!(https, Some(SocketAddr::from(([127, 0, 0, 1], 8443))));
        assert_eq!(acme_directory.as_deref(), Some("https://ca.test/dir"));
        assert_eq!(acme_ca_root, Some(PathBuf::from("ca.pem")));
        assert_eq!(acme_email.as_deref(), Some("ops@ferro.test"));
        assert_eq!(tls_cert, None);

        let cli = Cli::try_parse_from([
            "ferrobase",
            "serve",
            "--tls-cert=site.crt",
            "--tls-key",
            "site.key",
        ])
        .expect("PEM pair flags");
        let Command::Serve {
            domains,
            tls_cert,
            tls_key,
            ..
        } = cli.command
        else {
            panic!("serve")
        };
        assert!(domains.is_empty(), "no domains needed with a PEM pair");
        assert_eq!(tls_cert, Some(PathBuf::from("site.crt")));
        assert_eq!(tls_key, Some(PathBuf::from("site.key")));

        for (args, why) in [
            (
                &["ferrobase", "serve", "--https=example.com"][..],
                "--https takes an address",
            ),
            (
                &["ferrobase", "serve", "--https"][..],
                "--https needs a value",
            ),
            (
                &["ferrobase", "migrate", "status", "--tls-cert=c"][..],
                "only serve has the TLS flags",
            ),
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{why} must be refused");
        }
    }
}
