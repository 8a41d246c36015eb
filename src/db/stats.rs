//! Counters about the database handle, read by `/api/metrics`: how deep the
//! writer's queue is, how many writes each group commit carried, and how
//! long reads waited for a free reader. Plain atomics: no cost worth
//! measuring on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Live counters of one [`super::Db`].
#[derive(Debug, Default)]
pub struct DbStats {
    queued: AtomicU64,
    exclusive_jobs: AtomicU64,
    group_commits: AtomicU64,
    grouped_jobs: AtomicU64,
    reads: AtomicU64,
    read_wait_nanos: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct DbStatsSnapshot {
    /// Writes waiting for the writer thread now.
    pub writer_queue_depth: u64,
    pub exclusive_jobs: u64,
    /// Group commits, and the writes they carried (ratio = mean group size).
    pub group_commits: u64,
    pub grouped_jobs: u64,
    /// Reads, and their total wait for a pooled connection.
    pub reads: u64,
    pub read_wait_seconds: f64,
}

impl DbStats {
    pub(super) fn enqueued(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn dequeued(&self, jobs: u64) {
        self.queued.fetch_sub(jobs, Ordering::Relaxed);
    }

    pub(super) fn exclusive_job(&self) {
        self.exclusive_jobs.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn group_committed(&self, jobs: u64) {
        self.group_commits.fetch_add(1, Ordering::Relaxed);
        self.grouped_jobs.fetch_add(jobs, Ordering::Relaxed);
    }

    pub(super) fn read_waited(&self, wait: Duration) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        self.read_wait_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> DbStatsSnapshot {
        DbStatsSnapshot {
            writer_queue_depth: self.queued.load(Ordering::Relaxed),
            exclusive_jobs: self.exclusive_jobs.load(Ordering::Relaxed),
            group_commits: self.group_commits.load(Ordering::Relaxed),
            grouped_jobs: self.grouped_jobs.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            read_wait_seconds: self.read_wait_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}
