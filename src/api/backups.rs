//! `/api/backups` (superusers): list, create, delete, restore, and the
//! scheduled backups of `settings.backups.cron` (keeping the newest
//! `cronMaxKeep`).

use super::error::ApiError;
use super::extract::{AppState, JsonBody, Superuser, null_as_empty};
use super::respond;
use crate::backups::{self, BackupError};
use crate::validation::{FieldError, ValidationErrors};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Id of the scheduled backup job in `/api/crons`.
pub const BACKUP_JOB: &str = "__pbAutoBackup__";
/// Name prefix of scheduled backups (only these are pruned).
const AUTO_PREFIX: &str = "auto_pb_backup_";

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::InvalidName => {
                name_error("validation_match_invalid", "Must be in a valid format.")
            }
            BackupError::Exists => name_error(
                "validation_backup_name_exists",
                "The backup file name is invalid or already exists.",
            ),
            BackupError::NotFound => ApiError::not_found_default(),
            BackupError::InvalidArchive(reason) => ApiError::bad_request(format!(
                "Failed to restore the backup: not a valid backup archive ({reason})"
            )),
            BackupError::Busy => ApiError::bad_request(
                "Try again later - another backup/restore process has already been started.",
            ),
            BackupError::InUse => {
                ApiError::bad_request("The backup is currently being used and cannot be deleted.")
            }
            BackupError::Remote(raw) => ApiError::bad_request(format!(
                "Failed to use the S3 backups storage. Raw error: \n{raw}"
            )),
            BackupError::Io(e) => ApiError::internal(e),
            BackupError::Db(e) => ApiError::from(e),
        }
    }
}

/// The answer of every backups endpoint on PostgreSQL (a 400).
pub const NOT_ON_POSTGRES: &str = "Backups archive the embedded SQLite database; with \
     database.url on PostgreSQL use pg_dump / pg_restore or your provider's backups.";

/// Backups are zip archives of the SQLite data dir: refused on PostgreSQL.
fn sqlite_only(state: &AppState) -> Result<(), ApiError> {
    match state.db.dialect() {
        crate::rules::Dialect::Sqlite => Ok(()),
        crate::rules::Dialect::Postgres => Err(ApiError::bad_request(NOT_ON_POSTGRES)),
    }
}

/// Where the archives are: the `backups.s3` bucket when enabled, else
/// `DATA_DIR/backups/`.
fn store_of(state: &AppState) -> Result<backups::Store, BackupError> {
    let settings = state.settings.get();
    let s3 = &settings.backups.s3;
    let config = s3.enabled.then(|| s3.storage_config());
    backups::Store::open(&state.config.storage.data_dir, config.as_ref())
}

/// Runs blocking backup work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(web::block(f).await.map_err(ApiError::internal)??)
}

/// PocketBase's answer to deleting a backup that is not there (a 400).
const DELETED: &str = "Invalid or already deleted backup file.";
/// PocketBase's answer to restoring a backup that is not there (a 400).
const NO_SUCH_BACKUP: &str = "Missing or invalid backup file.";

/// A missing archive as PocketBase answers it on delete and restore: a 400
/// with `message` (downloads stay a 404, as its file server answers).
fn missing_as<T>(result: Result<T, BackupError>, message: &'static str) -> Result<T, ApiError> {
    result.map_err(|e| match e {
        BackupError::NotFound => ApiError::bad_request(message),
        e => e.into(),
    })
}

fn name_error(code: &'static str, message: &'static str) -> ApiError {
    let mut errors = ValidationErrors::new();
    errors.add("name", FieldError::new(code, message));
    ApiError::validation(
        "An error occurred while validating the submitted data.",
        &errors,
    )
}

pub async fn list(
    req: HttpRequest,
    _: Superuser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    sqlite_only(&state)?;
    let store = store_of(&state)?;
    let items = blocking(move || store.list()).await?;
    respond::json(&req, json!(items), false)
}

/// `{name?}`: the archive's key (a fresh one when empty).
#[derive(Debug, Deserialize)]
pub struct CreateBody {
    #[serde(default, deserialize_with = "null_as_empty")]
    name: String,
}

pub async fn create(
    _: Superuser,
    body: JsonBody<CreateBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    sqlite_only(&state)?;
    let name = body.bind()?.name;
    let key = if name.is_empty() {
        backups::default_key("pb_backup_", &state.settings.get().meta.app_name)
    } else {
        name
    };
    let store = store_of(&state)?;
    backups::create_in(
        &state.db,
        &state.config.storage.data_dir,
        &store,
        &key,
        None,
    )
    .await?;
    Ok(respond::no_content())
}

pub async fn delete(
    _: Superuser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    sqlite_only(&state)?;
    let store = store_of(&state)?;
    let dir = state.config.storage.data_dir.clone();
    let deleted = web::block(move || backups::delete(&dir, &store, &path))
        .await
        .map_err(ApiError::internal)?;
    missing_as(deleted, DELETED)?;
    Ok(respond::no_content())
}

/// Largest accepted archive upload.
const MAX_UPLOAD_BYTES: u64 = 16 * 1024 * 1024 * 1024;

