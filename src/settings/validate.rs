//! Settings validation, key by key as PocketBase 0.40.6 checks them (same
//! codes and messages). Numbers
//! are checked on the merged JSON before it becomes typed, so a negative
//! value gets PocketBase's field error rather than a generic parse failure.

use super::{Settings, parse_ip_or_subnet};
use crate::validation::{FieldError, ValidationErrors};
use serde_json::{Value, json};

/// The largest integer a JSON client (JavaScript) reads exactly: 2^53 - 1.
pub const MAX_SAFE_JSON_INT: i64 = 9_007_199_254_740_991;

fn min_error(threshold: i64) -> FieldError {
    FieldError::new(
        "validation_min_greater_equal_than_required",
        format!("Must be no less than {threshold}."),
    )
    .with_params(json!({ "threshold": threshold }))
}

fn max_error(threshold: i64) -> FieldError {
    FieldError::new(
        "validation_max_less_equal_than_required",
        format!("Must be no greater than {threshold}."),
    )
    .with_params(json!({ "threshold": threshold }))
}

fn not_host() -> FieldError {
    FieldError::new(
        "validation_is_host",
        "Must be a valid IP address or DNS name.",
    )
}

fn not_url() -> FieldError {
    FieldError::new("validation_is_url", "Must be a valid URL.")
}

/// Range checks on the integers of the merged (untyped) settings: `(section,
/// key, min, max)`. Values outside their typed range would otherwise fail
/// deserialization with a message that names no field.
const NUMBER_RANGES: &[(&str, &str, i64, i64)] = &[
    ("smtp", "port", 0, MAX_SAFE_JSON_INT),
    ("batch", "maxRequests", 0, MAX_SAFE_JSON_INT),
    ("batch", "timeout", 0, MAX_SAFE_JSON_INT),
    ("batch", "maxBodySize", 0, MAX_SAFE_JSON_INT),
    ("logs", "maxDays", 0, MAX_SAFE_JSON_INT),
    ("logs", "maxDataSize", 0, MAX_SAFE_JSON_INT),
    ("logs", "minLevel", -MAX_SAFE_JSON_INT, MAX_SAFE_JSON_INT),
    ("backups", "cronMaxKeep", 0, MAX_SAFE_JSON_INT),
];

fn range_error(value: &Value, min: i64, max: i64) -> Option<FieldError> {
    if let Some(n) = value.as_i64() {
        return if n < min {
            Some(min_error(min))
        } else if n > max {
            Some(max_error(max))
        } else {
            None
        };
    }
    // u64 beyond i64, or a float out of range: report the bound it passed.
    match value.as_f64() {
        Some(f) if f < min as f64 => Some(min_error(min)),
        Some(f) if f > max as f64 => Some(max_error(max)),
        _ => None,
    }
}

/// Field errors for integers out of range in the merged settings JSON.
pub fn check_numbers(merged: &Value) -> ValidationErrors {
    let mut errors = ValidationErrors::new();
    for section in ["smtp", "batch", "logs", "backups"] {
        let mut inner = ValidationErrors::new();
        for (_, key, min, max) in NUMBER_RANGES.iter().filter(|r| r.0 == section) {
            if let Some(e) = merged[section]
                .get(*key)
                .and_then(|v| range_error(v, *min, *max))
            {
                inner.add(*key, e);
            }
        }
        errors.nest(section, inner);
    }
    let mut rules = ValidationErrors::new();
    if let Some(list) = merged["rateLimits"]["rules"].as_array() {
        for (i, rule) in list.iter().enumerate() {
            let mut e = ValidationErrors::new();
            for key in ["duration", "maxRequests"] {
                if let Some(err) = rule
                    .get(key)
                    .and_then(|v| range_error(v, 1, MAX_SAFE_JSON_INT))
                {
                    e.add(key, err);
                }
            }
            rules.nest(i.to_string(), e);
        }
    }
    let mut limits = ValidationErrors::new();
    limits.nest("rules", rules);
    errors.nest("rateLimits", limits);
    errors
}

/// `is.Host`: an IP address or a DNS name (labels of letters, digits, `_`
/// and `-`, each starting with a letter, digit or `_`, at most 63 long).
pub fn is_host(raw: &str) -> bool {
    if raw.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = raw.strip_suffix('.').unwrap_or(raw);
    !name.is_empty()
        && raw.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && !label.starts_with('-')
        })
}

