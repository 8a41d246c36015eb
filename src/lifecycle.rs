//! Asking the running server to restart itself (after a backup restore):
//! the request handler signals, `Application` stops serving and returns
//! [`Stopped::Restart`], and the `serve` command builds a fresh app.

use std::sync::Arc;
use tokio::sync::Notify;

/// Why the server stopped serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Stopped by a signal or its handle: exit.
    Exit,
    /// A restart was requested: build the app again.
    Restart,
}

/// Shared restart switch; clones signal the same server.
#[derive(Clone, Default)]
pub struct Lifecycle(Arc<Notify>);

impl Lifecycle {
    /// Asks the server to stop and be rebuilt.
    pub fn request_restart(&self) {
        self.0.notify_one();
    }

    /// Resolves when a restart is requested.
    pub async fn restart_requested(&self) {
        self.0.notified().await;
    }
}
