//! Where stored files live. [`Storage`] is what the rest of the crate sees;
//! [`LocalStorage`] keeps them under `DATA_DIR/storage/COLLECTION_ID/
//! RECORD_ID/NAME` (thumbs in `thumbs_NAME/SIZE_NAME` beside the original).
//! [`super::S3Storage`] keeps the same layout as object keys in a bucket;
//! both stage uploads in the same local directory first.
//!
//! Paths are built only from a [`BlobKey`], whose parts are checked to be
//! single plain path components: nothing a client sends reaches the file
//! system without passing that check.

use super::staging::{Staged, TempPath};
use super::{FilesError, ThumbSize};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use std::fmt;
use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The address of one stored file (or one of its thumbs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobKey {
    collection_id: String,
    record_id: String,
    name: String,
    thumb: Option<String>,
}

/// A single plain path component: no separators, no leading dot, bounded.
pub(super) fn plain_component(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && !s.starts_with('.')
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+' | '=' | '#' | '*')
        })
}

impl BlobKey {
    pub fn new(collection_id: &str, record_id: &str, name: &str) -> Result<Self, FilesError> {
        if ![collection_id, record_id, name]
            .into_iter()
            .all(plain_component)
        {
            return Err(FilesError::BadKey);
        }
        Ok(Self {
            collection_id: collection_id.to_owned(),
            record_id: record_id.to_owned(),
            name: name.to_owned(),
            thumb: None,
        })
    }

    /// The key of this file's thumb of `size`.
    pub fn thumb(&self, size: &ThumbSize) -> Self {
        Self {
            thumb: Some(size.to_string()),
            ..self.clone()
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// An original file, not one of its thumbs.
    pub fn is_original(&self) -> bool {
        self.thumb.is_none()
    }

    pub fn collection_id(&self) -> &str {
        &self.collection_id
    }

    pub fn record_id(&self) -> &str {
        &self.record_id
    }

    /// The key of a stored path (`COLLECTION/RECORD/NAME` or
    /// `COLLECTION/RECORD/thumbs_NAME/SIZE_NAME`); `None` for anything else.
    pub fn from_parts(parts: &[&str]) -> Option<Self> {
        match parts {
            [c, r, name] => Self::new(c, r, name).ok(),
            [c, r, dir, file] => {
                let name = dir.strip_prefix("thumbs_")?;
                let size = file.strip_suffix(name)?.strip_suffix('_')?;
                let size = super::ThumbSize::parse(size)?;
                let key = Self::new(c, r, name).ok()?.thumb(&size);
                (key.parts() == *parts).then_some(key)
            }
            _ => None,
        }
    }

    /// The key's path parts below the storage root, PocketBase's layout:
    /// `COLLECTION/RECORD/NAME`, thumbs in `COLLECTION/RECORD/thumbs_NAME/SIZE_NAME`.
    pub fn parts(&self) -> Vec<String> {
        let mut parts = vec![self.collection_id.clone(), self.record_id.clone()];
        match &self.thumb {
            None => parts.push(self.name.clone()),
            Some(size) => {
                parts.push(format!("thumbs_{}", self.name));
                parts.push(format!("{size}_{}", self.name));
            }
        }
        parts
    }

    /// The path of this key under `root`.
    fn path_in(&self, root: &Path) -> PathBuf {
        let dir = root.join(&self.collection_id).join(&self.record_id);
        match &self.thumb {
            None => dir.join(&self.name),
            Some(size) => dir
                .join(format!("thumbs_{}", self.name))
                .join(format!("{size}_{}", self.name)),
        }
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.collection_id, self.record_id, self.name)?;
        if let Some(size) = &self.thumb {
            write!(f, "#{size}")?;
        }
        Ok(())
    }
}

/// What is known of a stored object before reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// The store's entity tag, quoted as the store gives it.
    pub etag: Option<String>,
    pub last_modified: DateTime<Utc>,
}

