//! Where backup archives are kept: `DATA_DIR/backups/` on the local disk,
//! or the bucket of `backups.s3` when it is enabled. In a bucket the
//! archive's name is the object key at the bucket root, as PocketBase
//! stores them, so a bucket written by either reads in the other.
//!
//! Archives never pass through memory whole: they are written to (or
//! fetched into) a local temp file and sent from it, in parts above
//! [`crate::files::s3::MULTIPART_THRESHOLD_BYTES`]. Every method blocks
//! (the S3 calls run on the S3 client's own runtime); call them from the
//! blocking pool. Only keys that pass [`super::valid_key`] are ever listed,
//! read, written or deleted, so an object named `../x.zip` or `a/b.zip`
//! placed in the bucket by someone else is not ours and stays invisible.

use super::{BackupError, BackupInfo, dir, random_suffix, valid_key};
use crate::files::s3::{self as s3, S3Config};
use crate::files::{ByteStream, FilesError};
use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The archives' home.
#[derive(Clone)]
pub enum Store {
    /// `DATA_DIR/backups/`.
    Local(PathBuf),
    /// A bucket (keys at its root).
    S3(Arc<AmazonS3>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Local(dir) => write!(f, "Store::Local({})", dir.display()),
            Store::S3(_) => write!(f, "Store::S3"),
        }
    }
}

impl From<FilesError> for BackupError {
    fn from(e: FilesError) -> Self {
        match e {
            FilesError::NotFound => BackupError::NotFound,
            FilesError::Io(e) => BackupError::Io(e),
            other => BackupError::Remote(other.to_string()),
        }
    }
}

/// An archive readable on the local disk: the stored file itself, or a
/// temp copy fetched from the bucket that is removed on drop.
#[derive(Debug)]
pub struct LocalArchive {
    path: PathBuf,
    temp: bool,
}

