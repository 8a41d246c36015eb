//! Stored files in an S3-compatible bucket (AWS S3, R2, B2, MinIO, Garage,
//! moto…) through the `object_store` crate. Object keys follow PocketBase's
//! layout, `COLLECTION/RECORD/NAME` and `COLLECTION/RECORD/thumbs_NAME/SIZE_NAME`,
//! so a bucket written by PocketBase reads here and back.
//!
//! Uploads are staged on the local disk first (the size and MIME checks run
//! there, as for local storage) and then sent from the temp file: in one PUT
//! up to [`MULTIPART_THRESHOLD_BYTES`], in parts of [`PART_BYTES`] above it,
//! so a file is never held in memory whole. The async client runs on a small
//! runtime of its own ([`io_runtime`]); the [`super::Storage`] methods block
//! on it and are called from the blocking pool, like the local ones.

use super::storage::{
    BlobKey, ByteStream, LocalCopy, ObjectInfo, Opened, Storage, plain_component, temp_copy,
};
use super::{FilesError, Staged};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, PutPayload, RetryConfig, WriteMultipart,
};
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Files up to this size go up in one PUT; larger ones in parts.
pub const MULTIPART_THRESHOLD_BYTES: u64 = 8 * 1024 * 1024;
/// Size of one part of a multipart upload (S3's minimum is 5 MiB).
pub const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts uploading at once (memory is at most this many parts plus one).
pub const PARTS_IN_FLIGHT: usize = 2;
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one metadata call or one small PUT/DELETE may take in all.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries of a failed call (object_store's default of 10 would make an
/// unreachable endpoint hang a request for minutes).
const MAX_RETRIES: usize = 2;
/// Longest bucket name accepted (S3's limit is 63; AWS legacy names 255).
const MAX_BUCKET_NAME: usize = 255;
/// Longest region name or access key id accepted.
const MAX_HEADER_WORD: usize = 256;
/// Threads of the runtime that drives the S3 client.
const IO_THREADS: usize = 2;

/// The connection settings of a bucket (PocketBase's `s3` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    pub endpoint: String,
    pub access_key: String,
    pub secret: String,
    pub force_path_style: bool,
}

/// Why an S3 store could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("invalid S3 configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Store(String),
}

/// A bucket as file storage.
pub struct S3Storage {
    store: Arc<AmazonS3>,
    staging: PathBuf,
    bucket: String,
}

/// The runtime every S3 client runs on: its connections and timers live
/// here, independent of the request's runtime (actix runs one per worker)
/// and of the blocking thread that waits. Never dropped.
fn io_runtime() -> Result<&'static tokio::runtime::Runtime, FilesError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(IO_THREADS)
                .thread_name("s3-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| FilesError::Task(e.clone()))
}

/// Runs `fut` on the S3 runtime and waits for it. Call from a blocking thread.
pub(crate) fn block_on<T: Send + 'static>(
    fut: impl Future<Output = Result<T, FilesError>> + Send + 'static,
) -> Result<T, FilesError> {
    io_runtime()?.handle().block_on(fut)
}

/// Runs `fut` on the S3 runtime from async code.
pub(crate) async fn spawn_io<T: Send + 'static>(
    fut: impl Future<Output = Result<T, FilesError>> + Send + 'static,
) -> Result<T, FilesError> {
    io_runtime()?
        .spawn(fut)
        .await
        .map_err(|e| FilesError::Task(e.to_string()))?
}

pub(crate) async fn timed<T>(
    fut: impl Future<Output = Result<T, object_store::Error>>,
) -> Result<T, FilesError> {
    tokio::time::timeout(CALL_TIMEOUT, fut)
        .await
        .map_err(|_| FilesError::Remote("the S3 request timed out".into()))?
        .map_err(remote)
}

pub(crate) fn remote(e: object_store::Error) -> FilesError {
    match e {
        object_store::Error::NotFound { .. } => FilesError::NotFound,
        other => FilesError::Remote(other.to_string()),
    }
}

/// The endpoint the client is given: with virtual-hosted style (PocketBase's
/// default, `forcePathStyle: false`) the bucket becomes the host's first label.
fn endpoint_for(config: &S3Config) -> Result<Option<String>, S3Error> {
    let raw = config.endpoint.trim().trim_end_matches('/');
    if raw.is_empty() {
        return Ok(None);
    }
    let (scheme, rest) = raw
        .split_once("://")
        .filter(|(s, rest)| matches!(*s, "http" | "https") && !rest.is_empty())
        .ok_or_else(|| S3Error::Config("the endpoint must be an http(s) URL".into()))?;
    let endpoint = if config.force_path_style {
        format!("{scheme}://{rest}")
    } else {
        format!("{scheme}://{}.{rest}", config.bucket)
    };
    // object_store unwraps its own parse of request URLs built from this:
    // anything the parser refuses (a bucket label before an IP address, a
    // space, a bad port) stops here instead.
    let parsed = url::Url::parse(&endpoint)
        .map_err(|e| S3Error::Config(format!("invalid endpoint {endpoint:?}: {e}")))?;
    if parsed.host_str().is_none_or(str::is_empty)
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || !parsed.username().is_empty()
    {
        return Err(S3Error::Config(format!("invalid endpoint {endpoint:?}")));
    }
    Ok(Some(endpoint))
}

