//! Guessing limits for logins, always on and independent of the (opt-in)
//! general rate limits in the settings. One per server instance, in memory.
//!
//! Password logins count per client *and* per (client, collection,
//! identity): the client limit bounds password spraying, the identity limit
//! bounds guessing at one account, and a success clears only the identity
//! that succeeded, so logging into your own account between guesses at
//! someone else's resets nothing. OTP logins count per auth record.
//!
//! An attempt is *reserved* (counted) before the secret is checked, under
//! one lock, so N parallel requests cannot all pass the check before the
//! first failure lands: at most the limit ever reach verification. A
//! reservation that ends without a verdict (bad input, a disabled method, a
//! dropped request) is given back; a success gives back its client slot.
//! IPv6 clients are counted per /64, which one subscriber usually holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Wrong passwords allowed per (client, collection, identity) and window.
pub const MAX_FAILED_LOGINS_PER_IDENTITY: u32 = 10;
/// Wrong passwords allowed per client (any identity) and window.
pub const MAX_FAILED_LOGINS_PER_CLIENT: u32 = 20;
/// Length of the password failure-counting window.
pub const FAILED_LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Code checks allowed per auth record and window (as PocketBase: 5 per 180 s).
pub const MAX_OTP_ATTEMPTS: u32 = 5;
/// Length of the OTP attempt window.
pub const OTP_ATTEMPT_WINDOW: Duration = Duration::from_secs(180);
/// Tracked keys before stale entries are swept (and, past that, the oldest evicted).
const MAX_TRACKED_KEYS: usize = 100_000;
/// Longest identity kept in a key; longer ones are cut (they cannot log in anyway).
const MAX_IDENTITY_CHARS: usize = 255;

/// What is being counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// All password attempts of one client.
    Client(IpAddr),
    /// Password attempts of one client at one identity of one collection.
    Identity(IpAddr, String, String),
    /// Code checks at the OTPs of one auth record (collection id, record id).
    Otp(String, String),
}

impl Key {
    fn limit(&self) -> u32 {
        match self {
            Key::Client(_) => MAX_FAILED_LOGINS_PER_CLIENT,
            Key::Identity(..) => MAX_FAILED_LOGINS_PER_IDENTITY,
            Key::Otp(..) => MAX_OTP_ATTEMPTS,
        }
    }

    fn window(&self) -> Duration {
        match self {
            Key::Client(_) | Key::Identity(..) => FAILED_LOGIN_WINDOW,
            Key::Otp(..) => OTP_ATTEMPT_WINDOW,
        }
    }
}

/// Attempts counted in the window that started at `since`.
#[derive(Debug, Clone, Copy)]
struct Window {
    count: u32,
    since: Instant,
}

/// The counters of one server.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    counts: Mutex<HashMap<Key, Window>>,
}

/// The counting key of a client address: IPv4 as is (also when mapped into
/// IPv6), IPv6 by its /64 prefix.
fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

/// Identities differing only in case or surrounding space count together.
fn identity_of(identity: &str) -> String {
    identity
        .trim()
        .chars()
        .take(MAX_IDENTITY_CHARS)
        .flat_map(char::to_lowercase)
        .collect()
}

impl LoginThrottle {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Window>> {
        // A panic while holding this lock cannot leave a count half-written.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves one slot on every key, or none when any is used up.
    fn reserve(&self, keys: &[Key], now: Instant) -> bool {
        let mut map = self.lock();
        let used_up = keys.iter().any(|key| {
            map.get(key).is_some_and(|w| {
                now.duration_since(w.since) < key.window() && w.count >= key.limit()
            })
        });
        if used_up {
            return false;
        }
        for key in keys {
            make_room(&mut map, now);
            let window = map.entry(key.clone()).or_insert(Window {
                count: 0,
                since: now,
            });
            if now.duration_since(window.since) >= key.window() {
                *window = Window {
                    count: 0,
                    since: now,
                };
            }
            window.count += 1;
        }
        true
    }

    /// Returns one reserved slot of `key`.
    fn give_back(&self, key: &Key) {
        let mut map = self.lock();
        if let Some(window) = map.get_mut(key) {
            window.count = window.count.saturating_sub(1);
        }
    }

    fn clear(&self, key: &Key) {
        self.lock().remove(key);
    }

