//! Password hashing with argon2id at OWASP's recommended parameters
//! (19 MiB memory, 2 iterations, 1 lane). Hashing is CPU- and memory-heavy, so
//! it runs on the blocking pool behind a semaphore: a login flood queues here
//! instead of starving every other request.

use super::AuthError;
use argon2::password_hash::{Output, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

/// Argon2 working memory, reused between hashes. Each hash needs ~19 MiB;
/// allocating that per login made glibc keep hundreds of MiB in per-thread
/// arenas after a burst of logins. With at most one buffer per hashing slot
/// in use at a time, the pool holds at most that many buffers.
static BLOCK_POOL: LazyLock<std::sync::Mutex<Vec<Vec<Block>>>> =
    LazyLock::new(|| std::sync::Mutex::new(Vec::new()));

/// Runs `f` with at least `count` argon2 blocks from the pool.
fn with_blocks<T>(count: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    let pooled = BLOCK_POOL.lock().ok().and_then(|mut pool| pool.pop());
    let mut blocks = pooled.unwrap_or_default();
    if blocks.len() < count {
        blocks.resize(count, Block::default());
    }
    let out = f(&mut blocks[..count]);
    // Only our own parameter set is pooled; odd sizes (old imported hashes) are freed.
    if count == usize::try_from(MEMORY_KIB).unwrap_or(0)
        && let Ok(mut pool) = BLOCK_POOL.lock()
    {
        pool.push(blocks);
    }
    out
}

fn hash_err(e: impl std::fmt::Display) -> AuthError {
    AuthError::Hash(e.to_string())
}

/// Hashes `plain` (blocking; prefer [`hash`] from async code).
pub fn hash_blocking(plain: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(hash_err)?;
    let argon = hasher()?;
    let params = argon.params().clone();
    let mut out = [0u8; 32];
    with_blocks(params.block_count(), |blocks| {
        argon.hash_password_into_with_memory(plain.as_bytes(), salt_bytes, &mut out, blocks)
    })
    .map_err(hash_err)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(hash_err)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(hash_err)?),
    };
    Ok(phc.to_string())
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
    let (Ok(algorithm), Ok(params), Some(expected), Some(salt)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.hash,
        parsed.salt,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    let ok = with_blocks(params.block_count(), |blocks| {
        argon
            .hash_password_into_with_memory(plain.as_bytes(), salt_bytes, &mut out, blocks)
            .is_ok()
    });
    // Output's equality is constant-time.
    ok && Output::new(&out).is_ok_and(|o| o == expected)
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
    fn hashes_from_the_standard_argon2_api_verify_too() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let standard = Argon2::default()
            .hash_password(b"s3cret-pass", &salt)
            .expect("hash")
            .to_string();
        assert!(verify_blocking("s3cret-pass", &standard));
        assert!(!verify_blocking("other", &standard));
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