/// Bucket names as S3 and its look-alikes accept them (AWS's legacy rules
/// included: upper case and `_`); they become a path segment or a host label.
fn valid_bucket(name: &str) -> bool {
    (1..=MAX_BUCKET_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Region names and access key ids go into signed headers: printable ASCII
/// only, no separators of the `Authorization` header.
fn valid_header_word(word: &str) -> bool {
    word.len() <= MAX_HEADER_WORD
        && word
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, ',' | '/' | '=' | '"'))
}

/// A client for `config`'s bucket with the checks, timeouts and retries
/// every S3 user here shares (file storage and backups). Makes no request.
pub(crate) fn client(config: &S3Config) -> Result<Arc<AmazonS3>, S3Error> {
    if !valid_bucket(&config.bucket) {
        return Err(S3Error::Config("invalid bucket name".into()));
    }
    if !valid_header_word(&config.region) || !valid_header_word(&config.access_key) {
        return Err(S3Error::Config("invalid region or access key".into()));
    }
    let options = ClientOptions::new()
        .with_allow_http(true)
        .with_connect_timeout(CONNECT_TIMEOUT)
        // Downloads stream to clients at their pace: no overall limit
        // here; the calls that must end are bounded by CALL_TIMEOUT.
        .with_timeout_disabled();
    let retry = RetryConfig {
        max_retries: MAX_RETRIES,
        retry_timeout: CALL_TIMEOUT,
        ..RetryConfig::default()
    };
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_region(if config.region.is_empty() {
            "us-east-1"
        } else {
            &config.region
        })
        .with_access_key_id(&config.access_key)
        .with_secret_access_key(&config.secret)
        .with_virtual_hosted_style_request(!config.force_path_style)
        .with_client_options(options)
        .with_retry(retry);
    if let Some(endpoint) = endpoint_for(config)? {
        builder = builder.with_endpoint(endpoint);
    }
    let store = builder
        .build()
        .map_err(|e| S3Error::Config(e.to_string()))?;
    Ok(Arc::new(store))
}

