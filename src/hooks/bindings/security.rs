//! The host side of `$security`: random strings, hashes and HMACs (hex, as
//! PocketBase's), a constant-time comparison, HS256 JWTs and AES-256-GCM
//! encryption (base64 of nonce + sealed text, PocketBase's format). Only
//! HS256 tokens are accepted by `parseJWT`: `alg: none` or any other
//! algorithm, a wrong secret and an expired token are all refused.

use crate::hooks::HookError;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::Rng;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

/// PocketBase's default alphabet of random strings.
const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Longest random string one call makes.
const MAX_RANDOM_CHARS: usize = 64 * 1024;
/// Length of an AES-256 key.
const KEY_BYTES: usize = 32;
/// Length of the AES-GCM nonce in front of the sealed text.
const NONCE_BYTES: usize = 12;

#[derive(Deserialize)]
struct RandomArgs {
    n: f64,
    #[serde(default)]
    alphabet: Option<String>,
}

#[derive(Deserialize)]
struct TextArgs {
    text: String,
    #[serde(default)]
    secret: String,
}

#[derive(Deserialize)]
struct JwtArgs {
    #[serde(default)]
    payload: Map<String, Value>,
    #[serde(default)]
    token: String,
    secret: String,
    #[serde(default)]
    duration: f64,
}

fn parse<T: for<'de> Deserialize<'de>>(args: Value) -> Result<T, HookError> {
    serde_json::from_value(args)
        .map_err(|e| HookError::bad_request(format!("Invalid arguments: {e}")))
}

/// Runs `$security.<op>`; `None` for an op that is not one of them.
pub(super) fn run(op: &str, args: Value) -> Option<Result<Value, HookError>> {
    let out = match op {
        "randomString" | "pseudorandomString" => parse(args).and_then(random),
        "md5" => parse::<TextArgs>(args).map(|a| json!(hex(&md5(a.text.as_bytes())))),
        "sha256" => parse::<TextArgs>(args).map(|a| json!(hex(&Sha256::digest(a.text)))),
        "sha512" => parse::<TextArgs>(args).map(|a| json!(hex(&Sha512::digest(a.text)))),
        "hs256" => parse::<TextArgs>(args)
            .map(|a| json!(hex(&hmac::<Sha256>(a.secret.as_bytes(), a.text.as_bytes())))),
        "hs512" => parse::<TextArgs>(args)
            .map(|a| json!(hex(&hmac::<Sha512>(a.secret.as_bytes(), a.text.as_bytes())))),
        "equal" => {
            parse::<TextArgs>(args).map(|a| json!(equal(a.text.as_bytes(), a.secret.as_bytes())))
        }
        "createJWT" => parse(args).and_then(create_jwt),
        "parseJWT" => parse(args).and_then(parse_jwt),
        "parseUnverifiedJWT" => parse(args).and_then(parse_unverified_jwt),
        "randomStringByRegex" => parse::<PatternArgs>(args)
            .and_then(|a| super::regex_gen::generate(&a.pattern))
            .map(Value::String),
        "encrypt" => parse::<TextArgs>(args).and_then(|a| encrypt(&a.text, &a.secret)),
        "decrypt" => parse::<TextArgs>(args).and_then(|a| decrypt(&a.text, &a.secret)),
        _ => return None,
    };
    Some(out)
}

fn random(args: RandomArgs) -> Result<Value, HookError> {
    let n = if args.n.is_finite() && args.n > 0.0 {
        (args.n as usize).min(MAX_RANDOM_CHARS)
    } else {
        0
    };
    let alphabet: Vec<char> = args
        .alphabet
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| ALPHABET.to_owned())
        .chars()
        .collect();
    // The OS-seeded CSPRNG for both (PocketBase's pseudorandom variant only
    // differs in being allowed to be weaker).
    let mut rng = rand::rng();
    let out: String = (0..n)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())])
        .collect();
    Ok(json!(out))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares in time that depends only on the lengths.
