//! How collections appear to the rules engine. A field name is a quoted
//! column of the collection's table; a JSON or geoPoint sub-path goes through
//! `json_extract` with a validated path; a relation path (`author.name`,
//! `tags.title`, `comments_via_post.author`, up to [`MAX_RELATION_HOPS`])
//! becomes a correlated subquery over the related tables, and a path through
//! a multi-valued hop yields a JSON array compared element by element. A
//! value reached through a relation is [`Nulls::Absent`] when no related
//! row is there, so "no member" never equals a guest's empty id.
//!
//! What an expression may reach depends on who wrote it ([`Trust`]).
//! Collection rules and superusers' own filters see every field and every
//! related row, as PocketBase evaluates them. Other callers' `filter`/`sort`
//! get no hidden fields, every related collection's list rule applied to the
//! rows it contributes (a `null` list rule makes the path unusable: a
//! Ferrobase hardening, PocketBase leaks related rows there), and an auth
//! collection's `email` only where its `emailVisibility` is on, as in
//! PocketBase; elsewhere it is [`Nulls::Withheld`].
//! Like PocketBase, a client query also keeps a record only when every row
//! its `filter`/`sort` paths join is one the caller may list (or there is
//! none): [`FieldScope::take_join_guards`] hands those conditions to the
//! caller to AND onto the whole query, so an `||` branch on the record itself
//! cannot bring back a record whose related row is hidden. A path ending in
//! a single relation's `id` (`team.id`) reads the record's own column and
//! adds no guard, as in PocketBase.
//! `@collection.<name>` opens another collection inside the `EXISTS` the
//! compiler builds for it. `@request.*` values come from a [`RequestValues`]
//! supplied by the caller.

use super::collection::{Collection, CollectionType};
use super::field::FieldKind;
use super::registry::Snapshot;
use crate::db::ident;
use crate::rules::{self, CollectionSource, ColumnRef, Nulls, Path, RuleError, Scope, SqlValue};
use std::cell::{Cell, RefCell};

/// Longest relation chain a path may follow.
pub const MAX_RELATION_HOPS: usize = 6;

/// Supplies `@request.*` values for one request.
pub trait RequestValues {
    /// The value of `path` (an `@request.…` path), `None` when missing.
    fn value(&self, path: &Path) -> Result<Option<SqlValue>, RuleError>;

    /// (collection id, record id) of the authenticated record; `None` for
    /// guests and requests whose token did not verify.
    fn auth_record(&self) -> Option<(&str, &str)> {
        None
    }
}

/// Who wrote the expression being compiled, which decides what it may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// A collection rule (written by a superuser) or a superuser's own
    /// `filter`/`sort`: hidden fields, every email and every related row.
    Full,
    /// Any other caller's `filter`/`sort`: no hidden fields, related rows
    /// only where the related collection's list rule admits the caller, and
    /// emails only where visible to them.
    Client,
}

impl Trust {
    /// The trust given to a `filter`/`sort` sent by this kind of caller.
    pub fn of_query_by(superuser: bool) -> Self {
        if superuser { Self::Full } else { Self::Client }
    }
}

/// No request at all (rules checked at save time).
pub struct NoRequest;

impl RequestValues for NoRequest {
    fn value(&self, _path: &Path) -> Result<Option<SqlValue>, RuleError> {
        Ok(None)
    }
}

fn unresolved(path: &Path, reason: &str) -> RuleError {
    RuleError::Unresolved {
        name: path.segments.join("."),
        reason: reason.to_owned(),
    }
}

/// A rules [`Scope`] rooted at one collection's table.
pub struct FieldScope<'a> {
    snapshot: &'a Snapshot,
    collection: &'a Collection,
    /// How the root table is named in the surrounding SQL.
    alias: String,
    trust: Trust,
    request: &'a dyn RequestValues,
    aliases: &'a Cell<usize>,
    depth: usize,
    /// Conditions on the root record that client paths add: every related
    /// row they reach passes its collection's list rule.
    guards: RefCell<Vec<rules::SqlFragment>>,
}

