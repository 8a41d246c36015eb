//! SQL for each comparison operator (§4.3 of the API reference), given two
//! already-resolved operands, plus the `json_each` wrapping that gives
//! multi-valued operands their "all"/"any" meaning. Literals stay unbound
//! [`Term::Value`]s until here so each operator can pick its SQL shape (and
//! `~` can turn a literal into a LIKE pattern); they always leave as `?`.
//!
//! Equality (`=`/`!=`) treats `''` and NULL alike, the way PocketBase does:
//!
//! | operands                       | `=`                             | `!=`                                       |
//! |--------------------------------|---------------------------------|--------------------------------------------|
//! | both known empty (`''`/NULL)   | `'' = ''`                       | `'' IS NOT ''`                             |
//! | one known non-empty literal    | `a = ?`                         | `a IS NOT ?`                               |
//! | one known empty literal        | `(a = '' OR a IS NULL)`         | `(a IS NOT '' AND a IS NOT NULL)`          |
//! | neither known                  | `COALESCE(a, '') = COALESCE(b, '')` | `COALESCE(a, '') IS NOT COALESCE(b, '')` |
//!
//! The common case (`field = literal`) compares the bare column, so SQLite's
//! column affinity still applies: on a NUMERIC column `views = '5'` converts
//! the text to 5 and matches, while on a TEXT column `title = 5` compares
//! the text '5'. `IS NOT` is used for `!=` because `NULL != 'x'` is NULL
//! (no match) while PocketBase answers true. `COALESCE` is only the
//! fallback for two unknown sides, where it drops affinity; both sides are
//! then columns or expressions with their own storage classes.
//!
//! Multi-valued operands expand to `json_each` rows. An empty or invalid
//! array expands to a single NULL element, which is what PocketBase's LEFT
//! JOIN produces: `cats:each = 'a'` needs at least one element (NULL ≠ 'a')
//! while `cats:each != 'a'` also matches empty lists.

use super::ast::OpKind;
use super::scope::{Piece, SqlFragment, SqlValue};

/// One resolved, single-valued operand.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Term {
    /// A value known while compiling (literal, macro, `@request.*`); bound as `?`.
    Value(SqlValue),
    /// SQL whose value only the database knows (column, function, list element).
    Expr(SqlFragment),
}

/// What is known about a term's emptiness before the query runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Empty,
    NonEmpty,
    Unknown,
}

impl Term {
    fn known(&self) -> Known {
        match self {
            Self::Value(SqlValue::Null) => Known::Empty,
            Self::Value(SqlValue::Text(s)) if s.is_empty() => Known::Empty,
            Self::Value(_) => Known::NonEmpty,
            Self::Expr(_) => Known::Unknown,
        }
    }

    /// The term as SQL: a `?` for values, the expression otherwise.
    pub(crate) fn to_sql(&self) -> SqlFragment {
        match self {
            Self::Value(v) => SqlFragment::param(v.clone()),
            Self::Expr(sql) => sql.clone(),
        }
    }

    /// The term as SQL, with known-empty values written as `''`.
    fn to_sql_or_empty(&self) -> SqlFragment {
        match self.known() {
            Known::Empty => SqlFragment::raw("''"),
            _ => self.to_sql(),
        }
    }
}

/// `left <op> right` for two single-valued terms.
pub(crate) fn compare(left: &Term, kind: OpKind, right: &Term) -> SqlFragment {
    match kind {
        OpKind::Eq => equality(left, right, false),
        OpKind::Neq => equality(left, right, true),
        OpKind::Lt => ordering(left, " < ", right),
        OpKind::Lte => ordering(left, " <= ", right),
        OpKind::Gt => ordering(left, " > ", right),
        OpKind::Gte => ordering(left, " >= ", right),
        OpKind::Like => like(left, right, false),
        OpKind::NotLike => like(left, right, true),
    }
}

/// `=` / `!=` with `''` and NULL treated alike; see the module docs.
pub(crate) fn equality(left: &Term, right: &Term, negate: bool) -> SqlFragment {
    let (eq, nullness, glue) = if negate {
        (" IS NOT ", " IS NOT NULL", " AND ")
    } else {
        (" = ", " IS NULL", " OR ")
    };
    let (l, r) = (left.to_sql_or_empty(), right.to_sql_or_empty());
    let empty = SqlFragment::raw("''");
    let binary = |a: &SqlFragment, b: &SqlFragment| {
        SqlFragment::concat(&[Piece::Sql(a), Piece::Raw(eq), Piece::Sql(b)])
    };
    let empty_or_null = |x: &SqlFragment| {
        let (is_empty, is_null) = (
            binary(x, &empty),
            SqlFragment::concat(&[Piece::Sql(x), Piece::Raw(nullness)]),
        );
        SqlFragment::concat(&[
            Piece::Raw("("),
            Piece::Sql(&is_empty),
            Piece::Raw(glue),
            Piece::Sql(&is_null),
            Piece::Raw(")"),
        ])
    };
    match (left.known(), right.known()) {
        (Known::Empty, Known::Empty) => binary(&empty, &empty),
        (Known::NonEmpty, _) | (_, Known::NonEmpty) => binary(&l, &r),
        (Known::Empty, _) => empty_or_null(&r),
        (_, Known::Empty) => empty_or_null(&l),
        (Known::Unknown, Known::Unknown) => {
            let coalesce = |x: &SqlFragment| {
                SqlFragment::concat(&[Piece::Raw("COALESCE("), Piece::Sql(x), Piece::Raw(", '')")])
            };
            binary(&coalesce(&l), &coalesce(&r))
        }
    }
}

