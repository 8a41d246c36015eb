//! Every settings key, one by one: PocketBase's names survive a round trip
//! through the dashboard's GET → PATCH, each key is either applied by the
//! feature that reads it or refused with a field error (and nothing stored),
//! and bad values get PocketBase 0.40.6's codes.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

async fn settings(app: &TestApp) -> Value {
    let (status, body) = status_json(app.su(Method::GET, "/api/settings", None).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn patch(app: &TestApp, body: Value) -> (u16, Value) {
    status_json(app.su(Method::PATCH, "/api/settings", Some(body)).await).await
}

/// Dotted paths of every leaf (arrays count as leaves).
fn leaf_paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_paths(v, &path, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

/// Where each key takes effect, or why it is refused. A key added to the
/// settings without an entry here fails `every_key_is_accounted_for`.
const KEYS: &[(&str, &str)] = &[
    (
        "superuserIPs",
        "applied: superuser requests from other addresses get 403",
    ),
    ("meta.appName", "applied: mail templates' {APP_NAME}"),
    ("meta.appURL", "applied: links in mails ({APP_URL})"),
    ("meta.senderName", "applied: the From name of every mail"),
    (
        "meta.senderAddress",
        "applied: the From address of every mail",
    ),
    (
        "meta.hideControls",
        "dashboard preference (PocketBase's server ignores it too)",
    ),
    (
        "meta.accentColor",
        "dashboard preference (PocketBase's server ignores it too)",
    ),
    ("smtp.enabled", "applied: mails go over SMTP only when on"),
    ("smtp.host", "applied: mailer"),
    ("smtp.port", "applied: mailer"),
    ("smtp.username", "applied: mailer AUTH"),
    (
        "smtp.authMethod",
        "applied: PLAIN or LOGIN, anything else refused",
    ),
    ("smtp.tls", "applied: implicit TLS vs STARTTLS"),
    ("smtp.localName", "applied: the EHLO name"),
    (
        "s3.enabled",
        "applied: files live in this bucket (probed before saving)",
    ),
    ("s3.bucket", "applied: the files bucket"),
    ("s3.region", "applied: the files bucket"),
    ("s3.endpoint", "applied: the files bucket"),
    ("s3.accessKey", "applied: the files bucket"),
    ("s3.forcePathStyle", "applied: the files bucket"),
    ("backups.cron", "applied: the automatic backup job"),
    (
        "backups.cronMaxKeep",
        "applied: older automatic backups are pruned",
    ),
    (
        "backups.s3.enabled",
        "applied: backups live in this bucket (probed before saving)",
    ),
    ("backups.s3.bucket", "applied: the backups bucket"),
    ("backups.s3.region", "applied: the backups bucket"),
    ("backups.s3.endpoint", "applied: the backups bucket"),
    ("backups.s3.accessKey", "applied: the backups bucket"),
    ("backups.s3.forcePathStyle", "applied: the backups bucket"),
    ("batch.enabled", "applied: /api/batch answers 403 when off"),
    ("batch.maxRequests", "applied: longer batches get 400"),
    ("batch.timeout", "applied: the batch transaction's deadline"),
    ("batch.maxBodySize", "applied: the batch body limit"),
    ("rateLimits.enabled", "applied: the rate limiter"),
    ("rateLimits.rules", "applied: the rate limiter"),
    ("rateLimits.excludedIPs", "applied: the rate limiter"),
    (
        "trustedProxy.headers",
        "applied: client IP for logs, limits, superuserIPs",
    ),
    (
        "trustedProxy.useLeftmostIP",
        "applied: leftmost vs rightmost forwarded address",
    ),
    (
        "logs.maxDays",
        "applied: retention; 0 turns request logs off",
    ),
    ("logs.minLevel", "applied: lower levels are not written"),
    ("logs.logIP", "applied: remoteIP/userIP in request logs"),
    (
        "openapi.public",
        "applied: false refuses /api/openapi.json to non-superusers",
    ),
    ("logs.logAuthId", "applied: authId in request logs"),
    (
        "logs.maxDataSize",
        "applied: a log's data is cut to it (0 = ~16 KiB)",
    ),
];

#[tokio::test]
async fn every_key_is_accounted_for_and_no_other_is_returned() {
    let app = spawn_app().await;

    let body = settings(&app).await;
    let mut paths = Vec::new();
    leaf_paths(&body, "", &mut paths);

    let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
    for path in &paths {
        assert!(
            known.contains(&path.as_str()),
            "{path} is neither applied nor refused"
        );
    }
    for key in known {
        assert!(
            paths.iter().any(|p| p == key),
            "{key} missing from GET /api/settings: {body}"
        );
    }
}

#[tokio::test]
async fn settings_survive_the_dashboards_get_then_patch_round_trip() {
    let app = spawn_app().await;
    let (status, body) = patch(
        &app,
        json!({
            "meta": {"appName": "Shop", "hideControls": true, "accentColor": "#ff0000"},
            "smtp": {"host": "mail.example.com", "port": 2525, "username": "u", "password": "hunter2",
                     "authMethod": "LOGIN", "tls": true, "localName": "relay.example.com"},
            "s3": {"bucket": "b", "region": "r", "endpoint": "https://s3.example.com", "accessKey": "k",
                   "secret": "s3-secret", "forcePathStyle": true},
            "backups": {"cron": "0 3 * * *", "cronMaxKeep": 7, "s3": {"bucket": "bb", "secret": "bs3"}},
            "batch": {"enabled": true, "maxRequests": 10, "timeout": 5, "maxBodySize": 1000},
            "trustedProxy": {"headers": ["X-Forwarded-For"], "useLeftmostIP": true},
            "logs": {"maxDays": 9, "minLevel": -4, "logIP": false, "logAuthId": true, "maxDataSize": 4096},
            "rateLimits": {"excludedIPs": ["10.0.0.0/8"]},
            "superuserIPs": []
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let before = settings(&app).await;
    let (status, echoed) = patch(&app, before.clone()).await;
    let after = settings(&app).await;

    assert_eq!(status, 200, "{echoed}");
    assert_eq!(after, before, "PATCHing GET's answer back changes nothing");
    assert_eq!(
        before["trustedProxy"]["useLeftmostIP"], true,
        "PocketBase's casing: {before}"
    );
    assert!(
        before["trustedProxy"].get("useLeftmostIp").is_none(),
        "{before}"
    );
    for secret in ["hunter2", "s3-secret", "bs3"] {
        assert!(
            !after.to_string().contains(secret),
            "{secret} is write-only"
        );
    }
}

/// The stored settings row, as JSON (plain: this test app has no key).
fn stored(app: &TestApp) -> Value {
    let conn = rusqlite::Connection::open(app.data_dir.join("data.db")).expect("open");
    let text: String = conn
        .query_row("SELECT value FROM _params WHERE id = 'settings'", [], |r| {
            r.get(0)
        })
        .expect("settings row");
    serde_json::from_str(&text).expect("plain JSON")
}

#[tokio::test]
async fn secrets_are_never_returned_and_kept_when_a_patch_omits_them() {
    if crate::helpers::sqlite_only("reads the stored settings through data.db") {
        return;
    }
    let app = spawn_app().await;
    let secrets = json!({"smtp": {"password": "pw-1"}, "s3": {"secret": "s3-1"}, "backups": {"s3": {"secret": "bs3-1"}}});
    let (status, body) = patch(&app, secrets).await;
    assert_eq!(status, 200, "{body}");
    let shown = settings(&app).await;

    let mut echoed = shown.clone();
    echoed["smtp"]["host"] = json!("mail.example.com");
    let (status, body) = patch(&app, echoed).await;
    let (_, emptied) = patch(&app, json!({"smtp": {"password": ""}})).await;
    let row = stored(&app);

    assert_eq!(status, 200, "{body}");
    for (section, key) in [("smtp", "password"), ("s3", "secret")] {
        assert!(
            shown[section].get(key).is_none(),
            "{section}.{key} never returned: {shown}"
        );
    }
    assert!(shown["backups"]["s3"].get("secret").is_none(), "{shown}");
    assert!(emptied["smtp"].get("password").is_none(), "{emptied}");
    assert!(
        row["smtp"]["password"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "an explicit empty value clears it: {row}"
    );
    assert_eq!(row["s3"]["secret"], "s3-1", "kept when omitted");
    assert_eq!(row["backups"]["s3"]["secret"], "bs3-1", "kept when omitted");
    assert_eq!(row["smtp"]["host"], "mail.example.com");
}

#[tokio::test]
async fn bad_values_get_pocketbases_field_errors_and_store_nothing() {
    let app = spawn_app().await;
    // Port 1 on loopback refuses at once: the bucket cannot be reached.
    let s3_full = json!({"enabled": true, "bucket": "b", "region": "r", "endpoint": "http://127.0.0.1:1", "accessKey": "k", "secret": "s", "forcePathStyle": true});
    let rule = |label: &str| json!({"label": label, "duration": 1, "maxRequests": 1});
    let cases = [
        (
            json!({"s3": s3_full.clone()}),
            "s3.enabled",
            "validation_s3_unreachable",
            "a bucket that fails the probe is not saved",
        ),
        (
            json!({"backups": {"s3": s3_full}}),
            "backups.s3.enabled",
            "validation_s3_unreachable",
            "a backups bucket that fails the probe is not saved",
        ),
        (
            json!({"s3": {"endpoint": "nope"}}),
            "s3.endpoint",
            "validation_is_url",
            "endpoint checked even when off",
        ),
        (
            json!({"smtp": {"authMethod": "CRAM-MD5"}}),
            "smtp.authMethod",
            "validation_in_invalid",
            "PLAIN or LOGIN only",
        ),
        (
            json!({"smtp": {"localName": "bad host!"}}),
            "smtp.localName",
            "validation_is_host",
            "EHLO name",
        ),
        (
            json!({"smtp": {"host": "not a host!"}}),
            "smtp.host",
            "validation_is_host",
            "SMTP host",
        ),
        (
            json!({"smtp": {"enabled": true, "port": 0}}),
            "smtp.port",
            "validation_required",
            "port when enabled",
        ),
        (
            json!({"smtp": {"port": -1}}),
            "smtp.port",
            "validation_min_greater_equal_than_required",
            "negative port",
        ),
        (
            json!({"meta": {"accentColor": "red"}}),
            "meta.accentColor",
            "validation_length_invalid",
            "7 characters",
        ),
        (
            json!({"meta": {"accentColor": "#12345g"}}),
            "meta.accentColor",
            "validation_is_hex_color",
            "hex",
        ),
        (
            json!({"meta": {"senderName": ""}}),
            "meta.senderName",
            "validation_required",
            "sender name",
        ),
        (
            json!({"meta": {"appURL": "notaurl"}}),
            "meta.appURL",
            "validation_is_url",
            "app URL",
        ),
        (
            json!({"meta": {"senderAddress": "x"}}),
            "meta.senderAddress",
            "validation_is_email",
            "sender",
        ),
        (
            json!({"logs": {"maxDataSize": -1}}),
            "logs.maxDataSize",
            "validation_min_greater_equal_than_required",
            "negative size",
        ),
        (
            json!({"logs": {"maxDataSize": 9_007_199_254_740_992_u64}}),
            "logs.maxDataSize",
            "validation_max_less_equal_than_required",
            "past 2^53-1",
        ),
        (
            json!({"logs": {"maxDays": -1}}),
            "logs.maxDays",
            "validation_min_greater_equal_than_required",
            "negative days",
        ),
        (
            json!({"logs": {"minLevel": 9_007_199_254_740_993_u64}}),
            "logs.minLevel",
            "validation_max_less_equal_than_required",
            "huge level",
        ),
        (
            json!({"batch": {"enabled": true, "maxRequests": 0}}),
            "batch.maxRequests",
            "validation_required",
            "batch size when on",
        ),
        (
            json!({"batch": {"timeout": -1}}),
            "batch.timeout",
            "validation_min_greater_equal_than_required",
            "negative timeout",
        ),
        (
            json!({"batch": {"maxBodySize": -1}}),
            "batch.maxBodySize",
            "validation_min_greater_equal_than_required",
            "negative body size",
        ),
        (
            json!({"rateLimits": {"enabled": true, "rules": []}}),
            "rateLimits.rules",
            "validation_required",
            "limiter with no rules",
        ),
        (
            json!({"rateLimits": {"rules": [rule("/api/"), rule("/api/")]}}),
            "rateLimits.rules.1.label",
            "validation_conflicting_rate_limit_rule",
            "duplicate label",
        ),
        (
            json!({"rateLimits": {"rules": [{"label": "/api/", "duration": -1, "maxRequests": 1}]}}),
            "rateLimits.rules.0.duration",
            "validation_min_greater_equal_than_required",
            "negative window",
        ),
        (
            json!({"rateLimits": {"rules": [rule("a b c")]}}),
            "rateLimits.rules.0.label",
            "validation_match_invalid",
            "label shape",
        ),
        (
            json!({"backups": {"cron": "bad"}}),
            "backups.cron",
            "validation_invalid_cron",
            "cron",
        ),
        (
            json!({"backups": {"cron": "0 3 * * *", "cronMaxKeep": 0}}),
            "backups.cronMaxKeep",
            "validation_required",
            "keep with a schedule",
        ),
        (
            json!({"superuserIPs": ["localhost"]}),
            "superuserIPs.0",
            "validation_invlaid_ip_or_subnet",
            "address list",
        ),
    ];
    let original = settings(&app).await;

    for (body, path, code, why) in cases {
        let (status, answer) = patch(&app, body.clone()).await;

        assert_eq!(status, 400, "{why}: {body} → {answer}");
        assert_eq!(
            answer["message"], "An error occurred while saving the new settings.",
            "{why}"
        );
        let error = path.split('.').fold(&answer["data"], |v, k| &v[k]);
        assert_eq!(error["code"], code, "{why}: {body} → {answer}");
        assert!(
            error["message"].as_str().is_some_and(|m| m.ends_with('.')),
            "{why}: {error}"
        );
        assert_eq!(settings(&app).await, original, "{why}: nothing stored");
    }
}

#[tokio::test]
async fn wrongly_typed_values_are_a_plain_400_and_store_nothing() {
    let app = spawn_app().await;
    let original = settings(&app).await;
    for body in [
        json!({"meta": {"appName": 5}}),
        json!({"logs": {"maxDays": 1.5}}),
        json!({"smtp": "on"}),
        json!({"superuserIPs": "10.0.0.1"}),
    ] {
        let (status, answer) = patch(&app, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["data"], json!({}), "{body}");
        assert_eq!(settings(&app).await, original, "{body}: nothing stored");
    }
}

#[tokio::test]
async fn use_leftmost_ip_picks_the_first_forwarded_address() {
    let app = spawn_app().await;
    let health = || {
        app.client
            .get(format!("{}/api/health", app.base))
            .header("Authorization", app.superuser_token.clone())
            .header("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
            .send()
    };
    for (leftmost, expected) in [(true, "198.51.100.1"), (false, "203.0.113.9")] {
        let (status, body) = patch(
            &app,
            json!({"trustedProxy": {"headers": ["X-Forwarded-For"], "useLeftmostIP": leftmost}}),
        )
        .await;
        assert_eq!(status, 200, "{body}");

        let (_, answer) = status_json(health().await.expect("sent")).await;

        assert_eq!(
            answer["data"]["realIP"], expected,
            "useLeftmostIP {leftmost}: {answer}"
        );
    }
}

#[tokio::test]
async fn logs_max_data_size_cuts_the_stored_log_data() {
    let app = spawn_app().await;
    let (status, body) = patch(&app, json!({"logs": {"maxDataSize": 120}})).await;
    assert_eq!(status, 200, "{body}");

    let _ = app
        .request(
            Method::GET,
            &format!("/api/health?marker={}", "m".repeat(200)),
            None,
            None,
        )
        .await;

    let mut found = Value::Null;
    for _ in 0..40 {
        let (_, list) = status_json(app.su(Method::GET, "/api/logs?perPage=100", None).await).await;
        if let Some(item) = list["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|i| i["message"].as_str().is_some_and(|m| m.contains("marker=")))
        }) {
            found = item.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let data = &found["data"];
    assert_eq!(data["__pb_truncated__"], true, "cut and marked: {found}");
    assert!(
        data.get("url").is_none(),
        "the long url did not fit: {data}"
    );
    assert!(data.to_string().len() < 200, "{data}");
}

#[tokio::test]
async fn with_smtp_off_mail_goes_to_the_sendmail_program_as_pocketbase_does() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().to_path_buf();
    let script = |name: &str, body: &str| {
        let path = out.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path.to_string_lossy().into_owned()
    };
    let ok = script(
        "sendmail-ok",
        &format!("echo \"$@\" > {0}/args; cat > {0}/mail", out.display()),
    );
    let failing = script(
        "sendmail-fail",
        "cat > /dev/null; echo 'no relay' >&2; exit 75",
    );
    for (program, expected, why) in [
        (ok.clone(), 204, "delivered through the program"),
        (failing, 400, "a failing program is reported"),
        (
            "off".to_owned(),
            400,
            "sendmail turned off: nothing to send with",
        ),
        (
            "/nonexistent/sendmail".to_owned(),
            400,
            "a missing program is reported",
        ),
    ] {
        let configured = program.clone();
        let app = crate::helpers::spawn_app_configured(move |c| c.mail.sendmail = configured).await;

        let (status, body) = status_json(
            app.su(
                Method::POST,
                "/api/settings/test/email",
                Some(json!({"email": "to@example.com", "template": "verification"})),
            )
            .await,
        )
        .await;

        assert_eq!(status, expected, "{why}: {body}");
    }
    let args = std::fs::read_to_string(out.join("args")).expect("sendmail ran");
    let mail = std::fs::read_to_string(out.join("mail")).expect("message piped");
    assert_eq!(
        args.trim(),
        "-i -f support@example.com -- to@example.com",
        "{args}"
    );
    assert!(mail.contains("To: to@example.com"), "{mail}");
    assert!(mail.contains("Subject: "), "{mail}");
}

#[tokio::test]
async fn a_failed_automatic_backup_is_mailed_to_every_superuser() {
    if crate::helpers::sqlite_only("backups archive the SQLite data dir (pg_dump on PostgreSQL)") {
        return;
    }
    let (app, sink) = crate::helpers::spawn_app_with_mail().await;
    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/collections/_superusers/records",
            Some(json!({"email": "second@example.com", "password": "Passw0rd!456", "passwordConfirm": "Passw0rd!456"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = patch(&app, json!({"backups": {"cron": "0 3 * * *"}})).await;
    assert_eq!(status, 200, "{body}");
    // A file where the backups folder belongs: the backup cannot be written.
    let backups = app.data_dir.join("backups");
    let _ = std::fs::remove_dir_all(&backups);
    std::fs::write(&backups, b"not a folder").expect("blocker");

    let (run, _) = status_json(
        app.su(Method::POST, "/api/crons/__pbAutoBackup__", None)
            .await,
    )
    .await;

    assert_eq!(run, 204);
    for to in [crate::helpers::SU_EMAIL, "second@example.com"] {
        let mail = sink
            .wait_for(to, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no alert for {to}"));
        assert_eq!(
            mail.subject().as_deref(),
            Some("[Acme system alert] Autobackup failure")
        );
        assert!(
            mail.decoded()
                .contains("Failed to create/upload automated backup"),
            "{}",
            mail.decoded()
        );
    }
}
