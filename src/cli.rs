//! The command line: `serve`, `superuser upsert|delete`, `migrate status|up`.
//! Flags take PocketBase's forms (`--http=ADDR`, `--dir=DIR`) so scripts
//! written for it work unchanged.

use crate::app::Application;
use crate::auth;
use crate::config::Config;
use crate::db::Db;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Ferrobase: a Backend-as-a-Service in one binary, speaking PocketBase's API.
#[derive(Debug, Parser)]
#[command(name = "ferrobase", version, about, propagate_version = true)]
pub struct Cli {
    /// Config file (default: ./config.toml when present).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides storage.data_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the HTTP server.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8090 (port 0 picks a free one).
        #[arg(long, value_name = "ADDR")]
        http: Option<SocketAddr>,
    },
    /// Manage superuser accounts.
    Superuser {
        #[command(subcommand)]
        action: SuperuserAction,
    },
    /// Inspect or apply the embedded system migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
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
    /// Delete a superuser (the last one cannot be deleted).
    Delete {
        /// Email address of the superuser.
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// List migrations and whether each is applied.
    Status,
    /// Apply pending migrations (also done automatically on start).
    Up,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow_like::Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = cli.dir {
        config.storage.data_dir = dir;
    }
    if let Command::Serve { http: Some(addr) } = &cli.command {
        config.server.http = *addr;
    }
    init_tracing(&config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { .. } => serve(config).await,
            Command::Superuser { action } => superuser(config, action).await,
            Command::Migrate { action } => migrate(config, action).await,
        }
    })
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn serve(config: Config) -> anyhow_like::Result<()> {
    let data_dir = config.storage.data_dir.clone();
    let app = Application::build(config.clone()).await?;
    let addr = SocketAddr::new(config.server.http.ip(), app.port());
    let mut out = std::io::stdout().lock();
    // The first line is machine-read by tests and scripts: keep its shape.
    writeln!(out, "Server started at http://{addr}")?;
    writeln!(out, "├─ REST API:  http://{addr}/api/")?;
    writeln!(out, "└─ Dashboard: http://{addr}/_/")?;
    if let Some(token) = app.issue_install_token().await? {
        writeln!(
            out,
            "\nNo superuser exists yet. Open this one-time link (valid {} minutes) to create one:\n  http://{addr}/_/#/pbinstal/{token}\nor use: ferrobase superuser upsert EMAIL PASSWORD --dir={}",
            crate::auth::install::INSTALL_TOKEN_TTL.as_secs() / 60,
            data_dir.display()
        )?;
    }
    out.flush()?;
    drop(out);
    app.run_until_signal().await?;
    Ok(())
}

async fn superuser(config: Config, action: SuperuserAction) -> anyhow_like::Result<()> {
    let db = Db::open(&config.storage.data_dir, &config.database)?;
    match action {
        SuperuserAction::Upsert { email, password } => {
            auth::upsert_superuser(&db, &email, &password).await?;
            println!("Successfully saved superuser {email:?}!");
        }
        SuperuserAction::Delete { email } => {
            auth::delete_superuser(&db, &email).await?;
            println!("Successfully deleted superuser {email:?}!");
        }
    }
    Ok(())
}

async fn migrate(config: Config, action: MigrateAction) -> anyhow_like::Result<()> {
    // Opening the database applies pending migrations, so `up` is an open plus a report.
    let db = Db::open(&config.storage.data_dir, &config.database)?;
    if let MigrateAction::Up = action {
        println!("All migrations are applied.");
    }
    for m in db.migration_status().await? {
        match m.applied {
            Some(at) => println!("applied  {}  ({at})", m.name),
            None => println!("pending  {}", m.name),
        }
    }
    Ok(())
}

/// A boxed error for the CLI's top level, printed with its message.
mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}
