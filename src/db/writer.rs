//! The single writer: a thread that owns the read-write connection and runs
//! queued jobs one at a time. Jobs are closures, so the queue is also the
//! place where a later version can group several jobs into one commit.

use super::DbError;
use rusqlite::Connection;
use std::sync::mpsc;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub(super) fn start(mut conn: Connection) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("ferrobase-writer".to_owned())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    job(&mut conn);
                }
                // Every handle is gone: leave a clean WAL behind.
                if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
                    tracing::warn!(error = %e, "final WAL checkpoint failed");
                }
            });
        if let Err(e) = spawned {
            // Without a writer thread every write fails with WriterGone, which is reported.
            tracing::error!(error = %e, "cannot start the writer thread");
        }
        Self { jobs }
    }

    pub(super) async fn run<T, E>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The receiver may have gone (client disconnected); the write still stands.
            let _ = reply.send(f(conn));
        });
        self.jobs.send(job).map_err(|_| DbError::WriterGone)?;
        answer.await.map_err(|_| DbError::WriterGone)?
    }
}
