//! How collections appear to the rules engine. A field name is a quoted
//! column of the collection's table; a JSON or geoPoint sub-path goes through
//! `json_extract` with a validated path; a relation path (`author.name`,
//! `tags.title`, `comments_via_post.author`, up to [`MAX_RELATION_HOPS`])
//! becomes a correlated subquery over the related tables, and a path through
//! a multi-valued hop yields a JSON array compared element by element
//! (with `:length`, one length per reached row, as PocketBase). A
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
//! compiler builds for it, and so does each multi-valued step of a path
//! ([`Scope::shared_steps`]: a multi relation, a back-relation, a field read
//! with `:each`) that any-of comparisons inside one `&&` share: the step's
//! rows are opened once ([`Scope::open_rows`], with the same links and
//! client list rules as the subquery) and the rest of each path is read on
//! that row ([`Scope::rows_column`]), its full path still checked and
//! guarded as on its own. `@request.*` values come from a [`RequestValues`]
//! supplied by the caller.

use super::collection::{Collection, CollectionType};
use super::field::FieldKind;
use super::registry::Snapshot;
use crate::db::ident;
use crate::rules::{
    self, CollectionSource, ColumnRef, Dialect, EACH_STEP, Modifier, Nulls, Path, RowsSource,
    RuleError, Scope, SqlValue, ValueType,
};
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
    /// The root row is itself reached through a relation (a shared path
    /// step's row): its NULLs are [`Nulls::Absent`].
    through: bool,
    /// Conditions on the root record that client paths add: every related
    /// row they reach passes its collection's list rule.
    guards: RefCell<Vec<rules::SqlFragment>>,
    /// The SQL written (see [`FieldScope::in_dialect`]).
    dialect: Dialect,
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
            through: false,
            guards: RefCell::new(Vec::new()),
            dialect: Dialect::Sqlite,
        }
    }

    /// The same scope writing `dialect`'s SQL, over tables made by that
    /// dialect's DDL (`schema::ddl`).
    pub fn in_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    fn postgres(&self) -> bool {
        self.dialect == Dialect::Postgres
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
        let false_ = if self.postgres() { "FALSE" } else { "0" };
        wheres.push(format!("NOT COALESCE(({}), {false_})", rule.sql));
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
                    through: false,
                    guards: RefCell::new(Vec::new()),
                    dialect: self.dialect,
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
        let visible = if self.postgres() { "" } else { " = 1" };
        Value {
            sql: format!(
                "(CASE WHEN {alias}.\"emailVisibility\"{visible} THEN {} END)",
                value.sql
            ),
            params: value.params,
            nulls: Nulls::Withheld,
            // A CASE has no affinity in SQLite.
            ty: ValueType::ComputedText,
        }
    }

    /// This scope re-rooted at another row (a shared step's row `alias`);
    /// guards stay with the root scope, which checks every full path.
    fn rebased(&self, collection: &'a Collection, alias: String, through: bool) -> Self {
        Self {
            snapshot: self.snapshot,
            collection,
            alias,
            trust: self.trust,
            request: self.request,
            aliases: self.aliases,
            depth: self.depth,
            through,
            guards: RefCell::new(Vec::new()),
            dialect: self.dialect,
        }
    }

    /// Follows relation and back-relation `segments` to the collection they
    /// reach (the schema only: access and hidden fields are the walk's to check).
    fn collection_at(&self, segments: &[String]) -> Result<&'a Collection, RuleError> {
        let path = Path {
            segments: segments.to_vec(),
            alias: None,
            modifier: None,
        };
        let unguarded = self.rebased(self.collection, self.alias.clone(), self.through);
        match unguarded.walk(&path, Some(segments.len()))? {
            Walked::Rows(rows) => Ok(rows.collection),
            Walked::Column(_) => Err(unresolved(&path, "not a relation")),
        }
    }

    fn resolve(&self, path: &Path) -> Result<ColumnRef, RuleError> {
        match self.walk(path, None)? {
            Walked::Column(column) => Ok(column),
            Walked::Rows(_) => Err(unresolved(path, "empty path")),
        }
    }

    /// Follows `path` to the value it names or, with `stop`, to the rows
    /// its first `stop` segments reach (for [`Scope::open_rows`]).
    fn walk(&self, path: &Path, stop: Option<usize>) -> Result<Walked<'a>, RuleError> {
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
            if stop == Some(i) {
                return Ok(rows(collection, alias, from, &conditions, params));
            }
            let rest = &path.segments[i + 1..];
            let hop_on = !rest.is_empty() || stop.is_some_and(|n| n > i);
            if let Some(field) = collection.field(seg) {
                if field.hidden && self.trust == Trust::Client {
                    return Err(unresolved(path, "hidden field"));
                }
                let column = format!("{alias}.{}", ident(field.name.as_str()));
                let relation_target = match &field.kind {
                    FieldKind::Relation { collection_id, .. } if hop_on => Some(collection_id),
                    _ => None,
                };
                let Some(target_id) = relation_target else {
                    let (sql, ty) = json_path(self.dialect, &column, field, rest, path)?;
                    let mut value = Value {
                        sql,
                        params: Vec::new(),
                        nulls: if hops == 0 && !self.through {
                            Nulls::Empty
                        } else {
                            Nulls::Absent
                        },
                        ty,
                    };
                    if field.name.as_str() == "email" && collection.kind == CollectionType::Auth {
                        value = self.email(value, &alias);
                    }
                    let shape = Shape {
                        multi: field.is_multi(),
                        length: rest.is_empty() && path.modifier == Some(Modifier::Length),
                        hops,
                        through_multi: multi,
                    };
                    return Ok(Walked::Column(finish(
                        self.dialect,
                        value,
                        shape,
                        &from,
                        &conditions,
                        params,
                    )));
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
                    let elements = if self.postgres() {
                        format!("jsonb_array_elements_text(fb_array({column}))")
                    } else {
                        format!("json_each({column})")
                    };
                    let join = format!(
                        "{elements} AS {each} JOIN {table} AS {next} ON {next}.\"id\" = {each}.value"
                    );
                    from = if from.is_empty() {
                        join
                    } else if self.postgres() {
                        // PostgreSQL wants an ON after a plain JOIN; the
                        // function reads the row before it (LATERAL).
                        format!("{from} CROSS JOIN {join}")
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
            let link = if back.is_multi() && self.postgres() {
                format!("{back_col} @> jsonb_build_array({alias}.\"id\")")
            } else if back.is_multi() {
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
            if !hop_on {
                let value = Value {
                    sql: format!("{next}.\"id\""),
                    params: Vec::new(),
                    nulls: Nulls::Absent,
                    ty: ValueType::Text,
                };
                let shape = Shape {
                    multi: false,
                    length: false,
                    hops,
                    through_multi: multi,
                };
                return Ok(Walked::Column(finish(
                    self.dialect,
                    value,
                    shape,
                    &from,
                    &conditions,
                    params,
                )));
            }
            collection = &source.def;
            alias = next;
        }
        if stop == Some(path.segments.len()) {
            return Ok(rows(collection, alias, from, &conditions, params));
        }
        Err(unresolved(path, "empty path"))
    }
}

/// Where [`FieldScope::walk`] ended.
enum Walked<'a> {
    /// The value the whole path names.
    Column(ColumnRef),
    /// The rows the first `stop` segments reach.
    Rows(Rows<'a>),
}

/// Rows a path prefix reaches: the tables joined, the conditions linking
/// them to the root row (and client list rules), and the last table's alias.
struct Rows<'a> {
    collection: &'a Collection,
    alias: String,
    from: String,
    conditions: Vec<String>,
    params: Vec<SqlValue>,
}

