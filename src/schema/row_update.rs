//! The one way a write outside the record API (account flows, OAuth2
//! linking, the pre-hijacking guards) changes columns of a record row: a
//! [`RowUpdate`] sets the columns the flow names and stamps exactly the
//! collection's autodate fields that have `onUpdate`, whatever their names,
//! and none when there are none. An auth collection created through the API
//! has no `updated` field (in PocketBase too), so a flow must never assume
//! one. Validation, rules and realtime stay with the callers.

use super::collection::Collection;
use super::field::FieldKind;
use crate::db::ident;
use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;

/// An `UPDATE` of one collection's rows, built column by column. Column
/// names go through `ident`; every value is bound.
#[derive(Debug)]
pub struct RowUpdate {
    table: String,
    sets: Vec<String>,
    values: Vec<SqlValue>,
}

impl RowUpdate {
    /// An update of `collection`'s table that stamps its on-update
    /// autodates with the current time.
    pub fn new(collection: &Collection) -> Self {
        let mut update = Self {
            table: ident(collection.name.as_str()),
            sets: Vec::new(),
            values: Vec::new(),
        };
        let now = crate::clock::now();
        for name in on_update_autodates(collection) {
            update = update.set(name, now.clone());
        }
        update
    }

    /// Also sets `column` to `value`.
    pub fn set(mut self, column: &str, value: impl Into<SqlValue>) -> Self {
        self.values.push(value.into());
        self.sets
            .push(format!("{} = ?{}", ident(column), self.values.len()));
        self
    }

    /// Runs the update on the rows matching `condition`, a SQL condition
    /// whose placeholders are bare `?` (numbered after the `SET` values, in
    /// order) bound to `params`. Returns how many rows changed.
    pub fn execute(
        self,
        conn: &Connection,
        condition: &str,
        params: impl IntoIterator<Item = SqlValue>,
    ) -> rusqlite::Result<usize> {
        if self.sets.is_empty() {
            // Nothing to set (no columns and no on-update autodates): count
            // the matching rows so callers still learn whether one matched.
            let sql = format!("SELECT count(*) FROM {} WHERE {condition}", self.table);
            let params: Vec<SqlValue> = params.into_iter().collect();
            let n: i64 = conn.query_row(&sql, rusqlite::params_from_iter(params), |r| r.get(0))?;
            return Ok(usize::try_from(n).unwrap_or(0));
        }
        let sql = format!(
            "UPDATE {} SET {} WHERE {condition}",
            self.table,
            self.sets.join(", ")
        );
        let mut values = self.values;
        values.extend(params);
        conn.execute(&sql, rusqlite::params_from_iter(values))
    }

    /// [`RowUpdate::execute`] on the record with id `id`.
    pub fn execute_for(self, conn: &Connection, id: &str) -> rusqlite::Result<usize> {
        self.execute(conn, "id = ?", [SqlValue::Text(id.to_owned())])
    }
}

/// Names of the collection's autodate fields stamped on every update.
pub fn on_update_autodates(collection: &Collection) -> impl Iterator<Item = &str> {
    collection.fields.iter().filter_map(|f| match f.kind {
        FieldKind::Autodate {
            on_update: true, ..
        } => Some(f.name.as_str()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn collection(fields: serde_json::Value) -> Collection {
        let body = json!({"name": "people", "type": "base", "fields": fields});
        match Collection::from_create(&body) {
            Ok(c) => c,
            Err(e) => panic!("a valid collection definition: {e:?}"),
        }
    }

    fn table(conn: &Connection, columns: &str) {
        conn.execute_batch(&format!(
            "CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT{columns});
             INSERT INTO people (id, name) VALUES ('a', 'old'), ('b', 'old');"
        ))
        .expect("table");
    }

    #[test]
    fn only_on_update_autodates_are_stamped_whatever_their_names() {
        let c = collection(json!([
            {"name": "name", "type": "text"},
            {"name": "touched", "type": "autodate", "onCreate": false, "onUpdate": true},
            {"name": "born", "type": "autodate", "onCreate": true, "onUpdate": false},
        ]));
        let conn = Connection::open_in_memory().expect("db");
        table(&conn, ", touched TEXT DEFAULT '', born TEXT DEFAULT ''");

        let changed = RowUpdate::new(&c)
            .set("name", "new".to_owned())
            .execute_for(&conn, "a")
            .expect("update runs");
        let (name, touched, born): (String, String, String) = conn
            .query_row(
                "SELECT name, touched, born FROM people WHERE id = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("row");
        let other: String = conn
            .query_row("SELECT touched FROM people WHERE id = 'b'", [], |r| {
                r.get(0)
            })
            .expect("row");

        assert_eq!(changed, 1, "one row matched");
        assert_eq!(name, "new");
        assert!(!touched.is_empty(), "the on-update autodate is stamped");
        assert_eq!(born, "", "an on-create-only autodate is left alone");
        assert_eq!(other, "", "other rows are left alone");
    }

    #[test]
    fn a_collection_without_autodates_gets_no_stamp_and_no_updated_column() {
        let c = collection(json!([{"name": "name", "type": "text"}]));
        let conn = Connection::open_in_memory().expect("db");
        table(&conn, "");

        let set = RowUpdate::new(&c)
            .set("name", "new".to_owned())
            .execute_for(&conn, "a");
        let nothing = RowUpdate::new(&c).execute(
            &conn,
            "id = ? AND name = ?",
            [
                SqlValue::from("b".to_owned()),
                SqlValue::from("old".to_owned()),
            ],
        );

        assert_eq!(set.ok(), Some(1), "sets the column without an updated one");
        assert_eq!(
            nothing.ok(),
            Some(1),
            "an empty update still counts matches"
        );
    }

    #[test]
    fn condition_placeholders_follow_the_set_values() {
        let c = collection(json!([
            {"name": "name", "type": "text"},
            {"name": "touched", "type": "autodate", "onCreate": true, "onUpdate": true},
        ]));
        let conn = Connection::open_in_memory().expect("db");
        table(&conn, ", touched TEXT DEFAULT ''");

        let changed = RowUpdate::new(&c)
            .set("name", "new".to_owned())
            .execute(
                &conn,
                "id = ? AND name = ?",
                [
                    SqlValue::from("b".to_owned()),
                    SqlValue::from("old".to_owned()),
                ],
            )
            .expect("update runs");
        let names: Vec<String> = conn
            .prepare("SELECT name FROM people ORDER BY id")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("rows");

        assert_eq!(changed, 1);
        assert_eq!(names, ["old", "new"], "only b matched the condition");
    }
}