/// `is.URL` in its common shape: `scheme://host[:port][/…]` with a host.
pub fn is_url(raw: &str) -> bool {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !raw.chars().any(char::is_whitespace)
        && (is_host(host) || host.parse::<std::net::Ipv6Addr>().is_ok())
}

fn required_when(errors: &mut ValidationErrors, on: bool, key: &str, empty: bool) {
    if on && empty {
        errors.add(key, FieldError::required());
    }
}

fn length_out_of_range(min: usize, max: usize) -> FieldError {
    FieldError::new(
        "validation_length_out_of_range",
        format!("The length must be between {min} and {max}."),
    )
    .with_params(json!({ "min": min, "max": max }))
}

impl Settings {
    /// Checks every section; all problems are reported, nested by section.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        errors.nest("superuserIPs", validate_ip_list(&self.superuser_ips));
        errors.nest("meta", self.validate_meta());
        errors.nest("smtp", self.validate_smtp());
        errors.nest("s3", validate_s3(&self.s3));
        errors.nest("backups", self.validate_backups());
        errors.nest("batch", self.validate_batch());
        errors.nest("rateLimits", self.validate_rate_limits());
        errors.into_result()
    }

    fn validate_meta(&self) -> ValidationErrors {
        let meta = &self.meta;
        let mut e = ValidationErrors::new();
        let color = &meta.accent_color;
        if !color.is_empty() && color.chars().count() != 7 {
            e.add(
                "accentColor",
                FieldError::new("validation_length_invalid", "The length must be exactly 7.")
                    .with_params(json!({"min": 7, "max": 7})),
            );
        } else if !color.is_empty()
            && color
                .strip_prefix('#')
                .is_none_or(|hex| !hex.chars().all(|c| c.is_ascii_hexdigit()))
        {
            e.add(
                "accentColor",
                FieldError::new(
                    "validation_is_hex_color",
                    "Must be a valid hexadecimal color code.",
                ),
            );
        }
        for (key, value) in [
            ("appName", &meta.app_name),
            ("senderName", &meta.sender_name),
        ] {
            if value.is_empty() {
                e.add(key, FieldError::required());
            } else if value.chars().count() > 255 {
                e.add(key, length_out_of_range(1, 255));
            }
        }
        if meta.app_url.is_empty() {
            e.add("appURL", FieldError::required());
        } else if !is_url(&meta.app_url) {
            e.add("appURL", not_url());
        }
        if meta.sender_address.is_empty() {
            e.add("senderAddress", FieldError::required());
        } else if !is_email(&meta.sender_address) {
            e.add(
                "senderAddress",
                FieldError::new("validation_is_email", "Must be a valid email address."),
            );
        }
        e
    }

    fn validate_smtp(&self) -> ValidationErrors {
        let smtp = &self.smtp;
        let mut e = ValidationErrors::new();
        if smtp.enabled && smtp.host.is_empty() {
            e.add("host", FieldError::required());
        } else if !smtp.host.is_empty() && !is_host(&smtp.host) {
            e.add("host", not_host());
        }
        if smtp.enabled && smtp.port == 0 {
            e.add("port", FieldError::required());
        } else if smtp.enabled && smtp.port > 65_535 {
            // PocketBase stores any port; one that cannot be dialled is refused here.
            e.add("port", max_error(65_535));
        }
        if !["", "PLAIN", "LOGIN"].contains(&smtp.auth_method.as_str()) {
            e.add(
                "authMethod",
                FieldError::new("validation_in_invalid", "Must be a valid value."),
            );
        }
        if !smtp.local_name.is_empty() && !is_host(&smtp.local_name) {
            e.add("localName", not_host());
        }
        e
    }

    fn validate_backups(&self) -> ValidationErrors {
        let backups = &self.backups;
        let mut e = ValidationErrors::new();
        e.nest("s3", validate_s3(&backups.s3));
        let cron = backups.cron.as_str();
        if !cron.is_empty() && crate::cron::parse(cron).is_err() {
            e.add(
                "cron",
                FieldError::new(
                    "validation_invalid_cron",
                    "Invalid cron expression - must be a valid macro or to have exactly 5 space separated segments.",
                ),
            );
        }
        if !cron.is_empty() && backups.cron_max_keep == 0 {
            e.add("cronMaxKeep", FieldError::required());
        }
        e
    }

    fn validate_batch(&self) -> ValidationErrors {
        let batch = &self.batch;
        let mut e = ValidationErrors::new();
        required_when(
            &mut e,
            batch.enabled,
            "maxRequests",
            batch.max_requests == 0,
        );
        required_when(&mut e, batch.enabled, "timeout", batch.timeout == 0);
        e
    }

    fn validate_rate_limits(&self) -> ValidationErrors {
        let limits = &self.rate_limits;
        let mut rules = ValidationErrors::new();
        for (i, rule) in limits.rules.iter().enumerate() {
            let mut e = ValidationErrors::new();
            if rule.label.is_empty() {
                e.add("label", FieldError::required());
            } else if !valid_rate_label(&rule.label) {
                e.add(
                    "label",
                    FieldError::new("validation_match_invalid", "Must be in a valid format."),
                );
            }
            if !["", "@guest", "@auth"].contains(&rule.audience.as_str()) {
                e.add(
                    "audience",
                    FieldError::new("validation_in_invalid", "Must be a valid value."),
                );
            }
            if rule.duration == 0 {
                e.add("duration", FieldError::required());
            }
            if rule.max_requests == 0 {
                e.add("maxRequests", FieldError::required());
            }
            rules.nest(i.to_string(), e);
        }
        let mut out = ValidationErrors::new();
        if limits.enabled && limits.rules.is_empty() {
            out.add("rules", FieldError::required());
        } else if rules.is_empty() {
            out.nest("rules", conflicting_rules(&limits.rules));
        } else {
            out.nest("rules", rules);
        }
        out.nest("excludedIPs", validate_ip_list(&limits.excluded_ips));
        out
    }
}