fn rows<'a>(
    collection: &'a Collection,
    alias: String,
    from: String,
    conditions: &[String],
    params: Vec<SqlValue>,
) -> Walked<'a> {
    Walked::Rows(Rows {
        collection,
        alias,
        from,
        conditions: conditions.to_vec(),
        params,
    })
}

/// A shared-step key without its [`EACH_STEP`] marker, and whether it had one.
fn split_each(key: &[String]) -> (&[String], bool) {
    match key.split_last() {
        Some((last, steps)) if last == EACH_STEP => (steps, true),
        _ => (key, false),
    }
}

/// What a field's column holds, for the PostgreSQL dialect.
pub fn value_type(field: &super::field::Field) -> ValueType {
    if field.is_multi() {
        return ValueType::Document;
    }
    match field.kind {
        FieldKind::Number { .. } => ValueType::Number,
        FieldKind::Bool => ValueType::Bool,
        FieldKind::Json { .. } | FieldKind::GeoPoint => ValueType::Document,
        _ => ValueType::Text,
    }
}

/// `column` itself, or `json_extract(column, '$.a.b')` for a JSON/geoPoint
/// sub-path (on PostgreSQL `->` steps, an index only into an array).
fn json_path(
    dialect: Dialect,
    column: &str,
    field: &super::field::Field,
    rest: &[String],
    path: &Path,
) -> Result<(String, ValueType), RuleError> {
    if rest.is_empty() {
        return Ok((column.to_owned(), value_type(field)));
    }
    if !matches!(field.kind, FieldKind::Json { .. } | FieldKind::GeoPoint) {
        return Err(unresolved(path, "not a relation or JSON field"));
    }
    if !rest
        .iter()
        .all(|seg| seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(unresolved(path, "bad JSON path segment"));
    }
    let index = |seg: &String| seg.chars().all(|c| c.is_ascii_digit());
    if dialect == Dialect::Postgres {
        let mut sql = column.to_owned();
        for seg in rest {
            sql = if index(seg) {
                format!("fb_at({sql}, {seg})")
            } else {
                format!("({sql} -> '{seg}')")
            };
        }
        return Ok((format!("fb_sqlite({sql})"), ValueType::Json));
    }
    let mut json_path = String::from("$");
    for seg in rest {
        if index(seg) {
            json_path.push_str(&format!("[{seg}]"));
        } else {
            json_path.push('.');
            json_path.push_str(seg);
        }
    }
    // Guarded: json_extract on text that is not JSON is an error, not NULL.
    Ok((
        format!("(CASE WHEN json_valid({column}) THEN json_extract({column}, '{json_path}') END)"),
        ValueType::Json,
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
    /// What it holds (PostgreSQL).
    ty: ValueType,
}

/// What [`finish`] needs to know about where a path's value sits.
struct Shape {
    /// The value is a list (multi select, file or relation).
    multi: bool,
    /// The path asks for its `:length`.
    length: bool,
    /// Relation hops before the value.
    hops: usize,
    /// One of those hops is multi-valued.
    through_multi: bool,
}

/// Wraps the final value: a plain column at the root, a scalar subquery
/// through single relations, a JSON array through multi-valued hops.
fn finish(
    dialect: Dialect,
    value: Value,
    shape: Shape,
    from: &str,
    conditions: &[String],
    condition_params: Vec<SqlValue>,
) -> ColumnRef {
    let Value {
        sql: value,
        params: mut value_params,
        nulls,
        ty,
    } = value;
    let pg = dialect == Dialect::Postgres;
    let Shape {
        multi: value_is_multi,
        length,
        hops,
        through_multi,
    } = shape;
    if hops == 0 {
        let column = if value_is_multi {
            ColumnRef::multi(value)
        } else {
            ColumnRef::single(value)
        };
        return column
            .with_params(value_params)
            .with_nulls(nulls)
            .with_type(ty);
    }
    // The value is written before the conditions, so its params come first.
    value_params.extend(condition_params);
    let params = value_params;
    let where_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let column = if value_is_multi && length && through_multi && pg {
        ColumnRef::lengths(format!(
            "(SELECT CASE WHEN count(*) = 0 THEN '[0]'::jsonb ELSE jsonb_agg(fb_length(\"_fb_list\")) END FROM (SELECT {value} AS \"_fb_list\" FROM {from}{where_sql}) AS \"_fb_lists\")"
        ))
    } else if value_is_multi && length && through_multi {
        // `x_via_y.members:length`: PocketBase compares the length of each
        // reached row's list (every row for `>`, one for `?>`), never their
        // total; no row at all is one LEFT JOINed NULL row, of length 0.
        ColumnRef::lengths(format!(
            "(SELECT CASE WHEN count(*) = 0 THEN json_array(0) ELSE json_group_array(json_array_length(CASE WHEN json_valid(\"_fb_list\") THEN \"_fb_list\" ELSE '[]' END)) END FROM (SELECT {value} AS \"_fb_list\" FROM {from}{where_sql}))"
        ))
    } else if value_is_multi && pg {
        ColumnRef::each(format!(
            "(SELECT COALESCE(jsonb_agg(\"_fb_each\".value), '[]'::jsonb) FROM {from} JOIN jsonb_array_elements(fb_array({value})) AS \"_fb_each\" ON TRUE{where_sql})"
        ))
    } else if value_is_multi {
        // A multi-valued field reached through a relation (`team.members`) is
        // compared per element, like the relation hops before it.
        ColumnRef::each(format!(
            "(SELECT json_group_array(\"_fb_each\".value) FROM {from} JOIN json_each({value}) AS \"_fb_each\"{where_sql})"
        ))
    } else if through_multi && pg {
        // SQLite's json_group_array holds a JSON column's text as a string.
        let element = match ty {
            ValueType::Document => format!("fb_document({value})"),
            ValueType::Bool => format!("({value})::int"),
            _ => value.clone(),
        };
        ColumnRef::each(format!(
            "(SELECT COALESCE(jsonb_agg({element}), '[]'::jsonb) FROM {from}{where_sql})"
        ))
    } else if through_multi {
        ColumnRef::each(format!(
            "(SELECT json_group_array({value}) FROM {from}{where_sql})"
        ))
    } else {
        ColumnRef::single(format!("(SELECT {value} FROM {from}{where_sql} LIMIT 1)")).with_type(ty)
    };
    column.with_params(params).with_nulls(nulls)
}

impl Scope for FieldScope<'_> {
    fn dialect(&self) -> Dialect {
        self.dialect
    }

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

    fn shared_steps(&self, path: &Path) -> Vec<Vec<String>> {
        let mut steps = Vec::new();
        let mut collection = self.collection;
        for (i, seg) in path.segments.iter().enumerate() {
            let rest = &path.segments[i + 1..];
            if let Some(field) = collection.field(seg) {
                let FieldKind::Relation { collection_id, .. } = &field.kind else {
                    if rest.is_empty() && path.modifier == Some(Modifier::Each) && field.is_multi()
                    {
                        steps.push([path.segments.as_slice(), &[EACH_STEP.to_owned()]].concat());
                    }
                    break;
                };
                if rest.is_empty() {
                    // `members:each` reads the joined rows of `members.*`, as
                    // PocketBase's one `json_each` join for both.
                    if path.modifier == Some(Modifier::Each) && field.is_multi() {
                        steps.push(path.segments.clone());
                    }
                    break;
                }
                let Some(target) = self.snapshot.get_ref(collection_id) else {
                    break;
                };
                if field.is_multi() {
                    steps.push(path.segments[..=i].to_vec());
                }
                collection = &target.def;
                continue;
            }
            let Some((source_name, field_name)) = seg.split_once("_via_") else {
                break;
            };
            let Some(source) = self.snapshot.get_ref(source_name) else {
                break;
            };
            let links_here = source.field(field_name).is_some_and(|f| {
                matches!(&f.kind, FieldKind::Relation { collection_id, .. } if collection_id == &collection.id)
            });
            if !links_here {
                break;
            }
            steps.push(path.segments[..=i].to_vec());
            collection = &source.def;
        }
        steps
    }

    fn open_rows(
        &self,
        key: &[String],
        base: Option<(usize, &str)>,
    ) -> Result<RowsSource, RuleError> {
        let (skip, scope) = match base {
            None => (
                0,
                self.rebased(self.collection, self.alias.clone(), self.through),
            ),
            Some((len, alias)) => {
                let at = key.get(..len).unwrap_or_default();
                (
                    len,
                    self.rebased(self.collection_at(at)?, alias.to_owned(), true),
                )
            }
        };
        let (steps, each) = split_each(key.get(skip..).unwrap_or_default());
        let path = Path {
            segments: steps.to_vec(),
            alias: None,
            modifier: None,
        };
        let stop = if each {
            steps.len().saturating_sub(1)
        } else {
            steps.len()
        };
        let Walked::Rows(mut rows) = scope.walk(&path, Some(stop))? else {
            return Err(unresolved(&path, "not a multi-valued step"));
        };
        if each {
            let field = steps
                .last()
                .and_then(|name| rows.collection.field(name))
                .filter(|f| f.is_multi())
                .ok_or_else(|| unresolved(&path, "not a multi-valued field"))?;
            if field.hidden && self.trust == Trust::Client {
                return Err(unresolved(&path, "hidden field"));
            }
            let column = format!("{}.{}", rows.alias, ident(field.name.as_str()));
            // Not an array (or empty): no element, as `:each` on its own.
            let element = self.next_alias();
            let each_from = if self.postgres() {
                format!("jsonb_array_elements(fb_array({column})) AS {element}")
            } else {
                let list = format!(
                    "CASE WHEN json_array_length(CASE WHEN json_valid({column}) THEN {column} ELSE '[]' END) > 0 THEN {column} ELSE '[]' END"
                );
                format!("json_each({list}) AS {element}")
            };
            rows.from = if rows.from.is_empty() {
                each_from
            } else if self.postgres() {
                // PostgreSQL's JOIN needs its ON (SQLite's may go without).
                format!("{} JOIN {each_from} ON TRUE", rows.from)
            } else {
                format!("{} JOIN {each_from}", rows.from)
            };
            rows.alias = element;
        }
        let condition = (!rows.conditions.is_empty()).then(|| rules::SqlFragment {
            sql: rows.conditions.join(" AND "),
            params: rows.params,
        });
        Ok(RowsSource {
            from: rows.from,
            condition,
            alias: rows.alias,
        })
    }

    fn rows_column(
        &self,
        key: &[String],
        alias: &str,
        rest: &Path,
    ) -> Result<ColumnRef, RuleError> {
        let (steps, each) = split_each(key);
        // The whole path, checked (and its join guards recorded) as on its own.
        let full = Path {
            segments: steps.iter().chain(&rest.segments).cloned().collect(),
            alias: None,
            modifier: if each {
                Some(Modifier::Each)
            } else {
                rest.modifier
            },
        };
        self.resolve(&full)?;
        if each {
            let nulls = if steps.len() == 1 && !self.through {
                Nulls::Empty
            } else {
                Nulls::Absent
            };
            let element = if self.postgres() {
                format!("fb_sqlite({alias}.value)")
            } else {
                format!("{alias}.value")
            };
            return Ok(ColumnRef::single(element)
                .with_nulls(nulls)
                .with_type(ValueType::Element));
        }
        if rest.segments.is_empty() {
            // `x_via_y` names the linking rows' ids; `members:each` the
            // elements, an empty list's NULL being the record's empty value.
            let own_list =
                !self.through && matches!(steps, [name] if self.collection.field(name).is_some());
            let nulls = if own_list {
                Nulls::Empty
            } else {
                Nulls::Absent
            };
            return Ok(ColumnRef::single(format!("{alias}.\"id\"")).with_nulls(nulls));
        }
        let scope = self.rebased(self.collection_at(key)?, alias.to_owned(), true);
        let mut column = scope.resolve(rest)?;
        // A multi-valued field of the shared row is still compared element
        // by element, as through any relation.
        column.expands |= column.multi;
        Ok(column)
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
            through: false,
            guards: RefCell::new(Vec::new()),
            dialect: self.dialect,
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
mod differential;

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
        let params = cond.params.iter();
        let sql = format!("SELECT name FROM teams WHERE {} ORDER BY name", cond.sql);
        let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let names = stmt
            .query_map(rusqlite::params_from_iter(params), |r| r.get(0))
            .expect("query")
            .collect::<Result<Vec<String>, _>>()
            .expect("rows");
        Ok(names)
    }

    /// users, `projects`, `links` (project → projects, owner → users,
    /// members → users, multi) and `crews` (members → users, tags select).
    fn linked_snapshot(links_list_rule: Value) -> Snapshot {
        let mut users = Collection::from_create(&json!({
            "name": "users", "type": "auth", "listRule": "",
            "fields": [{"name": "nick", "type": "text"}]
        }))
        .expect("users");
        users.id = USERS_ID.into();
        let mut projects =
            Collection::from_create(&json!({"name": "projects", "listRule": "", "fields": [
                {"name": "name", "type": "text"}
            ]}))
            .expect("projects");
        projects.id = "pbc_projects_test".into();
        let links = Collection::from_create(
            &json!({"name": "links", "listRule": links_list_rule, "fields": [
                {"name": "title", "type": "text"},
                {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2},
                {"name": "project", "type": "relation", "collectionId": "pbc_projects_test"},
                {"name": "owner", "type": "relation", "collectionId": USERS_ID},
                {"name": "members", "type": "relation", "collectionId": USERS_ID, "maxSelect": 9}
            ]}),
        )
        .expect("links");
        let crews = Collection::from_create(&json!({"name": "crews", "fields": [
            {"name": "name", "type": "text"},
            {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2},
            {"name": "members", "type": "relation", "collectionId": USERS_ID, "maxSelect": 9}
        ]}))
        .expect("crews");
        Snapshot::build(vec![users, projects, links, crews]).expect("snapshot")
    }

    /// u1 (verified), u2 (not verified). Projects: `split` is linked by one
    /// link u1 owns (members [u2]) and one u1 is a member of (owner u2);
    /// `both` by one link u1 owns and is a member of; `none` by nothing;
    /// `corner` by one link u1 owns without members and one u2 owns with u1.
    /// Crews: `mixed` [u1, u2], `solo` [u1], `empty` []; tags `ab`, `a`.
    const LINKED_TABLES: &str = "
        CREATE TABLE users (id TEXT, email TEXT, emailVisibility BOOLEAN, verified BOOLEAN, nick TEXT);
        INSERT INTO users VALUES ('u1', 'one@x.io', 0, 1, 'one'), ('u2', 'two@x.io', 1, 0, 'two');
        CREATE TABLE projects (id TEXT, name TEXT);
        INSERT INTO projects VALUES ('p1', 'split'), ('p2', 'both'), ('p3', 'none'), ('p4', 'corner');
        CREATE TABLE links (id TEXT, title TEXT, tags JSON, project TEXT, owner TEXT, members JSON);
        INSERT INTO links VALUES
            ('l1', 'owned', '[\"a\"]', 'p1', 'u1', '[\"u2\"]'),
            ('l2', 'joined', '[\"b\"]', 'p1', 'u2', '[\"u1\"]'),
            ('l3', 'mine', '[]', 'p2', 'u1', '[\"u1\"]'),
            ('l4', 'bare', '[]', 'p4', 'u1', '[]'),
            ('l5', 'memb', '[]', 'p4', 'u2', '[\"u1\"]');
        CREATE TABLE crews (id TEXT, name TEXT, tags JSON, members JSON);
        INSERT INTO crews VALUES ('c1', 'mixed', '[\"a\",\"b\"]', '[\"u1\",\"u2\"]'),
            ('c2', 'solo', '[\"a\"]', '[\"u1\"]'), ('c3', 'empty', '[]', '[]');";

    /// Names of the `collection` rows `filter` admits (with its join guards),
    /// evaluated in SQLite over [`LINKED_TABLES`].
    fn linked_matching(
        snap: &Snapshot,
        collection: &str,
        trust: Trust,
        who: Option<&'static str>,
        filter: &str,
    ) -> Result<Vec<String>, RuleError> {
        let conn = rusqlite::Connection::open_in_memory().expect("db");
        conn.execute_batch(LINKED_TABLES).expect("tables");
        let root = snap.get_ref(collection).expect("collection");
        let aliases = Cell::new(0);
        let req = Req(who);
        let scope = FieldScope::new(snap, root, trust, &req, &aliases);
        let mut cond = rules::compile(&rules::parse_filter(filter)?, &scope)?;
        for guard in scope.take_join_guards() {
            cond.sql = format!("({}) AND ({})", cond.sql, guard.sql);
            cond.params.extend(guard.params);
        }
        let params = cond.params.iter();
        let sql = format!(
            "SELECT name FROM {collection} WHERE {} ORDER BY name",
            cond.sql
        );
        let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let names = stmt
            .query_map(rusqlite::params_from_iter(params), |r| r.get(0))
            .expect("query")
            .collect::<Result<Vec<String>, _>>()
            .expect("rows");
        Ok(names)
    }

    #[test]
    fn any_of_comparisons_on_one_back_relation_inside_and_need_one_linking_row() {
        let snap = linked_snapshot(json!(""));
        let owner_and_member = "links_via_project.owner ?= @request.auth.id && links_via_project.members.id ?= @request.auth.id";
        for (who, filter, want, why) in [
            (
                Some("u1"),
                owner_and_member,
                vec!["both"],
                "one link must make u1 owner and member",
            ),
            (
                Some("u2"),
                owner_and_member,
                vec![],
                "u2 owns l2 and is a member of l1: two links",
            ),
            (None, owner_and_member, vec![], "a guest never"),
            (
                Some("u1"),
                "links_via_project.members.id ?= @request.auth.id && links_via_project.owner ?= @request.auth.id",
                vec!["both"],
                "order does not matter",
            ),
            (
                Some("u1"),
                "links_via_project.owner ?= @request.auth.id && links_via_project.title ?= 'joined'",
                vec![],
                "the owned link of split is not the joined one",
            ),
            (
                Some("u1"),
                "links_via_project.owner ?!= @request.auth.id && links_via_project.members.id ?= @request.auth.id",
                vec!["corner", "split"],
                "a link u1 is a member of but does not own",
            ),
            (
                Some("u1"),
                "(links_via_project.title ?= 'owned' || links_via_project.title ?= 'mine') && links_via_project.members.id ?= @request.auth.id",
                vec!["both"],
                "an || branch under && reads the same link",
            ),
            (
                Some("u1"),
                "links_via_project.title ?= 'owned' || links_via_project.members.id ?= @request.auth.id",
                vec!["both", "corner", "split"],
                "|| alone: each branch may use its own link",
            ),
            (
                Some("u1"),
                "links_via_project.owner ?= @request.auth.id && name != 'x' && links_via_project.tags:each ?= 'b'",
                vec![],
                "the owned link has no tag b; the joined one has",
            ),
            (
                Some("u1"),
                "links_via_project.owner ?= @request.auth.id && links_via_project.members.nick ?= 'two'",
                vec!["split"],
                "l1: owned by u1, member u2",
            ),
            (
                Some("u1"),
                "links_via_project.owner ?= links_via_project.members.id",
                vec!["both"],
                "both sides of one comparison read one link (none: no link, and absent never equals absent)",
            ),
            (
                Some("u1"),
                "links_via_project.owner = 'u1' && links_via_project.members.id ?= 'u1'",
                vec!["both"],
                "all-of (=) stays its own check: every link of both is u1's",
            ),
            (
                Some("u1"),
                "links_via_project.members.id = 'u1'",
                vec!["both", "corner"],
                "alone: every member of every link is u1",
            ),
            (
                Some("u1"),
                "links_via_project.members.id = 'u1' && links_via_project.owner ?= 'u1'",
                vec!["both"],
                "all-of also holds on the shared row (PocketBase): corner's owned link has no member",
            ),
            (
                Some("u1"),
                "links_via_project.members:length ?> 0 && links_via_project.owner ?= 'u1'",
                vec!["both", "split"],
                ":length counts the shared row's members",
            ),
            (
                Some("u1"),
                "links_via_project.title ?!= 'zzz' && links_via_project.owner ?!= 'zzz'",
                vec!["both", "corner", "none", "split"],
                "nothing links to none: ?!= holds on its empty join, as alone",
            ),
        ] {
            let got = linked_matching(&snap, "projects", Trust::Full, who, filter)
                .unwrap_or_else(|e| panic!("{filter:?}: {e}"));
            assert_eq!(got, want, "{who:?} {filter:?}: {why}");
        }
    }

    /// PocketBase reads `:length` through a back-relation or multi relation
    /// on each joined row: an all-of comparison (its multi-match subquery)
    /// must hold for every linking row, any-of (`?>`) for one, and a record
    /// with no linking row has one row of length 0. Never the total of every
    /// linking row's list, which let `corner` (links with 0 and 1 members)
    /// pass `> 0`.
    #[test]
    fn length_through_a_back_relation_is_compared_per_linking_row() {
        let snap = linked_snapshot(json!(""));
        let owned = "links_via_project.owner ?= @request.auth.id";
        for (trust, who, filter, want, why) in [
            (
                Trust::Full,
                Some("u1"),
                "links_via_project.members:length > 0",
                vec!["both", "split"],
                "every link has a member; corner's l4 has none, none has no link",
            ),
            (
                Trust::Full,
                Some("u1"),
                "links_via_project.members:length >= 1",
                vec!["both", "split"],
                ">= as >",
            ),
            (
                Trust::Full,
                Some("u1"),
                "links_via_project.members:length ?> 0",
                vec!["both", "corner", "split"],
                "any-of: one link with a member",
            ),
            (
                Trust::Full,
                Some("u1"),
                "links_via_project.members:length = 1",
                vec!["both", "split"],
                "split's two links have one member each (not two in all)",
            ),
            (
                Trust::Full,
                Some("u1"),
                "links_via_project.members:length ?= 0",
                vec!["corner", "none"],
                "any-of: l4 is empty; no link reads as length 0",
            ),
            (
                Trust::Full,
                Some("u1"),
                "links_via_project.members:length = 0",
                vec!["none"],
                "no link reads as length 0; corner's l5 has a member",
            ),
            (
                Trust::Full,
                Some("u1"),
                "links_via_project.members:length < 1",
                vec!["none"],
                "< as =",
            ),
            (
                Trust::Full,
                Some("u1"),
                "links_via_project.members:length != 0",
                vec!["both", "split"],
                "every link non-empty",
            ),
            (
                Trust::Full,
                Some("u1"),
                "links_via_project.tags:length = 1",
                vec!["split"],
                "a select list: l1 [a] and l2 [b], one each",
            ),
            (
                Trust::Full,
                Some("u1"),
                "links_via_project.members:length > 0 || name = 'none'",
                vec!["both", "none", "split"],
                "under ||",
            ),
            (
                Trust::Full,
                Some("u1"),
                &format!("links_via_project.members:length > 0 && {owned}"),
                vec!["both", "split"],
                "inside && with a shared row: still every link",
            ),
            (
                Trust::Full,
                Some("u1"),
                &format!("links_via_project.members:length ?> 0 && {owned}"),
                vec!["both", "split"],
                "any-of inside &&: the owned link itself has a member",
            ),
            (
                Trust::Client,
                Some("u1"),
                "links_via_project.members:length > 0",
                vec!["both", "split"],
                "a client filter as a rule",
            ),
            (
                Trust::Client,
                None,
                "links_via_project.members:length > 0",
                vec!["both", "split"],
                "a guest's filter as a rule (links are public)",
            ),
            (
                Trust::Full,
                None,
                "links_via_project.members:length > 0 && @request.auth.id != ''",
                vec![],
                "a guest never",
            ),
        ] {
            let got = linked_matching(&snap, "projects", trust, who, filter)
                .unwrap_or_else(|e| panic!("{filter:?}: {e}"));
            assert_eq!(got, want, "{trust:?} {who:?} {filter:?}: {why}");
        }
    }

    #[test]
    fn any_of_comparisons_on_one_multi_relation_inside_and_need_one_member() {
        let snap = linked_snapshot(json!(""));
        let verified_member = "members.id ?= @request.auth.id && members.verified ?= true";
        for (who, filter, want, why) in [
            (
                Some("u1"),
                verified_member,
                vec!["mixed", "solo"],
                "u1 is verified",
            ),
            (
                Some("u2"),
                verified_member,
                vec![],
                "u2 is in mixed but not verified; u1 is",
            ),
            (None, verified_member, vec![], "a guest never"),
            (
                Some("u2"),
                "members.id ?= @request.auth.id && (members.verified ?= true || members.nick ?= 'one')",
                vec![],
                "|| branches under && read the same member",
            ),
            (
                Some("u2"),
                "members.id ?= @request.auth.id && members.verified ?= false",
                vec!["mixed"],
                "u2 is the unverified member",
            ),
            (
                Some("u1"),
                "members.id ?!= @request.auth.id && members.verified ?= true",
                vec![],
                "no crew has a verified member other than u1",
            ),
            (
                Some("u1"),
                "members:each ?= @request.auth.id && members.verified ?= false",
                vec![],
                "`:each` on the relation reads the same member row",
            ),
            (
                Some("u1"),
                "members:each ?= @request.auth.id && members:each ?= 'u2'",
                vec![],
                "no member is both",
            ),
            (
                Some("u1"),
                "members:each ?= '' && name != 'x'",
                vec!["empty"],
                "an empty list's element is the empty value, as alone",
            ),
        ] {
            let got = linked_matching(&snap, "crews", Trust::Full, who, filter)
                .unwrap_or_else(|e| panic!("{filter:?}: {e}"));
            assert_eq!(got, want, "{who:?} {filter:?}: {why}");
        }
    }

    #[test]
    fn each_comparisons_on_one_field_inside_and_read_one_element_as_pocketbase() {
        let snap = linked_snapshot(json!(""));
        for (filter, want, why) in [
            (
                "tags:each ?= 'a' && tags:each ?= 'b'",
                vec![],
                "no single tag is both",
            ),
            (
                "tags:each ?= 'a' || tags:each ?= 'b'",
                vec!["mixed", "solo"],
                "|| is per branch",
            ),
            (
                "tags:each ?= 'a' && tags:each ?!= 'b'",
                vec!["mixed", "solo"],
                "the tag a is not b",
            ),
            (
                "tags:each ?!= 'a'",
                vec!["empty", "mixed"],
                "alone, as before",
            ),
            (
                "tags:each = 'a' && tags:each ?= 'a'",
                vec!["solo"],
                "all-of stays its own check",
            ),
        ] {
            let got = linked_matching(&snap, "crews", Trust::Full, Some("u1"), filter)
                .unwrap_or_else(|e| panic!("{filter:?}: {e}"));
            assert_eq!(got, want, "{filter:?}: {why}");
        }
    }

    #[test]
    fn shared_rows_in_client_filters_keep_list_rules_and_hidden_emails() {
        // Links are listable by their owner only: l2 (owned by u2) is hidden from u1.
        let snap = linked_snapshot(json!("owner = @request.auth.id"));
        for (who, filter, want, why) in [
            (
                Some("u1"),
                "links_via_project.members.id ?= 'u1' && links_via_project.title ?= 'joined'",
                vec![],
                "l2 is not u1's to list",
            ),
            (
                Some("u1"),
                "links_via_project.owner ?= 'u1' && links_via_project.members.id ?= 'u1'",
                vec!["both"],
                "l3 is listable; split also joins l2, hidden, so it is dropped",
            ),
            (
                Some("u1"),
                "links_via_project.owner ?= 'u1' && links_via_project.members.email ?= 'two@x.io'",
                vec![],
                "the guard drops split (l2 hidden)",
            ),
            (
                Some("u2"),
                "links_via_project.owner ?= 'u2' && links_via_project.members.email ?= 'one@x.io'",
                vec![],
                "u1's email is hidden from a client filter",
            ),
            (
                None,
                "links_via_project.title ?!= 'x' && links_via_project.owner ?!= 'x'",
                vec!["none"],
                "a guest lists no link",
            ),
        ] {
            let got = linked_matching(&snap, "projects", Trust::Client, who, filter)
                .unwrap_or_else(|e| panic!("{filter:?}: {e}"));
            assert_eq!(got, want, "{who:?} {filter:?}: {why}");
        }
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