impl S3Storage {
    /// A client for `config`'s bucket, staging uploads in `staging`. Makes
    /// no request (see [`S3Storage::probe`]).
    pub fn connect(config: &S3Config, staging: &Path) -> Result<Self, S3Error> {
        Ok(Self {
            store: client(config)?,
            staging: staging.to_path_buf(),
            bucket: config.bucket.clone(),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Writes, reads back and deletes a probe object under a random prefix
    /// (what PocketBase's settings test does).
    pub async fn probe(&self) -> Result<(), S3Error> {
        let suffix: u32 = rand::random();
        let path = ObjectPath::from(format!("pb_settings_test_{suffix:08x}/test.txt"));
        let store = self.store.clone();
        spawn_io(async move {
            timed(store.put(&path, PutPayload::from_static(b"test")))
                .await
                .map_err(|e| FilesError::Remote(format!("failed to upload a test file: {e}")))?;
            let read = async {
                let got = store.get(&path).await?;
                got.bytes().await
            };
            let read = timed(read)
                .await
                .map_err(|e| FilesError::Remote(format!("failed to read a test file: {e}")))?;
            timed(store.delete(&path))
                .await
                .map_err(|e| FilesError::Remote(format!("failed to delete a test file: {e}")))?;
            if read.as_ref() != b"test" {
                return Err(FilesError::Remote(
                    "the test file read back differs from what was written".into(),
                ));
            }
            Ok(())
        })
        .await
        .map_err(|e| S3Error::Store(e.to_string()))
    }

    fn object_path(key: &BlobKey) -> ObjectPath {
        ObjectPath::from_iter(key.parts())
    }

    /// Deletes every object under `prefix/` (a whole path segment, so
    /// `c/r1` never matches `c/r10`).
    fn delete_prefix(&self, prefix: ObjectPath) -> Result<(), FilesError> {
        let store = self.store.clone();
        block_on(async move {
            let listed = store
                .list(Some(&prefix))
                .map_ok(|meta| meta.location)
                .boxed();
            let mut deleted = store.delete_stream(listed);
            while let Some(outcome) = deleted.next().await {
                match outcome {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(remote(e)),
                }
            }
            Ok(())
        })
    }
}

/// Sends the local file at `source` (`size` bytes) to `path`: in one PUT up
/// to [`MULTIPART_THRESHOLD_BYTES`], in parts above it.
pub(crate) async fn put_file(
    store: Arc<AmazonS3>,
    path: ObjectPath,
    source: PathBuf,
    size: u64,
) -> Result<(), FilesError> {
    if size > MULTIPART_THRESHOLD_BYTES {
        put_multipart(store, path, source).await
    } else {
        let bytes = tokio::fs::read(&source).await?;
        timed(store.put(&path, PutPayload::from(bytes))).await?;
        Ok(())
    }
}

/// Writes the object at `path` into a new local file `dest`, chunk by
/// chunk as it arrives.
pub(crate) async fn get_to_file(
    store: Arc<AmazonS3>,
    path: ObjectPath,
    dest: PathBuf,
) -> Result<(), FilesError> {
    use tokio::io::AsyncWriteExt;
    let got = timed(store.get(&path)).await?;
    let mut stream = got.into_stream();
    let mut file = tokio::fs::File::create_new(&dest).await?;
    while let Some(chunk) = stream.next().await {
        file.write_all(&chunk.map_err(remote)?).await?;
    }
    file.flush().await?;
    Ok(())
}

/// Sends the staged file at `source` to `path` in parts, reading one part
/// at a time; aborts the upload on any error.
async fn put_multipart(
    store: Arc<AmazonS3>,
    path: ObjectPath,
    source: PathBuf,
) -> Result<(), FilesError> {
    let upload = timed(store.put_multipart(&path)).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut file = std::fs::File::open(&source)?;
    let outcome: Result<(), FilesError> = async {
        loop {
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(remote)?;
            let (back, chunk) = tokio::task::spawn_blocking(move || {
                let mut buf = Vec::with_capacity(PART_BYTES);
                let n = (&mut file).take(PART_BYTES as u64).read_to_end(&mut buf)?;
                buf.truncate(n);
                Ok::<_, std::io::Error>((file, buf))
            })
            .await
            .map_err(|e| FilesError::Task(e.to_string()))??;
            file = back;
            if chunk.is_empty() {
                return Ok(());
            }
            writer.put(Bytes::from(chunk));
        }
    }
    .await;
    match outcome {
        Ok(()) => {
            writer.finish().await.map_err(remote)?;
            Ok(())
        }
        Err(e) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, "could not abort a multipart upload");
            }
            Err(e)
        }
    }
}

impl Storage for S3Storage {
    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    fn put(&self, staged: Staged, key: &BlobKey) -> Result<(), FilesError> {
        let path = Self::object_path(key);
        let store = self.store.clone();
        let source = staged.path().to_path_buf();
        let size = std::fs::metadata(&source)?.len();
        block_on(put_file(store, path, source, size))?;
        // The staged temp is removed when `staged` drops, now that the
        // object is stored (a PUT that returned is durable in the bucket).
        drop(staged);
        Ok(())
    }

    fn open(&self, key: &BlobKey) -> Result<Opened, FilesError> {
        let path = Self::object_path(key);
        let store = self.store.clone();
        let meta = block_on(async move { timed(store.head(&path)).await })?;
        Ok(Opened::Object(ObjectInfo {
            size: meta.size,
            etag: meta.e_tag,
            last_modified: meta.last_modified,
        }))
    }

    fn read(&self, key: &BlobKey, range: Range<u64>) -> Result<ByteStream, FilesError> {
        let path = Self::object_path(key);
        let store = self.store.clone();
        block_on(async move {
            if range.is_empty() {
                return Ok(futures_util::stream::empty().boxed());
            }
            let options = GetOptions {
                range: Some(GetRange::Bounded(range)),
                ..GetOptions::default()
            };
            let got = timed(store.get_opts(&path, options)).await?;
            Ok(got.into_stream().map_err(remote).boxed())
        })
    }

    fn local_copy(&self, key: &BlobKey) -> Result<LocalCopy, FilesError> {
        let path = Self::object_path(key);
        let store = self.store.clone();
        temp_copy(&self.staging, move |dest| {
            block_on(get_to_file(store, path, dest.to_path_buf()))
        })
    }

    fn list(&self) -> Result<Vec<(BlobKey, u64)>, FilesError> {
        let store = self.store.clone();
        block_on(async move {
            let mut listed = store.list(None);
            let mut out = Vec::new();
            while let Some(meta) = listed.next().await {
                let meta = meta.map_err(remote)?;
                let location = meta.location.as_ref();
                let parts: Vec<&str> = location.split('/').collect();
                // Other objects in the bucket (not PocketBase's layout) are not ours.
                if let Some(key) = BlobKey::from_parts(&parts) {
                    out.push((key, meta.size));
                }
            }
            Ok(out)
        })
    }

