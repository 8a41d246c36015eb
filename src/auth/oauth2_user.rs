//! Reading a provider's answers through its catalog row
//! ([`crate::schema::oauth2`]): the user JSON onto id/name/username/email/
//! avatar, the account-active gate, the verified-email proof (including the
//! address lists of GitHub, Gitea, Bitbucket and Gitee), and the `id_token`
//! checks of Apple and OIDC. No I/O here except the JWKS document, fetched
//! by the caller; everything else is a pure function of the answers.

use crate::schema::oauth2::{EmailLookup, EmailProof, Expect, ProviderSpec, Text};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::Value;

/// Leeway for `exp`/`iat`/`nbf` of an `id_token` (clock skew), in seconds.
pub(crate) const ID_TOKEN_LEEWAY_SECS: u64 = 5 * 60;

/// The fields of the user as the catalog maps them; `email` is empty
/// unless the provider's proof holds (lookups are filled in later).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Mapped {
    pub id: String,
    pub name: String,
    pub username: String,
    pub email: String,
    pub avatar_url: String,
}

/// The string (or integer, as text) at a JSON pointer; "" when absent.
pub(crate) fn str_at(value: &Value, pointer: &str) -> String {
    if pointer.is_empty() {
        return String::new();
    }
    match value.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

fn text(raw: &Value, t: &Text) -> String {
    match t {
        Text::None => String::new(),
        Text::At(p) => str_at(raw, p),
        Text::FirstOf(ps) => ps
            .iter()
            .map(|p| str_at(raw, p))
            .find(|s| !s.is_empty())
            .unwrap_or_default(),
        Text::Joined(ps) => ps
            .iter()
            .map(|p| str_at(raw, p))
            .filter(|s| !s.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" ")
            .trim()
            .to_owned(),
        Text::BeforeAt(p) => {
            let s = str_at(raw, p);
            s.split('@').next().unwrap_or_default().to_owned()
        }
        Text::Template(template, ps) => {
            let parts: Vec<String> = ps.iter().map(|p| str_at(raw, p)).collect();
            if parts.iter().any(String::is_empty) {
                return String::new();
            }
            let mut out = (*template).to_owned();
            for part in parts {
                // Parts are provider data placed in a URL path: keep them to
                // one path segment.
                let safe: String = part
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    .collect();
                out = out.replacen("{}", &safe, 1);
            }
            out
        }
        Text::When(p, expected, inner) => {
            let flag = matches!(raw.pointer(p), Some(Value::Bool(b)) if b == expected)
                || (!*expected && raw.pointer(p).is_none());
            if flag {
                text(raw, inner)
            } else {
                String::new()
            }
        }
    }
}

/// Whether `value` is what `expect` asks for.
pub(crate) fn holds(value: Option<&Value>, expect: Expect) -> bool {
    match (expect, value) {
        (Expect::True, Some(Value::Bool(true))) => true,
        (Expect::Str(s), Some(Value::String(v))) => v == s,
        (Expect::Num(n), Some(Value::Number(v))) => v.as_i64() == Some(n),
        (Expect::Contains(s), Some(Value::Array(items))) => {
            items.iter().any(|i| i.as_str() == Some(s))
        }
        _ => false,
    }
}

/// Whether the account is active (providers without a gate: always).
pub(crate) fn is_active(spec: &ProviderSpec, raw: &Value) -> bool {
    spec.user
        .active
        .is_none_or(|(pointer, expect)| holds(raw.pointer(pointer), expect))
}

fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Maps a provider's user JSON through its catalog row.
pub(crate) fn map_user(spec: &ProviderSpec, raw: &Value) -> Mapped {
    let m = &spec.user;
    let verified = match m.email_verified {
        EmailProof::Always => true,
        EmailProof::Flag(pointer) => truthy(raw.pointer(pointer)),
        EmailProof::Flags(pointers) => pointers.iter().all(|p| truthy(raw.pointer(p))),
        EmailProof::Timestamp(pointer) => raw
            .pointer(pointer)
            .and_then(Value::as_str)
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
        EmailProof::Lookup(_) | EmailProof::Never => false,
    };
    let email = text(raw, &m.email);
    Mapped {
        id: text(raw, &m.id),
        name: text(raw, &m.name),
        username: text(raw, &m.username),
        email: if verified && plausible_email(&email) {
            email
        } else {
            String::new()
        },
        avatar_url: text(raw, &m.avatar_url),
    }
}

/// The first address of a lookup answer meeting every requirement; "" if none.
pub(crate) fn email_from_list(lookup: &EmailLookup, answer: &Value) -> String {
    let list = if lookup.list.is_empty() {
        Some(answer)
    } else {
        answer.pointer(lookup.list)
    };
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|entry| {
            lookup
                .require
                .iter()
                .all(|(key, expect)| holds(entry.get(key), *expect))
        })
        .and_then(|entry| entry.get(lookup.email)?.as_str())
        .filter(|e| plausible_email(e))
        .unwrap_or_default()
        .to_owned()
}