impl<'a> FieldScope<'a> {
    /// A scope over `collection`'s own table (referred to by its name).
    pub fn new(
        snapshot: &'a Snapshot,
        collection: &'a Collection,
        trust: Trust,
        request: &'a dyn RequestValues,
        aliases: &'a Cell<usize>,
    ) -> Self {
        Self {
            snapshot,
            collection,
            alias: ident(collection.name.as_str()),
            trust,
            request,
            aliases,
            depth: 0,
            guards: RefCell::new(Vec::new()),
        }
    }

    /// The join guards the paths compiled so far added (see the module
    /// docs), to be ANDed onto the query the root record comes from.
    pub fn take_join_guards(&self) -> Vec<rules::SqlFragment> {
        self.guards.take()
    }

    /// Records that every row `from`/`links` reach from the root record must
    /// pass `rule` (rows whose rule is NULL fail, like a false rule).
    fn guard(&self, from: &str, links: &[String], rule: &rules::SqlFragment) {
        if self.depth > 0 {
            // Nested scopes (`@collection`) are not rooted at the listed record.
            return;
        }
        let mut wheres: Vec<String> = links.to_vec();
        wheres.push(format!("NOT COALESCE(({}), 0)", rule.sql));
        self.guards.borrow_mut().push(rules::SqlFragment {
            sql: format!(
                "NOT EXISTS (SELECT 1 FROM {from} WHERE {})",
                wheres.join(" AND ")
            ),
            params: rule.params.clone(),
        });
    }

    fn next_alias(&self) -> String {
        let n = self.aliases.get() + 1;
        self.aliases.set(n);
        format!("\"_fb_r{n}\"")
    }

    /// The related collection's list rule as an SQL condition on `alias`,
    /// for client queries (rules and superusers see every related row).
    fn related_rule(
        &self,
        target: &Collection,
        alias: &str,
        path: &Path,
    ) -> Result<Option<rules::SqlFragment>, RuleError> {
        if self.trust == Trust::Full {
            return Ok(None);
        }
        match &target.rules.list {
            None => Err(unresolved(
                path,
                "the related collection is superusers-only",
            )),
            Some(rule) if rule.trim().is_empty() => Ok(None),
            Some(rule) => {
                if self.depth >= MAX_RELATION_HOPS {
                    return Err(unresolved(path, "relation rules nest too deep"));
                }
                // The list rule is a rule: compiled as its author wrote it.
                let nested = FieldScope {
                    snapshot: self.snapshot,
                    collection: target,
                    alias: alias.to_owned(),
                    trust: Trust::Full,
                    request: self.request,
                    aliases: self.aliases,
                    depth: self.depth + 1,
                    guards: RefCell::new(Vec::new()),
                };
                rules::compile(&*rules::parse_filter_cached(rule)?, &nested).map(Some)
            }
        }
    }

    /// An auth collection's `email` (of the row `alias`) as a client query
    /// may see it: the address where `emailVisibility` is on, NULL
    /// ([`Nulls::Withheld`]) elsewhere, so no filter matches a hidden
    /// address and no sort orders by one. Rules and superusers see all.
    fn email(&self, value: Value, alias: &str) -> Value {
        if self.trust == Trust::Full {
            return value;
        }
        // As PocketBase: only `emailVisibility` opens an address to client
        // queries (not even the caller's own row: what the caller may match
        // and what a record shows them stay one rule).
        Value {
            sql: format!(
                "(CASE WHEN {alias}.\"emailVisibility\" = 1 THEN {} END)",
                value.sql
            ),
            params: value.params,
            nulls: Nulls::Withheld,
        }
    }