/// How a stored file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A local file (served with actix-files' `NamedFile`).
    Path(PathBuf),
    /// An object elsewhere: read it with [`Storage::read`].
    Object(ObjectInfo),
}

/// Bytes of a stored file as they arrive.
pub type ByteStream = BoxStream<'static, Result<Bytes, FilesError>>;

/// A readable local copy of a stored file: the file itself on local disk,
/// a temp file (removed on drop) for a remote store.
#[derive(Debug)]
pub struct LocalCopy {
    path: PathBuf,
    _temp: Option<TempPath>,
}

impl LocalCopy {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A place to keep stored files. Methods block; call them off the executor
/// (remote backends drive their async client from the blocking thread).
pub trait Storage: Send + Sync + 'static {
    /// Local directory where uploads are received before [`Storage::put`].
    fn staging_dir(&self) -> &Path;
    /// Moves a staged file to `key`. When this returns Ok the bytes and the
    /// name are durable: a record may refer to them.
    fn put(&self, staged: Staged, key: &BlobKey) -> Result<(), FilesError>;
    /// How to read `key`; [`FilesError::NotFound`] when absent.
    fn open(&self, key: &BlobKey) -> Result<Opened, FilesError>;
    /// The bytes of `range` of `key` (a range already checked against its
    /// size). The stream is polled on the executor.
    fn read(&self, key: &BlobKey, range: Range<u64>) -> Result<ByteStream, FilesError>;
    /// A local file with `key`'s bytes (thumbs decode from it).
    fn local_copy(&self, key: &BlobKey) -> Result<LocalCopy, FilesError>;
    /// Every stored file (originals and thumbs) with its size.
    fn list(&self) -> Result<Vec<(BlobKey, u64)>, FilesError>;
    /// Removes one file (and, for an original, its thumbs). Absent is fine.
    fn delete(&self, key: &BlobKey) -> Result<(), FilesError>;
    /// Removes every file of a record. Absent is fine.
    fn delete_record(&self, collection_id: &str, record_id: &str) -> Result<(), FilesError>;
    /// Removes every file of a collection. Absent is fine.
    fn delete_collection(&self, collection_id: &str) -> Result<(), FilesError>;
}

/// Files on the local disk.
pub struct LocalStorage {
    root: PathBuf,
    staging: PathBuf,
}

impl LocalStorage {
    /// Opens (creating) `root`; leftovers of interrupted uploads are removed.
    pub fn open(root: &Path) -> io::Result<Self> {
        let staging = root.join(".tmp");
        fs::create_dir_all(&staging)?;
        for entry in fs::read_dir(&staging)? {
            let _ = fs::remove_file(entry?.path());
        }
        Ok(Self {
            root: root.to_path_buf(),
            staging,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn local_path(&self, key: &BlobKey) -> Result<PathBuf, FilesError> {
        let path = key.path_in(&self.root);
        if path.is_file() {
            Ok(path)
        } else {
            Err(FilesError::NotFound)
        }
    }
}

/// How much a local read hands over at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// The next `len` bytes of `file`, read on the blocking pool `chunk` bytes
/// (one trip) at a time.
pub fn read_chunks(file: fs::File, len: u64, chunk: usize) -> ByteStream {
    use std::io::Read;
    let stream = futures_util::stream::try_unfold(file.take(len), move |mut reader| async move {
        let (reader, buf) = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(chunk);
            (&mut reader).take(chunk as u64).read_to_end(&mut buf)?;
            Ok::<_, io::Error>((reader, buf))
        })
        .await
        .map_err(|e| FilesError::Task(e.to_string()))??;
        Ok((!buf.is_empty()).then(|| (Bytes::from(buf), reader)))
    });
    Box::pin(stream)
}

/// A local copy in a temp file under `dir`, filled by `fill` (removed on drop).
pub(super) fn temp_copy(
    dir: &Path,
    fill: impl FnOnce(&Path) -> Result<(), FilesError>,
) -> Result<LocalCopy, FilesError> {
    let temp = TempPath::new(dir);
    fill(temp.path())?;
    Ok(LocalCopy {
        path: temp.path().to_path_buf(),
        _temp: Some(temp),
    })
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

fn ignore_missing(r: io::Result<()>) -> Result<(), FilesError> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => Ok(other?),
    }
}

