//! `Application`: opens the database, loads the schema registry, binds the
//! listener (port 0 allowed) and builds the actix server.

use crate::api::{self, AppState, middleware};
use crate::auth::install::InstallTokens;
use crate::config::Config;
use crate::db::Db;
use crate::schema::{self, Registry};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Db(#[from] crate::db::DbError),
    #[error("schema: {0}")]
    Schema(#[from] crate::schema::SchemaError),
    #[error("settings: {0}")]
    Settings(#[from] crate::settings::SettingsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    db: Db,
    install_tokens: Arc<InstallTokens>,
}

impl Application {
    /// Opens the data dir, applies migrations, loads collections and binds.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let db = Db::open(&config.storage.data_dir, &config.database)?;
        let registry = Registry::default();
        let snapshot = db.read(schema::load_snapshot).await?;
        registry.replace(snapshot);
        let settings = crate::settings::load(&db).await?;
        let listener = TcpListener::bind(config.server.http).map_err(|source| Bind {
            addr: config.server.http,
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| Bind {
                addr: config.server.http,
                source,
            })?
            .port();
        let workers = if config.server.workers == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        } else {
            config.server.workers
        };
        let install_tokens = Arc::new(InstallTokens::default());
        let state = web::Data::new(AppState {
            db: db.clone(),
            registry,
            config: Arc::new(config.clone()),
            login_throttle: Default::default(),
            settings: crate::settings::SettingsCache::new(settings),
            rate_limiter: Default::default(),
            install_tokens: install_tokens.clone(),
        });
        let cors = web::Data::new(middleware::CorsPolicy(Arc::new(
            config.server.cors_origins.clone(),
        )));
        let logging = web::Data::new(middleware::RequestLogging(config.log.requests));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(cors.clone())
                .app_data(logging.clone())
                .wrap(actix_web::middleware::from_fn(api::ratelimit::rate_limit))
                .wrap(actix_web::middleware::from_fn(middleware::security_headers))
                .wrap(actix_web::middleware::from_fn(middleware::cors))
                .wrap(actix_web::middleware::from_fn(middleware::request_log))
                .configure(api::configure)
        })
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(|source| Bind {
            addr: config.server.http,
            source,
        })?
        .run();
        Ok(Self {
            port,
            server,
            db,
            install_tokens,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server (tests and embedding).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The database handle (for the CLI's first-run hint).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// A fresh one-time token for the first-run link (`/_/#/pbinstal/TOKEN`),
    /// or `None` when a superuser already exists.
    pub async fn issue_install_token(&self) -> Result<Option<String>, crate::auth::AuthError> {
        if crate::auth::count_superusers(&self.db).await? > 0 {
            return Ok(None);
        }
        Ok(Some(self.install_tokens.issue()))
    }

    /// Serves until the server is stopped.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Serves until SIGINT/SIGTERM, then stops gracefully (in-flight requests finish).
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = self.server;
        tokio::select! {
            result = server => result,
            () = shutdown_signal() => {
                tracing::info!("shutting down");
                handle.stop(true).await;
                Ok(())
            }
        }
    }
}

use StartError::Bind;

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