/// `POST /api/backups/upload`: a multipart `file` (zip), checked like a
/// restore before it is stored under its own name.
pub async fn upload(
    req: HttpRequest,
    _: Superuser,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    sqlite_only(&state)?;
    let keep = |name: &str| (name == "file").then_some(MAX_UPLOAD_BYTES);
    let limit = usize::try_from(MAX_UPLOAD_BYTES).unwrap_or(usize::MAX);
    let body = super::multipart::read_body(&req, body, limit, Some(&state.store), &keep).await?;
    let Some(upload) = body.uploads.into_iter().find(|u| u.key == "file") else {
        let mut errors = ValidationErrors::new();
        errors.add("file", FieldError::required());
        return Err(ApiError::validation(
            "An error occurred while validating the submitted data.",
            &errors,
        ));
    };
    let dir = state.config.storage.data_dir.clone();
    let store = store_of(&state)?;
    web::block(move || {
        let key = upload.file.original_name.clone();
        backups::import(&dir, &store, &key, upload.file.path())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e {
        BackupError::InvalidName => {
            let mut errors = ValidationErrors::new();
            errors.add(
                "file",
                FieldError::new(
                    "validation_invalid_backup_name",
                    "The file name must be in a valid format [a-z0-9_-].zip.",
                ),
            );
            ApiError::validation(
                "An error occurred while validating the submitted data.",
                &errors,
            )
        }
        BackupError::Exists => {
            let mut errors = ValidationErrors::new();
            errors.add(
                "file",
                FieldError::new(
                    "validation_backup_name_exists",
                    "Backup file with the specified name already exists.",
                ),
            );
            ApiError::validation(
                "An error occurred while validating the submitted data.",
                &errors,
            )
        }
        other => other.into(),
    })?;
    Ok(respond::no_content())
}

/// `GET /api/backups/{key}?token=`: the archive, for a superuser's file
/// token only (an Authorization header is not enough, as in PocketBase).
pub async fn download(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = super::extract::query_map(&req)?;
    let token = query.get("token").cloned().unwrap_or_default();
    let who = crate::auth::resolve_file_token(&state.db, &state.registry, &token).await;
    let listed = state
        .settings
        .get()
        .allows_superuser_from(super::client_ip::of(&req, &state));
    if !who.is_superuser() || !listed {
        return Err(ApiError::forbidden(
            "Insufficient permissions to access the resource.",
        ));
    }
    sqlite_only(&state)?;
    let key = path.into_inner();
    let store = store_of(&state)?;
    let head_only = req.method() == actix_web::http::Method::HEAD;
    let found = {
        let key = key.clone();
        blocking(move || store.download(&key, head_only)).await?
    };
    let disposition = actix_web::http::header::ContentDisposition {
        disposition: actix_web::http::header::DispositionType::Attachment,
        parameters: vec![actix_web::http::header::DispositionParam::Filename(key)],
    };
    match found {
        backups::Download::File(file) => {
            let named = actix_files::NamedFile::open_async(&file)
                .await
                .map_err(|_| ApiError::not_found_default())?;
            Ok(named
                .set_content_type(actix_web::mime::APPLICATION_OCTET_STREAM)
                .set_content_disposition(disposition)
                .into_response(&req))
        }
        backups::Download::Stream(size, stream) => {
            let mut response = HttpResponse::Ok();
            response
                .content_type(actix_web::mime::APPLICATION_OCTET_STREAM)
                .insert_header(disposition);
            // A sized body: actix sends its length and, for HEAD (an empty
            // stream here), no bytes.
            Ok(response.no_chunking(size).streaming(stream))
        }
    }
}

/// Checks and unpacks the archive (nothing live is touched if it is bad),
/// answers 204, then restarts the app, which swaps the data in.
pub async fn restore(
    _: Superuser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    sqlite_only(&state)?;
    let dir = state.config.storage.data_dir.clone();
    let store = store_of(&state)?;
    let staged = web::block(move || backups::stage_restore_from(&dir, &store, &path, None))
        .await
        .map_err(ApiError::internal)?;
    missing_as(staged, NO_SUCH_BACKUP)?;
    let lifecycle = state.lifecycle.clone();
    actix_web::rt::spawn(async move {
        // Let the 204 reach the client before the server stops.
        tokio::time::sleep(Duration::from_millis(200)).await;
        lifecycle.request_restart();
    });
    Ok(respond::no_content())
}

/// (Re)schedules the automatic backups from the current settings.
pub fn schedule(state: &web::Data<AppState>) {
    let settings = state.settings.get();
    let expression = settings.backups.cron.trim().to_owned();
    // No archives of PostgreSQL: the job is not scheduled (never a failing loop).
    if expression.is_empty() || state.db.dialect() == crate::rules::Dialect::Postgres {
        state.crons.remove(BACKUP_JOB);
        return;
    }
    let keep = usize::try_from(settings.backups.cron_max_keep).unwrap_or(usize::MAX);
    let weak = Arc::downgrade(&state.clone().into_inner());
    let run: crate::cron::JobFn = Arc::new(move || {
        let weak = weak.clone();
        Box::pin(async move {
            let Some(state) = weak.upgrade() else { return };
            let dir = state.config.storage.data_dir.clone();
            let key = backups::default_key(AUTO_PREFIX, &state.settings.get().meta.app_name);
            let created = async {
                let store = store_of(&state)?;
                backups::create_and_prune(&state.db, &dir, store, &key, AUTO_PREFIX, keep).await
            }
            .await;
            if let Err(e) = created {
                tracing::warn!(error = %e, "scheduled backup failed");
                let details = format!("Failed to create/upload automated backup. Raw error:\n{e}");
                let sent = super::mailer::alert_superusers(&state, "Autobackup failure", &details);
                if let Err(e) = sent.await {
                    tracing::warn!(error = %e, "backup failure alert not sent");
                }
            }
        })
    });
    if let Err(e) = state.crons.add(BACKUP_JOB, &expression, run) {
        tracing::warn!(error = %e, "backups.cron not scheduled");
    }
}