/// Creates `dir` and syncs every directory it had to create (and its parent),
/// so the new entries survive a crash.
fn create_dir_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

impl Storage for LocalStorage {
    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    fn put(&self, mut staged: Staged, key: &BlobKey) -> Result<(), FilesError> {
        let target = key.path_in(&self.root);
        let dir = target.parent().ok_or(FilesError::BadKey)?;
        create_dir_durable(dir)?;
        // The staged bytes were synced when received; the rename is made
        // durable by syncing the directory that now holds the name. A
        // concurrent cleanup may have just removed the (empty) directory:
        // create it again once.
        if let Err(e) = fs::rename(staged.temp.path(), &target) {
            if e.kind() != io::ErrorKind::NotFound || !staged.temp.path().is_file() {
                return Err(e.into());
            }
            create_dir_durable(dir)?;
            fs::rename(staged.temp.path(), &target)?;
        }
        staged.temp.disarm();
        sync_dir(dir)?;
        Ok(())
    }

    fn open(&self, key: &BlobKey) -> Result<Opened, FilesError> {
        Ok(Opened::Path(self.local_path(key)?))
    }

    fn read(&self, key: &BlobKey, range: Range<u64>) -> Result<ByteStream, FilesError> {
        use std::io::{Seek, SeekFrom};
        let mut file = fs::File::open(self.local_path(key)?)?;
        file.seek(SeekFrom::Start(range.start))?;
        Ok(read_chunks(
            file,
            range.end.saturating_sub(range.start),
            READ_CHUNK_BYTES,
        ))
    }

    fn local_copy(&self, key: &BlobKey) -> Result<LocalCopy, FilesError> {
        Ok(LocalCopy {
            path: self.local_path(key)?,
            _temp: None,
        })
    }

    fn list(&self) -> Result<Vec<(BlobKey, u64)>, FilesError> {
        fn walk(
            dir: &Path,
            parts: &mut Vec<String>,
            out: &mut Vec<(BlobKey, u64)>,
        ) -> io::Result<()> {
            for entry in fs::read_dir(dir)? {
                let entry = entry?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                // The staging directory and anything deeper than a thumb are not files of records.
                if name.starts_with('.') || parts.len() > 3 {
                    continue;
                }
                parts.push(name);
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    walk(&entry.path(), parts, out)?;
                } else if kind.is_file() {
                    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                    if let Some(key) = BlobKey::from_parts(&refs) {
                        out.push((key, entry.metadata()?.len()));
                    }
                }
                parts.pop();
            }
            Ok(())
        }
        let mut out = Vec::new();
        walk(&self.root, &mut Vec::new(), &mut out)?;
        Ok(out)
    }

    fn delete(&self, key: &BlobKey) -> Result<(), FilesError> {
        let path = key.path_in(&self.root);
        if key.thumb.is_none()
            && let Some(dir) = path.parent()
        {
            ignore_missing(fs::remove_dir_all(dir.join(format!("thumbs_{}", key.name))))?;
        }
        ignore_missing(fs::remove_file(&path))?;
        // Drop the record's folder once it is empty (a failed write to a
        // record id that never existed leaves nothing behind); fails harmlessly otherwise.
        if key.thumb.is_none()
            && let Some(dir) = path.parent()
        {
            let _ = fs::remove_dir(dir);
        }
        Ok(())
    }

    fn delete_record(&self, collection_id: &str, record_id: &str) -> Result<(), FilesError> {
        if !plain_component(collection_id) || !plain_component(record_id) {
            return Err(FilesError::BadKey);
        }
        ignore_missing(fs::remove_dir_all(
            self.root.join(collection_id).join(record_id),
        ))
    }

    fn delete_collection(&self, collection_id: &str) -> Result<(), FilesError> {
        if !plain_component(collection_id) {
            return Err(FilesError::BadKey);
        }
        ignore_missing(fs::remove_dir_all(self.root.join(collection_id)))
    }
}

