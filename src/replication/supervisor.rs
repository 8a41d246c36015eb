//! Keeps `litestream replicate` running beside the server.
//!
//! Litestream runs under a small `sh` wrapper in its own process group.
//! The wrapper holds a pipe from Ferrobase on its stdin: when that pipe
//! closes (a clean stop, or Ferrobase dying by any means, `kill -9`
//! included) it sends Litestream SIGTERM, so Litestream is never orphaned.
//! (Rust's parent-death signal needs `unsafe` `pre_exec`, which the crate
//! forbids; the pipe works on any POSIX system.) When Litestream dies the
//! supervisor logs it as an error and starts it again with backoff.

use super::{ReplicationError, last_line, yaml};
use crate::config::ReplicationConfig;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::watch;

/// First wait before restarting a dead Litestream; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run this long resets the backoff: the failure was not a crash loop.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// How long Litestream gets to ship its last frames and exit on stop.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Bound on `litestream databases`, the config check before the first start.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(30);

/// `$1` = litestream, `$2` = its config. Stdin is Ferrobase's pipe: EOF
/// means Ferrobase is gone or stopping, and Litestream gets SIGTERM.
const WRAPPER: &str = r#"exec 3<&0 </dev/null
"$1" replicate -config "$2" -no-expand-env 3<&- &
child=$!
( while read -r _; do :; done <&3; kill -TERM "$child" 2>/dev/null ) &
watcher=$!
exec 3<&-
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
while :; do
  wait "$child"; code=$?
  kill -0 "$child" 2>/dev/null || break
done
kill "$watcher" 2>/dev/null
exit "$code"
"#;

/// What `/api/health` and the logs can tell about replication.
#[derive(Debug, Default)]
pub struct Status {
    running: AtomicBool,
    restarts: AtomicU32,
}

impl Status {
    /// Whether Litestream is running right now.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// How often Litestream had to be started again.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }
}

/// The supervised Litestream of this process, for `/api/health` (one
/// `serve` per process; `None` while replication is off).
static CURRENT: std::sync::RwLock<Option<Arc<Status>>> = std::sync::RwLock::new(None);

/// Replication as `/api/health` reports it: `None` when off, else whether
/// Litestream is running right now.
pub fn health() -> Option<bool> {
    let current = CURRENT.read().ok()?;
    current.as_ref().map(|s| s.is_running())
}

fn publish(status: Option<Arc<Status>>) {
    if let Ok(mut current) = CURRENT.write() {
        *current = status;
    }
}

