//! Cron leadership between nodes on one PostgreSQL: a thread with a session
//! of its own tries `pg_try_advisory_lock` on [`LockKey::CronLeader`] every
//! [`ELECTION_EVERY`]; the node whose session holds it runs the scheduled
//! cron turns. The lock lives as long as that session: when the leader dies
//! (even `kill -9`) the server ends its session, frees the lock, and
//! another node takes it at its next try. The leader checks its session
//! each period and steps down when the check fails.

use crate::db::LockKey;
use crate::db::postgres::connect;
use postgres::Client;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often a follower tries to take the lead and the leader checks its
/// session: the longest a dead leader's turn stays unclaimed, once the
/// server has ended its session.
pub const ELECTION_EVERY: Duration = Duration::from_secs(2);

/// Starts the election thread for `url`. It ends once `leader` is dropped
/// (the scheduler holds it), closing its session.
pub fn start(url: &str, leader: &Arc<AtomicBool>) {
    let (url, leader) = (url.to_owned(), Arc::downgrade(leader));
    let spawned = std::thread::Builder::new()
        .name("ferrobase-cron-leader".into())
        .spawn(move || run(&url, &leader));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the cron election; this node never leads");
    }
}

fn run(url: &str, leader: &Weak<AtomicBool>) {
    while leader.strong_count() > 0 {
        match connect(url) {
            Ok(mut client) => hold(&mut client, leader),
            Err(e) => tracing::warn!(error = %e, "cron election cannot connect"),
        }
        set(leader, false);
        std::thread::sleep(ELECTION_EVERY);
    }
}

/// Tries for the lead, or checks the session while leading, until the
/// session fails or the scheduler is gone.
fn hold(client: &mut Client, leader: &Weak<AtomicBool>) {
    let mut leading = false;
    loop {
        let Some(flag) = leader.upgrade() else { return };
        let step = if leading {
            client.simple_query("SELECT 1").map(|_| true)
        } else {
            client
                .query_one(
                    "SELECT pg_try_advisory_lock($1)",
                    &[&(LockKey::CronLeader as i64)],
                )
                .map(|row| row.get::<_, bool>(0))
        };
        match step {
            Ok(now) => {
                if now && !leading {
                    tracing::info!("this node now runs the cron jobs");
                }
                leading = now;
                flag.store(now, Ordering::Relaxed);
            }
            Err(e) => {
                if leading {
                    tracing::warn!(error = %e, "cron leader lost its session; stepping down");
                }
                return;
            }
        }
        drop(flag);
        std::thread::sleep(ELECTION_EVERY);
    }
}

fn set(leader: &Weak<AtomicBool>, value: bool) {
    if let Some(flag) = leader.upgrade() {
        flag.store(value, Ordering::Relaxed);
    }
}
