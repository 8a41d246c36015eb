//! Password hashing with argon2id at OWASP's recommended parameters
//! (19 MiB memory, 2 iterations, 1 lane). Hashing is CPU- and memory-heavy, so
//! it runs on the blocking pool behind a semaphore: a login flood queues here
//! instead of starving every other request.

use super::AuthError;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;

/// OWASP: argon2id, m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

/// A real argon2id hash of a random secret, verified against when no account
/// matched, so a failed login takes as long whether or not the account exists.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking(&crate::schema::autogen::record_id()).unwrap_or_default());

/// The dummy hash (computed once, on first use).
pub fn dummy_hash() -> &'static str {
    &DUMMY_HASH
}

/// Hashes running at once; each holds ~19 MiB and one core.
static HASHING_SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    Arc::new(Semaphore::new(cores))
});

fn hasher() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None)
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `plain` (blocking; prefer [`hash`] from async code).
pub fn hash_blocking(plain: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()?
        .hash_password(plain.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether a stored hash is a bcrypt hash (imported from PocketBase) that
/// should be replaced by an argon2id hash after the next successful login.
pub fn needs_rehash(stored: &str) -> bool {
    stored.starts_with("$2")
}

/// Checks `plain` against a stored hash (blocking): argon2 PHC strings, and
/// bcrypt (`$2a$`/`$2b$`/`$2y$`) as PocketBase stores them. Unknown formats never match.
pub fn verify_blocking(plain: &str, stored: &str) -> bool {
    if needs_rehash(stored) {
        return bcrypt::verify(plain, stored).unwrap_or(false);
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(plain.as_bytes(), &parsed)
        .is_ok()
}

/// Hashes on the blocking pool, bounded by the hashing semaphore.
pub async fn hash(plain: String) -> Result<String, AuthError> {
    let _slot = HASHING_SLOTS
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    tokio::task::spawn_blocking(move || hash_blocking(&plain))
        .await
        .map_err(|e| AuthError::Hash(e.to_string()))?
}

/// Verifies on the blocking pool, bounded by the hashing semaphore.
pub async fn verify(plain: String, stored: String) -> bool {
    let Ok(_slot) = HASHING_SLOTS.clone().acquire_owned().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || verify_blocking(&plain, &stored))
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pocketbase_bcrypt_hashes_verify_and_ask_for_a_rehash() {
        let stored = bcrypt::hash("Passw0rd!123", 4).expect("bcrypt");
        assert!(needs_rehash(&stored));
        assert!(verify_blocking("Passw0rd!123", &stored));
        assert!(!verify_blocking("wrong", &stored));
        assert!(!needs_rehash(&hash_blocking("x").expect("argon2")));
    }

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let stored = hash_blocking("Passw0rd!123").expect("hash");
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify_blocking("Passw0rd!123", &stored));
        assert!(!verify_blocking("passw0rd!123", &stored));
        assert!(!verify_blocking("Passw0rd!123", "not a hash"));
    }
}