    fn resolve(&self, path: &Path) -> Result<ColumnRef, RuleError> {
        let mut collection = self.collection;
        let mut alias = self.alias.clone();
        let mut from = String::new();
        let mut conditions: Vec<String> = Vec::new();
        // The conditions that only link the path's rows (no list rules).
        let mut links: Vec<String> = Vec::new();
        let mut params: Vec<SqlValue> = Vec::new();
        let mut multi = false;
        let mut hops = 0;
        for (i, seg) in path.segments.iter().enumerate() {
            let rest = &path.segments[i + 1..];
            if let Some(field) = collection.field(seg) {
                if field.hidden && self.trust == Trust::Client {
                    return Err(unresolved(path, "hidden field"));
                }
                let column = format!("{alias}.{}", ident(field.name.as_str()));
                let relation_target = match &field.kind {
                    FieldKind::Relation { collection_id, .. } if !rest.is_empty() => {
                        Some(collection_id)
                    }
                    _ => None,
                };
                let Some(target_id) = relation_target else {
                    let mut value = Value {
                        sql: json_path(&column, field, rest, path)?,
                        params: Vec::new(),
                        nulls: if hops == 0 {
                            Nulls::Empty
                        } else {
                            Nulls::Absent
                        },
                    };
                    if field.name.as_str() == "email" && collection.kind == CollectionType::Auth {
                        value = self.email(value, &alias);
                    }
                    return Ok(finish(
                        value,
                        field.is_multi(),
                        hops,
                        multi,
                        &from,
                        &conditions,
                        params,
                    ));
                };
                if hops == MAX_RELATION_HOPS {
                    return Err(unresolved(path, "too many relation hops"));
                }
                let Some(target) = self.snapshot.get_ref(target_id) else {
                    return Err(unresolved(path, "the related collection no longer exists"));
                };
                let next = self.next_alias();
                let table = ident(target.name.as_str());
                if field.is_multi() {
                    multi = true;
                    let each = self.next_alias();
                    let join = format!(
                        "json_each({column}) AS {each} JOIN {table} AS {next} ON {next}.\"id\" = {each}.value"
                    );
                    from = if from.is_empty() {
                        join
                    } else {
                        format!("{from} JOIN {join}")
                    };
                } else if from.is_empty() {
                    from = format!("{table} AS {next}");
                    links.push(format!("{next}.\"id\" = {column}"));
                    conditions.push(format!("{next}.\"id\" = {column}"));
                } else {
                    from = format!("{from} JOIN {table} AS {next} ON {next}.\"id\" = {column}");
                }
                if let Some(rule) = self.related_rule(target, &next, path)? {
                    // `team.id` is the record's own `team` column in PocketBase: no join.
                    if field.is_multi() || rest != ["id"] {
                        self.guard(&from, &links, &rule);
                    }
                    conditions.push(format!("({})", rule.sql));
                    params.extend(rule.params);
                }
                collection = &target.def;
                alias = next;
                hops += 1;
                continue;
            }
            let Some((source_name, field_name)) = seg.split_once("_via_") else {
                return Err(unresolved(path, "unknown field"));
            };
            let Some(source) = self.snapshot.get_ref(source_name) else {
                return Err(unresolved(path, "unknown back-relation collection"));
            };
            let Some(back) = source.field(field_name).filter(|f| {
                matches!(&f.kind, FieldKind::Relation { collection_id, .. } if collection_id == &collection.id)
            }) else {
                return Err(unresolved(path, "not a relation to this collection"));
            };
            if back.hidden && self.trust == Trust::Client {
                return Err(unresolved(path, "hidden field"));
            }
            if hops == MAX_RELATION_HOPS {
                return Err(unresolved(path, "too many relation hops"));
            }
            multi = true;
            let next = self.next_alias();
            let back_col = format!("{next}.{}", ident(back.name.as_str()));
            let link = if back.is_multi() {
                format!(
                    "EXISTS (SELECT 1 FROM json_each({back_col}) WHERE json_each.value = {alias}.\"id\")"
                )
            } else {
                format!("{back_col} = {alias}.\"id\"")
            };
            let table = ident(source.name.as_str());
            if from.is_empty() {
                from = format!("{table} AS {next}");
                links.push(link.clone());
                conditions.push(link);
            } else {
                from = format!("{from} JOIN {table} AS {next} ON {link}");
            }
            if let Some(rule) = self.related_rule(source, &next, path)? {
                self.guard(&from, &links, &rule);
                conditions.push(format!("({})", rule.sql));
                params.extend(rule.params);
            }
            hops += 1;
            if rest.is_empty() {
                let value = Value {
                    sql: format!("{next}.\"id\""),
                    params: Vec::new(),
                    nulls: Nulls::Absent,
                };
                return Ok(finish(
                    value,
                    false,
                    hops,
                    multi,
                    &from,
                    &conditions,
                    params,
                ));
            }
            collection = &source.def;
            alias = next;
        }
        Err(unresolved(path, "empty path"))
    }
}

