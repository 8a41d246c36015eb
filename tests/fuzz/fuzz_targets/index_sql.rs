//! The index-SQL parser: PocketBase clients send indexes as `CREATE INDEX`
//! text, which is parsed and re-rendered, never executed as sent. Whatever
//! parses must render to SQL that parses back to the same definition (in
//! both the PocketBase and the executable form), and executing the rendered
//! SQL on SQLite must create one index and nothing else.
#![no_main]

use ferrobase::schema::{CollectionName, IndexDef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(def) = IndexDef::parse(text) else { return };
    let table = CollectionName::parse("posts").expect("a valid name");
    for rendered in [def.to_sql(&table), def.to_pb_sql(&table)] {
        let again = IndexDef::parse(&rendered)
            .unwrap_or_else(|e| panic!("{text:?} rendered to {rendered:?}, which fails: {e}"));
        assert_eq!(again, def, "{text:?} -> {rendered:?} changed meaning");
    }

    let conn = rusqlite::Connection::open_in_memory().expect("in-memory SQLite");
    // SQLite column names are case-insensitive; `id` is the primary key already.
    let mut names: Vec<String> = def.columns.iter().map(|c| c.field.as_str().to_ascii_lowercase()).collect();
    names.extend(def.where_not_empty.iter().map(|f| f.as_str().to_ascii_lowercase()));
    names.retain(|n| n != "id");
    names.sort();
    names.dedup();
    let columns: String = names.iter().map(|n| format!(", \"{n}\"")).collect();
    conn.execute_batch(&format!("CREATE TABLE posts (id TEXT PRIMARY KEY{columns})"))
        .unwrap_or_else(|e| panic!("columns {names:?} of {text:?}: {e}"));
    let rendered = def.to_sql(&table);
    conn.execute_batch(&rendered)
        .unwrap_or_else(|e| panic!("{text:?} rendered to {rendered:?}, which SQLite refuses: {e}"));
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .expect("count objects");
    // The table, its primary-key index, and the one new index.
    assert_eq!(objects, 3, "{rendered:?} created more than one index");
});
