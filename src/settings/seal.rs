//! Settings encryption at rest (`serve --encryptionEnv VAR`), compatible
//! with PocketBase: the whole settings JSON is sealed with AES-256-GCM under
//! the 32-byte key held in the environment variable VAR, stored as
//! base64(nonce ‖ ciphertext ‖ tag). Knows nothing about the database; the
//! settings module decides when to seal and open.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// AES-256 key length; PocketBase takes the variable's bytes as the key.
pub const KEY_BYTES: usize = 32;
/// GCM's standard nonce length, stored in front of the ciphertext.
const NONCE_BYTES: usize = 12;

/// Why a key could not be made or a stored value not opened.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SealError {
    #[error("the encryption key variable {0} is not set or empty")]
    MissingKey(String),
    #[error("the encryption key in {0} must be exactly 32 bytes long (it has {1})")]
    KeyLength(String, usize),
    #[error(
        "the stored settings are encrypted; start with --encryptionEnv naming the variable that holds their key"
    )]
    NoKeyForSealed,
    #[error(
        "the stored settings cannot be decrypted with the key in {0} (wrong key or damaged data)"
    )]
    WrongKey(String),
    #[error("could not encrypt the settings")]
    Seal,
}

/// The key (or none) the settings are sealed with. Debug never shows the key.
#[derive(Clone, Default)]
pub struct Seal(Option<(String, [u8; KEY_BYTES])>);

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some((var, _)) => write!(f, "Seal(key from {var})"),
            None => f.write_str("Seal(none)"),
        }
    }
}

impl Seal {
    /// No encryption: settings are stored as plain JSON.
    pub fn none() -> Self {
        Self(None)
    }

    /// The key from the environment variable `var` (`""` = no encryption).
    /// Unlike PocketBase, which stores plain JSON when the variable is
    /// empty, a named but unset or mis-sized key is an error: the operator
    /// asked for encryption and must not silently get none.
    pub fn from_env(var: &str) -> Result<Self, SealError> {
        if var.is_empty() {
            return Ok(Self::none());
        }
        let value = std::env::var(var).unwrap_or_default();
        Self::from_key(var, value.as_bytes())
    }

    /// A seal keyed with `key`, named `var` in messages.
    pub fn from_key(var: &str, key: &[u8]) -> Result<Self, SealError> {
        if key.is_empty() {
            return Err(SealError::MissingKey(var.to_owned()));
        }
        let key: [u8; KEY_BYTES] = key
            .try_into()
            .map_err(|_| SealError::KeyLength(var.to_owned(), key.len()))?;
        Ok(Self(Some((var.to_owned(), key))))
    }

    /// Whether settings are stored encrypted.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The text to store for `json`: itself, or its sealed form.
    pub fn seal(&self, json: &str) -> Result<String, SealError> {
        let Some((_, key)) = &self.0 else {
            return Ok(json.to_owned());
        };
        let cipher = Aes256Gcm::new(key.into());
        let mut nonce = [0u8; NONCE_BYTES];
        rand::fill(&mut nonce);
        let sealed = cipher
            .encrypt(&Nonce::from(nonce), json.as_bytes())
            .map_err(|_| SealError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    /// The settings JSON from stored text. Plain JSON is read as it is
    /// (a database written before encryption was turned on; it is sealed on
    /// the next save); anything else must open with the key.
    pub fn open(&self, stored: &str) -> Result<Opened, SealError> {
        if serde_json::from_str::<serde_json::Value>(stored).is_ok_and(|v| v.is_object()) {
            return Ok(Opened::Plain(stored.to_owned()));
        }
        let Some((var, key)) = &self.0 else {
            return Err(SealError::NoKeyForSealed);
        };
        let wrong = || SealError::WrongKey(var.clone());
        let raw = STANDARD.decode(stored.trim()).map_err(|_| wrong())?;
        if raw.len() < NONCE_BYTES {
            return Err(wrong());
        }
        let (nonce, sealed) = raw.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| wrong())?;
        let plain = Aes256Gcm::new(key.into())
            .decrypt(&Nonce::from(nonce), sealed)
            .map_err(|_| wrong())?;
        String::from_utf8(plain)
            .map(Opened::Sealed)
            .map_err(|_| wrong())
    }
}

/// Settings JSON read back, and whether it had been stored sealed.
#[derive(Debug, PartialEq)]
pub enum Opened {
    Plain(String),
    Sealed(String),
}

impl Opened {
    /// The JSON text.
    pub fn json(&self) -> &str {
        match self {
            Opened::Plain(s) | Opened::Sealed(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn sealed_settings_open_with_the_same_key_only() {
        let seal = Seal::from_key("K", KEY).expect("key");
        let other = Seal::from_key("K", b"ffffffffffffffffffffffffffffffff").expect("key");
        let json = r#"{"smtp":{"password":"hunter2"}}"#;

        let stored = seal.seal(json).expect("seals");

        assert!(!stored.contains("hunter2"), "no plain text: {stored}");
        assert_ne!(
            stored,
            seal.seal(json).expect("seals"),
            "fresh nonce each time"
        );
        assert_eq!(seal.open(&stored), Ok(Opened::Sealed(json.to_owned())));
        assert_eq!(other.open(&stored), Err(SealError::WrongKey("K".into())));
        assert_eq!(Seal::none().open(&stored), Err(SealError::NoKeyForSealed));
    }

    #[test]
    fn plain_settings_are_read_with_or_without_a_key() {
        let json = r#"{"meta":{}}"#;
        for seal in [Seal::none(), Seal::from_key("K", KEY).expect("key")] {
            assert_eq!(seal.open(json), Ok(Opened::Plain(json.into())), "{seal:?}");
        }
    }

    #[test]
    fn keys_must_be_32_bytes_and_present() {
        for (key, expected, why) in [
            (&b""[..], Err(SealError::MissingKey("K".into())), "empty"),
            (
                &b"short"[..],
                Err(SealError::KeyLength("K".into(), 5)),
                "short",
            ),
            (
                &[b'a'; 33][..],
                Err(SealError::KeyLength("K".into(), 33)),
                "long",
            ),
        ] {
            assert_eq!(Seal::from_key("K", key).map(|_| ()), expected, "{why}");
        }
    }

    #[test]
    fn damaged_ciphertext_is_refused_not_misread() {
        let seal = Seal::from_key("K", KEY).expect("key");
        for stored in [
            "",
            "not base64!",
            "AAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(
                seal.open(stored),
                Err(SealError::WrongKey("K".into())),
                "{stored:?}"
            );
        }
    }
}