    fn delete(&self, key: &BlobKey) -> Result<(), FilesError> {
        let parts = key.parts();
        if key.is_original() {
            let thumbs = ObjectPath::from_iter([
                parts[0].as_str(),
                parts[1].as_str(),
                &format!("thumbs_{}", key.name()),
            ]);
            self.delete_prefix(thumbs)?;
        }
        let path = Self::object_path(key);
        let store = self.store.clone();
        block_on(async move {
            match timed(store.delete(&path)).await {
                Ok(()) | Err(FilesError::NotFound) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn delete_record(&self, collection_id: &str, record_id: &str) -> Result<(), FilesError> {
        if !plain_component(collection_id) || !plain_component(record_id) {
            return Err(FilesError::BadKey);
        }
        self.delete_prefix(ObjectPath::from_iter([collection_id, record_id]))
    }

    fn delete_collection(&self, collection_id: &str) -> Result<(), FilesError> {
        if !plain_component(collection_id) {
            return Err(FilesError::BadKey);
        }
        self.delete_prefix(ObjectPath::from_iter([collection_id]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str, force_path_style: bool) -> S3Config {
        S3Config {
            bucket: "files".into(),
            region: "us-east-1".into(),
            endpoint: endpoint.into(),
            access_key: "k".into(),
            secret: "s".into(),
            force_path_style,
        }
    }

    #[test]
    fn endpoints_put_the_bucket_in_the_host_unless_path_style_is_forced() {
        for (endpoint, path_style, want, why) in [
            (
                "http://127.0.0.1:9000",
                true,
                Some("http://127.0.0.1:9000"),
                "path style",
            ),
            (
                "https://s3.example.com/",
                false,
                Some("https://files.s3.example.com"),
                "virtual host",
            ),
            ("", false, None, "AWS default endpoint"),
        ] {
            let got = endpoint_for(&config(endpoint, path_style)).expect(why);
            assert_eq!(got.as_deref(), want, "{why}");
        }
        for bad in ["ftp://x", "127.0.0.1:9000", "http://"] {
            assert!(
                endpoint_for(&config(bad, true)).is_err(),
                "{bad:?} is refused"
            );
        }
    }

    #[test]
    fn configurations_the_client_would_panic_on_are_refused_up_front() {
        let staging = std::env::temp_dir();
        let base = config("http://127.0.0.1:1", true);
        let cases: Vec<(S3Config, &str)> = vec![
            (
                config("http://127.0.0.1:1", false),
                "bucket label before an IP address",
            ),
            (config("http://exa mple.com", true), "space in the host"),
            (
                config("http://example.com:99999", true),
                "port out of range",
            ),
            (
                config("http://user:pw@example.com", true),
                "credentials in the URL",
            ),
            (config("http://example.com/?x=1", true), "query string"),
            (
                S3Config {
                    bucket: "a/b".into(),
                    ..base.clone()
                },
                "slash in the bucket",
            ),
            (
                S3Config {
                    bucket: "a b".into(),
                    ..base.clone()
                },
                "space in the bucket",
            ),
            (
                S3Config {
                    bucket: "..%2F".into(),
                    ..base.clone()
                },
                "escape in the bucket",
            ),
            (
                S3Config {
                    bucket: String::new(),
                    ..base.clone()
                },
                "empty bucket",
            ),
            (
                S3Config {
                    region: "us\neast".into(),
                    ..base.clone()
                },
                "newline in the region",
            ),
            (
                S3Config {
                    access_key: "k\r\nX: y".into(),
                    ..base.clone()
                },
                "header injection in the key",
            ),
            (
                S3Config {
                    access_key: "k,Signature=x".into(),
                    ..base.clone()
                },
                "separator in the key",
            ),
            (
                S3Config {
                    region: "ré".into(),
                    ..base.clone()
                },
                "non-ASCII region",
            ),
        ];
        for (bad, why) in cases {
            assert!(
                S3Storage::connect(&bad, &staging).is_err(),
                "{why}: {bad:?}"
            );
        }
        assert!(
            S3Storage::connect(&base, &staging).is_ok(),
            "a plain config connects"
        );
    }

    #[test]
    fn object_keys_follow_pocketbase_layout() {
        let key = BlobKey::new("pbc_1", "rec1", "a_x.png").expect("key");
        assert_eq!(S3Storage::object_path(&key).as_ref(), "pbc_1/rec1/a_x.png");
        let size = super::super::ThumbSize::parse("100x50t").expect("size");
        assert_eq!(
            S3Storage::object_path(&key.thumb(&size)).as_ref(),
            "pbc_1/rec1/thumbs_a_x.png/100x50t_a_x.png"
        );
    }
}
