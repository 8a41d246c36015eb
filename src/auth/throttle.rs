//! Failed-login throttling per client IP: after [`MAX_FAILED_LOGINS`] wrong
//! passwords within [`FAILED_LOGIN_WINDOW`], further attempts from that IP
//! get 429 until the window passes. Independent of the (opt-in) general
//! rate limits in the settings, and always on. One per server instance.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong passwords allowed per IP and window.
pub const MAX_FAILED_LOGINS: u32 = 10;
/// Length of the failure-counting window.
pub const FAILED_LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Tracked IPs before stale entries are swept.
const MAX_TRACKED_IPS: usize = 100_000;

/// Failure counts per IP: (failures, window start).
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginThrottle {
    /// Whether `ip` may try another login now.
    pub fn allowed(&self, ip: IpAddr) -> bool {
        let Ok(map) = self.failures.lock() else {
            return true;
        };
        match map.get(&ip) {
            Some((count, since)) => {
                *count < MAX_FAILED_LOGINS || since.elapsed() >= FAILED_LOGIN_WINDOW
            }
            None => true,
        }
    }

    /// Records a failed login from `ip`.
    pub fn record_failure(&self, ip: IpAddr) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() >= MAX_TRACKED_IPS {
            map.retain(|_, (_, since)| since.elapsed() < FAILED_LOGIN_WINDOW);
        }
        let entry = map.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILED_LOGIN_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    /// Forgets the failures of `ip` after a successful login.
    pub fn record_success(&self, ip: IpAddr) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_failure_in_a_window_is_throttled() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        for _ in 0..MAX_FAILED_LOGINS {
            assert!(throttle.allowed(ip));
            throttle.record_failure(ip);
        }
        assert!(
            !throttle.allowed(ip),
            "after {MAX_FAILED_LOGINS} failures the next attempt waits"
        );
        throttle.record_success(ip);
        assert!(throttle.allowed(ip));
    }
}