    /// Whether `key` has no slot left in its current window.
    fn used_up(&self, key: &Key, now: Instant) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|w| now.duration_since(w.since) < key.window() && w.count >= key.limit())
    }

    /// Reserves a password attempt at `identity` of `collection_id` from
    /// `ip`; `None` when that client or that identity is throttled.
    pub fn begin_password(
        &self,
        ip: IpAddr,
        collection_id: &str,
        identity: &str,
    ) -> Option<PasswordAttempt<'_>> {
        let client = client_of(ip);
        let keys = [
            Key::Client(client),
            Key::Identity(client, collection_id.to_owned(), identity_of(identity)),
        ];
        // Built only once reserved: dropping an unreserved one would give back
        // slots it never took.
        if !self.reserve(&keys, Instant::now()) {
            return None;
        }
        Some(PasswordAttempt {
            throttle: self,
            keys,
            settled: false,
        })
    }

    /// Reserves a code check at the OTPs of record `record_id`; `None` when
    /// the record's attempts are used up for this window.
    pub fn begin_otp(&self, collection_id: &str, record_id: &str) -> Option<OtpAttempt<'_>> {
        let key = Key::Otp(collection_id.to_owned(), record_id.to_owned());
        if !self.reserve(std::slice::from_ref(&key), Instant::now()) {
            return None;
        }
        Some(OtpAttempt {
            throttle: self,
            key,
            settled: false,
        })
    }
}

/// Drops expired windows when the map is full, then the oldest if still full.
fn make_room(map: &mut HashMap<Key, Window>, now: Instant) {
    if map.len() < MAX_TRACKED_KEYS {
        return;
    }
    map.retain(|key, w| now.duration_since(w.since) < key.window());
    if map.len() >= MAX_TRACKED_KEYS {
        let oldest = map
            .iter()
            .min_by_key(|(_, w)| w.since)
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            map.remove(&key);
        }
    }
}

/// A reserved password attempt. Dropped without a verdict, it is given back.
#[derive(Debug)]
pub struct PasswordAttempt<'a> {
    throttle: &'a LoginThrottle,
    /// [client, identity]
    keys: [Key; 2],
    settled: bool,
}

impl PasswordAttempt<'_> {
    /// The password was wrong: the attempt stays counted on both keys.
    pub fn failed(mut self) {
        self.settled = true;
    }

    /// The password was right: the client slot is given back and this
    /// identity's failures are forgotten (other identities' are not).
    pub fn succeeded(mut self) {
        self.settled = true;
        let [client, identity] = &self.keys;
        self.throttle.give_back(client);
        self.throttle.clear(identity);
    }
}

impl Drop for PasswordAttempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            for key in &self.keys {
                self.throttle.give_back(key);
            }
        }
    }
}

/// A reserved OTP code check. Dropped without a verdict, it is given back.
#[derive(Debug)]
pub struct OtpAttempt<'a> {
    throttle: &'a LoginThrottle,
    key: Key,
    settled: bool,
}

impl OtpAttempt<'_> {
    /// The code was wrong: the attempt stays counted. Returns whether the
    /// record has no attempt left (its codes should be burnt).
    pub fn failed(mut self) -> bool {
        self.settled = true;
        self.throttle.used_up(&self.key, Instant::now())
    }

    /// The code was right: the record's count starts over.
    pub fn succeeded(mut self) {
        self.settled = true;
        self.throttle.clear(&self.key);
    }
}

