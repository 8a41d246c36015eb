//! `/api/files/…`: short-lived file tokens, and stored files served with
//! thumbs, downloads, Range/ETag/Last-Modified (actix-files' `NamedFile`)
//! and PocketBase's headers. The file name in the URL is only used to look
//! up the record's stored value; the path on disk is built from that value.

use super::error::ApiError;
use super::extract::{AppState, caller, query_map};
use crate::auth::{self, Principal};
use crate::files::{self, BlobKey, ThumbSize};
use crate::records::{self, StoredFile};
use actix_files::NamedFile;
use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use std::io::Read;
use std::path::PathBuf;

const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; media-src 'self'; style-src 'unsafe-inline'; sandbox";
const CACHE_CONTROL: &str = "max-age=2592000, stale-while-revalidate=86400";

/// `POST /api/files/token`: a file token for the authenticated record.
pub async fn token(who: Principal, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (collection_id, id) = match &who {
        Principal::Anonymous => {
            return Err(ApiError::unauthorized(
                "The request requires valid record authorization token.",
            ));
        }
        Principal::User {
            collection_id, id, ..
        } => (collection_id.clone(), id.clone()),
        Principal::Superuser { id } => (crate::schema::SUPERUSERS_ID.to_owned(), id.clone()),
    };
    let collection = state
        .registry
        .get(&collection_id)
        .ok_or_else(ApiError::not_found_default)?;
    let token = crate::accounts::issue_file_token(&state.db, &collection, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "token": token })))
}

fn truthy(raw: Option<&String>) -> bool {
    raw.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "t" | "true"))
}

/// Types a browser may show inline; everything else is an attachment.
fn inline_type(mime: &str) -> bool {
    let base = mime.split(';').next().unwrap_or("").trim();
    (base.starts_with("image/") && base != "image/svg+xml")
        || base.starts_with("video/")
        || base.starts_with("audio/")
        || base == "application/pdf"
}

/// Protected files: the `?token=` file token's record must pass the view rule.
async fn may_view(
    req: &HttpRequest,
    state: &AppState,
    collection: std::sync::Arc<crate::schema::CompiledCollection>,
    file: &StoredFile,
    token: Option<&String>,
) -> bool {
    let who = match token {
        Some(t) if !t.is_empty() => auth::resolve_file_token(&state.db, &state.registry, t).await,
        _ => Principal::Anonymous,
    };
    // A superuser's file token from outside `superuserIPs` counts as no token.
    let who = if who.is_superuser()
        && !super::client_ip::superuser_allowed(
            &state.settings.get(),
            super::client_ip::of(req, state),
        ) {
        Principal::Anonymous
    } else {
        who
    };
    let who = records::Caller {
        context: "protectedFile",
        ..caller(&who, req)
    };
    records::view(
        &state.db,
        state.registry.snapshot(),
        collection,
        who,
        file.requested_id.clone(),
    )
    .await
    .is_ok()
}

/// `GET /api/files/{collection}/{record}/{filename}`.
pub async fn serve(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (c, id, filename) = path.into_inner();
    let collection = state
        .registry
        .get(&c)
        .ok_or_else(ApiError::not_found_default)?;
    let file = records::find_file(&state.db, collection.clone(), id, filename)
        .await?
        .ok_or_else(ApiError::not_found_default)?;
    let query = query_map(&req)?;
    if file.protected && !may_view(&req, &state, collection, &file, query.get("token")).await {
        return Err(ApiError::not_found_default());
    }
    let key = BlobKey::new(&file.collection_id, &file.record_id, &file.name)?;
    // Only sizes the field lists (plus 100x100) are made; others get the original.
    let thumb = query
        .get("thumb")
        .filter(|t| t.as_str() == files::DEFAULT_THUMB || file.thumbs.contains(t))
        .and_then(|t| ThumbSize::parse(t))
        .filter(|_| files::is_thumbable(&file.name));
    let made = match thumb {
        Some(size) => {
            let name = format!("{size}_{}", key.name());
            match files::thumb(&state.store, key.clone(), size).await {
                Ok(path) => Some((path, name)),
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "thumb failed; serving the original");
                    None
                }
            }
        }
        None => None,
    };
    let store = state.store.clone();
    let (path, served_name, mime) = files::run_blocking(move || {
        let (path, name) = match made {
            Some(made) => made,
            None => (store.local_path(&key)?, key.name().to_owned()),
        };
        let mime = sniff_file(&path)?;
        Ok((path, name, mime))
    })
    .await?;
    let named = NamedFile::open_async(&path)
        .await
        .map_err(|_| ApiError::not_found_default())?;
    let disposition = if truthy(query.get("download")) || !inline_type(&mime) {
        DispositionType::Attachment
    } else {
        DispositionType::Inline
    };
    let content_type = mime
        .parse()
        .unwrap_or(actix_web::mime::APPLICATION_OCTET_STREAM);
    let mut response = named
        .set_content_type(content_type)
        .set_content_disposition(ContentDisposition {
            disposition,
            parameters: vec![DispositionParam::Filename(served_name)],
        })
        .into_response(&req);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static(CACHE_CONTROL),
    );
    Ok(response)
}

fn sniff_file(path: &PathBuf) -> Result<String, files::FilesError> {
    let mut head = Vec::with_capacity(files::SNIFF_BYTES);
    std::fs::File::open(path)?
        .take(files::SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(files::sniff(&head).0)
}