/// `column` itself, or `json_extract(column, '$.a.b')` for a JSON/geoPoint sub-path.
fn json_path(
    column: &str,
    field: &super::field::Field,
    rest: &[String],
    path: &Path,
) -> Result<String, RuleError> {
    if rest.is_empty() {
        return Ok(column.to_owned());
    }
    if !matches!(field.kind, FieldKind::Json { .. } | FieldKind::GeoPoint) {
        return Err(unresolved(path, "not a relation or JSON field"));
    }
    let mut json_path = String::from("$");
    for seg in rest {
        if !seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(unresolved(path, "bad JSON path segment"));
        }
        if seg.chars().all(|c| c.is_ascii_digit()) {
            json_path.push_str(&format!("[{seg}]"));
        } else {
            json_path.push('.');
            json_path.push_str(seg);
        }
    }
    // Guarded: json_extract on text that is not JSON is an error, not NULL.
    Ok(format!(
        "(CASE WHEN json_valid({column}) THEN json_extract({column}, '{json_path}') END)"
    ))
}

/// The value a path ends in, before [`finish`] wraps it.
struct Value {
    /// SQL over the last table of the path.
    sql: String,
    /// Values for `?` placeholders in `sql`, in order.
    params: Vec<SqlValue>,
    /// What a NULL from it means.
    nulls: Nulls,
}

/// Wraps the final value: a plain column at the root, a scalar subquery
/// through single relations, a JSON array through multi-valued hops.
fn finish(
    value: Value,
    value_is_multi: bool,
    hops: usize,
    through_multi: bool,
    from: &str,
    conditions: &[String],
    condition_params: Vec<SqlValue>,
) -> ColumnRef {
    let Value {
        sql: value,
        params: mut value_params,
        nulls,
    } = value;
    if hops == 0 {
        let column = if value_is_multi {
            ColumnRef::multi(value)
        } else {
            ColumnRef::single(value)
        };
        return column.with_params(value_params).with_nulls(nulls);
    }
    // The value is written before the conditions, so its params come first.
    value_params.extend(condition_params);
    let params = value_params;
    let where_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let column = if value_is_multi {
        // A multi-valued field reached through a relation (`team.members`) is
        // compared per element, like the relation hops before it.
        ColumnRef::each(format!(
            "(SELECT json_group_array(\"_fb_each\".value) FROM {from} JOIN json_each({value}) AS \"_fb_each\"{where_sql})"
        ))
    } else if through_multi {
        ColumnRef::each(format!(
            "(SELECT json_group_array({value}) FROM {from}{where_sql})"
        ))
    } else {
        ColumnRef::single(format!("(SELECT {value} FROM {from}{where_sql} LIMIT 1)"))
    };
    column.with_params(params).with_nulls(nulls)
}

