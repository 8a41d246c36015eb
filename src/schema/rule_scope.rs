//! How collections appear to the rules engine. A field name is a quoted
//! column of the collection's table; a JSON or geoPoint sub-path goes through
//! `json_extract` with a validated path; a relation path (`author.name`,
//! `tags.title`, `comments_via_post.author`, up to [`MAX_RELATION_HOPS`])
//! becomes a correlated subquery over the related tables, and a path through
//! a multi-valued hop yields a JSON array compared element by element. For
//! non-superusers every related collection's list rule is applied to the
//! rows it contributes (a `null` list rule makes the path unusable).
//! `@collection.<name>` opens another collection (its list rule applied for
//! non-superusers) inside the `EXISTS` the compiler builds for it.
//! `@request.*` values come from a [`RequestValues`] supplied by the caller.

use super::collection::Collection;
use super::field::FieldKind;
use super::registry::Snapshot;
use crate::db::ident;
use crate::rules::{self, CollectionSource, ColumnRef, Path, RuleError, Scope, SqlValue};
use std::cell::Cell;

/// Longest relation chain a path may follow.
pub const MAX_RELATION_HOPS: usize = 6;

/// Supplies `@request.*` values for one request.
pub trait RequestValues {
    /// The value of `path` (an `@request.…` path), `None` when missing.
    fn value(&self, path: &Path) -> Result<Option<SqlValue>, RuleError>;
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
    /// Superusers may use hidden fields and skip related collections' rules.
    superuser: bool,
    /// Hidden fields of the root collection are usable (rules, superusers).
    allow_hidden: bool,
    request: &'a dyn RequestValues,
    aliases: &'a Cell<usize>,
    depth: usize,
}

impl<'a> FieldScope<'a> {
    /// A scope over `collection`'s own table (referred to by its name).
    pub fn new(
        snapshot: &'a Snapshot,
        collection: &'a Collection,
        superuser: bool,
        allow_hidden: bool,
        request: &'a dyn RequestValues,
        aliases: &'a Cell<usize>,
    ) -> Self {
        Self {
            snapshot,
            collection,
            alias: ident(collection.name.as_str()),
            superuser,
            allow_hidden,
            request,
            aliases,
            depth: 0,
        }
    }

    fn next_alias(&self) -> String {
        let n = self.aliases.get() + 1;
        self.aliases.set(n);
        format!("\"_fb_r{n}\"")
    }

    /// The related collection's list rule as an SQL condition on `alias`, for non-superusers.
    fn related_rule(
        &self,
        target: &Collection,
        alias: &str,
        path: &Path,
    ) -> Result<Option<rules::SqlFragment>, RuleError> {
        if self.superuser {
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
                let nested = FieldScope {
                    snapshot: self.snapshot,
                    collection: target,
                    alias: alias.to_owned(),
                    superuser: false,
                    allow_hidden: true,
                    request: self.request,
                    aliases: self.aliases,
                    depth: self.depth + 1,
                };
                rules::compile(&*rules::parse_filter_cached(rule)?, &nested).map(Some)
            }
        }
    }

    fn resolve(&self, path: &Path) -> Result<ColumnRef, RuleError> {
        let mut collection = self.collection;
        let mut alias = self.alias.clone();
        let mut from = String::new();
        let mut conditions: Vec<String> = Vec::new();
        let mut params: Vec<SqlValue> = Vec::new();
        let mut multi = false;
        let mut hops = 0;
        for (i, seg) in path.segments.iter().enumerate() {
            let rest = &path.segments[i + 1..];
            if let Some(field) = collection.field(seg) {
                let hidden_ok = if hops == 0 {
                    self.allow_hidden
                } else {
                    self.superuser
                };
                if field.hidden && !hidden_ok {
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
                    let value = json_path(&column, field, rest, path)?;
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
                    conditions.push(format!("{next}.\"id\" = {column}"));
                } else {
                    from = format!("{from} JOIN {table} AS {next} ON {next}.\"id\" = {column}");
                }
                if let Some(rule) = self.related_rule(target, &next, path)? {
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
                conditions.push(link);
            } else {
                from = format!("{from} JOIN {table} AS {next} ON {link}");
            }
            if let Some(rule) = self.related_rule(source, &next, path)? {
                conditions.push(format!("({})", rule.sql));
                params.extend(rule.params);
            }
            hops += 1;
            if rest.is_empty() {
                let value = format!("{next}.\"id\"");
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

/// Wraps the final value: a plain column at the root, a scalar subquery
/// through single relations, a JSON array through multi-valued hops.
fn finish(
    value: String,
    value_is_multi: bool,
    hops: usize,
    through_multi: bool,
    from: &str,
    conditions: &[String],
    params: Vec<SqlValue>,
) -> ColumnRef {
    if hops == 0 {
        return if value_is_multi {
            ColumnRef::multi(value)
        } else {
            ColumnRef::single(value)
        };
    }
    let where_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    if value_is_multi {
        // A multi-valued field reached through a relation (`team.members`) is
        // compared per element, like the relation hops before it.
        let sql = format!(
            "(SELECT json_group_array(\"_fb_each\".value) FROM {from} JOIN json_each({value}) AS \"_fb_each\"{where_sql})"
        );
        return ColumnRef::each(sql).with_params(params);
    }
    if through_multi {
        ColumnRef::each(format!(
            "(SELECT json_group_array({value}) FROM {from}{where_sql})"
        ))
        .with_params(params)
    } else {
        ColumnRef::single(format!("(SELECT {value} FROM {from}{where_sql} LIMIT 1)"))
            .with_params(params)
    }
}

impl Scope for FieldScope<'_> {
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
            superuser: self.superuser,
            allow_hidden: self.superuser,
            request: self.request,
            aliases: self.aliases,
            depth: self.depth + 1,
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
    let scope = FieldScope::new(snapshot, collection, true, true, &NoRequest, &aliases);
    rules::compile(&rules::parse_filter(rule)?, &scope).map(|_| ())
}
