//! Copies every stored file (originals and thumbs) from one backend to
//! another, for `ferrobase storage migrate --to s3|local`. Resumable: a file
//! already at the target with the same size is not sent again, so an
//! interrupted run is simply run again. Nothing is deleted at the source;
//! the caller switches the setting only after [`copy_all`] has verified that
//! every source file is at the target with its size.

use super::FilesError;
use super::storage::{BlobKey, Storage, stage_copy};
use std::collections::HashMap;

/// What a copy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    /// Files sent to the target by this run.
    pub copied: u64,
    /// Files that were already there with the same size (an earlier run).
    pub present: u64,
    /// Bytes sent by this run.
    pub bytes: u64,
}

fn by_path(listed: Vec<(BlobKey, u64)>) -> HashMap<String, u64> {
    listed
        .into_iter()
        .map(|(key, size)| (key.parts().join("/"), size))
        .collect()
}

/// Copies every file of `from` missing (or of another size) at `to`, then
/// lists `to` again and checks each source file is there with its size.
/// `progress(done, total)` follows the files. Blocks.
pub fn copy_all(
    from: &dyn Storage,
    to: &dyn Storage,
    progress: &dyn Fn(u64, u64),
) -> Result<Copied, FilesError> {
    let source = from.list()?;
    let already = by_path(to.list()?);
    let total = source.len() as u64;
    let mut done = Copied::default();
    for (i, (key, size)) in source.iter().enumerate() {
        if already.get(&key.parts().join("/")) == Some(size) {
            done.present += 1;
        } else {
            let local = from.local_copy(key)?;
            let staged = stage_copy(to.staging_dir(), local.path(), key.name())?;
            to.put(staged, key)?;
            done.copied += 1;
            done.bytes += size;
        }
        progress(i as u64 + 1, total);
    }
    let landed = by_path(to.list()?);
    let missing: Vec<String> = source
        .iter()
        .map(|(key, size)| (key.parts().join("/"), size))
        .filter(|(path, size)| landed.get(path) != Some(size))
        .map(|(path, _)| path)
        .collect();
    if let Some(first) = missing.first() {
        return Err(FilesError::Verify(format!(
            "{} file(s) missing or of another size at the target after copying, e.g. {first}",
            missing.len()
        )));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::super::{LocalStorage, ThumbSize, storage::stage_bytes};
    use super::*;

    fn put(store: &LocalStorage, key: &BlobKey, bytes: &[u8]) {
        let staged = stage_bytes(store.staging_dir(), key.name(), bytes).expect("stage");
        store.put(staged, key).expect("put");
    }

    #[test]
    fn copies_originals_and_thumbs_once_and_a_second_run_sends_nothing() {
        let (a, b) = (
            tempfile::tempdir().expect("tmp"),
            tempfile::tempdir().expect("tmp"),
        );
        let from = LocalStorage::open(a.path()).expect("open");
        let to = LocalStorage::open(b.path()).expect("open");
        let key = BlobKey::new("c1", "r1", "a.png").expect("key");
        let thumb = key.thumb(&ThumbSize::parse("10x10").expect("size"));
        put(&from, &key, b"original");
        put(&from, &thumb, b"thumb");
        put(
            &from,
            &BlobKey::new("c2", "r9", "b.txt").expect("key"),
            b"bb",
        );
        // A partial earlier run: one file there already, one of the wrong size.
        put(&to, &BlobKey::new("c2", "r9", "b.txt").expect("key"), b"bb");
        put(&to, &key, b"trunc");

        let first = copy_all(&from, &to, &|_, _| {}).expect("copy");
        let second = copy_all(&from, &to, &|_, _| {}).expect("again");

        assert_eq!((first.copied, first.present), (2, 1), "{first:?}");
        assert_eq!(
            (second.copied, second.present),
            (0, 3),
            "resumable: {second:?}"
        );
        let copy = to.local_copy(&thumb).expect("thumb copied");
        assert_eq!(std::fs::read(copy.path()).expect("read"), b"thumb");
        let copy = to.local_copy(&key).expect("original copied");
        assert_eq!(std::fs::read(copy.path()).expect("read"), b"original");
        assert!(from.local_copy(&key).is_ok(), "the source keeps its files");
    }
}
