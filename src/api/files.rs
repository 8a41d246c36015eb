//! `/api/files/…`: short-lived file tokens, and stored files served with
//! thumbs, downloads, Range/ETag/Last-Modified and PocketBase's headers:
//! local files through actix-files' `NamedFile`, objects in a bucket
//! streamed with the same answers (only the requested range is fetched). The file name in the URL is only used to look
//! up the record's stored value; the path on disk is built from that value.

use super::error::ApiError;
use super::extract::{AppState, caller, query_map};
use crate::auth::{self, Principal};
use crate::files::Opened;
use crate::files::{self, BlobKey, FilesError, ThumbSize};
use crate::records::{self, StoredFile};
use actix_files::{HttpRange, NamedFile};
use actix_web::body::{BodySize, BoxBody, MessageBody, SizedStream};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::json;
use std::io::{Read, Seek};

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
        && !state
            .settings
            .get()
            .allows_superuser_from(super::client_ip::of(req, state))
    {
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
    // One backend for the whole request, even if the settings switch it meanwhile.
    let store = state.storage.current();
    let (found, key, served_name) = find(&state, &store, key, thumb).await?;
    let download = truthy(query.get("download"));
    let mut response = match found {
        Found::Local(local) => serve_local(&req, local, served_name, download),
        Found::Object(info) => {
            let object = Object { store, key, info };
            serve_object(&req, object, served_name, download).await?
        }
    };
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

fn disposition(mime: &str, download: bool, served_name: String) -> ContentDisposition {
    ContentDisposition {
        disposition: if download || !inline_type(mime) {
            DispositionType::Attachment
        } else {
            DispositionType::Inline
        },
        parameters: vec![DispositionParam::Filename(served_name)],
    }
}

/// Files up to this size are read whole by the blocking call that opens and
/// sniffs them and answered from those bytes; a range of one is read on the
/// executor, from the page cache that read just filled, as a second trip to
/// the blocking pool would cost more (cached thumbs are a few KiB).
const INLINE_READ_BYTES: u64 = 64 * 1024;

/// A whole large local file is sent in chunks of this size: each is one trip
/// to the blocking pool (actix-files reads 64 KiB a trip).
const LARGE_READ_CHUNK_BYTES: usize = 256 * 1024;

/// A local file, ready for actix-files.
struct Local {
    named: NamedFile,
    /// The sniffed type.
    mime: String,
    /// What a 200 with the whole file sends instead of actix-files' reads.
    whole: Option<Whole>,
}

/// The whole of a local file.
enum Whole {
    /// A small file's bytes, already read.
    Bytes(Bytes),
    /// A second handle on a large file, read in [`LARGE_READ_CHUNK_BYTES`] chunks.
    File(std::fs::File, u64),
}

impl Whole {
    fn len(&self) -> u64 {
        match self {
            Self::Bytes(bytes) => bytes.len() as u64,
            Self::File(_, len) => *len,
        }
    }
}

/// A stored file, opened in one trip to the blocking pool.
enum Found {
    Local(Box<Local>),
    /// An object in a bucket: read it with [`Object`].
    Object(files::ObjectInfo),
}

/// What the request serves: the thumb of `size` when it exists or can be made
/// (made under [`files::thumb`]'s limit), else the original; with its key and
/// the name it is served under.
async fn find(
    state: &AppState,
    store: &files::Store,
    key: BlobKey,
    size: Option<ThumbSize>,
) -> Result<(Found, BlobKey, String), ApiError> {
    let Some(size) = size else {
        let name = key.name().to_owned();
        return Ok((open(store, key.clone()).await?, key, name));
    };
    let name = format!("{size}_{}", key.name());
    // A thumb made before is served in the same single trip.
    let made = key.thumb(&size);
    if let Ok(found) = open(store, made.clone()).await {
        return Ok((found, made, name));
    }
    match files::thumb(&state.store, key.clone(), size).await {
        Ok(thumb) => Ok((open(store, thumb.clone()).await?, thumb, name)),
        Err(e) => {
            tracing::warn!(key = %key, error = %e, "thumb failed; serving the original");
            let name = key.name().to_owned();
            Ok((open(store, key.clone()).await?, key, name))
        }
    }
}

/// Finds `key` in `store` and, for a local file, opens it, sniffs its type
/// and readies it for actix-files, all in one trip to the blocking pool.
async fn open(store: &files::Store, key: BlobKey) -> Result<Found, FilesError> {
    let store = store.clone();
    files::run_blocking(move || match store.open(&key)? {
        Opened::Object(info) => Ok(Found::Object(info)),
        Opened::Path(path) => {
            let mut file = std::fs::File::open(&path).map_err(|_| FilesError::NotFound)?;
            let len = file.metadata()?.len();
            let small = len <= INLINE_READ_BYTES;
            let want = if small {
                INLINE_READ_BYTES
            } else {
                files::SNIFF_BYTES as u64
            };
            let mut head = Vec::with_capacity(len.min(want) as usize);
            (&mut file).take(want).read_to_end(&mut head)?;
            let mime = files::sniff(&head[..head.len().min(files::SNIFF_BYTES)]).0;
            let whole = if !small {
                // The second handle shares the position the sniff left: rewind
                // it (actix-files seeks before each of its reads).
                file.rewind()?;
                Some(Whole::File(file.try_clone()?, len))
            } else if head.len() as u64 == len {
                Some(Whole::Bytes(Bytes::from(head)))
            } else {
                None
            };
            let named =
                NamedFile::from_file(file, &path)?.read_mode_threshold(INLINE_READ_BYTES + 1);
            Ok(Found::Local(Box::new(Local { named, mime, whole })))
        }
    })
    .await
}

/// A file on the local disk: actix-files answers Range, ETag and 304; the
/// whole file, when it sends that, comes from [`Whole`] instead.
fn serve_local(
    req: &HttpRequest,
    local: Box<Local>,
    served_name: String,
    download: bool,
) -> HttpResponse {
    let Local { named, mime, whole } = *local;
    let content_type = mime
        .parse()
        .unwrap_or(actix_web::mime::APPLICATION_OCTET_STREAM);
    let response = named
        .set_content_type(content_type)
        .set_content_disposition(disposition(&mime, download, served_name))
        .into_response(req);
    // Only a 200 whose body is the whole file (a range, 304, 412 or 416 keeps
    // actix-files' body; a HEAD's is dropped by actix either way).
    let Some(whole) = whole.filter(|w| {
        response.status() == StatusCode::OK && response.body().size() == BodySize::Sized(w.len())
    }) else {
        return response;
    };
    match whole {
        Whole::Bytes(bytes) => response.set_body(BoxBody::new(bytes)),
        Whole::File(file, len) => {
            let chunks = files::read_chunks(file, len, LARGE_READ_CHUNK_BYTES)
                .map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()));
            response.set_body(BoxBody::new(SizedStream::new(len, chunks)))
        }
    }
}