fn ordering(left: &Term, op: &str, right: &Term) -> SqlFragment {
    let (l, r) = (left.to_sql(), right.to_sql());
    SqlFragment::concat(&[Piece::Sql(&l), Piece::Raw(op), Piece::Sql(&r)])
}

/// `~` / `!~`: a literal right side becomes a pattern, an expression is wrapped in `%`.
fn like(left: &Term, right: &Term, negate: bool) -> SqlFragment {
    let pattern = match right {
        Term::Value(v) => SqlFragment::param(like_pattern(v)),
        Term::Expr(sql) => SqlFragment::concat(&[
            Piece::Raw("('%' || "),
            Piece::Sql(sql),
            Piece::Raw(" || '%')"),
        ]),
    };
    let op = if negate { " NOT LIKE " } else { " LIKE " };
    let l = left.to_sql();
    SqlFragment::concat(&[
        Piece::Sql(&l),
        Piece::Raw(op),
        Piece::Sql(&pattern),
        Piece::Raw(" ESCAPE '\\'"),
    ])
}

/// The LIKE pattern for a literal: used as is when it has an unescaped `%`,
/// otherwise escaped and wrapped as `%value%` ("contains").
fn like_pattern(value: &SqlValue) -> SqlValue {
    let text = match value {
        SqlValue::Null => return SqlValue::Null,
        SqlValue::Integer(i) => i.to_string(),
        SqlValue::Real(r) => r.to_string(),
        SqlValue::Text(s) => s.clone(),
    };
    if has_unescaped_percent(&text) {
        return SqlValue::Text(text);
    }
    SqlValue::Text(format!("%{}%", escape_like(&text)))
}

fn has_unescaped_percent(text: &str) -> bool {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '%' => return true,
            _ => {}
        }
    }
    false
}

/// Escapes `\`, `%` and `_` with `\`, keeping pairs that are already escaped.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&next @ ('\\' | '%' | '_'))) => {
                out.extend([c, next]);
                chars.next();
            }
            ('\\' | '%' | '_', _) => out.extend(['\\', c]),
            _ => out.push(c),
        }
    }
    out
}

/// `json_array_length` of a JSON array expression (0 for NULL or invalid JSON).
pub(crate) fn json_length(list: &SqlFragment) -> SqlFragment {
    let array = valid_array(list);
    SqlFragment::concat(&[
        Piece::Raw("json_array_length("),
        Piece::Sql(&array),
        Piece::Raw(")"),
    ])
}

fn valid_array(list: &SqlFragment) -> SqlFragment {
    SqlFragment::concat(&[
        Piece::Raw("CASE WHEN json_valid("),
        Piece::Sql(list),
        Piece::Raw(") THEN "),
        Piece::Sql(list),
        Piece::Raw(" ELSE '[]' END"),
    ])
}

/// The list itself, or `[null]` when it is empty or not an array.
fn list_or_null(list: &SqlFragment) -> SqlFragment {
    let length = json_length(list);
    SqlFragment::concat(&[
        Piece::Raw("CASE WHEN "),
        Piece::Sql(&length),
        Piece::Raw(" > 0 THEN "),
        Piece::Sql(list),
        Piece::Raw(" ELSE '[null]' END"),
    ])
}

/// A multi-valued operand being expanded: its JSON list and the row alias of its elements.
pub(crate) struct Expansion {
    pub(crate) alias: String,
    pub(crate) list: SqlFragment,
}

impl Expansion {
    /// The term standing for one element inside the expansion.
    pub(crate) fn element(&self) -> Term {
        Term::Expr(SqlFragment::raw(format!("{}.value", self.alias)))
    }
}

