//! The first-run install token: a one-time secret printed by `serve` while no
//! superuser exists, which lets whoever reads the server's output create the
//! first superuser from the admin panel. It lives only in memory (a restart
//! prints a new one), expires after [`INSTALL_TOKEN_TTL`], and is spent by the
//! first request that presents it with valid input.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a printed install link stays usable.
pub const INSTALL_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);
/// Length of the token (alphanumeric; ~190 bits).
const TOKEN_CHARS: usize = 32;

/// At most one live install token.
#[derive(Default)]
pub struct InstallTokens {
    current: Mutex<Option<(String, Instant)>>,
}

impl InstallTokens {
    /// Creates a new token, replacing any previous one.
    pub fn issue(&self) -> String {
        let token = crate::schema::autogen::random_string(
            crate::schema::autogen::ALPHANUMERIC,
            TOKEN_CHARS,
        );
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        *current = Some((token.clone(), Instant::now() + INSTALL_TOKEN_TTL));
        token
    }

    /// Whether `token` is the live, unexpired token (does not spend it).
    pub fn is_valid(&self, token: &str) -> bool {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        matches!(&*current, Some((t, until)) if Instant::now() < *until && same(t, token))
    }

    /// Spends `token`: true once for the live token, false afterwards.
    pub fn take(&self, token: &str) -> bool {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let ok = matches!(&*current, Some((t, until)) if Instant::now() < *until && same(t, token));
        if ok {
            *current = None;
        }
        ok
    }

    /// Puts a spent token back (the install failed for a reason that was not the caller's).
    pub fn restore(&self, token: &str) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.is_none() {
            *current = Some((token.to_owned(), Instant::now() + INSTALL_TOKEN_TTL));
        }
    }

    /// Forgets the token (a superuser now exists).
    pub fn revoke(&self) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Compares without stopping at the first differing byte.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_spent_by_its_first_use() {
        let tokens = InstallTokens::default();
        let token = tokens.issue();

        assert!(tokens.is_valid(&token));
        assert!(!tokens.take("wrong"), "a wrong token is refused");
        assert!(tokens.take(&token), "first use succeeds");
        assert!(!tokens.take(&token), "second use fails");
        assert!(!tokens.is_valid(&token));
    }

    #[test]
    fn a_new_token_replaces_the_old_one() {
        let tokens = InstallTokens::default();
        let old = tokens.issue();
        let new = tokens.issue();

        assert!(!tokens.is_valid(&old));
        assert!(tokens.is_valid(&new));
    }
}
