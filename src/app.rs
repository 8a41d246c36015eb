//! `Application`: opens the database, loads the schema registry, binds the
//! listener (port 0 allowed) and builds the actix server.

use crate::api::{self, AppState, middleware};
use crate::auth::install::InstallTokens;
use crate::config::Config;
use crate::db::{DataDirLock, Db, LOCK_WAIT};
use crate::lifecycle::{Lifecycle, Stopped};
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
    #[error("backup restore: {0}")]
    Restore(#[from] crate::backups::BackupError),
    #[error("hooks: {0}")]
    Hooks(#[from] crate::hooks::LoadError),
    #[error("migrations: {0}")]
    Migrations(#[from] crate::hooks::migrations::MigrateError),
    #[error("file storage: {0}")]
    Storage(std::io::Error),
    #[error("{0}")]
    Open(#[from] crate::backend::OpenError),
    /// The PostgreSQL listener that links the nodes could not start.
    #[error("realtime listener: {0}")]
    Listener(#[from] crate::db::postgres::PgConnectError),
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
    /// The PostgreSQL listener, stopped with the server.
    nodes: Option<crate::nodes::Link>,
    lifecycle: Lifecycle,
    crons: crate::cron::Scheduler,
    /// Held while serving: one server per data dir.
    _lock: DataDirLock,
    realtime: crate::realtime::Hub,
    install_tokens: Arc<InstallTokens>,
    /// Restarts the server when the hook files change (`--hooksWatch`).
    _hooks_watch: Option<crate::hooks::watch::Watcher>,
}

impl Application {
    /// Opens the data dir, applies migrations, loads collections and binds.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with_tls(config, None).await
    }

    /// [`Application::build`], serving HTTPS with `tls` when given
    /// (`serve DOMAIN` or `--tls-cert`; see `crate::tls`).
    pub async fn build_with_tls(
        config: Config,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Self, StartError> {
        let opened = open_databases(&config).await?;
        let (lock, db) = (opened.lock, opened.db);
        let registry = Registry::default();
        let snapshot = db.read_conn(|c| schema::read_snapshot(c)).await?;
        registry.replace(snapshot);
        let seal = crate::settings::Seal::from_env(&config.storage.encryption_env)
            .map_err(crate::settings::SettingsError::from)?;
        let settings = crate::settings::load(&db, &seal).await?;
        let auxiliary = match opened.auxiliary {
            Auxiliary::Opening(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
            // On PostgreSQL the request logs are a table of the same database.
            Auxiliary::Same => db.clone(),
        };
        let logs = crate::logs::Logger::start(auxiliary);
        // Local disk or the bucket of the `s3` settings; swapped when they change.
        let storage = Arc::new(crate::files::Switch::new(
            crate::files::LocalStorage::open(&config.storage_dir()).map_err(StartError::Storage)?,
        ));
        api::settings::apply_storage(&storage, &settings.s3);
        let store: crate::files::Store = storage.clone();
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
        let render_hooks: Arc<std::sync::OnceLock<crate::hooks::Hooks>> = Arc::default();
        let realtime = crate::realtime::Hub::start(
            Arc::new(api::realtime::RecordRenderer {
                db: db.clone(),
                registry: registry.clone(),
                hooks: render_hooks.clone(),
            }),
            config.realtime.max_streams_per_ip,
        );
        let hub = realtime.clone();
        let mailer_slot: Arc<std::sync::OnceLock<crate::hooks::MailerFactory>> = Arc::default();
        let settings_slot: Arc<std::sync::OnceLock<crate::hooks::SettingsSource>> = Arc::default();
        let hooks_dir = config.hooks_dir();
        if hooks_dir.is_dir() || config.migrations_dir().is_dir() {
            // For editor completion, as PocketBase writes it; never fatal.
            if let Err(e) = crate::hooks::write_types(&config.storage.data_dir) {
                tracing::warn!(error = %e, "could not write types.d.ts");
            }
        }
        let hook_limits = crate::hooks::Limits {
            memory_bytes: config.hooks.memory_limit_mb.saturating_mul(1024 * 1024),
            timeout: std::time::Duration::from_millis(config.hooks.timeout_ms),
        };
        let hook_host = crate::hooks::Host {
            db: db.clone(),
            registry: registry.clone(),
            store: store.clone(),
            hub: realtime.clone(),
            handle: tokio::runtime::Handle::current(),
            map_error: api::hooks::map_record_error,
            http_allow_private: config.hooks.http_allow_private,
            http_allow: Arc::new(config.hooks.http_allow.clone()),
            mailer: mailer_slot.clone(),
            settings: settings_slot.clone(),
            // --dev turns statement logging on; nothing else does by default.
            dev: config.database.log_statements,
        };
        let hooks = crate::hooks::Hooks::start(
            &hooks_dir,
            hook_limits,
            config.hooks.pool_size,
            hook_host.clone(),
        )
        .await?;
        if let Some(hooks) = &hooks {
            let _ = render_hooks.set(hooks.clone());
        }
        let install_tokens = Arc::new(InstallTokens::default());
        let pg_url = config.database.url.postgres().map(str::to_owned);
        let nodes = pg_url.as_ref().map(|_| crate::nodes::Link::default());
        let state = web::Data::new(AppState {
            db: db.clone(),
            registry,
            config: Arc::new(config.clone()),
            login_throttle: Default::default(),
            settings: crate::settings::SettingsCache::new(settings, seal),
            rate_limiter: Default::default(),
            logs,
            crons: crate::cron::Scheduler::default(),
            lifecycle: Lifecycle::default(),
            metrics: Default::default(),
            store,
            storage,
            realtime,
            install_tokens: install_tokens.clone(),
            hooks: hooks.clone(),
            openapi: Default::default(),
            nodes: nodes.clone(),
        });
        if let (Some(url), Some(link)) = (&pg_url, &nodes) {
            link_nodes(url, link, &state)?;
        }
        register_builtin_jobs(&state);
        {
            // Weak: the hook threads must not keep the state (and so themselves) alive.
            let weak = Arc::downgrade(&state.clone().into_inner());
            let settings_weak = weak.clone();
            let _ = settings_slot.set(Box::new(move || {
                Some(settings_weak.upgrade()?.settings.get())
            }));
            let _ = mailer_slot.set(Box::new(move || {
                let state = weak.upgrade()?;
                Some(
                    crate::mail::Mailer::new(&state.settings.get())
                        .with_sendmail(crate::mail::find_sendmail(&state.config.mail.sendmail)),
                )
            }));
        }
        if let Some(hooks) = &hooks {
            api::hooks::register_crons(&state.crons, hooks);
        }
        api::backups_schedule(&state);
        state.crons.start();
        let (lifecycle, crons) = (state.lifecycle.clone(), state.crons.clone());
        let hooks_watch = (config.hooks.watch && hooks_dir.is_dir()).then(|| {
            crate::hooks::watch::spawn(hooks_dir, hook_limits, hook_host, lifecycle.clone())
        });
        let cors = web::Data::new(middleware::CorsPolicy(Arc::new(
            config.server.cors_origins.clone(),
        )));
        let logging = web::Data::new(middleware::RequestLogging(config.log.requests));
        let public = web::Data::new(api::PublicFiles::new(
            config.public_dir(),
            config.public.index_fallback,
        ));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(cors.clone())
                .app_data(logging.clone())
                .app_data(public.clone())
                // Rate limits sit on each route (`api::configure`), after routing.
                .wrap(actix_web::middleware::from_fn(middleware::superuser_ips))
                // Wrapped after `superuser_ips`, so it runs first: the
                // settings that check reads are fresh.
                .wrap(actix_web::middleware::from_fn(middleware::fresh_caches))
                .wrap(actix_web::middleware::from_fn(middleware::security_headers))
                .wrap(actix_web::middleware::from_fn(middleware::cors))
                .wrap(actix_web::middleware::from_fn(middleware::request_log))
                .wrap(actix_web::middleware::from_fn(middleware::finish_writes))
                .configure(|cfg| api::configure_with_hooks(cfg, hooks.as_ref()))
        })
        .workers(workers)
        // Responses whose body follows the headers in a second write (files,
        // streams) must not wait for the client's delayed ACK (Nagle): Go's
        // server, PocketBase's, sets TCP_NODELAY on every connection too.
        .tcp_nodelay(true)
        // A client that hangs up cancels its request (as Go's server does
        // for PocketBase), freeing the reader its query holds; writes still
        // finish (`middleware::finish_writes`).
        .h1_allow_half_closed(false)
        .disable_signals()
        .shutdown_timeout(10);
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, (*tls).clone()),
            None => server.listen(listener),
        }
        .map_err(|source| Bind {
            addr: config.server.http,
            source,
        })?
        .run();
        Ok(Self {
            port,
            server,
            db,
            lifecycle,
            crons,
            nodes,
            _lock: lock,
            realtime: hub,
            install_tokens,
            _hooks_watch: hooks_watch,
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

    /// Serves until the server is stopped, then checkpoints the WAL.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.crons.shutdown();
        if let Some(link) = &self.nodes {
            link.stop();
        }
        checkpoint(&self.db).await;
        result
    }

    /// Serves until SIGINT/SIGTERM, then stops gracefully: in-flight
    /// requests finish (bounded by the shutdown timeout), the WAL is
    /// checkpointed, and the data dir lock is released.
    /// Returns [`Stopped::Restart`] when a restart was requested (a backup
    /// restore): the caller builds the app again, which applies it.
    pub async fn run_until_signal(self) -> std::io::Result<Stopped> {
        let handle = self.server.handle();
        let server = self.server;
        let result = tokio::select! {
            result = server => result.map(|()| Stopped::Exit),
            () = shutdown_signal() => {
                tracing::info!("shutting down: draining in-flight requests");
                let stopping = handle.stop(true);
                // Open SSE streams end once their clients are gone.
                self.realtime.disconnect_all();
                stopping.await;
                Ok(Stopped::Exit)
            }
            () = self.lifecycle.restart_requested() => {
                tracing::info!("restarting: draining in-flight requests");
                let stopping = handle.stop(true);
                self.realtime.disconnect_all();
                stopping.await;
                Ok(Stopped::Restart)
            }
        };
        self.crons.shutdown();
        if let Some(link) = &self.nodes {
            link.stop();
        }
        checkpoint(&self.db).await;
        result
    }
}

/// Where the request logs are stored.
enum Auxiliary {
    /// SQLite's `auxiliary.db`, opening on its own thread.
    Opening(std::thread::JoinHandle<Result<Db, crate::db::DbError>>),
    /// PostgreSQL: the `_logs` table of the main database.
    Same,
}

/// The databases and the data dir's lock, ready for the schema to load.
struct Opened {
    lock: DataDirLock,
    db: Db,
    auxiliary: Auxiliary,
}

/// Opens the configured database. On SQLite: a staged backup restore, the
/// request log's `auxiliary.db` (opening on its own thread while the main
/// one loads: start-up waits for the slower of the two, not for both in
/// turn), the search index upgrade and `pb_migrations/*.js`. On PostgreSQL
/// (initialised when empty): `pb_migrations/*.js` too; the data dir
/// (uploads) is locked only once the database answered, so a wrong URL
/// leaves it untouched.
async fn open_databases(config: &Config) -> Result<Opened, StartError> {
    // pb_migrations/*.js: before the schema is loaded, so it is their result.
    let migration_options = crate::hooks::migrations::Options::from_config(config);
    if crate::backend::is_postgres(config) {
        let db = crate::backend::open_for_server(config).await?;
        let lock = DataDirLock::acquire(&config.storage.data_dir, LOCK_WAIT).await?;
        // Nodes starting together take turns per file (`migrations::runner`).
        crate::hooks::migrations::up(&db, &migration_options).await?;
        return Ok(Opened {
            lock,
            db,
            auxiliary: Auxiliary::Same,
        });
    }
    let lock = DataDirLock::acquire(&config.storage.data_dir, LOCK_WAIT).await?;
    if crate::backups::apply_staged_restore(&config.storage.data_dir)? {
        tracing::info!("a staged backup restore was applied");
    }
    let auxiliary = {
        let (dir, options) = (config.storage.data_dir.clone(), config.database.clone());
        std::thread::spawn(move || Db::open_auxiliary(&dir, &options))
    };
    let db = Db::open(&config.storage.data_dir, &config.database)?;
    // Before anything writes records: old databases' index insert triggers
    // would index a create twice now that `records` indexes it.
    crate::search::index::upgrade(&db).await?;
    crate::hooks::migrations::up(&db, &migration_options).await?;
    Ok(Opened {
        lock,
        db,
        auxiliary: Auxiliary::Opening(auxiliary),
    })
}

/// Starts the listener that links this node to the others on the same
/// PostgreSQL (`crate::nodes`): outbox changes to the hub, cache reloads.
fn link_nodes(
    url: &str,
    link: &crate::nodes::Link,
    state: &web::Data<AppState>,
) -> Result<(), StartError> {
    // Weak: the follower task must not keep the state alive.
    let weak = Arc::downgrade(&state.clone().into_inner());
    let on_settings = Box::new(move |settings: crate::settings::Settings| {
        if let Some(state) = weak.upgrade() {
            api::settings::apply_storage(&state.storage, &settings.s3);
            state.settings.set(settings);
        }
    });
    let local = crate::nodes::Local {
        db: state.db.clone(),
        registry: state.registry.clone(),
        hub: state.realtime.clone(),
        seal: state.settings.seal().clone(),
        on_settings,
    };
    crate::nodes::start(url, link, local)?;
    // The flag lives in the scheduler: the election ends with the state.
    let leader = Arc::new(std::sync::atomic::AtomicBool::new(false));
    state.crons.follow_leadership(leader.clone());
    crate::nodes::leader::start(url, &leader);
    Ok(())
}

/// Wraps an async job body as a scheduler job.
/// The job holds the state weakly: the scheduler lives inside the state.
fn job<F, Fut>(state: &web::Data<AppState>, body: F) -> crate::cron::JobFn
where
    F: Fn(Arc<AppState>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let state = Arc::downgrade(&state.clone().into_inner());
    let body = Arc::new(body);
    Arc::new(move || {
        let (state, body) = (state.clone(), body.clone());
        Box::pin(async move {
            if let Some(state) = state.upgrade() {
                body(state).await;
            }
        })
    })
}

/// Registers the built-in jobs (PocketBase's ids and schedules).
fn register_builtin_jobs(state: &web::Data<AppState>) {
    use crate::maintenance as m;
    let jobs: [((&str, &str), crate::cron::JobFn); 4] = [
        (
            m::DB_OPTIMIZE,
            job(state, |s| async move {
                if let Err(e) = m::optimize(&s.db).await {
                    tracing::warn!(error = %e, "db optimize failed");
                }
            }),
        ),
        (
            m::MFA_CLEANUP,
            job(state, |s| async move {
                if let Err(e) = m::cleanup_mfas(&s.db, &s.registry).await {
                    tracing::warn!(error = %e, "MFA cleanup failed");
                }
            }),
        ),
        (
            m::OTP_CLEANUP,
            job(state, |s| async move {
                if let Err(e) = m::cleanup_otps(&s.db, &s.registry).await {
                    tracing::warn!(error = %e, "OTP cleanup failed");
                }
            }),
        ),
        (
            m::LOGS_CLEANUP,
            job(state, |s| async move {
                let max_days = s.settings.get().logs.max_days;
                if let Err(e) = crate::logs::cleanup(s.logs.db(), max_days).await {
                    tracing::warn!(error = %e, "logs cleanup failed");
                }
            }),
        ),
    ];
    for ((id, expression), run) in jobs {
        if let Err(e) = state.crons.add(id, expression, run) {
            tracing::error!(error = %e, job = id, "built-in job not scheduled");
        }
    }
}

async fn checkpoint(db: &Db) {
    if db.wal_checkpoints() == crate::config::WalCheckpoints::Off {
        tracing::info!("WAL left to its owner (database.wal_checkpoints = off); shutdown complete");
        return;
    }
    match db.checkpoint().await {
        Ok(()) => tracing::info!("WAL checkpointed; shutdown complete"),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint at shutdown failed"),
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