/// An object in a remote store and the backend it was found in.
struct Object {
    store: std::sync::Arc<dyn files::Storage>,
    key: BlobKey,
    info: files::ObjectInfo,
}

impl Object {
    /// The bytes of `range` as they arrive from the store.
    async fn read(&self, range: std::ops::Range<u64>) -> Result<files::ByteStream, ApiError> {
        let (store, key) = (self.store.clone(), self.key.clone());
        Ok(files::run_blocking(move || store.read(&key, range)).await?)
    }

    /// The first bytes (at most [`files::SNIFF_BYTES`]), for sniffing; small
    /// files are then served from them without a second request.
    async fn head(&self) -> Result<Bytes, ApiError> {
        let end = self.info.size.min(files::SNIFF_BYTES as u64);
        let mut stream = self.read(0..end).await?;
        let mut head = Vec::new();
        while let Some(chunk) = stream.next().await {
            head.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(head))
    }
}

/// Whether a `If-None-Match`/`If-Match` list names `etag` (weak comparison, `*`).
fn etag_listed(list: &str, etag: Option<&str>) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    list.split(',')
        .any(|t| t.trim() == "*" || etag.is_some_and(|e| !e.is_empty() && strip(t) == strip(e)))
}

/// A stored object, with the same headers and answers, in the same order,
/// as a local file: ETag/Last-Modified, 416 for a range past the end, 412 on
/// a failed `If-Match`, 304 on a matching `If-None-Match` (or a not newer
/// `If-Modified-Since` without one), 206 for the first range of `Range`
/// (only that range is fetched).
async fn serve_object(
    req: &HttpRequest,
    object: Object,
    served_name: String,
    download: bool,
) -> Result<HttpResponse, ApiError> {
    use actix_web::HttpMessage;
    let info = &object.info;
    let etag = info.etag.as_deref();
    let modified = header::HttpDate::from(std::time::SystemTime::from(info.last_modified));
    let header_str = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    // Local files carry their type on every answer (304 and 416 too).
    let head = object.head().await?;
    let mime = files::sniff(&head).0;
    let content_type = mime
        .parse()
        .unwrap_or(actix_web::mime::APPLICATION_OCTET_STREAM);
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CONTENT_TYPE, content_type));
    res.insert_header((
        header::CONTENT_DISPOSITION,
        disposition(&mime, download, served_name),
    ));
    res.insert_header((header::LAST_MODIFIED, modified.to_string()));
    if let Some(etag) = etag {
        res.insert_header((header::ETAG, etag.to_owned()));
    }
    res.insert_header((header::ACCEPT_RANGES, "bytes"));
    // The order actix-files weighs them in: Range, then If-Match, then the cache checks.
    let mut range = 0..info.size;
    if let Some(raw) = req.headers().get(header::RANGE) {
        let Ok(raw) = raw.to_str() else {
            return Ok(res.status(StatusCode::BAD_REQUEST).finish());
        };
        let first = HttpRange::parse(raw, info.size)
            .ok()
            .and_then(|ranges| ranges.first().copied());
        let Some(first) = first else {
            res.insert_header((header::CONTENT_RANGE, format!("bytes */{}", info.size)));
            return Ok(res.status(StatusCode::RANGE_NOT_SATISFIABLE).finish());
        };
        range = first.start..first.start + first.length;
        res.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", range.start, range.end - 1, info.size),
        ));
        res.status(StatusCode::PARTIAL_CONTENT);
    }
    if header_str(header::IF_MATCH).is_some_and(|list| !etag_listed(list, etag)) {
        return Ok(res.status(StatusCode::PRECONDITION_FAILED).finish());
    }
    let not_modified = match header_str(header::IF_NONE_MATCH) {
        Some(list) => etag_listed(list, etag),
        None => req
            .get_header::<header::IfModifiedSince>()
            .is_some_and(|since| {
                let since = std::time::SystemTime::from(since.0);
                std::time::SystemTime::from(info.last_modified)
                    .duration_since(since)
                    .map_or(true, |newer| newer.as_secs() == 0)
            }),
    };
    if not_modified {
        return Ok(res.status(StatusCode::NOT_MODIFIED).finish());
    }
    let length = range.end - range.start;
    if range.end <= head.len() as u64 {
        let (start, end) = (range.start as usize, range.end as usize);
        return Ok(res.body(head.slice(start..end)));
    }
    let stream = object
        .read(range)
        .await?
        .map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()));
    Ok(res.body(SizedStream::new(length, stream)))
}