fn equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC (RFC 2104) over a SHA-2 digest.
fn hmac<D: Digest + sha2::digest::core_api::BlockSizeUser>(key: &[u8], message: &[u8]) -> Vec<u8> {
    let block = D::block_size();
    let mut k = if key.len() > block {
        D::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(block, 0);
    let inner_key: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let outer_key: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = D::new()
        .chain_update(&inner_key)
        .chain_update(message)
        .finalize();
    D::new()
        .chain_update(&outer_key)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// MD5 (RFC 1321), for `$security.md5` only (not for anything secret).
fn md5(input: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut msg = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    let mut h: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    for chunk in msg.chunks_exact(64) {
        let m: Vec<u32> = chunk
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = h;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        h = [
            h[0].wrapping_add(a),
            h[1].wrapping_add(b),
            h[2].wrapping_add(c),
            h[3].wrapping_add(d),
        ];
    }
    let mut out = [0u8; 16];
    for (i, word) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}

fn create_jwt(args: JwtArgs) -> Result<Value, HookError> {
    let mut claims = args.payload;
    if args.duration.is_finite() && args.duration > 0.0 {
        let exp = chrono::Utc::now()
            .timestamp()
            .saturating_add(args.duration as i64);
        claims.insert("exp".into(), json!(exp));
    }
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(args.secret.as_bytes()),
    )
    .map_err(|_| HookError::bad_request("Failed to create the token."))?;
    Ok(json!(token))
}

fn parse_jwt(args: JwtArgs) -> Result<Value, HookError> {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    // A token without `exp` is accepted (as PocketBase's); one past it is not.
    validation.required_spec_claims.clear();
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Map<String, Value>>(
        &args.token,
        &jsonwebtoken::DecodingKey::from_secret(args.secret.as_bytes()),
        &validation,
    )
    .map_err(|_| HookError::bad_request("Invalid or expired token."))?;
    Ok(Value::Object(data.claims))
}

#[derive(Deserialize)]
struct PatternArgs {
    pattern: String,
}

#[derive(Deserialize)]
struct UnverifiedArgs {
    token: String,
}

/// The claims of a JWT without checking its signature (PocketBase's
/// `parseUnverifiedJWT`, for reading e.g. a provider's id token): only its
/// shape and its `exp`, `nbf` and `iat` times are checked.
fn parse_unverified_jwt(args: UnverifiedArgs) -> Result<Value, HookError> {
    let invalid = || HookError::bad_request("Invalid or expired token.");
    let mut parts = args.token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let now = chrono::Utc::now().timestamp() as f64;
    let time = |k: &str| {
        claims
            .get(k)
            .map(|v| v.as_f64().ok_or_else(invalid))
            .transpose()
    };
    if time("exp")?.is_some_and(|exp| now >= exp)
        || time("nbf")?.is_some_and(|nbf| now < nbf)
        || time("iat")?.is_some_and(|iat| now < iat)
    {
        return Err(invalid());
    }
    Ok(Value::Object(claims))
}

fn cipher(key: &str) -> Result<Aes256Gcm, HookError> {
    if key.len() != KEY_BYTES {
        return Err(HookError::bad_request("The key must be 32 bytes long."));
    }
    Aes256Gcm::new_from_slice(key.as_bytes())
        .map_err(|_| HookError::bad_request("The key must be 32 bytes long."))
}

fn encrypt(text: &str, key: &str) -> Result<Value, HookError> {
    let cipher = cipher(key)?;
    let nonce_bytes: [u8; NONCE_BYTES] = rand::rng().random();
    let sealed = cipher
        .encrypt(&Nonce::from(nonce_bytes), text.as_bytes())
        .map_err(|_| HookError::bad_request("Failed to encrypt."))?;
    let mut out = nonce_bytes.to_vec();
    out.extend(sealed);
    Ok(json!(base64::engine::general_purpose::STANDARD.encode(out)))
}

fn decrypt(text: &str, key: &str) -> Result<Value, HookError> {
    let cipher = cipher(key)?;
    let refused = || HookError::bad_request("Failed to decrypt.");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| refused())?;
    if bytes.len() < NONCE_BYTES {
        return Err(refused());
    }
    let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| refused())?;
    let plain = cipher
        .decrypt(&Nonce::from(nonce), sealed)
        .map_err(|_| refused())?;
    Ok(json!(String::from_utf8_lossy(&plain)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_macs_match_the_published_test_vectors() {
        for (got, expected, what) in [
            (
                hex(&md5(b"")),
                "d41d8cd98f00b204e9800998ecf8427e",
                "md5 of nothing",
            ),
            (
                hex(&md5(b"The quick brown fox jumps over the lazy dog")),
                "9e107d9d372bb6826bd81d3542a419d6",
                "md5 of the fox",
            ),
            (
                hex(&hmac::<Sha256>(
                    b"key",
                    b"The quick brown fox jumps over the lazy dog",
                )),
                "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
                "hmac-sha256 (RFC 4231 style example)",
            ),
            (
                hex(&hmac::<Sha512>(
                    b"key",
                    b"The quick brown fox jumps over the lazy dog",
                )),
                "b42af09057bac1e2d41708e48a902e09b5ff7f12ab428a4fe86653c73dd248fb82f948a549f7b791a5b41915ee4d1ec3935357e4e2317250d0372afa2ebeeb3a",
                "hmac-sha512",
            ),
        ] {
            assert_eq!(got, expected, "{what}");
        }
    }

    #[test]
    fn parse_jwt_refuses_alg_none_a_wrong_secret_and_an_expired_token() {
        let secret = "s3cret";
        let good = create_jwt(JwtArgs {
            payload: json!({"sub": "a"}).as_object().cloned().unwrap_or_default(),
            token: String::new(),
            secret: secret.into(),
            duration: 60.0,
        })
        .expect("created");
        let good = good.as_str().unwrap_or_default().to_owned();
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let far = chrono::Utc::now().timestamp() + 3600;
        let none = format!(
            "{}.{}.",
            b64(json!({"alg": "none", "typ": "JWT"})),
            b64(json!({"sub": "a", "exp": far}))
        );
        let expired = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({"sub": "a", "exp": chrono::Utc::now().timestamp() - 10}),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encoded");
        let parse = |token: &str, secret: &str| {
            parse_jwt(JwtArgs {
                payload: Map::new(),
                token: token.into(),
                secret: secret.into(),
                duration: 0.0,
            })
        };

        assert_eq!(parse(&good, secret).expect("valid")["sub"], "a");
        for (token, key, why) in [
            (none.as_str(), secret, "alg none"),
            (good.as_str(), "other", "wrong secret"),
            (expired.as_str(), secret, "expired"),
            ("not.a.token", secret, "garbage"),
        ] {
            assert!(parse(token, key).is_err(), "{why} must be refused");
        }
    }

    #[test]
    fn encrypt_round_trips_and_tampering_or_a_wrong_key_fails() {
        let key = "0123456789abcdef0123456789abcdef";
        let sealed = encrypt("hello", key).expect("sealed");
        let sealed = sealed.as_str().unwrap_or_default();
        assert_eq!(decrypt(sealed, key).expect("opened"), json!("hello"));
        let other = "fedcba9876543210fedcba9876543210";
        assert!(decrypt(sealed, other).is_err(), "wrong key");
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .expect("b64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert!(decrypt(&tampered, key).is_err(), "tampered");
        assert!(encrypt("x", "short").is_err(), "a short key");
        assert!(equal(b"abc", b"abc") && !equal(b"abc", b"abd") && !equal(b"abc", b"ab"));
    }
}