/// Wraps `condition` (written over the expansions' elements) so it must hold
/// for at least one combination (`any`) or for all of them.
pub(crate) fn over_elements(
    expansions: &[Expansion],
    condition: &SqlFragment,
    any: bool,
) -> SqlFragment {
    let mut from = SqlFragment::default();
    for (i, expansion) in expansions.iter().enumerate() {
        let list = list_or_null(&expansion.list);
        let separator = if i == 0 { "json_each(" } else { ", json_each(" };
        let alias = format!(") AS {}", expansion.alias);
        from = SqlFragment::concat(&[
            Piece::Sql(&from),
            Piece::Raw(separator),
            Piece::Sql(&list),
            Piece::Raw(&alias),
        ]);
    }
    let (open, close) = if any {
        ("EXISTS (SELECT 1 FROM ", ")")
    } else {
        ("NOT EXISTS (SELECT 1 FROM ", ") IS NOT TRUE)")
    };
    let where_ = if any { " WHERE " } else { " WHERE (" };
    SqlFragment::concat(&[
        Piece::Raw(open),
        Piece::Sql(&from),
        Piece::Raw(where_),
        Piece::Sql(condition),
        Piece::Raw(close),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str) -> Term {
        Term::Expr(SqlFragment::raw(format!("\"t\".\"{name}\"")))
    }

    fn text(s: &str) -> Term {
        Term::Value(SqlValue::Text(s.into()))
    }

    #[test]
    fn equality_picks_the_shape_by_what_is_known() {
        let null = Term::Value(SqlValue::Null);
        let cases = [
            (
                col("a"),
                text("x"),
                false,
                "\"t\".\"a\" = ?",
                1,
                "column vs literal",
            ),
            (
                text("x"),
                col("a"),
                true,
                "? IS NOT \"t\".\"a\"",
                1,
                "literal vs column, negated",
            ),
            (
                col("a"),
                text(""),
                false,
                "(\"t\".\"a\" = '' OR \"t\".\"a\" IS NULL)",
                0,
                "empty text",
            ),
            (
                col("a"),
                null.clone(),
                true,
                "(\"t\".\"a\" IS NOT '' AND \"t\".\"a\" IS NOT NULL)",
                0,
                "null negated",
            ),
            (null.clone(), text(""), false, "'' = ''", 0, "both empty"),
            (
                text(""),
                text("x"),
                false,
                "'' = ?",
                1,
                "empty vs non-empty literal",
            ),
            (
                col("a"),
                col("b"),
                false,
                "COALESCE(\"t\".\"a\", '') = COALESCE(\"t\".\"b\", '')",
                0,
                "two columns",
            ),
            (
                col("a"),
                col("b"),
                true,
                "COALESCE(\"t\".\"a\", '') IS NOT COALESCE(\"t\".\"b\", '')",
                0,
                "two columns negated",
            ),
        ];
        for (l, r, negate, want, params, why) in cases {
            let got = equality(&l, &r, negate);
            assert_eq!(got.sql, want, "{why}");
            assert_eq!(got.params.len(), params, "{why}: param count");
        }
    }

    #[test]
    fn like_patterns_wrap_and_escape_plain_literals() {
        let cases = [
            ("abc", "%abc%", "plain text is wrapped"),
            ("H%", "H%", "unescaped percent is a raw pattern"),
            ("a_b", "%a\\_b%", "underscore is escaped"),
            ("a\\b", "%a\\\\b%", "backslash is escaped"),
            (
                "a\\%b",
                "%a\\%b%",
                "escaped percent stays escaped and wraps",
            ),
            ("a\\_b", "%a\\_b%", "escaped underscore is kept"),
            (
                "50\\\\%",
                "50\\\\%",
                "escaped backslash before percent leaves it unescaped",
            ),
            ("end\\", "%end\\\\%", "trailing backslash is escaped"),
            ("", "%%", "empty matches everything"),
        ];
        for (input, want, why) in cases {
            assert_eq!(
                like_pattern(&SqlValue::Text(input.into())),
                SqlValue::Text(want.into()),
                "{input:?}: {why}"
            );
        }
        assert_eq!(
            like_pattern(&SqlValue::Integer(5)),
            SqlValue::Text("%5%".into()),
            "numbers become text"
        );
        assert_eq!(
            like_pattern(&SqlValue::Null),
            SqlValue::Null,
            "null stays null"
        );
    }

    #[test]
    fn like_against_a_column_wraps_it_in_percent_signs() {
        let got = compare(&col("a"), OpKind::NotLike, &col("b"));

        assert_eq!(
            got.sql,
            "\"t\".\"a\" NOT LIKE ('%' || \"t\".\"b\" || '%') ESCAPE '\\'"
        );
        assert!(got.params.is_empty());
    }

    #[test]
    fn expansions_exist_for_any_and_not_exist_otherwise_for_all() {
        let expansion = Expansion {
            alias: "_e1".into(),
            list: SqlFragment::raw("\"t\".\"c\""),
        };
        let condition = compare(&expansion.element(), OpKind::Eq, &text("a"));
        let list = "CASE WHEN json_array_length(CASE WHEN json_valid(\"t\".\"c\") THEN \"t\".\"c\" ELSE '[]' END) > 0 THEN \"t\".\"c\" ELSE '[null]' END";

        let any = over_elements(std::slice::from_ref(&expansion), &condition, true);
        let all = over_elements(std::slice::from_ref(&expansion), &condition, false);

        assert_eq!(
            any.sql,
            format!("EXISTS (SELECT 1 FROM json_each({list}) AS _e1 WHERE _e1.value = ?)")
        );
        assert_eq!(
            all.sql,
            format!(
                "NOT EXISTS (SELECT 1 FROM json_each({list}) AS _e1 WHERE (_e1.value = ?) IS NOT TRUE)"
            )
        );
        assert_eq!(all.params, vec![SqlValue::Text("a".into())]);
    }
}