impl Scope for FieldScope<'_> {
    fn has_rowid(&self) -> bool {
        self.collection.kind != CollectionType::View
    }

    fn column(&self, path: &Path) -> Result<ColumnRef, RuleError> {
        if path.segments.first().is_some_and(|s| s.starts_with('@')) {
            return Err(unresolved(
                path,
                "`@collection` paths are not supported yet",
            ));
        }
        self.resolve(path)
    }

    fn request_value(&self, path: &Path) -> Result<Option<SqlValue>, RuleError> {
        self.request.value(path)
    }

    fn anonymous(&self) -> bool {
        self.request.auth_record().is_none()
    }

    fn collection_source(&self, name: &str, alias: &str) -> Result<CollectionSource, RuleError> {
        let Some(target) = self
            .snapshot
            .get_ref(name)
            .filter(|c| c.name.as_str() == name)
        else {
            return Err(RuleError::Unresolved {
                name: format!("@collection.{name}"),
                reason: "unknown collection".into(),
            });
        };
        let path = Path {
            segments: vec!["@collection".into(), name.into()],
            alias: None,
            modifier: None,
        };
        let condition = self.related_rule(target, alias, &path)?;
        Ok(CollectionSource {
            from: format!("{} AS {alias}", ident(target.name.as_str())),
            condition,
        })
    }

    fn collection_column(
        &self,
        name: &str,
        alias: &str,
        path: &Path,
    ) -> Result<ColumnRef, RuleError> {
        let Some(target) = self.snapshot.get_ref(name) else {
            return Err(unresolved(path, "unknown collection"));
        };
        let nested = FieldScope {
            snapshot: self.snapshot,
            collection: target,
            alias: alias.to_owned(),
            trust: self.trust,
            request: self.request,
            aliases: self.aliases,
            depth: self.depth + 1,
            guards: RefCell::new(Vec::new()),
        };
        nested.resolve(path)
    }
}

