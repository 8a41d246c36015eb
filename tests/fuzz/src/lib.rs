//! Shared fixtures for the fuzz targets: a real Ferrobase database in a temp
//! dir with collections of every field kind and a few records, so compiled
//! filters are prepared and run on the same SQLite, with the same functions,
//! that the server uses.

use ferrobase::config::DatabaseConfig;
use ferrobase::db::{Db, DbError};
use ferrobase::schema::{self, Registry, Snapshot};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

/// One database, its schema and a runtime to drive the async API.
pub struct World {
    pub runtime: tokio::runtime::Runtime,
    pub db: Db,
    pub snapshot: Arc<Snapshot>,
    _dir: tempfile::TempDir,
}

/// The `posts` collection: one field of every kind, relations to users and teams.
fn posts(users: &str, teams: &str) -> Value {
    json!({
        "name": "posts", "type": "base", "listRule": "", "viewRule": "",
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "body", "type": "editor"},
            {"name": "views", "type": "number"},
            {"name": "published", "type": "bool"},
            {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
            {"name": "kind", "type": "select", "values": ["x", "y"], "maxSelect": 1},
            {"name": "meta", "type": "json"},
            {"name": "when", "type": "date"},
            {"name": "site", "type": "url"},
            {"name": "contact", "type": "email"},
            {"name": "loc", "type": "geoPoint"},
            {"name": "secret", "type": "text", "hidden": true},
            {"name": "files", "type": "file", "maxSelect": 5},
            {"name": "owner", "type": "relation", "collectionId": users, "maxSelect": 1},
            {"name": "readers", "type": "relation", "collectionId": users, "maxSelect": 10},
            {"name": "team", "type": "relation", "collectionId": teams, "maxSelect": 1},
        ],
    })
}

fn teams(users: &str) -> Value {
    json!({
        "name": "teams", "type": "base",
        "listRule": "members.id ?= @request.auth.id",
        "fields": [
            {"name": "name", "type": "text"},
            {"name": "members", "type": "relation", "collectionId": users, "maxSelect": 50},
        ],
    })
}

const SEED: &[&str] = &[
    "INSERT INTO users (id, email, emailVisibility, verified, tokenKey, password, name)
     VALUES ('u1aaaaaaaaaaaaa', 'a@x.io', 1, 1, 'k1', 'h', 'A'),
            ('u2aaaaaaaaaaaaa', 'b@x.io', 0, 0, 'k2', 'h', 'B')",
    "INSERT INTO teams (id, name, members) VALUES
     ('t1aaaaaaaaaaaaa', 'red', '[\"u1aaaaaaaaaaaaa\"]'), ('t2aaaaaaaaaaaaa', 'empty', '[]')",
    "INSERT INTO posts (id, title, views, published, tags, kind, meta, owner, readers, team, loc)
     VALUES ('p1aaaaaaaaaaaaa', 'Hello', 3, 1, '[\"a\",\"b\"]', 'x', '{\"k\":[1,2]}',
             'u1aaaaaaaaaaaaa', '[\"u2aaaaaaaaaaaaa\"]', 't1aaaaaaaaaaaaa', '{\"lon\":1,\"lat\":2}'),
            ('p2aaaaaaaaaaaaa', '', 0, 0, '[]', '', 'null', '', '[]', 't2aaaaaaaaaaaaa', ''),
            ('p3aaaaaaaaaaaaa', '100%_\\', -1.5, 0, 'not json', 'y', '\"s\"', 'nobody', '[1,2]', '', '{}')",
];

impl World {
    fn build() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = tempfile::tempdir().expect("a temp dir");
        let options = DatabaseConfig {
            reader_pool_size: 1,
            ..DatabaseConfig::default()
        };
        let db = Db::open(dir.path(), &options).expect("the database opens");
        let registry = Registry::default();
        runtime.block_on(async {
            registry.replace(db.read(schema::load_snapshot).await.expect("schema loads"));
            let users = "_pb_users_auth_";
            let teams = schema::create(&db, &registry, teams(users)).await.expect("teams");
            registry.replace(db.read(schema::load_snapshot).await.expect("schema loads"));
            schema::create(&db, &registry, posts(users, &teams.id)).await.expect("posts");
            registry.replace(db.read(schema::load_snapshot).await.expect("schema loads"));
            db.write(|conn| {
                for sql in SEED {
                    conn.execute(sql, [])?;
                }
                Ok::<_, DbError>(())
            })
            .await
            .expect("seed rows");
        });
        let snapshot = registry.snapshot();
        World { runtime, db, snapshot, _dir: dir }
    }

    /// The world, built on first use.
    pub fn get() -> &'static World {
        static WORLD: OnceLock<World> = OnceLock::new();
        WORLD.get_or_init(World::build)
    }
}

/// SQLite errors that are limits, not bugs: a hostile filter may hit them
/// (and the server answers 400), but a compiled filter must never be invalid SQL.
pub fn is_sqlite_limit(message: &str) -> bool {
    ["too many", "too large", "too big", "depth", "stack overflow", "out of memory", "interrupted"]
        .iter()
        .any(|limit| message.contains(limit))
}

/// Why running generated SQL failed.
#[derive(Debug)]
pub enum SqlFailure {
    /// The pool or reader thread failed.
    Db(DbError),
    /// SQLite refused the statement: (SQL, message).
    Sql(String, String),
}

impl From<DbError> for SqlFailure {
    fn from(e: DbError) -> Self {
        SqlFailure::Db(e)
    }
}