/// A supervised Litestream. Stop it with [`Replication::stop`]; dropping
/// it (or the runtime) also ends Litestream, through the closed pipe.
pub struct Replication {
    status: Arc<Status>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Replication {
    /// Writes the Litestream config into `data_dir`, checks it with
    /// `litestream databases`, and starts `litestream replicate`.
    /// Fails (and nothing keeps running) when the program is missing or
    /// Litestream rejects the replica.
    pub async fn start(
        options: &ReplicationConfig,
        data_dir: &Path,
    ) -> Result<Self, ReplicationError> {
        let program = super::locate(&options.litestream)?;
        let data_dir =
            std::fs::canonicalize(data_dir).map_err(|source| ReplicationError::DataDir {
                path: data_dir.to_path_buf(),
                source,
            })?;
        let config = yaml::write(&data_dir, options)?;
        preflight(&program, &config, &options.replica).await?;
        let status = Arc::new(Status::default());
        let child = spawn(&program, &config)?;
        status.running.store(true, Ordering::Relaxed);
        tracing::info!(replica = %options.replica, pid = child.child.id(), "litestream replicating");
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(supervise(program, config, child, status.clone(), stopped));
        publish(Some(status.clone()));
        Ok(Self { status, stop, task })
    }

    /// The live status.
    pub fn status(&self) -> Arc<Status> {
        self.status.clone()
    }

    /// Stops Litestream (it ships what it has first) and waits for it.
    pub async fn stop(self) {
        publish(None);
        let _ = self.stop.send(true);
        if tokio::time::timeout(STOP_GRACE + Duration::from_secs(2), self.task)
            .await
            .is_err()
        {
            tracing::error!("litestream supervisor did not stop in time");
        }
    }
}

/// `litestream databases` parses the config and builds each replica
/// client: an unknown scheme or a malformed URL fails here, at once.
async fn preflight(program: &Path, config: &Path, replica: &str) -> Result<(), ReplicationError> {
    let run = Command::new(program)
        .arg("databases")
        .arg("-config")
        .arg(config)
        .arg("-no-expand-env")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PREFLIGHT_TIMEOUT, run)
        .await
        .map_err(|_| ReplicationError::Rejected {
            replica: replica.to_owned(),
            message: "`litestream databases` did not answer in time".into(),
        })?
        .map_err(|source| ReplicationError::Spawn {
            program: program.to_path_buf(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let mut both = output.stdout;
    both.extend_from_slice(&output.stderr);
    Err(ReplicationError::Rejected {
        replica: replica.to_owned(),
        message: last_line(&both),
    })
}

/// A running wrapper and the write end of its lifeline pipe. The pipe is
/// held here, not in `Child`: tokio's `Child::wait` closes the child's stdin.
struct Running {
    child: Child,
    _lifeline: Option<ChildStdin>,
}

fn spawn(program: &Path, config: &Path) -> Result<Running, ReplicationError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WRAPPER)
        .arg("ferrobase-litestream")
        .arg(program)
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: a terminal's Ctrl-C reaches Ferrobase, which stops
        // Litestream in order, and the group can be killed as a whole.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ReplicationError::Spawn {
            program: program.to_path_buf(),
            source,
        })?;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward_logs(out));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward_logs(err));
    }
    let lifeline = child.stdin.take();
    Ok(Running {
        child,
        _lifeline: lifeline,
    })
}

/// Passes Litestream's log lines to tracing at their own level.
async fn forward_logs(stream: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains("level=ERROR") || line.starts_with("Error") {
            tracing::error!(target: "ferrobase::litestream", "{line}");
        } else if line.contains("level=WARN") {
            tracing::warn!(target: "ferrobase::litestream", "{line}");
        } else {
            tracing::info!(target: "ferrobase::litestream", "{line}");
        }
    }
}

async fn supervise(
    program: PathBuf,
    config: PathBuf,
    first: Running,
    status: Arc<Status>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut backoff = MIN_BACKOFF;
    // `None` after a failed restart: nothing runs until the next attempt.
    let mut running = Some(first);
    loop {
        if let Some(mut current) = running.take() {
            let started = Instant::now();
            tokio::select! {
                exit = current.child.wait() => {
                    status.running.store(false, Ordering::Relaxed);
                    if started.elapsed() >= STABLE_AFTER {
                        backoff = MIN_BACKOFF;
                    }
                    let exit = exit.map_or_else(|e| e.to_string(), |s| s.to_string());
                    tracing::error!(%exit, retry_in = ?backoff,
                        "litestream stopped: replication is DOWN until it restarts");
                }
                _ = stopped.changed() => {
                    stop_child(current).await;
                    status.running.store(false, Ordering::Relaxed);
                    return;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stopped.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        match spawn(&program, &config) {
            Ok(next) => {
                status.restarts.fetch_add(1, Ordering::Relaxed);
                status.running.store(true, Ordering::Relaxed);
                tracing::warn!(
                    pid = next.child.id(),
                    "litestream restarted; replication is up again"
                );
                running = Some(next);
            }
            Err(e) => tracing::error!(error = %e, retry_in = ?backoff,
                "litestream could not be restarted: replication is DOWN"),
        }
    }
}

/// Closes the pipe (the wrapper sends Litestream SIGTERM), waits, and kills
/// the whole process group if Litestream does not exit in time.
async fn stop_child(running: Running) {
    let Running {
        mut child,
        _lifeline,
    } = running;
    drop(_lifeline);
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(_) => tracing::info!("litestream stopped"),
        Err(_) => {
            tracing::error!("litestream did not stop in time; killing it");
            if let Some(group) = child.id() {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg("--")
                    .arg(format!("-{group}"))
                    .status()
                    .await;
            }
            let _ = child.wait().await;
        }
    }
}
