//! Scheduled jobs: PocketBase's built-in ids and schedules, runnable on
//! demand by superusers; the OTP cleanup really removes expired codes.

use crate::helpers::{spawn_app, status_json};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn built_in_jobs_are_listed_and_run_on_demand() {
    let app = spawn_app().await;

    let (status, jobs) = status_json(app.su(Method::GET, "/api/crons", None).await).await;
    let (run, _) = status_json(
        app.su(Method::POST, "/api/crons/__pbDBOptimize__", None)
            .await,
    )
    .await;
    let (unknown, unknown_body) =
        status_json(app.su(Method::POST, "/api/crons/nope", None).await).await;
    let (guest, _) = status_json(app.request(Method::GET, "/api/crons", None, None).await).await;

    assert_eq!(status, 200);
    assert_eq!(
        jobs,
        json!([
            {"id": "__pbDBOptimize__", "expression": "0 0 * * *"},
            {"id": "__pbMFACleanup__", "expression": "0 * * * *"},
            {"id": "__pbOTPCleanup__", "expression": "0 * * * *"},
            {"id": "__pbLogsCleanup__", "expression": "0 */6 * * *"}
        ])
    );
    assert_eq!(run, 204);
    assert_eq!(unknown, 404);
    assert_eq!(unknown_body["message"], "Missing or invalid cron job.");
    assert!(guest == 401 || guest == 403);
}

#[tokio::test]
async fn the_otp_cleanup_removes_only_expired_codes() {
    if crate::helpers::sqlite_only("seeds its rows through data.db") {
        return;
    }
    let app = spawn_app().await;
    let conn = rusqlite::Connection::open(app.data_dir.join("data.db")).expect("open");
    conn.execute_batch(
        "INSERT INTO _otps (id, collectionRef, recordRef, password, sentTo, created, updated) VALUES
           ('oldotp000000001', '_pb_users_auth_', 'r1', 'x', '', '2020-01-01 00:00:00.000Z', '2020-01-01 00:00:00.000Z'),
           ('newotp000000001', '_pb_users_auth_', 'r1', 'x', '', strftime('%Y-%m-%d %H:%M:%fZ', 'now'), strftime('%Y-%m-%d %H:%M:%fZ', 'now'));",
    )
    .expect("seed otps");

    let (status, _) = status_json(
        app.su(Method::POST, "/api/crons/__pbOTPCleanup__", None)
            .await,
    )
    .await;
    let left: Vec<String> = conn
        .prepare("SELECT id FROM _otps ORDER BY id")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");

    assert_eq!(status, 204);
    assert_eq!(left, vec!["newotp000000001".to_owned()]);
}

#[tokio::test]
async fn backups_cron_in_the_settings_schedules_and_unschedules_the_auto_backup() {
    if crate::helpers::sqlite_only("backups archive the SQLite data dir (pg_dump on PostgreSQL)") {
        return;
    }
    let app = spawn_app().await;
    let ids = |jobs: &serde_json::Value| -> Vec<String> {
        jobs.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|j| j["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };

    let (set, _) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"backups": {"cron": "0 3 * * *", "cronMaxKeep": 2}})),
        )
        .await,
    )
    .await;
    let (_, with_job) = status_json(app.su(Method::GET, "/api/crons", None).await).await;
    let (run, _) = status_json(
        app.su(Method::POST, "/api/crons/__pbAutoBackup__", None)
            .await,
    )
    .await;
    let (_, backups) = status_json(app.su(Method::GET, "/api/backups", None).await).await;
    let (bad, _) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"backups": {"cron": "every day"}})),
        )
        .await,
    )
    .await;
    status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"backups": {"cron": ""}})),
        )
        .await,
    )
    .await;
    let (_, without_job) = status_json(app.su(Method::GET, "/api/crons", None).await).await;

    assert_eq!(set, 200);
    assert!(
        ids(&with_job).contains(&"__pbAutoBackup__".to_owned()),
        "{with_job}"
    );
    assert_eq!(run, 204);
    assert!(
        backups[0]["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("auto_pb_backup_")),
        "{backups}"
    );
    assert_eq!(bad, 400);
    assert!(!ids(&without_job).contains(&"__pbAutoBackup__".to_owned()));
}
