//! What a new auth collection starts with: its system fields, unique indexes
//! and auth options (token durations with fresh secrets, identity fields,
//! MFA and OTP settings and the five email templates), the same as
//! PocketBase 0.40.6 gives a collection created through its API (the
//! built-in `users` and `_superusers` get theirs from the migrations).

use super::field::{Field, FieldKind};
use super::index::IndexDef;
use super::names::FieldName;
use crate::validation::{FieldError, ValidationErrors};
use serde_json::{Map, Value, json};

/// Length of each generated token secret.
const SECRET_LEN: usize = 50;

/// Token kinds with a duration (seconds) and their own secret.
pub const TOKEN_OPTIONS: [(&str, u64); 5] = [
    ("authToken", 432_000),
    ("passwordResetToken", 1_800),
    ("emailChangeToken", 1_800),
    ("verificationToken", 86_400),
    ("fileToken", 180),
];

/// Default options of a new auth collection.
pub fn options() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("authRule".into(), json!(""));
    m.insert("manageRule".into(), Value::Null);
    m.insert(
        "passwordAuth".into(),
        json!({"enabled": true, "identityFields": ["email"]}),
    );
    m.insert("oauth2".into(), json!({"enabled": false, "providers": [], "mappedFields": {"id": "", "name": "", "username": "", "avatarURL": ""}}));
    m.insert(
        "mfa".into(),
        json!({"enabled": false, "duration": 600, "rule": ""}),
    );
    m.insert(
        "otp".into(),
        json!({"enabled": false, "duration": 180, "length": 8,
               "emailTemplate": template(OTP_SUBJECT, OTP_BODY)}),
    );
    m.insert(
        "authAlert".into(),
        json!({"enabled": true, "emailTemplate": template(ALERT_SUBJECT, ALERT_BODY)}),
    );
    for (key, subject, body) in [
        (
            "verificationTemplate",
            VERIFICATION_SUBJECT,
            VERIFICATION_BODY,
        ),
        (
            "resetPasswordTemplate",
            RESET_PASSWORD_SUBJECT,
            RESET_PASSWORD_BODY,
        ),
        (
            "confirmEmailChangeTemplate",
            CONFIRM_EMAIL_CHANGE_SUBJECT,
            CONFIRM_EMAIL_CHANGE_BODY,
        ),
    ] {
        m.insert(key.into(), template(subject, body));
    }
    for (key, duration) in TOKEN_OPTIONS {
        m.insert(
            key.into(),
            json!({"duration": duration, "secret": new_secret()}),
        );
    }
    m
}

fn template(subject: &str, body: &str) -> Value {
    json!({"subject": subject, "body": body})
}

