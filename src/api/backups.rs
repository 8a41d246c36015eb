//! `/api/backups` (superusers): list, create, delete, restore, and the
//! scheduled backups of `settings.backups.cron` (keeping the newest
//! `cronMaxKeep`).

use super::error::ApiError;
use super::extract::{AppState, read_object, require_superuser};
use super::respond;
use crate::auth::Principal;
use crate::backups::{self, BackupError};
use crate::validation::{FieldError, ValidationErrors};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Id of the scheduled backup job in `/api/crons`.
pub const BACKUP_JOB: &str = "__pbAutoBackup__";
/// Name prefix of scheduled backups (only these are pruned).
const AUTO_PREFIX: &str = "auto_pb_backup_";

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::InvalidName => name_error(
                "validation_match_invalid",
                "Must be in a valid format [a-z0-9_-].zip.",
            ),
            BackupError::Exists => name_error(
                "validation_backup_name_exists",
                "Backup with the specified name already exists.",
            ),
            BackupError::NotFound => ApiError::not_found_default(),
            BackupError::InvalidArchive(reason) => ApiError::bad_request(format!(
                "Failed to restore the backup: not a valid backup archive ({reason})"
            )),
            BackupError::Io(e) => ApiError::internal(e),
            BackupError::Db(e) => ApiError::internal(e),
        }
    }
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
    who: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_superuser(&who)?;
    let dir = state.config.storage.data_dir.clone();
    let items = web::block(move || backups::list(&dir))
        .await
        .map_err(ApiError::internal)??;
    respond::json(&req, json!(items), false)
}

pub async fn create(
    req: HttpRequest,
    who: Principal,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_superuser(&who)?;
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    let key = match input.get("name") {
        None | Some(Value::Null) => backups::default_key(),
        Some(Value::String(s)) if s.is_empty() => backups::default_key(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(BackupError::InvalidName.into()),
    };
    backups::create(&state.db, &state.config.storage.data_dir, &key, None).await?;
    Ok(respond::no_content())
}

pub async fn delete(
    who: Principal,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_superuser(&who)?;
    let dir = state.config.storage.data_dir.clone();
    web::block(move || backups::delete(&dir, &path))
        .await
        .map_err(ApiError::internal)??;
    Ok(respond::no_content())
}

/// Checks and unpacks the archive (nothing live is touched if it is bad),
/// answers 204, then restarts the app, which swaps the data in.
pub async fn restore(
    who: Principal,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_superuser(&who)?;
    let dir = state.config.storage.data_dir.clone();
    web::block(move || {
        let archive = backups::path_of(&dir, &path)?;
        backups::stage_restore(&dir, &archive, None)
    })
    .await
    .map_err(ApiError::internal)??;
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
    if expression.is_empty() {
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
            let key = format!(
                "{AUTO_PREFIX}{}",
                &backups::default_key()["pb_backup_".len()..]
            );
            match backups::create(&state.db, &dir, &key, None).await {
                Ok(_) => {
                    if let Err(e) = backups::prune(&dir, AUTO_PREFIX, keep) {
                        tracing::warn!(error = %e, "could not prune old backups");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "scheduled backup failed"),
            }
        })
    });
    if let Err(e) = state.crons.add(BACKUP_JOB, &expression, run) {
        tracing::warn!(error = %e, "backups.cron not scheduled");
    }
}
