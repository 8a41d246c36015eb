//! The filter and sort languages end to end: parse, compile against the real
//! `posts` schema for an actor, then prepare and run the SQL on the server's
//! SQLite. Must never panic, and whatever compiles must be valid SQL that
//! runs (limits such as expression depth excepted).
//!
//! Input: one byte choosing the actor and the mode, then the filter text.
#![no_main]

use ferrobase::rules::{self, Path, RuleError, SqlValue};
use ferrobase::schema::{FieldScope, RequestValues, Trust};
use ferrobase_fuzz::{SqlFailure, World, is_sqlite_limit};
use libfuzzer_sys::fuzz_target;
use rusqlite::types::Value as Sql;
use std::cell::Cell;

/// `@request.*` as a signed-in user (or a guest) sending a small body.
struct Request {
    auth_id: Option<&'static str>,
}

impl RequestValues for Request {
    fn value(&self, path: &Path) -> Result<Option<SqlValue>, RuleError> {
        let key = path.segments.get(1..).unwrap_or_default().join(".");
        Ok(match (key.as_str(), self.auth_id) {
            ("auth.id", Some(id)) => Some(SqlValue::Text(id.into())),
            ("auth.email", Some(_)) => Some(SqlValue::Text("a@x.io".into())),
            ("auth.collectionName", Some(_)) => Some(SqlValue::Text("users".into())),
            ("method", _) => Some(SqlValue::Text("PATCH".into())),
            ("context", _) => Some(SqlValue::Text("default".into())),
            ("body.title", _) => Some(SqlValue::Text("t".into())),
            ("body.views", _) => Some(SqlValue::Integer(7)),
            ("body.tags", _) => Some(SqlValue::Text("[\"a\",\"c\"]".into())),
            ("query.page", _) => Some(SqlValue::Text("2".into())),
            _ => None,
        })
    }

    fn auth_record(&self) -> Option<(&str, &str)> {
        self.auth_id.map(|id| ("_pb_users_auth_", id))
    }
}

fn bind(value: SqlValue) -> Sql {
    match value {
        SqlValue::Null => Sql::Null,
        SqlValue::Integer(i) => Sql::Integer(i),
        SqlValue::Real(f) => Sql::Real(f),
        SqlValue::Text(s) => Sql::Text(s),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, text)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let world = World::get();
    let Some(posts) = world.snapshot.get_ref("posts") else { panic!("posts exists") };
    let request = Request {
        auth_id: match mode & 3 {
            0 => None,
            1 => Some("u1aaaaaaaaaaaaa"),
            _ => Some("u2aaaaaaaaaaaaa"),
        },
    };
    // A rule, or a superuser's query, is fully trusted; anyone else's filter is not.
    let trust = if mode & 3 == 3 || mode & 4 != 0 { Trust::Full } else { Trust::Client };
    let aliases = Cell::new(0);
    let scope = FieldScope::new(&world.snapshot, posts, trust, &request, &aliases);
    let (sql, params) = if mode & 8 != 0 {
        let Ok(items) = rules::parse_sort(text) else { return };
        let Ok(order) = rules::compile_order(&items, &scope) else { return };
        if order.sql.is_empty() {
            return; // a blank sort: the list keeps its default order
        }
        let params: Vec<Sql> = order.params.into_iter().map(bind).collect();
        (format!("SELECT \"posts\".\"id\" FROM \"posts\" ORDER BY {}", order.sql), params)
    } else {
        let Ok(expr) = rules::parse_filter(text) else { return };
        let Ok(condition) = rules::compile(&expr, &scope) else { return };
        let params: Vec<Sql> = condition.params.into_iter().map(bind).collect();
        (format!("SELECT \"posts\".\"id\" FROM \"posts\" WHERE {}", condition.sql), params)
    };
    let outcome = world.runtime.block_on(world.db.read(move |conn| {
        let failed = |e: rusqlite::Error| SqlFailure::Sql(sql.clone(), e.to_string());
        let mut statement = conn.prepare(&sql).map_err(failed)?;
        let rows = statement
            .query_map(rusqlite::params_from_iter(params.iter()), |row| row.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(failed)?;
        Ok::<_, SqlFailure>(rows)
    }));
    match outcome {
        Ok(ids) => assert!(ids.len() <= 3, "more rows than the table holds: {ids:?}"),
        Err(SqlFailure::Sql(_, message)) if is_sqlite_limit(&message) => {}
        Err(failure) => panic!("{text:?} compiled to SQL that fails: {failure:?}"),
    }
});