// PocketBase's default email templates, word for word: a PocketBase app
// moving over finds the mails it had.
const ALERT_SUBJECT: &str = "Login from a new location";
const ALERT_BODY: &str = "<p>Hello,</p>\n<p>We noticed a login to your {APP_NAME} account from a new location:</p>\n<p><em>{ALERT_INFO}</em></p>\n<p><strong>If this wasn't you, you should immediately change your {APP_NAME} account password to revoke access from all other locations.</strong></p>\n<p>If this was you, you may disregard this email.</p>\n<p>\n  Thanks,<br/>\n  {APP_NAME} team\n</p>";
const OTP_SUBJECT: &str = "OTP for {APP_NAME}";
const OTP_BODY: &str = "<p>Hello,</p>\n<p>Your one-time password is: <strong>{OTP}</strong></p>\n<p><i>If you didn't ask for the one-time password, you can ignore this email.</i></p>\n<p>\n  Thanks,<br/>\n  {APP_NAME} team\n</p>";
const VERIFICATION_SUBJECT: &str = "Verify your {APP_NAME} email";
const VERIFICATION_BODY: &str = "<p>Hello,</p>\n<p>Thank you for joining us at {APP_NAME}.</p>\n<p>Click on the button below to verify your email address.</p>\n<p>\n  <a class=\"btn\" href=\"{APP_URL}/_/#/auth/confirm-verification/{TOKEN}\" target=\"_blank\" rel=\"noopener\">Verify</a>\n</p>\n<p><i>If you didn't recently register, please ignore this email.</i></p>\n<p>\n  Thanks,<br/>\n  {APP_NAME} team\n</p>";
const RESET_PASSWORD_SUBJECT: &str = "Reset your {APP_NAME} password";
const RESET_PASSWORD_BODY: &str = "<p>Hello,</p>\n<p>Click on the button below to reset your password.</p>\n<p>\n  <a class=\"btn\" href=\"{APP_URL}/_/#/auth/confirm-password-reset/{TOKEN}\" target=\"_blank\" rel=\"noopener\">Reset password</a>\n</p>\n<p><i>If you didn't ask to reset your password, please ignore this email.</i></p>\n<p>\n  Thanks,<br/>\n  {APP_NAME} team\n</p>";
const CONFIRM_EMAIL_CHANGE_SUBJECT: &str = "Confirm your {APP_NAME} new email address";
const CONFIRM_EMAIL_CHANGE_BODY: &str = "<p>Hello,</p>\n<p>Click on the button below to confirm your new email address.</p>\n<p>\n  <a class=\"btn\" href=\"{APP_URL}/_/#/auth/confirm-email-change/{TOKEN}\" target=\"_blank\" rel=\"noopener\">Confirm new email</a>\n</p>\n<p><i>If you didn't ask to change your email address, please ignore this email.</i></p>\n<p>\n  Thanks,<br/>\n  {APP_NAME} team\n</p>";

fn new_secret() -> String {
    super::autogen::random_string(super::autogen::ALPHANUMERIC, SECRET_LEN)
}

fn system(id: &str, name: &str, hidden: bool, required: bool, kind: FieldKind) -> Field {
    Field {
        id: id.to_owned(),
        name: FieldName::parse(name).expect("system field names are valid"),
        system: true,
        hidden,
        presentable: false,
        required,
        help: String::new(),
        kind,
        search: None,
    }
}

/// System fields of an auth collection (after `id`).
pub fn fields() -> Vec<Field> {
    vec![
        system(
            "password901924565",
            "password",
            true,
            true,
            FieldKind::Password {
                min: 8,
                max: 0,
                pattern: String::new(),
                cost: 0,
            },
        ),
        system(
            "text2504183744",
            "tokenKey",
            true,
            true,
            FieldKind::Text {
                min: 30,
                max: 60,
                pattern: String::new(),
                autogenerate_pattern: "[a-zA-Z0-9]{50}".to_owned(),
                primary_key: false,
            },
        ),
        system(
            "email3885137012",
            "email",
            false,
            true,
            FieldKind::Email {
                except_domains: vec![],
                only_domains: vec![],
            },
        ),
        system(
            "bool1547992806",
            "emailVisibility",
            false,
            false,
            FieldKind::Bool,
        ),
        system("bool256245529", "verified", false, false, FieldKind::Bool),
    ]
}

/// Unique indexes on `tokenKey` and (non-empty) `email`.
pub fn indexes(collection_id: &str) -> Vec<IndexDef> {
    [
        format!("CREATE UNIQUE INDEX `idx_tokenKey_{collection_id}` ON `x` (`tokenKey`)"),
        format!(
            "CREATE UNIQUE INDEX `idx_email_{collection_id}` ON `x` (`email`) WHERE `email` != ''"
        ),
    ]
    .iter()
    .filter_map(|sql| IndexDef::parse(sql).ok())
    .collect()
}