/// The URL of an address lookup, relative to the user-info URL.
pub(crate) fn lookup_url(lookup: &EmailLookup, user_info_url: &str) -> String {
    use crate::schema::oauth2::LookupUrl;
    match lookup.url {
        LookupUrl::Append(suffix) => format!("{user_info_url}{suffix}"),
        LookupUrl::Sibling(segment) => {
            let base = user_info_url.split(['?', '#']).next().unwrap_or_default();
            match base.rsplit_once('/') {
                Some((dir, _)) => format!("{dir}/{segment}"),
                None => String::new(),
            }
        }
    }
}

/// Microsoft's opt-in email from the `id_token` (`extra.idTokenEmailClaim`):
/// `verified_primary_email`, `email` when `xms_edov` (the domain owner
/// verified it) is true (`email_and_xms_edov`), or either (`any_verified`).
/// PocketBase's fourth mode, the bare `email` claim, is unverified and gives
/// nothing here. The token must be this user's (`oid` = Graph `id`).
pub(crate) fn id_token_email(mode: &str, claims: &Value, graph_id: &str) -> String {
    if claims.get("oid").and_then(Value::as_str) != Some(graph_id) {
        return String::new();
    }
    let primary = || match claims.get("verified_primary_email") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(list)) => list
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    let edov = || {
        if truthy(claims.get("xms_edov")) {
            str_at(claims, "/email")
        } else {
            String::new()
        }
    };
    let email = match mode {
        "verified_primary_email" => primary(),
        "email_and_xms_edov" => edov(),
        "any_verified" => Some(primary())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(edov),
        _ => String::new(),
    };
    if plausible_email(&email) {
        email
    } else {
        String::new()
    }
}

/// What an `id_token` must satisfy.
pub(crate) struct IdTokenCheck<'a> {
    pub client_id: &'a str,
    /// Accepted issuers; empty accepts any (OIDC without `extra.issuers`).
    pub issuers: &'a [String],
    pub require_exp: bool,
}

/// Why an `id_token` was refused (logged, never shown to the client).
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdTokenError {
    #[error("no id_token in the token answer")]
    Missing,
    #[error("id_token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("id_token signed with a key the JWKS does not hold")]
    UnknownKey,
    #[error("id_token algorithm {0:?} is not an asymmetric one")]
    Algorithm(Algorithm),
}

fn validation(alg: Algorithm, check: &IdTokenCheck<'_>) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = ID_TOKEN_LEEWAY_SECS;
    v.set_audience(&[check.client_id]);
    if !check.issuers.is_empty() {
        v.set_issuer(check.issuers);
    }
    v.set_required_spec_claims(if check.require_exp {
        &["exp", "aud"][..]
    } else {
        &["aud"][..]
    });
    v.validate_exp = check.require_exp;
    v
}

