//! The `groupBy`, `aggregate` and `sort` parameters of
//! `GET /api/collections/{c}/aggregate`, parsed and checked against the
//! collection's fields. Output keys: a group column is keyed by what was
//! asked (`kind`, `created:month`); an aggregate by `count` for `count()`
//! and `{fn}_{field}` otherwise (`sum_amount`, `count_distinct_tag`).
//! Date buckets cut the stored UTC text (`2024-05-01 10:00:00.000Z`) to
//! `year` (`2024`), `month` (`2024-05`), `day` (`2024-05-01`) or `hour`
//! (`2024-05-01 10`). Building and running the SQL is `records`' job.

use crate::schema::{Collection, CollectionType, Field, FieldKind};

/// Most group columns in one request.
pub const MAX_GROUP_BY: usize = 8;
/// Most aggregates in one request.
pub const MAX_AGGREGATES: usize = 16;

/// A date bucket and how many leading characters of the stored date it keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bucket {
    Year,
    Month,
    Day,
    Hour,
}

impl Bucket {
    pub fn prefix_len(self) -> i64 {
        match self {
            Bucket::Year => 4,
            Bucket::Month => 7,
            Bucket::Day => 10,
            Bucket::Hour => 13,
        }
    }
}

/// One `groupBy` entry: the path as asked (`kind`, `owner.name`), and for a
/// field of this collection the field itself (`None` for a relation path,
/// which the list's field scope resolves and checks).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub key: String,
    pub path: String,
    pub field: Option<Field>,
    pub bucket: Option<Bucket>,
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggFn {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
}

/// One `aggregate` entry; `field` is `None` only for `count()`.
#[derive(Debug, Clone, PartialEq)]
pub struct AggSpec {
    pub key: String,
    pub func: AggFn,
    pub field: Option<Field>,
}

/// Whether a caller may group or aggregate by `field` (hidden fields and an
/// auth collection's `email` are superuser-only here, as in search).
pub fn readable(collection: &Collection, field: &Field, superuser: bool) -> bool {
    let auth = collection.kind == CollectionType::Auth;
    // Password hashes and token keys are never an answer, not even to superusers.
    if matches!(field.kind, FieldKind::Password { .. })
        || (auth && field.name.as_str() == "tokenKey")
    {
        return false;
    }
    if superuser {
        return true;
    }
    let auth_email = auth && field.name.as_str() == "email";
    !field.hidden && !auth_email
}

fn find<'a>(collection: &'a Collection, name: &str, superuser: bool) -> Option<&'a Field> {
    collection
        .fields
        .iter()
        .find(|f| f.name.as_str() == name)
        .filter(|f| readable(collection, f, superuser))
}

fn entries(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Parses `groupBy` (may be empty: one group over every record).
pub fn parse_group_by(
    raw: &str,
    collection: &Collection,
    superuser: bool,
) -> Result<Vec<GroupSpec>, String> {
    let mut out = Vec::new();
    for entry in entries(raw) {
        let (name, bucket) = match entry.split_once(':') {
            None => (entry, None),
            Some((name, b)) => {
                let bucket = match b {
                    "year" => Bucket::Year,
                    "month" => Bucket::Month,
                    "day" => Bucket::Day,
                    "hour" => Bucket::Hour,
                    _ => {
                        return Err(format!(
                            "Unknown date bucket {b:?} (year, month, day, hour)."
                        ));
                    }
                };
                (name, Some(bucket))
            }
        };
        let field = if name.contains('.') {
            None
        } else {
            let Some(field) = find(collection, name, superuser) else {
                return Err(format!("Unknown or not allowed field {name:?}."));
            };
            Some(field.clone())
        };
        let dated = field
            .as_ref()
            .is_some_and(|f| matches!(f.kind, FieldKind::Date { .. } | FieldKind::Autodate { .. }));
        if bucket.is_some() && !dated {
            return Err(format!(
                "Field {name:?} is not a date field of this collection."
            ));
        }
        if out.iter().any(|g: &GroupSpec| g.key == entry) {
            return Err(format!("{entry:?} is listed twice."));
        }
        out.push(GroupSpec {
            key: entry.to_owned(),
            path: name.to_owned(),
            field,
            bucket,
        });
    }
    if out.len() > MAX_GROUP_BY {
        return Err(format!("At most {MAX_GROUP_BY} group columns."));
    }
    Ok(out)
}

/// Parses `aggregate` (empty: `count()`).
pub fn parse_aggs(
    raw: &str,
    collection: &Collection,
    superuser: bool,
) -> Result<Vec<AggSpec>, String> {
    let mut out: Vec<AggSpec> = Vec::new();
    let raw = if raw.trim().is_empty() {
        "count()"
    } else {
        raw
    };
    for entry in entries(raw) {
        let Some((name, rest)) = entry.split_once('(') else {
            return Err(format!("{entry:?} is not of the form fn(field)."));
        };
        let Some(arg) = rest.strip_suffix(')').map(str::trim) else {
            return Err(format!("{entry:?} is not of the form fn(field)."));
        };
        let func = match name.trim() {
            "count" => AggFn::Count,
            "count_distinct" => AggFn::CountDistinct,
            "sum" => AggFn::Sum,
            "avg" => AggFn::Avg,
            "min" => AggFn::Min,
            "max" => AggFn::Max,
            other => return Err(format!("Unknown function {other:?}.")),
        };
        let (key, field) = if arg.is_empty() {
            if func != AggFn::Count {
                return Err(format!("{entry:?} needs a field."));
            }
            ("count".to_owned(), None)
        } else {
            let Some(field) = find(collection, arg, superuser) else {
                return Err(format!("Unknown or not allowed field {arg:?}."));
            };
            let numeric = matches!(field.kind, FieldKind::Number { .. });
            if matches!(func, AggFn::Sum | AggFn::Avg) && !numeric {
                return Err(format!("{entry:?} needs a number field."));
            }
            (format!("{}_{arg}", name.trim()), Some(field.clone()))
        };
        if out.iter().any(|a| a.key == key) {
            return Err(format!("{entry:?} is listed twice."));
        }
        out.push(AggSpec { key, func, field });
    }
    if out.len() > MAX_AGGREGATES {
        return Err(format!("At most {MAX_AGGREGATES} aggregates."));
    }
    Ok(out)
}

/// Parses `sort` over the output keys: `(key, descending)` pairs.
pub fn parse_sort(raw: &str, keys: &[&str]) -> Result<Vec<(usize, bool)>, String> {
    let mut out = Vec::new();
    for entry in entries(raw) {
        let (name, desc) = match entry.strip_prefix('-') {
            Some(name) => (name, true),
            None => (entry.strip_prefix('+').unwrap_or(entry), false),
        };
        let Some(i) = keys.iter().position(|k| *k == name) else {
            return Err(format!("{name:?} is not a group or aggregate key."));
        };
        out.push((i, desc));
    }
    Ok(out)
}
