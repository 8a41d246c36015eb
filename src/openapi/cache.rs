//! The served document, kept per audience until the schema snapshot it was
//! built from is replaced. A snapshot is immutable and every schema change
//! installs a new one, so the snapshot's identity is the schema version.

use super::Audience;
use crate::schema::Snapshot;
use bytes::Bytes;
use std::sync::{Arc, Mutex, Weak};

/// One built document and the snapshot it describes.
struct Entry {
    // Weak: an old snapshot is not kept alive by the cache. The allocation
    // stays while the Weak lives, so its address cannot be reused by a
    // newer snapshot and `ptr_eq` cannot mistake one for the other.
    snapshot: Weak<Snapshot>,
    body: Bytes,
}

/// Serialized documents per audience, rebuilt after a schema change.
#[derive(Default)]
pub struct Cache {
    superuser: Mutex<Option<Entry>>,
    public: Mutex<Option<Entry>>,
}

impl Cache {
    /// The document for `audience` as JSON text, built if `snapshot` is
    /// newer than the cached one.
    pub fn get(&self, snapshot: &Arc<Snapshot>, audience: Audience) -> Bytes {
        let slot = match audience {
            Audience::Superuser => &self.superuser,
            Audience::Public => &self.public,
        };
        let mut guard = match slot.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(entry) = guard.as_ref()
            && Weak::ptr_eq(&entry.snapshot, &Arc::downgrade(snapshot))
        {
            return entry.body.clone();
        }
        let body = Bytes::from(super::build(snapshot, audience).to_string());
        *guard = Some(Entry {
            snapshot: Arc::downgrade(snapshot),
            body: body.clone(),
        });
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_snapshot_rebuilds_and_the_same_one_reuses() {
        let cache = Cache::default();
        let first = Arc::new(Snapshot::default());
        let a = cache.get(&first, Audience::Public);
        let b = cache.get(&first, Audience::Public);
        assert_eq!(a.as_ptr(), b.as_ptr(), "same snapshot must reuse the body");
        let second = Arc::new(Snapshot::default());
        let c = cache.get(&second, Audience::Public);
        assert_ne!(a.as_ptr(), c.as_ptr(), "a new snapshot must rebuild");
    }
}