/// Merges auth options from request JSON: known keys only, one level deep;
/// stored secrets are kept unless a new one is given.
pub fn apply_options(
    options: &mut Map<String, Value>,
    input: &Map<String, Value>,
    errors: &mut ValidationErrors,
) {
    for (key, value) in input {
        let Some(current) = options.get_mut(key) else {
            continue;
        };
        match (current, value) {
            (Value::Object(cur), Value::Object(new)) if key == "oauth2" => {
                errors.nest(key.clone(), super::oauth2::apply(cur, new));
            }
            (Value::Object(cur), Value::Object(new)) => {
                for (k, v) in new {
                    if k == "secret" && v.as_str().is_none_or(|s| s.len() < 30) {
                        continue;
                    }
                    cur.insert(k.clone(), v.clone());
                }
            }
            (slot, v) if key == "authRule" || key == "manageRule" => match v {
                Value::Null => *slot = Value::Null,
                Value::String(s) if key == "manageRule" && s.trim().is_empty() => {
                    errors.add(
                        key.clone(),
                        FieldError::new(
                            "validation_nil_or_not_empty_required",
                            "Must be null or a non-empty rule.",
                        ),
                    );
                }
                Value::String(_) => *slot = v.clone(),
                _ => errors.add(
                    key.clone(),
                    FieldError::new("validation_invalid_rule", "Must be a string or null."),
                ),
            },
            _ => errors.add(
                key.clone(),
                FieldError::new("validation_invalid_value", "Must be an object."),
            ),
        }
    }
    check_bounds(options, errors);
}

/// Token lifetimes accepted (seconds): PocketBase's ~3 year maximum, but
/// from 1 s rather than its 10 s. A shorter token is only safer, and the
/// expiry tests (and anyone who relied on our old "positive" rule) use
/// one- and two-second tokens.
pub const TOKEN_SECS: (i64, i64) = (1, 94_670_856);
/// OTP and MFA windows while enabled (seconds): 10 s to a day.
pub const CODE_WINDOW_SECS: (i64, i64) = (10, 86_400);
/// Shortest OTP PocketBase accepts while OTP is enabled.
pub const MIN_OTP_LENGTH: i64 = 4;

/// Refuses out-of-range durations and lengths with PocketBase's field
/// errors, so no absurd number reaches token or code arithmetic.
fn check_bounds(options: &Map<String, Value>, errors: &mut ValidationErrors) {
    let value = |key: &str, field: &str| options.get(key).and_then(|o| o.get(field));
    let enabled = |key: &str| {
        value(key, "enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let mut checks: Vec<(&str, &str, i64, Option<i64>)> = TOKEN_OPTIONS
        .iter()
        .map(|(key, _)| (*key, "duration", TOKEN_SECS.0, Some(TOKEN_SECS.1)))
        .collect();
    for key in ["otp", "mfa"] {
        if enabled(key) {
            checks.push((
                key,
                "duration",
                CODE_WINDOW_SECS.0,
                Some(CODE_WINDOW_SECS.1),
            ));
        }
    }
    if enabled("otp") {
        checks.push(("otp", "length", MIN_OTP_LENGTH, None));
    }
    for (key, field, min, max) in checks {
        if let Some(e) = out_of_bounds(value(key, field), min, max) {
            let mut inner = ValidationErrors::new();
            inner.add(field, e);
            errors.nest(key, inner);
        }
    }
}

/// The error for a whole number that is missing, zero or outside `min..=max`.
fn out_of_bounds(value: Option<&Value>, min: i64, max: Option<i64>) -> Option<FieldError> {
    let n = match value {
        None | Some(Value::Null) => 0.0,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(_) => {
            return Some(FieldError::new(
                "validation_invalid_value",
                "Must be a whole number.",
            ));
        }
    };
    // Compared as floats so i64/u64 extremes and huge floats need no casts.
    if n == 0.0 {
        Some(FieldError::required())
    } else if n < min as f64 {
        Some(
            FieldError::new(
                "validation_min_greater_equal_than_required",
                format!("Must be no less than {min}."),
            )
            .with_params(json!({"threshold": min})),
        )
    } else if let Some(max) = max.filter(|max| n > *max as f64) {
        Some(
            FieldError::new(
                "validation_max_less_equal_than_required",
                format!("Must be no greater than {max}."),
            )
            .with_params(json!({"threshold": max})),
        )
    } else if n.fract() != 0.0 {
        Some(FieldError::new(
            "validation_invalid_value",
            "Must be a whole number.",
        ))
    } else {
        None
    }
}