impl Drop for OtpAttempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle.give_back(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_eleventh_failure_at_one_identity_is_throttled_even_with_the_right_password() {
        let throttle = LoginThrottle::default();
        for n in 0..MAX_FAILED_LOGINS_PER_IDENTITY {
            let attempt = throttle.begin_password(ip("203.0.113.7"), "users", "victim");
            attempt
                .unwrap_or_else(|| panic!("attempt {n} is allowed"))
                .failed();
        }

        let next = throttle.begin_password(ip("203.0.113.7"), "users", "victim");

        assert!(
            next.is_none(),
            "after {MAX_FAILED_LOGINS_PER_IDENTITY} failures nothing reaches verification"
        );
    }

    #[test]
    fn reservations_count_before_any_verdict_so_parallel_guesses_cannot_pass_together() {
        let throttle = LoginThrottle::default();

        let in_flight: Vec<_> = (0..3 * MAX_FAILED_LOGINS_PER_IDENTITY)
            .filter_map(|_| throttle.begin_password(ip("203.0.113.7"), "users", "victim"))
            .collect();

        assert_eq!(in_flight.len(), MAX_FAILED_LOGINS_PER_IDENTITY as usize);
    }

    #[test]
    fn a_success_clears_only_its_own_identity() {
        let throttle = LoginThrottle::default();
        let attacker = ip("203.0.113.7");
        for _ in 0..MAX_FAILED_LOGINS_PER_IDENTITY {
            if let Some(a) = throttle.begin_password(attacker, "users", "victim") {
                a.failed();
            }
        }

        let own = throttle.begin_password(attacker, "users", "attacker");
        own.expect("the attacker's own account is not throttled")
            .succeeded();

        assert!(
            throttle
                .begin_password(attacker, "users", "victim")
                .is_none(),
            "the victim's counter survives the attacker's success"
        );
    }

    #[test]
    fn spraying_many_identities_hits_the_client_limit() {
        let throttle = LoginThrottle::default();
        for n in 0..MAX_FAILED_LOGINS_PER_CLIENT {
            throttle
                .begin_password(ip("203.0.113.7"), "users", &format!("user{n}"))
                .unwrap_or_else(|| panic!("identity {n} is allowed"))
                .failed();
        }

        let next = throttle.begin_password(ip("203.0.113.7"), "users", "fresh");
        let elsewhere = throttle.begin_password(ip("198.51.100.1"), "users", "fresh");

        assert!(next.is_none(), "the client used up its failures");
        assert!(elsewhere.is_some(), "another client is unaffected");
    }

    #[test]
    fn keys_normalise_identity_case_and_ipv6_within_a_64() {
        let throttle = LoginThrottle::default();
        for (n, (client, identity)) in [
            ("2001:db8:1:2::1", "Victim@Example.com"),
            ("2001:db8:1:2:ffff::9", " victim@example.com"),
        ]
        .iter()
        .cycle()
        .take(MAX_FAILED_LOGINS_PER_IDENTITY as usize)
        .enumerate()
        {
            throttle
                .begin_password(ip(client), "users", identity)
                .unwrap_or_else(|| panic!("attempt {n} is allowed"))
                .failed();
        }

        for (client, why) in [
            ("2001:db8:1:2::77", "same /64"),
            (
                "::ffff:203.0.113.7",
                "unrelated mapped v4 is another client",
            ),
        ] {
            let blocked = throttle
                .begin_password(ip(client), "users", "VICTIM@example.com")
                .is_none();
            assert_eq!(blocked, why == "same /64", "{client} ({why})");
        }
    }

    #[test]
    fn an_attempt_without_a_verdict_is_given_back() {
        let throttle = LoginThrottle::default();
        for _ in 0..5 * MAX_FAILED_LOGINS_PER_IDENTITY {
            let attempt = throttle.begin_password(ip("203.0.113.7"), "users", "victim");
            drop(attempt.expect("given-back attempts never pile up"));
        }
    }

    #[test]
    fn otp_checks_are_limited_per_record_and_the_last_failure_says_so() {
        let throttle = LoginThrottle::default();
        let mut exhausted = Vec::new();
        for n in 0..MAX_OTP_ATTEMPTS {
            let attempt = throttle.begin_otp("users", "rec1");
            exhausted.push(
                attempt
                    .unwrap_or_else(|| panic!("check {n} is allowed"))
                    .failed(),
            );
        }

        assert_eq!(exhausted.iter().filter(|e| **e).count(), 1, "{exhausted:?}");
        assert_eq!(exhausted.last(), Some(&true));
        assert!(throttle.begin_otp("users", "rec1").is_none());
        assert!(
            throttle.begin_otp("users", "rec2").is_some(),
            "other records are unaffected"
        );
    }

    #[test]
    fn windows_expire() {
        let throttle = LoginThrottle::default();
        let key = Key::Otp("users".into(), "rec1".into());
        let start = Instant::now();
        for _ in 0..MAX_OTP_ATTEMPTS {
            assert!(throttle.reserve(std::slice::from_ref(&key), start));
        }
        assert!(!throttle.reserve(std::slice::from_ref(&key), start));

        let later = start + OTP_ATTEMPT_WINDOW;

        assert!(throttle.reserve(std::slice::from_ref(&key), later));
    }
}
