//! Apple's client secret: a short-lived ES256 JWT signed with the app's
//! "Sign in with Apple" key (`POST /api/settings/apple/generate-client-secret`,
//! as PocketBase offers it). The private key is used once and not stored.

use crate::validation::{FieldError, ValidationErrors};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

/// Longest validity Apple accepts for a client secret, in seconds (~6 months).
pub const MAX_APPLE_SECRET_SECS: i64 = 15_777_000;
const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// The submitted form.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AppleSecretForm {
    pub client_id: String,
    pub team_id: String,
    pub key_id: String,
    pub private_key: String,
    pub duration: i64,
}

/// Why no secret was made.
#[derive(Debug)]
pub enum AppleSecretError {
    /// Field errors, as PocketBase reports them.
    Invalid(ValidationErrors),
    /// The key is not a PKCS#8 P-256 key.
    Key,
}

fn exactly_ten(value: &str) -> Option<FieldError> {
    if value.is_empty() {
        Some(FieldError::required())
    } else if value.chars().count() != 10 {
        Some(
            FieldError::new(
                "validation_length_invalid",
                "The length must be exactly 10.",
            )
            .with_params(json!({"min": 10, "max": 10})),
        )
    } else {
        None
    }
}

fn validate(form: &AppleSecretForm) -> ValidationErrors {
    let mut errors = ValidationErrors::new();
    if form.client_id.is_empty() {
        errors.add("clientId", FieldError::required());
    }
    if let Some(e) = exactly_ten(&form.team_id) {
        errors.add("teamId", e);
    }
    if let Some(e) = exactly_ten(&form.key_id) {
        errors.add("keyId", e);
    }
    let key = form.private_key.trim();
    if key.is_empty() {
        errors.add("privateKey", FieldError::required());
    } else if !(key.contains(PEM_BEGIN) && key.contains(PEM_END)) {
        errors.add(
            "privateKey",
            FieldError::new("validation_match_invalid", "Must be in a valid format."),
        );
    }
    if form.duration == 0 {
        errors.add("duration", FieldError::required());
    } else if form.duration < 1 {
        errors.add(
            "duration",
            FieldError::new(
                "validation_min_greater_equal_than_required",
                "Must be no less than 1.",
            )
            .with_params(json!({"threshold": 1})),
        );
    } else if form.duration > MAX_APPLE_SECRET_SECS {
        errors.add(
            "duration",
            FieldError::new(
                "validation_max_less_equal_than_required",
                format!("Must be no greater than {MAX_APPLE_SECRET_SECS}."),
            )
            .with_params(json!({"threshold": MAX_APPLE_SECRET_SECS})),
        );
    }
    errors
}

/// The DER bytes between the PEM markers.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find(PEM_BEGIN)? + PEM_BEGIN.len();
    let end = pem[start..].find(PEM_END)? + start;
    let body: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// Validates the form and signs the client secret.
pub fn client_secret(form: &AppleSecretForm) -> Result<String, AppleSecretError> {
    let errors = validate(form);
    if !errors.is_empty() {
        return Err(AppleSecretError::Invalid(errors));
    }
    let der = pem_der(&form.private_key).ok_or(AppleSecretError::Key)?;
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "aud": ["https://appleid.apple.com"],
        "sub": form.client_id,
        "iss": form.team_id,
        "iat": now,
        "exp": now + form.duration,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(form.key_id.clone());
    let key = jsonwebtoken::EncodingKey::from_ec_der(&der);
    jsonwebtoken::encode(&header, &claims, &key).map_err(|_| AppleSecretError::Key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A P-256 key made for these tests only.
    const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgC/TL7bFGxWVf+J7U
dZZ0CZ3RD8Gop3LuaCM+dZpawUahRANCAATCLxdwLbvN9JyAWtn87QN4W6khow5l
fJCf8Am65D7echRCtViI6I1SOScJF9ZZlHVRWA/8RAdktAz66MWzjD14
-----END PRIVATE KEY-----";

    fn form() -> AppleSecretForm {
        AppleSecretForm {
            client_id: "com.example.app".into(),
            team_id: "ABCDE12345".into(),
            key_id: "KEY1234567".into(),
            private_key: TEST_KEY.into(),
            duration: 3600,
        }
    }

    #[test]
    fn the_secret_is_an_es256_jwt_for_apple_signed_with_the_key() {
        let secret = client_secret(&form()).expect("a secret");
        let header = jsonwebtoken::decode_header(&secret).expect("a JWT");
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("KEY1234567"));
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(json!({"kty": "EC", "crv": "P-256",
            "x": "wi8XcC27zfScgFrZ_O0DeFupIaMOZXyQn_AJuuQ-3nI",
            "y": "FEK1WIjojVI5JwkX1lmUdVFYD_xEB2S0DProxbOMPXg"}))
            .expect("jwk");
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("key");
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        v.set_audience(&["https://appleid.apple.com"]);
        v.set_issuer(&["ABCDE12345"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(&secret, &key, &v)
            .expect("verifies")
            .claims;
        assert_eq!(claims["sub"], "com.example.app");
        assert_eq!(
            claims["exp"]
                .as_i64()
                .zip(claims["iat"].as_i64())
                .map(|(e, i)| e - i),
            Some(3600)
        );
    }

    #[test]
    fn bad_forms_are_refused_field_by_field_and_bad_keys_do_not_panic() {
        let invalid = |f: AppleSecretForm| match client_secret(&f) {
            Err(AppleSecretError::Invalid(e)) => e.to_json(),
            other => panic!("expected field errors, got {other:?}"),
        };
        let e = invalid(AppleSecretForm::default());
        for key in ["clientId", "teamId", "keyId", "privateKey", "duration"] {
            assert_eq!(e[key]["code"], "validation_required", "{key}: {e}");
        }
        let e = invalid(AppleSecretForm {
            team_id: "short".into(),
            duration: MAX_APPLE_SECRET_SECS + 1,
            ..form()
        });
        assert_eq!(e["teamId"]["code"], "validation_length_invalid");
        assert_eq!(
            e["duration"]["code"],
            "validation_max_less_equal_than_required"
        );
        let e = invalid(AppleSecretForm {
            private_key: "not a key".into(),
            duration: -5,
            ..form()
        });
        assert_eq!(e["privateKey"]["code"], "validation_match_invalid");
        assert_eq!(
            e["duration"]["code"],
            "validation_min_greater_equal_than_required"
        );
        for key in [
            format!("{PEM_BEGIN}\n!!!not base64!!!\n{PEM_END}"),
            format!("{PEM_BEGIN}\nAAAA\n{PEM_END}"),
            format!("{PEM_END}\n{PEM_BEGIN}"),
        ] {
            let got = client_secret(&AppleSecretForm {
                private_key: key.clone(),
                ..form()
            });
            assert!(
                matches!(got, Err(AppleSecretError::Key)),
                "{key:?}: {got:?}"
            );
        }
    }
}
