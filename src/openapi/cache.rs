//! The served document, kept per audience and format until the schema
//! snapshot it was built from is replaced. A snapshot is immutable and every
//! schema change installs a new one, so the snapshot's identity is the schema
//! version.

use super::{Audience, Format};
use crate::schema::Snapshot;
use bytes::Bytes;
use std::sync::{Arc, Mutex, Weak};

/// One rendered document and the snapshot it describes.
struct Entry {
    // Weak: an old snapshot is not kept alive by the cache. The allocation
    // stays while the Weak lives, so its address cannot be reused by a
    // newer snapshot and `ptr_eq` cannot mistake one for the other.
    snapshot: Weak<Snapshot>,
    body: Bytes,
}

/// Rendered documents per audience and format, rebuilt after a schema change.
#[derive(Default)]
pub struct Cache {
    /// Indexed by [`slot_index`].
    slots: [Mutex<Option<Entry>>; 4],
}

fn slot_index(audience: Audience, format: Format) -> usize {
    let a = match audience {
        Audience::Superuser => 0,
        Audience::Public => 1,
    };
    let f = match format {
        Format::Json => 0,
        Format::Yaml => 1,
    };
    a * 2 + f
}

impl Cache {
    /// The document for `audience` in `format`, built if `snapshot` is newer
    /// than the cached one.
    pub fn get(&self, snapshot: &Arc<Snapshot>, audience: Audience, format: Format) -> Bytes {
        let slot = &self.slots[slot_index(audience, format)];
        let mut guard = match slot.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(entry) = guard.as_ref()
            && Weak::ptr_eq(&entry.snapshot, &Arc::downgrade(snapshot))
        {
            return entry.body.clone();
        }
        let body = Bytes::from(format.render(&super::build(snapshot, audience)));
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
        let get = |s: &Arc<Snapshot>, f| cache.get(s, Audience::Public, f);
        let a = get(&first, Format::Json);
        let b = get(&first, Format::Json);
        assert_eq!(a.as_ptr(), b.as_ptr(), "same snapshot must reuse the body");
        let y = get(&first, Format::Yaml);
        assert_ne!(a, y, "each format has its own body");
        let second = Arc::new(Snapshot::default());
        let c = get(&second, Format::Json);
        assert_ne!(a.as_ptr(), c.as_ptr(), "a new snapshot must rebuild");
    }

    #[test]
    fn the_yaml_body_reads_back_as_the_json_document() {
        let cache = Cache::default();
        let snapshot = Arc::new(Snapshot::default());
        for audience in [Audience::Superuser, Audience::Public] {
            let json = cache.get(&snapshot, audience, Format::Json);
            let yaml = cache.get(&snapshot, audience, Format::Yaml);
            let from_json: serde_json::Value = serde_json::from_slice(&json).expect("parses");
            let from_yaml: serde_json::Value = serde_yaml_ng::from_slice(&yaml).expect("parses");
            assert_eq!(from_json, from_yaml, "{audience:?}");
        }
    }
}
