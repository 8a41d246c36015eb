//! A small job scheduler: named jobs with five-field cron expressions
//! (parsed and matched by `croner`), checked once a minute on the runtime;
//! each due job runs in its own task, and a job still running from its last
//! turn is not started twice. Jobs can also be run on demand
//! (`POST /api/crons/{id}`). With several nodes on PostgreSQL, scheduled
//! turns run only on the node holding the cron leadership
//! ([`Scheduler::follow_leadership`]; on-demand runs still run where asked).

use chrono::{Timelike, Utc};
use futures_util::future::BoxFuture;
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// What a job does when it runs.
pub type JobFn = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

struct Job {
    id: String,
    expression: String,
    schedule: croner::Cron,
    run: JobFn,
}

/// Why a job could not be added.
#[derive(Debug, thiserror::Error)]
#[error("invalid cron expression {expression:?}: {reason}")]
pub struct CronError {
    pub expression: String,
    pub reason: String,
}

/// Parses a five-field cron expression (minute hour day month weekday).
pub fn parse(expression: &str) -> Result<croner::Cron, CronError> {
    let error = |reason: String| CronError {
        expression: expression.to_owned(),
        reason,
    };
    if expression.split_whitespace().count() != 5 {
        return Err(error(
            "expected 5 fields: minute hour day month weekday".into(),
        ));
    }
    croner::Cron::from_str(expression).map_err(|e| error(e.to_string()))
}

/// The registered jobs; cheap to clone.
#[derive(Clone, Default)]
pub struct Scheduler {
    jobs: Arc<RwLock<Vec<Job>>>,
    running: Arc<Mutex<HashSet<String>>>,
    ticker: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// Set on PostgreSQL: whether this node leads (runs scheduled turns).
    leadership: Arc<std::sync::OnceLock<Arc<std::sync::atomic::AtomicBool>>>,
}

impl Scheduler {
    /// Adds (or replaces) the job `id`.
    pub fn add(&self, id: &str, expression: &str, run: JobFn) -> Result<(), CronError> {
        let schedule = parse(expression)?;
        let mut jobs = self.jobs.write().unwrap_or_else(|p| p.into_inner());
        jobs.retain(|j| j.id != id);
        jobs.push(Job {
            id: id.to_owned(),
            expression: expression.to_owned(),
            schedule,
            run,
        });
        Ok(())
    }

    /// Removes the job `id` if present.
    pub fn remove(&self, id: &str) {
        self.jobs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|j| j.id != id);
    }

    /// `(id, expression)` of every job, in the order they were added.
    pub fn list(&self) -> Vec<(String, String)> {
        self.jobs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|j| (j.id.clone(), j.expression.clone()))
            .collect()
    }

    /// Runs the job `id` now and waits for it; `false` when there is no such job.
    pub async fn run_now(&self, id: &str) -> bool {
        let Some(run) = self.job_fn(id) else {
            return false;
        };
        run().await;
        true
    }

    fn job_fn(&self, id: &str) -> Option<JobFn> {
        self.jobs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|j| j.id == id)
            .map(|j| j.run.clone())
    }

    /// Stops the ticker and forgets every job (when the server stops).
    pub fn shutdown(&self) {
        if let Some(ticker) = self.ticker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            ticker.abort();
        }
        self.jobs.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Starts the minute ticker on the current runtime.
    /// Runs scheduled turns only while `leader` is true (several nodes).
    pub fn follow_leadership(&self, leader: Arc<std::sync::atomic::AtomicBool>) {
        let _ = self.leadership.set(leader);
    }

    /// Whether this node runs the scheduled turns; `None` with no election
    /// (SQLite: always).
    pub fn is_leader(&self) -> Option<bool> {
        self.leadership
            .get()
            .map(|l| l.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn start(&self) {
        let scheduler = self.clone();
        let ticker = tokio::spawn(async move {
            loop {
                let now = Utc::now();
                let into_minute = Duration::from_secs(u64::from(now.second()))
                    + Duration::from_nanos(u64::from(now.nanosecond() % 1_000_000_000));
                tokio::time::sleep(Duration::from_secs(60).saturating_sub(into_minute)).await;
                scheduler.tick();
            }
        });
        *self.ticker.lock().unwrap_or_else(|p| p.into_inner()) = Some(ticker);
    }

    /// Starts every job due this minute that is not still running.
    fn tick(&self) {
        if self.is_leader() == Some(false) {
            return;
        }
        let now = Utc::now().with_second(0).unwrap_or_else(Utc::now);
        let due: Vec<(String, JobFn)> = self
            .jobs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|j| j.schedule.is_time_matching(&now).unwrap_or(false))
            .map(|j| (j.id.clone(), j.run.clone()))
            .collect();
        for (id, run) in due {
            if !self
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.clone())
            {
                continue;
            }
            let running = self.running.clone();
            tokio::spawn(async move {
                run().await;
                running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn expressions_need_five_valid_fields() {
        assert!(parse("0 */6 * * *").is_ok());
        assert!(parse("*/5 * * * 1-5").is_ok());
        assert!(parse("* * * *").is_err());
        assert!(parse("0 0 * * * *").is_err(), "no seconds field");
        assert!(parse("61 * * * *").is_err());
    }

    #[tokio::test]
    async fn jobs_are_listed_replaced_and_run_on_demand() {
        let scheduler = Scheduler::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let job: JobFn = Arc::new(move || {
            let counter = counter.clone();
            Box::pin(async move {
                counter.fetch_add(1, Ordering::SeqCst);
            })
        });
        scheduler.add("a", "0 0 * * *", job.clone()).expect("valid");
        scheduler.add("a", "0 1 * * *", job).expect("valid");

        assert_eq!(
            scheduler.list(),
            vec![("a".to_owned(), "0 1 * * *".to_owned())]
        );
        assert!(scheduler.run_now("a").await);
        assert!(!scheduler.run_now("b").await);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