/// The claims of an `id_token` whose signature is checked against `jwks`.
pub(crate) fn verified_claims(
    id_token: &str,
    jwks: &JwkSet,
    check: &IdTokenCheck<'_>,
) -> Result<Value, IdTokenError> {
    if id_token.is_empty() {
        return Err(IdTokenError::Missing);
    }
    let header = jsonwebtoken::decode_header(id_token)?;
    if matches!(
        header.alg,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err(IdTokenError::Algorithm(header.alg));
    }
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or(IdTokenError::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk)?;
    let data = jsonwebtoken::decode::<Value>(id_token, &key, &validation(header.alg, check))?;
    Ok(data.claims)
}

/// The claims of an `id_token` taken straight from the token endpoint (over
/// the server's own TLS connection, as OIDC allows without a JWKS): the
/// audience, issuer and times are checked, the signature is not.
pub(crate) fn unverified_claims(
    id_token: &str,
    check: &IdTokenCheck<'_>,
) -> Result<Value, IdTokenError> {
    if id_token.is_empty() {
        return Err(IdTokenError::Missing);
    }
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(id_token)?.claims;
    let now = chrono::Utc::now().timestamp();
    let leeway = ID_TOKEN_LEEWAY_SECS as i64;
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == check.client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(check.client_id)),
        _ => false,
    };
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let iss_ok = check.issuers.is_empty() || check.issuers.iter().any(|i| i == iss);
    let exp = claims.get("exp").and_then(Value::as_i64);
    let exp_ok = match exp {
        Some(exp) => exp + leeway >= now,
        None => !check.require_exp,
    };
    let iat_ok = claims
        .get("iat")
        .and_then(Value::as_i64)
        .is_none_or(|iat| iat - leeway <= now);
    if aud_ok && iss_ok && exp_ok && iat_ok {
        Ok(claims)
    } else {
        Err(IdTokenError::Invalid(
            jsonwebtoken::errors::ErrorKind::InvalidToken.into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::oauth2::{CATALOG, spec};
    use base64::Engine;
    use serde_json::json;

    /// One user-info answer per provider in its own shape, with the email
    /// proof present, and the same answer with the proof taken away.
    fn samples() -> Vec<(&'static str, Value, Value, [&'static str; 5])> {
        let oidc = json!({"sub": "s1", "name": "N", "preferred_username": "u",
                          "email": "a@x.test", "email_verified": true, "picture": "https://p/a.png"});
        let oidc_no = json!({"sub": "s1", "name": "N", "preferred_username": "u",
                             "email": "a@x.test", "email_verified": false, "picture": "https://p/a.png"});
        let mut rows = vec![
            (
                "apple",
                json!({"sub": "s1", "email": "a@x.test", "email_verified": "true"}),
                json!({"sub": "s1", "email": "a@x.test", "email_verified": "false"}),
                ["s1", "", "", "a@x.test", ""],
            ),
            (
                "google",
                oidc.clone(),
                oidc_no.clone(),
                ["s1", "N", "", "a@x.test", "https://p/a.png"],
            ),
            (
                "microsoft",
                json!({"id": "m1", "displayName": "N", "mail": "a@x.test"}),
                json!({"id": "m1", "displayName": "N", "mail": "a@x.test"}),
                ["m1", "N", "", "", ""],
            ),
            (
                "yandex",
                json!({"id": "y1", "real_name": "N", "login": "u", "default_email": "a@x.test",
                              "is_avatar_empty": false, "default_avatar_id": "av1"}),
                json!({"id": "y1", "real_name": "N", "login": "u", "default_email": "a@x.test",
                    "is_avatar_empty": true, "default_avatar_id": "av1"}),
                [
                    "y1",
                    "N",
                    "u",
                    "",
                    "https://avatars.yandex.net/get-yapic/av1/islands-200",
                ],
            ),
            (
                "facebook",
                json!({"id": "f1", "name": "N", "email": "a@x.test",
                                "picture": {"data": {"url": "https://p/f.png"}}}),
                json!({"id": "f1", "name": "N", "email": "a@x.test"}),
                ["f1", "N", "", "", "https://p/f.png"],
            ),
            (
                "instagram2",
                json!({"user_id": "i1", "name": "N", "username": "u", "profile_picture_url": "https://p/i"}),
                json!({"user_id": "i1"}),
                ["i1", "N", "u", "", "https://p/i"],
            ),
            (
                "github",
                json!({"id": 7, "name": "N", "login": "u", "email": "a@x.test", "avatar_url": "https://p/g"}),
                json!({"id": 7, "email": "a@x.test"}),
                ["7", "N", "u", "", "https://p/g"],
            ),
            (
                "gitlab",
                json!({"id": 8, "name": "N", "username": "u", "email": "a@x.test",
                              "avatar_url": "https://p/gl", "confirmed_at": "2020-01-02T03:04:05Z"}),
                json!({"id": 8, "email": "a@x.test", "confirmed_at": null}),
                ["8", "N", "u", "a@x.test", "https://p/gl"],
            ),
            (
                "bitbucket",
                json!({"uuid": "{b1}", "display_name": "N", "username": "u", "account_status": "active",
                                 "links": {"avatar": {"href": "https://p/b"}}}),
                json!({"uuid": "{b1}", "account_status": "active"}),
                ["{b1}", "N", "u", "", "https://p/b"],
            ),
            (
                "gitee",
                json!({"id": 10, "name": "N", "login": "u", "email": "a@x.test", "avatar_url": "https://p/ge"}),
                json!({"id": 10, "email": "a@x.test"}),
                ["10", "N", "u", "", "https://p/ge"],
            ),
            (
                "gitea",
                json!({"id": 11, "full_name": "N", "login": "u", "active": true, "avatar_url": "https://p/gt"}),
                json!({"id": 11, "active": true}),
                ["11", "N", "u", "", "https://p/gt"],
            ),
            (
                "discord",
                json!({"id": "d1", "global_name": null, "username": "u", "avatar": "h4sh",
                               "email": "a@x.test", "verified": true}),
                json!({"id": "d1", "username": "u", "email": "a@x.test", "verified": false}),
                [
                    "d1",
                    "u",
                    "u",
                    "a@x.test",
                    "https://cdn.discordapp.com/avatars/d1/h4sh.png",
                ],
            ),
            (
                "twitter",
                json!({"data": {"id": "t1", "name": "N", "username": "u", "confirmed_email": "a@x.test",
                                        "profile_image_url": "https://p/t"}}),
                json!({"data": {"id": "t1"}}),
                ["t1", "N", "u", "a@x.test", "https://p/t"],
            ),
            (
                "kakao",
                json!({"id": 14, "properties": {"nickname": "u", "profile_image": "https://p/k"},
                             "kakao_account": {"email": "a@x.test", "is_email_valid": true, "is_email_verified": true}}),
                json!({"id": 14, "kakao_account": {"email": "a@x.test", "is_email_valid": true, "is_email_verified": false}}),
                ["14", "", "u", "a@x.test", "https://p/k"],
            ),
            (
                "vk",
                json!({"response": [{"id": 15, "first_name": "A", "last_name": "B", "screen_name": "u",
                                        "photo_max": "https://p/v"}]}),
                json!({"response": [{"id": 15}]}),
                ["15", "A B", "u", "", "https://p/v"],
            ),
            (
                "linear",
                json!({"data": {"viewer": {"id": "l1", "name": "N", "displayName": "u", "email": "a@x.test",
                                                  "avatarUrl": "https://p/l", "active": true}}}),
                json!({"data": {"viewer": {"id": "l1", "email": "a@x.test", "active": true}}}),
                ["l1", "N", "u", "", "https://p/l"],
            ),
            (
                "notion",
                json!({"bot": {"owner": {"user": {"id": "n1", "name": "N", "avatar_url": "https://p/n",
                                                         "person": {"email": "a@x.test"}}}}}),
                json!({"bot": {"owner": {"user": {"id": "n1"}}}}),
                ["n1", "N", "", "", "https://p/n"],
            ),
            (
                "monday",
                json!({"data": {"me": {"id": "mo1", "name": "N", "email": "a@x.test", "is_verified": true,
                                              "enabled": true, "photo_small": "https://p/m"}}}),
                json!({"data": {"me": {"id": "mo1", "email": "a@x.test", "is_verified": false, "enabled": true}}}),
                ["mo1", "N", "", "a@x.test", "https://p/m"],
            ),
            (
                "lark",
                json!({"data": {"union_id": "la1", "name": "N", "avatar_url": "https://p/la"}}),
                json!({"data": {"union_id": "la1"}}),
                ["la1", "N", "", "", "https://p/la"],
            ),
            (
                "box",
                json!({"id": "bx1", "name": "N", "login": "a@x.test", "status": "active", "avatar_url": "https://p/bx"}),
                json!({"id": "bx1", "login": "a@x.test", "status": "active"}),
                ["bx1", "N", "", "", "https://p/bx"],
            ),
            (
                "spotify",
                json!({"id": "sp1", "display_name": "N", "images": [{"url": "https://p/s"}]}),
                json!({"id": "sp1"}),
                ["sp1", "N", "", "", "https://p/s"],
            ),
            (
                "trakt",
                json!({"user": {"username": "u", "name": "N", "ids": {"uuid": "tr1"},
                                      "images": {"avatar": {"full": "https://p/tr"}}}}),
                json!({"user": {"ids": {"uuid": "tr1"}}}),
                ["tr1", "N", "u", "", "https://p/tr"],
            ),
            (
                "twitch",
                json!({"data": [{"id": "tw1", "display_name": "N", "login": "u", "email": "a@x.test",
                                        "profile_image_url": "https://p/tw"}]}),
                json!({"data": [{"id": "tw1"}]}),
                ["tw1", "N", "u", "a@x.test", "https://p/tw"],
            ),
            (
                "patreon",
                json!({"data": {"id": "pa1", "attributes": {"full_name": "N", "vanity": "u", "email": "a@x.test",
                                                                    "image_url": "https://p/pa", "is_email_verified": true}}}),
                json!({"data": {"id": "pa1", "attributes": {"email": "a@x.test", "is_email_verified": false}}}),
                ["pa1", "N", "u", "a@x.test", "https://p/pa"],
            ),
            (
                "strava",
                json!({"id": 25, "firstname": "A", "lastname": "B", "username": "u", "profile": "https://p/st"}),
                json!({"id": 25}),
                ["25", "A B", "u", "", "https://p/st"],
            ),
            (
                "wakatime",
                json!({"data": {"id": "w1", "display_name": "N", "username": "u", "email": "a@x.test",
                                         "photo": "https://p/w", "photo_public": true, "is_email_confirmed": true}}),
                json!({"data": {"id": "w1", "email": "a@x.test", "photo": "https://p/w", "photo_public": false,
                             "is_email_confirmed": false}}),
                ["w1", "N", "u", "a@x.test", "https://p/w"],
            ),
            (
                "livechat",
                json!({"account_id": "lc1", "name": "N", "email": "a@x.test", "email_verified": true,
                                "avatar_url": "https://p/lc"}),
                json!({"account_id": "lc1", "email": "a@x.test", "email_verified": false}),
                ["lc1", "N", "", "a@x.test", "https://p/lc"],
            ),
            (
                "mailcow",
                json!({"id": "mc1", "full_name": "N", "username": "u@mail.x.test", "email": "a@x.test", "active": 1}),
                json!({"id": "mc1", "active": 1}),
                ["mc1", "N", "u", "a@x.test", ""],
            ),
            (
                "planningcenter",
                json!({"data": {"id": "pc1", "attributes": {"name": "N", "avatar": "https://p/pc",
                                                                           "status": "active"}}}),
                json!({"data": {"id": "pc1", "attributes": {"status": "active"}}}),
                ["pc1", "N", "", "", "https://p/pc"],
            ),
        ];
        for name in ["oidc", "oidc2", "oidc3"] {
            rows.push((
                name,
                oidc.clone(),
                oidc_no.clone(),
                ["s1", "N", "u", "a@x.test", "https://p/a.png"],
            ));
        }
        rows
    }

    #[test]
    fn every_provider_maps_its_user_and_trusts_the_email_only_on_its_proof() {
        let rows = samples();
        for spec in CATALOG {
            assert!(
                rows.iter().any(|(n, ..)| *n == spec.name),
                "{} has no sample in the table",
                spec.name
            );
        }
        for (name, with, without, [id, display, username, email, avatar]) in rows {
            let spec = spec(name).expect("in the catalog");
            assert!(
                is_active(spec, &with),
                "{name}: the sample account is active"
            );
            let got = map_user(spec, &with);
            let want = Mapped {
                id: id.into(),
                name: display.into(),
                username: username.into(),
                email: email.into(),
                avatar_url: avatar.into(),
            };
            assert_eq!(got, want, "{name}: mapped with the proof present");
            let got = map_user(spec, &without);
            let always = matches!(spec.user.email_verified, EmailProof::Always);
            if !always {
                assert_eq!(got.email, "", "{name}: no proof, no email");
            }
            assert_eq!(got.id, id, "{name}: id without the rest");
        }
    }

    #[test]
    fn suspended_accounts_are_refused_where_the_provider_says_so() {
        for (name, raw) in [
            (
                "bitbucket",
                json!({"uuid": "b", "account_status": "closed"}),
            ),
            ("box", json!({"id": "b", "status": "inactive"})),
            ("gitea", json!({"id": 1, "active": false})),
            ("gitea", json!({"id": 1, "active": "true"})),
            (
                "linear",
                json!({"data": {"viewer": {"id": "l", "active": false}}}),
            ),
            ("monday", json!({"data": {"me": {"id": "m"}}})),
            ("mailcow", json!({"id": "m", "active": 0})),
            ("mailcow", json!({"id": "m", "active": "1"})),
            (
                "planningcenter",
                json!({"data": {"id": "p", "attributes": {"status": "inactive"}}}),
            ),
        ] {
            let spec = spec(name).expect("in the catalog");
            assert!(!is_active(spec, &raw), "{name}: {raw} is not active");
        }
    }

    #[test]
    fn absurd_fields_map_to_nothing_rather_than_failing() {
        let github = spec("github").expect("github");
        for raw in [
            json!(null),
            json!([]),
            json!({"id": {"nested": 1}, "login": ["x"], "avatar_url": 3.5}),
            json!({"id": true}),
        ] {
            let got = map_user(github, &raw);
            assert_eq!(got.id, "", "{raw}: no usable id");
        }
        let discord = spec("discord").expect("discord");
        let got = map_user(discord, &json!({"id": "1", "avatar": "../../admin?x=1"}));
        assert_eq!(
            got.avatar_url, "https://cdn.discordapp.com/avatars/1/....adminx1.png",
            "template parts cannot leave their path segment"
        );
        let oidc = spec("oidc").expect("oidc");
        let got = map_user(
            oidc,
            &json!({"sub": "s", "email": "not an email", "email_verified": true}),
        );
        assert_eq!(got.email, "", "a verified non-address is dropped");
    }

    #[test]
    fn address_lists_yield_only_an_entry_meeting_every_requirement() {
        let lookup = |name| match spec(name).expect("in the catalog").user.email_verified {
            EmailProof::Lookup(l) => l,
            other => panic!("{name} has {other:?}"),
        };
        for (name, answer, expected, why) in [
            (
                "bitbucket",
                json!({"values": [{"email": "a@x.test", "is_primary": true, "is_confirmed": false},
                                            {"email": "b@x.test", "is_primary": true, "is_confirmed": true}]}),
                "b@x.test",
                "the confirmed primary",
            ),
            (
                "bitbucket",
                json!([{"email": "a@x.test", "is_primary": true, "is_confirmed": true}]),
                "",
                "not under values",
            ),
            (
                "gitee",
                json!([{"email": "a@x.test", "state": "confirmed", "scope": ["committed"]},
                             {"email": "b@x.test", "state": "unconfirmed", "scope": ["primary"]},
                             {"email": "c@x.test", "state": "confirmed", "scope": ["primary", "committed"]}]),
                "c@x.test",
                "confirmed and primary",
            ),
            (
                "gitea",
                json!([{"email": "a@x.test", "primary": true, "verified": false}]),
                "",
                "unverified",
            ),
            ("github", Value::Null, "", "scope not granted"),
        ] {
            assert_eq!(
                email_from_list(&lookup(name), &answer),
                expected,
                "{name}: {why}"
            );
        }
        assert_eq!(
            lookup_url(&lookup("gitee"), "https://gitee.com/api/v5/user"),
            "https://gitee.com/api/v5/emails"
        );
        assert_eq!(
            lookup_url(&lookup("github"), "https://api.github.com/user"),
            "https://api.github.com/user/emails"
        );
    }

    /// A P-256 key made for these tests only (it signs nothing real).
    const TEST_EC_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgC/TL7bFGxWVf+J7U
dZZ0CZ3RD8Gop3LuaCM+dZpawUahRANCAATCLxdwLbvN9JyAWtn87QN4W6khow5l
fJCf8Am65D7echRCtViI6I1SOScJF9ZZlHVRWA/8RAdktAz66MWzjD14
-----END PRIVATE KEY-----";

    fn jwks() -> JwkSet {
        serde_json::from_value(json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
            "alg": "ES256", "use": "sig",
            "x": "wi8XcC27zfScgFrZ_O0DeFupIaMOZXyQn_AJuuQ-3nI",
            "y": "FEK1WIjojVI5JwkX1lmUdVFYD_xEB2S0DProxbOMPXg"}]}))
        .expect("a JWKS")
    }

    fn signed(kid: &str, claims: Value) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        let body: String = TEST_EC_KEY
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("PKCS#8 DER");
        let key = jsonwebtoken::EncodingKey::from_ec_der(&der);
        jsonwebtoken::encode(&header, &claims, &key).expect("signs")
    }

    #[test]
    fn an_id_token_counts_only_when_signed_by_the_jwks_for_this_client_and_issuer() {
        let now = chrono::Utc::now().timestamp();
        let issuers = vec!["https://appleid.apple.com".to_owned()];
        let check = IdTokenCheck {
            client_id: "cid",
            issuers: &issuers,
            require_exp: true,
        };
        let good = json!({"iss": "https://appleid.apple.com", "aud": "cid", "sub": "s1",
                          "exp": now + 600, "iat": now, "email": "a@x.test", "email_verified": "true"});
        let claims = verified_claims(&signed("k1", good.clone()), &jwks(), &check);
        assert_eq!(
            claims
                .ok()
                .and_then(|c| c["sub"].as_str().map(str::to_owned)),
            Some("s1".into())
        );

        let with = |k: &str, v: Value| {
            let mut c = good.clone();
            c[k] = v;
            c
        };
        let hs256 = {
            let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
            header.kid = Some("k1".into());
            let key = jsonwebtoken::EncodingKey::from_secret(b"guessable");
            jsonwebtoken::encode(&header, &good, &key).expect("signs")
        };
        let unsigned = {
            let token = signed("k1", good.clone());
            let mut parts: Vec<&str> = token.split('.').collect();
            parts[2] = "";
            parts.join(".")
        };
        let forged_body = {
            let token = signed("k1", good.clone());
            let parts: Vec<&str> = token.split('.').collect();
            let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(with("sub", json!("victim")).to_string());
            format!("{}.{evil}.{}", parts[0], parts[2])
        };
        for (token, why) in [
            (
                signed("k1", with("aud", json!("someone-else"))),
                "another client's token",
            ),
            (
                signed("k1", with("iss", json!("https://evil.test"))),
                "another issuer",
            ),
            (signed("k1", with("exp", json!(now - 3600))), "expired"),
            (
                signed("k1", {
                    let mut c = good.clone();
                    c.as_object_mut().map(|o| o.remove("exp"));
                    c
                }),
                "no exp",
            ),
            (signed("k2", good.clone()), "a key the JWKS does not hold"),
            (hs256, "HMAC with a guessed secret"),
            (unsigned, "no signature"),
            (forged_body, "claims changed after signing"),
            (String::new(), "missing"),
            ("a.b.c".to_owned(), "garbage"),
        ] {
            assert!(
                verified_claims(&token, &jwks(), &check).is_err(),
                "{why} must be refused"
            );
        }
    }

    #[test]
    fn an_unsigned_oidc_id_token_still_needs_this_audience_issuer_and_time() {
        let now = chrono::Utc::now().timestamp();
        let issuers = vec!["https://idp.test".to_owned()];
        let check = IdTokenCheck {
            client_id: "cid",
            issuers: &issuers,
            require_exp: false,
        };
        let token = |c: Value| signed("any", c);
        assert!(
            unverified_claims(
                &token(json!({"aud": "cid", "iss": "https://idp.test", "sub": "s"})),
                &check
            )
            .is_ok()
        );
        for (claims, why) in [
            (
                json!({"aud": "other", "iss": "https://idp.test"}),
                "audience",
            ),
            (
                json!({"aud": ["x", "other"], "iss": "https://idp.test"}),
                "audience list",
            ),
            (json!({"aud": "cid", "iss": "https://evil.test"}), "issuer"),
            (
                json!({"aud": "cid", "iss": "https://idp.test", "exp": now - 3600}),
                "expired",
            ),
            (
                json!({"aud": "cid", "iss": "https://idp.test", "iat": now + 3600}),
                "issued in the future",
            ),
        ] {
            assert!(
                unverified_claims(&token(claims), &check).is_err(),
                "{why} must be refused"
            );
        }
    }

    #[test]
    fn microsoft_id_token_email_modes_take_only_verified_claims_of_this_user() {
        let claims = json!({"oid": "g1", "email": "e@x.test", "xms_edov": true,
                            "verified_primary_email": ["p@x.test"]});
        let no_edov = json!({"oid": "g1", "email": "e@x.test", "xms_edov": false});
        for (mode, claims, graph_id, expected, why) in [
            (
                "verified_primary_email",
                &claims,
                "g1",
                "p@x.test",
                "the primary verified claim",
            ),
            (
                "email_and_xms_edov",
                &claims,
                "g1",
                "e@x.test",
                "domain-owner verified",
            ),
            ("email_and_xms_edov", &no_edov, "g1", "", "xms_edov false"),
            ("any_verified", &no_edov, "g1", "", "neither proof"),
            ("any_verified", &claims, "g1", "p@x.test", "primary first"),
            (
                "email",
                &claims,
                "g1",
                "",
                "the bare email claim is unverified",
            ),
            (
                "verified_primary_email",
                &claims,
                "g2",
                "",
                "another user's token",
            ),
            ("", &claims, "g1", "", "no mode"),
        ] {
            assert_eq!(
                id_token_email(mode, claims, graph_id),
                expected,
                "{mode}: {why}"
            );
        }
    }
}