/// Checks a rule at save time: it must parse, and every field it names must exist.
pub(super) fn check_rule(
    snapshot: &Snapshot,
    collection: &Collection,
    rule: &str,
) -> Result<(), RuleError> {
    let aliases = Cell::new(0);
    let scope = FieldScope::new(snapshot, collection, Trust::Full, &NoRequest, &aliases);
    rules::compile(&rules::parse_filter(rule)?, &scope).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// A guest (no auth record) or the user `u1`, with `@request.auth.id`.
    struct Req(Option<&'static str>);

    impl RequestValues for Req {
        fn value(&self, path: &Path) -> Result<Option<SqlValue>, RuleError> {
            let id = self.0.unwrap_or_default();
            Ok((path.segments.join(".") == "@request.auth.id").then(|| SqlValue::Text(id.into())))
        }

        fn auth_record(&self) -> Option<(&str, &str)> {
            self.0.map(|id| (USERS_ID, id))
        }
    }

    const USERS_ID: &str = "pbc_users_test";

    fn snapshot(users_list_rule: Value) -> Snapshot {
        let mut users = Collection::from_create(
            &json!({"name": "users", "type": "auth", "listRule": users_list_rule}),
        )
        .expect("users");
        users.id = USERS_ID.into();
        let teams = Collection::from_create(&json!({"name": "teams", "fields": [
            {"name": "name", "type": "text"},
            {"name": "members", "type": "relation", "collectionId": USERS_ID, "maxSelect": 9}
        ]}))
        .expect("teams");
        Snapshot::build(vec![users, teams]).expect("snapshot")
    }

    /// Names of the teams `filter` admits, evaluated in SQLite.
    fn teams_matching(
        snap: &Snapshot,
        trust: Trust,
        who: Option<&'static str>,
        filter: &str,
    ) -> Result<Vec<String>, RuleError> {
        let conn = rusqlite::Connection::open_in_memory().expect("db");
        conn.execute_batch(
            "CREATE TABLE users (id TEXT, email TEXT, emailVisibility BOOLEAN);
             INSERT INTO users VALUES ('u1', 'one@x.io', 0), ('u2', 'two@x.io', 1);
             CREATE TABLE teams (id TEXT, name TEXT, members JSON);
             INSERT INTO teams VALUES ('t1', 'one', '[\"u1\"]'), ('t0', 'none', '[]'), ('t2', 'two', '[\"u2\"]');",
        )
        .expect("tables");
        let teams = snap.get_ref("teams").expect("teams");
        let aliases = Cell::new(0);
        let req = Req(who);
        let scope = FieldScope::new(snap, teams, trust, &req, &aliases);
        let cond = rules::compile(&rules::parse_filter(filter)?, &scope)?;
        let params = cond.params.iter().map(|v| match v {
            SqlValue::Text(t) => rusqlite::types::Value::Text(t.clone()),
            SqlValue::Integer(i) => rusqlite::types::Value::Integer(*i),
            SqlValue::Real(r) => rusqlite::types::Value::Real(*r),
            SqlValue::Null => rusqlite::types::Value::Null,
        });
        let sql = format!("SELECT name FROM teams WHERE {} ORDER BY name", cond.sql);
        let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let names = stmt
            .query_map(rusqlite::params_from_iter(params), |r| r.get(0))
            .expect("query")
            .collect::<Result<Vec<String>, _>>()
            .expect("rows");
        Ok(names)
    }

    #[test]
    fn an_empty_member_list_never_matches_a_guest() {
        let snap = snapshot(json!("id = @request.auth.id"));
        for (trust, who, filter, want) in [
            (Trust::Full, None, "members.id ?= @request.auth.id", vec![]),
            (Trust::Full, None, "members.id = @request.auth.id", vec![]),
            (
                Trust::Full,
                None,
                "members.email ?= @request.auth.id",
                vec![],
            ),
            (
                Trust::Full,
                None,
                "members:each ?= @request.auth.id",
                vec![],
            ),
            (
                Trust::Full,
                Some("u1"),
                "members.id ?= @request.auth.id",
                vec!["one"],
            ),
            (
                Trust::Full,
                Some("u2"),
                "members.id ?= @request.auth.id",
                vec!["two"],
            ),
            (Trust::Full, Some("u1"), "members.id ?= ''", vec![]),
            (
                Trust::Full,
                Some("u1"),
                "members.id != 'u1'",
                vec!["none", "two"],
            ),
            (Trust::Full, Some("u1"), "members:length = 0", vec!["none"]),
            (Trust::Client, Some("u1"), "members.id ?= 'u2'", vec![]),
            (Trust::Client, Some("u1"), "members.id ?= 'u1'", vec!["one"]),
        ] {
            let got = teams_matching(&snap, trust, who, filter).expect("compiles");
            assert_eq!(got, want, "{trust:?} {who:?} {filter:?}");
        }
    }

    #[test]
    fn rules_reach_related_rows_whatever_the_related_list_rule() {
        let snap = snapshot(Value::Null);
        let rule = "members.id ?= @request.auth.id";

        let member = teams_matching(&snap, Trust::Full, Some("u1"), rule);
        let guest = teams_matching(&snap, Trust::Full, None, rule);
        let client = teams_matching(&snap, Trust::Client, Some("u1"), "members.id ?= 'u1'");

        assert_eq!(
            member,
            Ok(vec!["one".to_owned()]),
            "a rule is evaluated as written"
        );
        assert_eq!(guest, Ok(vec![]), "and admits no guest");
        assert!(
            client.is_err(),
            "a client filter may not reach superusers-only rows"
        );
    }

    #[test]
    fn client_filters_only_match_emails_visible_to_the_caller() {
        let snap = snapshot(json!(""));
        for (trust, who, filter, want) in [
            (Trust::Client, None, "members.email ?~ 'x.io'", vec!["two"]),
            (
                Trust::Client,
                Some("u1"),
                "members.email ?~ 'x.io'",
                vec!["two"], // not even the caller's own hidden address (as PocketBase)
            ),
            (Trust::Client, None, "members.email ?!= 'zzz'", vec!["two"]),
            (
                Trust::Client,
                None,
                "members.email:lower ?= 'one@x.io'",
                vec![],
            ),
            (
                Trust::Full,
                None,
                "members.email ?= 'one@x.io'",
                vec!["one"],
            ),
        ] {
            let got = teams_matching(&snap, trust, who, filter).expect("compiles");
            assert_eq!(got, want, "{trust:?} {who:?} {filter:?}");
        }
    }
}
