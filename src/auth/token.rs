//! HS256 JWTs with PocketBase's claims. The signing key is the record's
//! `tokenKey` followed by the collection's secret for that token type, so
//! rotating either revokes every token signed with it.

use super::AuthError;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Claims of an `auth` token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthClaims {
    pub collection_id: String,
    pub exp: i64,
    pub id: String,
    pub refreshable: bool,
    #[serde(rename = "type")]
    pub kind: String,
}

/// The claims we need before we know which key verifies the token.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnverifiedClaims {
    pub collection_id: String,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// Longest lifetime a token is signed for, whatever a collection says
/// (ten years: impersonation allows that much; collection options are
/// validated down to PocketBase's ~3 years). Keeps `now + duration` far
/// from overflowing.
pub const MAX_TOKEN_SECS: i64 = 10 * 365 * 24 * 60 * 60;

/// The `exp` claim of a token issued now for `duration_secs`, capped at
/// [`MAX_TOKEN_SECS`]: a huge duration must neither panic nor wrap into
/// the past.
fn expiry(duration_secs: i64) -> i64 {
    crate::clock::unix_now().saturating_add(duration_secs.clamp(-MAX_TOKEN_SECS, MAX_TOKEN_SECS))
}

/// Signs an auth token valid for `duration_secs`.
pub fn issue_auth(
    collection_id: &str,
    record_id: &str,
    key: &str,
    duration_secs: i64,
) -> Result<String, AuthError> {
    issue_auth_with(collection_id, record_id, key, duration_secs, true)
}

/// Signs an auth token that `auth-refresh` will not renew (impersonation).
pub fn issue_auth_fixed(
    collection_id: &str,
    record_id: &str,
    key: &str,
    duration_secs: i64,
) -> Result<String, AuthError> {
    issue_auth_with(collection_id, record_id, key, duration_secs, false)
}

fn issue_auth_with(
    collection_id: &str,
    record_id: &str,
    key: &str,
    duration_secs: i64,
    refreshable: bool,
) -> Result<String, AuthError> {
    let claims = AuthClaims {
        collection_id: collection_id.to_owned(),
        exp: expiry(duration_secs),
        id: record_id.to_owned(),
        refreshable,
        kind: "auth".to_owned(),
    };
    sign(&claims, key)
}

/// Token types other than `auth`, with the option key holding their secret and duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Verification,
    PasswordReset,
    EmailChange,
    File,
}

impl Purpose {
    /// The JWT `type` claim.
    pub fn claim(self) -> &'static str {
        match self {
            Purpose::Verification => "verification",
            Purpose::PasswordReset => "passwordReset",
            Purpose::EmailChange => "emailChange",
            Purpose::File => "file",
        }
    }

    /// The collection option (`verificationToken`, …) with its `secret` and `duration`.
    pub fn option_key(self) -> &'static str {
        match self {
            Purpose::Verification => "verificationToken",
            Purpose::PasswordReset => "passwordResetToken",
            Purpose::EmailChange => "emailChangeToken",
            Purpose::File => "fileToken",
        }
    }
}

fn sign(claims: &impl Serialize, key: &str) -> Result<String, AuthError> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .map_err(|e| AuthError::Token(e.to_string()))
}

/// Signs a `purpose` token carrying `collectionId`, `id`, `exp`, `type` and `extra` claims.
pub fn issue_purpose(
    purpose: Purpose,
    collection_id: &str,
    record_id: &str,
    extra: serde_json::Map<String, serde_json::Value>,
    key: &str,
    duration_secs: i64,
) -> Result<String, AuthError> {
    let mut claims = extra;
    claims.insert("collectionId".into(), collection_id.into());
    claims.insert("id".into(), record_id.into());
    claims.insert("exp".into(), expiry(duration_secs).into());
    claims.insert("type".into(), purpose.claim().into());
    sign(&claims, key)
}

/// Verifies a `purpose` token (signature, expiry, type) and returns its claims.
pub fn verify_purpose(
    token: &str,
    purpose: Purpose,
    key: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp"]);
    let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
        token,
        &DecodingKey::from_secret(key.as_bytes()),
        &validation,
    )
    .map_err(|e| AuthError::Token(e.to_string()))?;
    if data.claims.get("type").and_then(|t| t.as_str()) != Some(purpose.claim()) {
        return Err(AuthError::Token("wrong token type".into()));
    }
    Ok(data.claims)
}

/// The `refreshable` claim of an (already verified) auth token.
pub fn refreshable(token: &str) -> Option<bool> {
    payload::<serde_json::Value>(token)?
        .get("refreshable")
        .and_then(serde_json::Value::as_bool)
}

/// Decodes a token's payload without checking anything.
fn payload<T: serde::de::DeserializeOwned>(token: &str) -> Option<T> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Reads the payload without checking the signature (only to find the key).
pub fn peek(token: &str) -> Option<UnverifiedClaims> {
    payload(token)
}

/// Verifies signature, algorithm and expiry of an auth token.
pub fn verify_auth(token: &str, key: &str) -> Result<AuthClaims, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp"]);
    let data = jsonwebtoken::decode::<AuthClaims>(
        token,
        &DecodingKey::from_secret(key.as_bytes()),
        &validation,
    )
    .map_err(|e| AuthError::Token(e.to_string()))?;
    if data.claims.kind != "auth" {
        return Err(AuthError::Token("not an auth token".into()));
    }
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_with_its_key() {
        let token = issue_auth("pbc_1", "abc", "key-1", 60).expect("sign");
        let peeked = peek(&token).expect("payload");
        assert_eq!(
            (
                peeked.collection_id.as_str(),
                peeked.id.as_str(),
                peeked.kind.as_str()
            ),
            ("pbc_1", "abc", "auth")
        );
        assert!(verify_auth(&token, "key-1").is_ok());
        assert!(
            verify_auth(&token, "key-2").is_err(),
            "a rotated key revokes the token"
        );
    }

    #[test]
    fn an_absurd_duration_neither_panics_nor_wraps_into_an_expired_token() {
        for duration in [i64::MAX, i64::MAX - 1, MAX_TOKEN_SECS + 1] {
            let token = issue_auth("pbc_1", "abc", "k", duration).expect("sign");
            let claims = verify_auth(&token, "k").expect("still valid, not wrapped into the past");
            assert!(
                claims.exp <= crate::clock::unix_now() + MAX_TOKEN_SECS,
                "{duration}: capped at MAX_TOKEN_SECS"
            );
            let purpose = issue_purpose(
                Purpose::Verification,
                "pbc_1",
                "abc",
                serde_json::Map::new(),
                "k",
                duration,
            )
            .expect("sign");
            assert!(
                verify_purpose(&purpose, Purpose::Verification, "k").is_ok(),
                "{duration}"
            );
        }
        let token = issue_auth("pbc_1", "abc", "k", i64::MIN).expect("sign");
        assert!(
            verify_auth(&token, "k").is_err(),
            "i64::MIN is simply expired"
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let token = issue_auth("pbc_1", "abc", "k", -5).expect("sign");
        assert!(verify_auth(&token, "k").is_err());
    }
}