/// The first rule whose `label@@audience` is a prefix of an earlier one's
/// (or the reverse) conflicts, as PocketBase reports it.
fn conflicting_rules(rules: &[super::RateLimitRule]) -> ValidationErrors {
    let mut errors = ValidationErrors::new();
    let mut seen: Vec<String> = Vec::with_capacity(rules.len());
    for (i, rule) in rules.iter().enumerate() {
        let key = format!("{}@@{}", rule.label, rule.audience);
        if seen
            .iter()
            .any(|k| k.starts_with(&key) || key.starts_with(k.as_str()))
        {
            let mut e = ValidationErrors::new();
            e.add(
                "label",
                FieldError::new(
                    "validation_conflicting_rate_limit_rule",
                    format!(
                        "Rate limit rule configuration with label {} already exists or conflicts with another rule.",
                        rule.label
                    ),
                )
                .with_params(json!({ "label": rule.label })),
            );
            errors.nest(i.to_string(), e);
            return errors;
        }
        seen.push(key);
    }
    errors
}

/// PocketBase's required fields of an enabled S3 config (files and backups).
fn validate_s3(s3: &super::S3) -> ValidationErrors {
    let mut e = ValidationErrors::new();
    if s3.endpoint.is_empty() {
        required_when(&mut e, s3.enabled, "endpoint", true);
    } else if !is_url(&s3.endpoint) {
        e.add("endpoint", not_url());
    }
    required_when(&mut e, s3.enabled, "bucket", s3.bucket.is_empty());
    required_when(&mut e, s3.enabled, "region", s3.region.is_empty());
    required_when(&mut e, s3.enabled, "accessKey", s3.access_key.is_empty());
    required_when(&mut e, s3.enabled, "secret", s3.secret.is_empty());
    e
}

fn is_email(raw: &str) -> bool {
    let Some((local, domain)) = raw.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !raw.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.contains('.')
        && is_host(domain)
}

/// Errors for the entries of an address list that are neither an address
/// nor a CIDR subnet, keyed by index (PocketBase's code, typo included).
fn validate_ip_list(list: &[String]) -> ValidationErrors {
    let mut errors = ValidationErrors::new();
    for (i, entry) in list.iter().enumerate() {
        if entry.trim().is_empty() {
            errors.add(i.to_string(), FieldError::required());
        } else if parse_ip_or_subnet(entry).is_none() {
            errors.add(
                i.to_string(),
                FieldError::new(
                    "validation_invlaid_ip_or_subnet",
                    "Invalid IP or CIDR subnet.",
                ),
            );
        }
    }
    errors
}

/// PocketBase's label shapes: `tag`, `/path/`, `METHOD /path`,
/// `collection:action`, `*:action` (word characters, `/` and `-` in paths).
fn valid_rate_label(label: &str) -> bool {
    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_');
    let path = |s: &str| {
        s.starts_with('/')
            && s[1..]
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '/' || c == '-')
    };
    if let Some((method, rest)) = label.split_once(' ') {
        return word(method) && path(rest);
    }
    if let Some((collection, action)) = label.split_once(':') {
        return (collection == "*" || word(collection)) && word(action);
    }
    path(label) || word(label)
}
