//! The `sort` list parameter (§4.8 of the API reference): `-views,title,+created,@random,-@rowid`.
//! Parsing checks shape and limits; compiling asks the [`Scope`] for every
//! field, exactly like filters do, and yields the body of an `ORDER BY`.
//! Sort text never carries literals, so only scope-supplied SQL and fixed
//! keywords end up in the result; the scope's SQL may bind values of its own
//! (a related collection's list rule, the caller's id deciding whose email
//! is visible), which [`compile_order`] returns alongside.

use super::ast::{Modifier, Path, PathKind};
use super::compile::{Resolved, column_operand};
use super::error::RuleError;
use super::operators::Term;
use super::postgres;
use super::scope::{Dialect, Scope, SqlFragment, ValueType};

/// Most fields one sort may name.
pub const MAX_SORT_FIELDS: usize = 8;
/// Longest single sort field, in bytes (including a `-`/`+` prefix).
pub const MAX_SORT_FIELD_BYTES: usize = 255;

/// One entry of a sort list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortItem {
    /// What to sort by.
    pub target: SortTarget,
    /// `true` for a `-` prefix.
    pub descending: bool,
}

/// What a [`SortItem`] orders by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortTarget {
    /// A field path, resolved through the [`Scope`].
    Field(Path),
    /// `@random`
    Random,
    /// `@rowid` (insertion order)
    RowId,
}

/// Parses a comma-separated sort list; blank input is an empty list.
pub fn parse_sort(src: &str) -> Result<Vec<SortItem>, RuleError> {
    if src.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut items = Vec::new();
    let mut pos = 0;
    for raw in src.split(',') {
        if items.len() == MAX_SORT_FIELDS {
            return Err(RuleError::TooManySortFields {
                max: MAX_SORT_FIELDS,
            });
        }
        items.push(parse_item(raw, pos)?);
        pos += raw.len() + 1;
    }
    Ok(items)
}

fn parse_item(raw: &str, pos: usize) -> Result<SortItem, RuleError> {
    let item = raw.trim();
    let pos = pos + (raw.len() - raw.trim_start().len());
    if item.len() > MAX_SORT_FIELD_BYTES {
        return Err(RuleError::SortFieldTooLong {
            pos,
            max: MAX_SORT_FIELD_BYTES,
        });
    }
    if item.is_empty() {
        return Err(RuleError::lex(pos, "empty sort field"));
    }
    let (descending, name) = match item.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, item.strip_prefix('+').unwrap_or(item)),
    };
    let target = match name {
        "@random" => SortTarget::Random,
        "@rowid" => SortTarget::RowId,
        _ => SortTarget::Field(Path::parse_at(name, pos + item.len() - name.len())?),
    };
    Ok(SortItem { target, descending })
}

/// The body of an `ORDER BY` clause for `items` (empty text for no items),
/// for scopes whose columns bind no values.
pub fn compile_sort(items: &[SortItem], scope: &dyn Scope) -> Result<String, RuleError> {
    let order = compile_order(items, scope)?;
    if !order.params.is_empty() {
        return Err(RuleError::invalid(
            "cannot sort by fields that need bound values",
        ));
    }
    Ok(order.sql)
}

/// The body of an `ORDER BY` clause for `items` (empty for no items) with
/// the values its placeholders need, in order.
pub fn compile_order(items: &[SortItem], scope: &dyn Scope) -> Result<SqlFragment, RuleError> {
    let mut out = SqlFragment::default();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.sql.push_str(", ");
        }
        out.push(&compile_item(item, scope)?);
    }
    Ok(out)
}

fn compile_item(item: &SortItem, scope: &dyn Scope) -> Result<SqlFragment, RuleError> {
    let direction = if item.descending { "DESC" } else { "ASC" };
    let postgres = scope.dialect() == Dialect::Postgres;
    match &item.target {
        SortTarget::Random if postgres => Ok(SqlFragment::raw("random()")),
        SortTarget::Random => Ok(SqlFragment::raw("RANDOM()")),
        SortTarget::RowId if !scope.has_rowid() => Err(RuleError::invalid(
            "cannot sort by `@rowid`: these rows have no insertion order",
        )),
        SortTarget::RowId if postgres => Ok(SqlFragment::raw(format!(
            "{} {direction}",
            postgres::ROWID_COLUMN
        ))),
        SortTarget::RowId => Ok(SqlFragment::raw(format!("_rowid_ {direction}"))),
        SortTarget::Field(path) => {
            let (mut column, ty) = sort_column(path, scope)?;
            if postgres {
                return Ok(postgres::order_by(&column, ty, item.descending));
            }
            column.sql.push(' ');
            column.sql.push_str(direction);
            Ok(column)
        }
    }
}

/// The SQL value of one field path (`kind`, `owner.name`) exactly as a sort
/// would read it, for grouping and aggregating over list results.
pub fn compile_value(raw: &str, scope: &dyn Scope) -> Result<SqlFragment, RuleError> {
    compile_typed_value(raw, scope).map(|(sql, _)| sql)
}

/// [`compile_value`] with the value's type (PostgreSQL's aggregates need
/// it: a `jsonb` or `boolean` value aggregates differently from text).
pub fn compile_typed_value(
    raw: &str,
    scope: &dyn Scope,
) -> Result<(SqlFragment, ValueType), RuleError> {
    match parse_sort(raw)?.as_slice() {
        [
            SortItem {
                target: SortTarget::Field(path),
                descending: false,
            },
        ] => sort_column(path, scope),
        _ => Err(RuleError::invalid(format!("`{raw}` is not a field path"))),
    }
}