/// Copies the file at `source` to a fresh staged file in `dir` (synced).
pub(super) fn stage_copy(dir: &Path, source: &Path, name: &str) -> Result<Staged, FilesError> {
    let temp = TempPath::new(dir);
    let size = fs::copy(source, temp.path())?;
    fs::File::open(temp.path())?.sync_all()?;
    Ok(Staged {
        temp,
        original_name: name.to_owned(),
        name: name.to_owned(),
        size,
        mime: String::new(),
    })
}

/// Writes `bytes` to a fresh staged file (for derived files such as thumbs).
pub(super) fn stage_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Result<Staged, FilesError> {
    let temp = TempPath::new(dir);
    let mut file = fs::File::create_new(temp.path())?;
    io::Write::write_all(&mut file, bytes)?;
    file.sync_all()?;
    Ok(Staged {
        temp,
        original_name: name.to_owned(),
        name: name.to_owned(),
        size: bytes.len() as u64,
        mime: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_refuse_anything_but_plain_names() {
        for (c, r, n, why) in [
            ("c", "r", "../x", "parent traversal"),
            ("c", "r", "a/b", "separator"),
            ("c", "..", "x", "dot-dot record"),
            ("c", "r", ".hidden", "leading dot"),
            ("c", "r", "", "empty"),
            ("c", "r", "a\\b", "backslash"),
        ] {
            assert!(BlobKey::new(c, r, n).is_err(), "{why}");
        }
        assert!(BlobKey::new("pbc_1", "abc123", "a_b1234567890.tar.gz").is_ok());
    }

    #[test]
    fn stored_paths_map_back_to_their_keys_and_nothing_else_does() {
        let key = BlobKey::new("c", "r", "a.png").expect("key");
        let thumb = key.thumb(&super::super::ThumbSize::parse("10x20t").expect("size"));
        for k in [&key, &thumb] {
            let parts = k.parts();
            let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
            assert_eq!(BlobKey::from_parts(&refs).as_ref(), Some(k));
        }
        for (parts, why) in [
            (&["c", "r"][..], "too short"),
            (&["c", "r", ".."][..], "dot-dot name"),
            (
                &["c", "r", "thumbs_a.png", "10x20_b.png"][..],
                "thumb of another file",
            ),
            (&["c", "r", "thumbs_a.png", "99x_a.png"][..], "bad size"),
            (&["c", "r", "x", "10x20_x"][..], "not a thumbs folder"),
            (
                &["c", "r", "thumbs_a.png", "10x20_a.png", "deeper"][..],
                "too deep",
            ),
        ] {
            assert!(BlobKey::from_parts(parts).is_none(), "{why}");
        }
    }

    #[test]
    fn put_moves_the_file_and_delete_removes_it_with_thumbs() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = LocalStorage::open(dir.path()).expect("open");
        let staged = stage_bytes(store.staging_dir(), "a.txt", b"hi").expect("stage");
        let key = BlobKey::new("c1", "r1", "a.txt").expect("key");
        store.put(staged, &key).expect("put");
        let Opened::Path(path) = store.open(&key).expect("exists") else {
            panic!("local files open as paths")
        };
        assert_eq!(fs::read(&path).expect("read"), b"hi");
        assert_eq!(fs::read_dir(store.staging_dir()).expect("ls").count(), 0);
        store.delete(&key).expect("delete");
        assert!(matches!(store.open(&key), Err(FilesError::NotFound)));
        store.delete(&key).expect("deleting twice is fine");
    }
}
