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

/// Signs an auth token valid for `duration_secs`.
pub fn issue_auth(
    collection_id: &str,
    record_id: &str,
    key: &str,
    duration_secs: i64,
) -> Result<String, AuthError> {
    let claims = AuthClaims {
        collection_id: collection_id.to_owned(),
        exp: crate::clock::unix_now() + duration_secs,
        id: record_id.to_owned(),
        refreshable: true,
        kind: "auth".to_owned(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .map_err(|e| AuthError::Token(e.to_string()))
}

/// Reads the payload without checking the signature (only to find the key).
pub fn peek(token: &str) -> Option<UnverifiedClaims> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
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
    fn an_expired_token_is_refused() {
        let token = issue_auth("pbc_1", "abc", "k", -5).expect("sign");
        assert!(verify_auth(&token, "k").is_err());
    }
}