/// The column's SQL. A withheld value (an email the caller may not see) is
/// NULL already, so it orders with the other hidden ones, not by its text.
fn sort_column(path: &Path, scope: &dyn Scope) -> Result<(SqlFragment, ValueType), RuleError> {
    let cannot = |why: &str| RuleError::invalid(format!("cannot sort by `{path}`: {why}"));
    match (path.kind(), path.modifier) {
        (PathKind::Request | PathKind::Macro, _) => return Err(cannot("not a field")),
        (_, Some(Modifier::Each | Modifier::IsSet | Modifier::Changed)) => {
            return Err(cannot("modifier not allowed here"));
        }
        _ => {}
    }
    let column = scope.column(path)?;
    if column.per_row_lengths {
        // `x_via_y.members:length` is one length per linking row; a sort
        // needs one number per record: their total.
        let sql = match scope.dialect() {
            Dialect::Sqlite => format!("(SELECT sum(value) FROM json_each({}))", column.sql),
            Dialect::Postgres => format!(
                "(SELECT sum((e.value #>> '{{}}')::numeric) FROM jsonb_array_elements({}) AS e)",
                column.sql
            ),
        };
        let sql = SqlFragment {
            sql,
            params: column.params,
        };
        return Ok((sql, ValueType::ComputedNumber));
    }
    match column_operand(scope.dialect(), column, path)? {
        Resolved::Single(Term::Expr(sql, _, ty)) => Ok((sql, ty)),
        _ => Err(cannot("not a single value")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestScope;
    use super::*;

    fn field(name: &str, descending: bool) -> SortItem {
        SortItem {
            target: SortTarget::Field(Path::parse(name).expect("valid path")),
            descending,
        }
    }

    #[test]
    fn sort_lists_parse_direction_and_specials() {
        let got = parse_sort("-views, title ,+created,@random,-@rowid").expect("valid sort");

        assert_eq!(
            got,
            vec![
                field("views", true),
                field("title", false),
                field("created", false),
                SortItem {
                    target: SortTarget::Random,
                    descending: false
                },
                SortItem {
                    target: SortTarget::RowId,
                    descending: true
                },
            ]
        );
        assert_eq!(parse_sort("  "), Ok(Vec::new()), "blank sort is no sort");
    }

    #[test]
    fn invalid_sort_lists_are_rejected() {
        let long = "a".repeat(MAX_SORT_FIELD_BYTES + 1);
        let nine = ["a"; MAX_SORT_FIELDS + 1].join(",");
        let cases = [
            ("title,,views", "empty entry"),
            ("title,", "trailing comma"),
            ("--views", "double minus"),
            ("-", "sign without a name"),
            ("views DESC", "SQL keyword"),
            ("views;DROP TABLE x", "injection attempt"),
            ("\"views\"", "quoted name"),
            (long.as_str(), "field longer than the limit"),
            (nine.as_str(), "more fields than the limit"),
        ];
        for (src, why) in cases {
            assert!(parse_sort(src).is_err(), "{src:?} ({why}) should fail");
        }
    }

    #[test]
    fn sort_limits_are_inclusive() {
        let longest = "a".repeat(MAX_SORT_FIELD_BYTES);
        let eight = ["a"; MAX_SORT_FIELDS].join(",");

        assert!(
            parse_sort(&longest).is_ok(),
            "a field exactly at the byte limit"
        );
        assert_eq!(
            parse_sort(&eight).map(|v| v.len()),
            Ok(MAX_SORT_FIELDS),
            "exactly the maximum count"
        );
    }

    #[test]
    fn sorts_compile_to_scope_columns() {
        let scope = TestScope::new();
        let cases = [
            (
                "-views,title",
                "\"posts\".\"views\" DESC, \"posts\".\"title\" ASC",
                "plain fields",
            ),
            ("@random", "RANDOM()", "random"),
            ("-@rowid", "_rowid_ DESC", "newest first"),
            (
                "title:lower",
                "LOWER(\"posts\".\"title\") ASC",
                "lower modifier",
            ),
            (
                "-cats:length",
                "json_array_length(CASE WHEN json_valid(\"posts\".\"cats\") THEN \"posts\".\"cats\" ELSE '[]' END) DESC",
                "length of a multi field",
            ),
        ];
        for (src, want, why) in cases {
            let items = parse_sort(src).expect("valid sort");
            assert_eq!(
                compile_sort(&items, &scope),
                Ok(want.to_string()),
                "{src}: {why}"
            );
        }
    }

    #[test]
    fn sorts_by_unknown_or_non_field_targets_fail() {
        let scope = TestScope::new();
        for (src, why) in [
            ("nope", "unknown field"),
            ("@request.auth.id", "request value"),
            ("@now", "macro"),
            ("cats:each", "each modifier"),
            ("title:length", "length of a single field"),
            ("author.name", "relation path not supported by the scope"),
        ] {
            let items = parse_sort(src).expect("parses");
            assert!(
                compile_sort(&items, &scope).is_err(),
                "{src} ({why}) should fail"
            );
        }
    }
}