impl LocalArchive {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LocalArchive {
    fn drop(&mut self) {
        if self.temp {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// An archive to send to a client.
pub enum Download {
    /// A local file (actix-files serves it with Range and ETag).
    File(PathBuf),
    /// The bytes of an object as they arrive, and its size.
    Stream(u64, ByteStream),
}

impl Store {
    /// The local backups dir of `data_dir`.
    pub fn local(data_dir: &Path) -> Self {
        Store::Local(dir(data_dir))
    }

    /// The bucket of `s3` when given (backups.s3 enabled), else the local
    /// dir. Makes no request; a configuration the client refuses is a
    /// [`BackupError::Remote`].
    pub fn open(data_dir: &Path, s3: Option<&S3Config>) -> Result<Self, BackupError> {
        match s3 {
            None => Ok(Self::local(data_dir)),
            Some(config) => s3::client(config)
                .map(Store::S3)
                .map_err(|e| BackupError::Remote(e.to_string())),
        }
    }

    fn checked(key: &str) -> Result<ObjectPath, BackupError> {
        if valid_key(key) {
            Ok(ObjectPath::from(key))
        } else {
            Err(BackupError::NotFound)
        }
    }

    /// Every archive, newest first.
    pub fn list(&self) -> Result<Vec<BackupInfo>, BackupError> {
        let mut out = match self {
            Store::Local(dir) => super::list_dir(dir)?,
            Store::S3(store) => {
                let store = store.clone();
                // Archives sit at the root: with a delimiter, the objects of
                // files sharing the bucket are folded into prefixes, not listed.
                let listed =
                    s3::block_on(async move { s3::timed(store.list_with_delimiter(None)).await })?;
                listed
                    .objects
                    .into_iter()
                    .filter(|meta| valid_key(meta.location.as_ref()))
                    .map(|meta| BackupInfo {
                        key: meta.location.as_ref().to_owned(),
                        size: meta.size,
                        modified: crate::clock::format(meta.last_modified),
                    })
                    .collect()
            }
        };
        out.sort_by(|a, b| b.modified.cmp(&a.modified).then(b.key.cmp(&a.key)));
        Ok(out)
    }

    /// Whether an archive named `key` is stored.
    pub fn exists(&self, key: &str) -> Result<bool, BackupError> {
        let path = Self::checked(key)?;
        match self {
            Store::Local(dir) => Ok(dir.join(key).is_file()),
            Store::S3(store) => {
                let store = store.clone();
                match s3::block_on(async move { s3::timed(store.head(&path)).await }) {
                    Ok(_) => Ok(true),
                    Err(FilesError::NotFound) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// The size and time of one stored archive.
    pub fn info(&self, key: &str) -> Result<BackupInfo, BackupError> {
        let path = Self::checked(key)?;
        match self {
            Store::Local(dir) => super::info(&dir.join(key)).ok_or(BackupError::NotFound),
            Store::S3(store) => {
                let store = store.clone();
                let meta = s3::block_on(async move { s3::timed(store.head(&path)).await })?;
                Ok(BackupInfo {
                    key: key.to_owned(),
                    size: meta.size,
                    modified: crate::clock::format(meta.last_modified),
                })
            }
        }
    }

    /// Deletes an archive ([`BackupError::NotFound`] when there is none).
    pub fn delete(&self, key: &str) -> Result<(), BackupError> {
        if !self.exists(key)? {
            return Err(BackupError::NotFound);
        }
        let path = Self::checked(key)?;
        match self {
            Store::Local(dir) => Ok(fs::remove_file(dir.join(key))?),
            Store::S3(store) => {
                let store = store.clone();
                s3::block_on(async move { s3::timed(store.delete(&path)).await })?;
                Ok(())
            }
        }
    }

    /// Stores the local file `source` as `key` (refused when taken). With
    /// `consume` the source may be moved instead of copied.
    pub fn put(&self, key: &str, source: &Path, consume: bool) -> Result<(), BackupError> {
        if !valid_key(key) {
            return Err(BackupError::InvalidName);
        }
        if self.exists(key)? {
            return Err(BackupError::Exists);
        }
        match self {
            Store::Local(dir) => {
                fs::create_dir_all(dir)?;
                let target = dir.join(key);
                let partial = dir.join(format!(".tmp-{}.zip", random_suffix()));
                let placed = if consume {
                    fs::rename(source, &partial)
                } else {
                    fs::copy(source, &partial).map(|_| ())
                }
                .and_then(|()| File::open(&partial)?.sync_all())
                .and_then(|()| fs::rename(&partial, &target))
                .and_then(|()| File::open(dir)?.sync_all());
                if let Err(e) = placed {
                    let _ = fs::remove_file(&partial);
                    return Err(e.into());
                }
                Ok(())
            }
            Store::S3(store) => {
                let size = fs::metadata(source)?.len();
                let (store, path, source) =
                    (store.clone(), ObjectPath::from(key), source.to_path_buf());
                s3::block_on(s3::put_file(store, path, source, size))?;
                Ok(())
            }
        }
    }

    /// The archive as a local file: the stored one, or a copy fetched into
    /// `scratch` (removed when the result drops).
    pub fn fetch(&self, key: &str, scratch: &Path) -> Result<LocalArchive, BackupError> {
        let path = Self::checked(key)?;
        match self {
            Store::Local(dir) => {
                let file = dir.join(key);
                if file.is_file() {
                    Ok(LocalArchive {
                        path: file,
                        temp: false,
                    })
                } else {
                    Err(BackupError::NotFound)
                }
            }
            Store::S3(store) => {
                fs::create_dir_all(scratch)?;
                let local = LocalArchive {
                    path: scratch.join(format!("fetch-{}.zip", random_suffix())),
                    temp: true,
                };
                s3::block_on(s3::get_to_file(store.clone(), path, local.path.clone()))?;
                Ok(local)
            }
        }
    }

    /// The archive for a download; `head_only` (a HEAD request) asks the
    /// bucket for the size alone instead of opening the object.
    pub fn download(&self, key: &str, head_only: bool) -> Result<Download, BackupError> {
        let path = Self::checked(key)?;
        match self {
            Store::Local(dir) => {
                let file = dir.join(key);
                if file.is_file() {
                    Ok(Download::File(file))
                } else {
                    Err(BackupError::NotFound)
                }
            }
            Store::S3(_) if head_only => {
                let size = self.info(key)?.size;
                Ok(Download::Stream(
                    size,
                    futures_util::stream::empty().boxed(),
                ))
            }
            Store::S3(store) => {
                let store = store.clone();
                let (size, stream) = s3::block_on(async move {
                    let got = s3::timed(store.get(&path)).await?;
                    let size = got.meta.size;
                    Ok((size, got.into_stream().map_err(s3::remote).boxed()))
                })?;
                Ok(Download::Stream(size, stream))
            }
        }
    }
}
