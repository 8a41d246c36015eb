//! Request bodies that may carry uploads. Multipart forms: text parts get
//! PocketBase's inference, `@jsonPayload` parts are merged as JSON (in order,
//! without inference), file parts stream into staging files with the caller's
//! per-part limit applied as bytes arrive. The whole body is bounded by
//! `limit` while reading (413 past it). Other bodies go to `read_object`.

use super::error::{ApiError, GENERIC_MESSAGE};
use super::extract::{form_to_object, read_object};
use crate::files::{StagingFile, Store};
use crate::records::Upload;
use actix_multipart::Multipart;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;
use serde_json::{Map, Value};

/// Most file parts one request may stage (each is a temp file until the
/// request ends); more is refused rather than creating files without bound.
pub const MAX_FILE_PARTS: usize = 1000;

/// A parsed body: the JSON object and the files that came with it.
#[derive(Default)]
pub struct Body {
    pub object: Map<String, Value>,
    pub uploads: Vec<Upload>,
}

/// Whether the request carries a multipart body.
pub fn is_multipart(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        })
}

fn malformed<E>(_: E) -> ApiError {
    ApiError::bad_request(GENERIC_MESSAGE)
}

/// Reads any supported body. File parts are kept only when `store` is given
/// and `keep(part name)` says how many bytes to write (`None`: skip the part).
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    store: Option<&Store>,
    keep: &dyn Fn(&str) -> Option<u64>,
) -> Result<Body, ApiError> {
    if !is_multipart(req) {
        let object = read_object(req, payload, limit).await?;
        return Ok(Body {
            object,
            uploads: Vec::new(),
        });
    }
    let mut form = Multipart::new(req.headers(), payload);
    let mut total = 0usize;
    let mut count = |n: usize| -> Result<(), ApiError> {
        total += n;
        if total > limit {
            Err(ApiError::too_large())
        } else {
            Ok(())
        }
    };
    let mut pairs = Vec::new();
    let mut payloads = Vec::new();
    let mut uploads = Vec::new();
    while let Some(part) = form.next().await {
        let mut part = part.map_err(malformed)?;
        let name = part.name().unwrap_or_default().to_owned();
        let filename = part
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            // An empty file input sends `filename=""`: a plain (empty) value, as in Go.
            .filter(|f| !f.is_empty())
            .map(str::to_owned);
        if let Some(filename) = filename {
            let target = store.zip(keep(&name));
            if target.is_some() && uploads.len() >= MAX_FILE_PARTS {
                return Err(ApiError::bad_request(format!(
                    "Too many files in one request (at most {MAX_FILE_PARTS})."
                )));
            }
            let mut staging = match target {
                Some((store, max)) => Some(
                    StagingFile::create(store.staging_dir(), &filename, max)
                        .await
                        .map_err(ApiError::internal)?,
                ),
                None => None,
            };
            while let Some(chunk) = part.next().await {
                let chunk = chunk.map_err(malformed)?;
                count(chunk.len())?;
                if let Some(staging) = staging.as_mut() {
                    staging.write(&chunk).await.map_err(ApiError::internal)?;
                }
            }
            if let Some(staging) = staging {
                let file = staging.finish().await.map_err(ApiError::internal)?;
                uploads.push(Upload { key: name, file });
            }
            continue;
        }
        let mut bytes = web::BytesMut::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(malformed)?;
            count(chunk.len())?;
            bytes.extend_from_slice(&chunk);
        }
        if name == "@jsonPayload" {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => payloads.push(map),
                _ => return Err(ApiError::bad_request(GENERIC_MESSAGE)),
            }
        } else {
            let text = String::from_utf8(bytes.to_vec()).map_err(malformed)?;
            pairs.push((name, text));
        }
    }
    let mut object = form_to_object(pairs);
    for payload in payloads {
        object.extend(payload);
    }
    Ok(Body { object, uploads })
}
