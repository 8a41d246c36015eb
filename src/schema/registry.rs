//! The in-memory registry of collections: every definition with its compiled
//! record schema, looked up by id or (case-insensitive) name. Replaced as a
//! whole after each schema change, so readers never see a half-updated view.

use super::auth_options::AuthOptions;
use super::collection::Collection;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A collection plus what is derived from it once per version.
pub struct CompiledCollection {
    pub def: Collection,
    pub validator: jsonschema::Validator,
    /// `SELECT <every field> FROM <table>`, built once per schema version.
    pub select_sql: String,
    /// [`Self::select_sql`] followed by ` WHERE <table>."id" = ?`.
    pub select_by_id_sql: String,
    /// The auth options, typed (defaults for base collections).
    pub auth: AuthOptions,
}

impl std::ops::Deref for CompiledCollection {
    type Target = Collection;
    fn deref(&self) -> &Collection {
        &self.def
    }
}

/// An immutable snapshot of all collections.
#[derive(Default)]
pub struct Snapshot {
    by_id: HashMap<String, Arc<CompiledCollection>>,
    by_name: HashMap<String, Arc<CompiledCollection>>,
    ordered: Vec<Arc<CompiledCollection>>,
}

impl Snapshot {
    /// Builds a snapshot, compiling each collection's record schema.
    pub fn build(collections: Vec<Collection>) -> Result<Self, String> {
        let mut snap = Snapshot::default();
        for def in collections {
            let validator = super::json_schema::compile(&def)?;
            let select_sql = crate::records::select_sql(&def);
            let select_by_id_sql = format!(
                "{select_sql} WHERE {}.\"id\" = ?",
                crate::db::ident(def.name.as_str())
            );
            let auth = AuthOptions::parse(&def);
            let entry = Arc::new(CompiledCollection {
                def,
                auth,
                validator,
                select_sql,
                select_by_id_sql,
            });
            snap.by_id.insert(entry.id.clone(), entry.clone());
            snap.by_name
                .insert(entry.name.as_str().to_ascii_lowercase(), entry.clone());
            snap.ordered.push(entry);
        }
        Ok(snap)
    }

    /// Finds a collection by id or name.
    pub fn get(&self, id_or_name: &str) -> Option<Arc<CompiledCollection>> {
        self.by_id
            .get(id_or_name)
            .or_else(|| self.by_name.get(&id_or_name.to_ascii_lowercase()))
            .cloned()
    }

    /// Like [`Snapshot::get`], borrowing from the snapshot.
    pub fn get_ref(&self, id_or_name: &str) -> Option<&CompiledCollection> {
        self.by_id
            .get(id_or_name)
            .or_else(|| self.by_name.get(&id_or_name.to_ascii_lowercase()))
            .map(|c| c.as_ref())
    }

    /// All collections in creation order.
    pub fn all(&self) -> &[Arc<CompiledCollection>] {
        &self.ordered
    }
}

/// Counts the schema changes of this process in commit order.
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The generation of a schema change, taken where changes are serialised
/// (on SQLite's writer thread, or under PostgreSQL's schema lock), so
/// generations follow the commit order; see [`Registry::install`].
pub(crate) fn next_generation() -> u64 {
    GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
}

/// Shared handle to the current snapshot.
#[derive(Default, Clone)]
pub struct Registry {
    current: Arc<RwLock<Arc<Snapshot>>>,
    /// The generation of the installed snapshot (see [`Registry::install`]).
    generation: Arc<std::sync::Mutex<u64>>,
}

impl Registry {
    /// The current snapshot (cheap: one Arc clone).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Finds a collection by id or name in the current snapshot.
    pub fn get(&self, id_or_name: &str) -> Option<Arc<CompiledCollection>> {
        self.snapshot().get(id_or_name)
    }

    /// Installs `snapshot` unless one of a later `generation` is already
    /// installed: two schema changes committed in order may come back from
    /// their database threads in either order.
    pub fn install(&self, generation: u64, snapshot: Snapshot) {
        let mut installed = match self.generation.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if generation > *installed {
            *installed = generation;
            self.replace(snapshot);
        }
    }

    /// Installs a new snapshot.
    pub fn replace(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        match self.current.write() {
            Ok(mut guard) => *guard = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot holding the collections of a fresh data dir plus `extra`.
    fn snapshot_with(extra: Option<&str>) -> Snapshot {
        let conn = crate::db::Db::fresh_in_memory().expect("fresh");
        let mut all = crate::schema::load_all(&conn).expect("collections");
        if let Some(name) = extra {
            let mut c = all[0].clone();
            c.id = format!("pbc_{name}");
            c.name = crate::schema::CollectionName::trusted(name.to_owned());
            all.push(c);
        }
        Snapshot::build(all).expect("snapshot")
    }

    #[test]
    fn a_later_generation_is_never_replaced_by_an_earlier_one() {
        let registry = Registry::default();
        // Two changes committed as 1 then 2, their answers back as 2 then 1.
        registry.install(2, snapshot_with(Some("second")));
        registry.install(1, snapshot_with(Some("first")));
        assert!(
            registry.get("second").is_some(),
            "the later commit's snapshot stays"
        );
        assert!(registry.get("first").is_none());
        registry.install(3, snapshot_with(None));
        assert!(
            registry.get("second").is_none(),
            "a newer generation installs"
        );
    }
}
