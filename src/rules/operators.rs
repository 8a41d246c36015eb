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
//! Two exceptions keep "nothing" from passing for "empty" (see [`Nulls`]):
//!
//! * A database value whose NULL is [`Nulls::Absent`] (reached through a
//!   relation) takes no part in the equivalence: `a = ''` is `a = ''`, and
//!   `!=` is `(a = b) IS NOT TRUE`, so no related row equals nothing and
//!   differs from everything. A [`Nulls::Withheld`] value (an email the
//!   caller may not see) is compared the same way and the whole comparison
//!   is then ANDed with `a IS NOT NULL`, so no operator matches it.
//! * A guest's `@request.auth.*` value ([`Term::Nobody`]) equals empty
//!   literals and other request values as PocketBase's empty value does,
//!   but against anything from the database `=`, `~`, `!~` and the orderings
//!   are false, and `!=` holds only where the database value is non-empty
//!   (as PocketBase's `'' != ''` is false).
//!
//! Multi-valued operands expand to `json_each` rows. An empty or invalid
//! array expands to a single NULL element, which is what PocketBase's LEFT
//! JOIN produces: `cats:each = 'a'` needs at least one element (NULL ≠ 'a')
//! while `cats:each != 'a'` also matches empty lists.

use super::ast::OpKind;
use super::postgres::{self, Cmp};
use super::scope::{Dialect, Nulls, Piece, SqlFragment, SqlValue, ValueType};

/// One resolved, single-valued operand.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Term {
    /// A value known while compiling (literal, macro, `@request.*`); bound as `?`.
    Value(SqlValue),
    /// A guest's `@request.auth.*` value: it stands for nobody, so it never
    /// equals a database value (see the module docs). Bound as `?` where used.
    Nobody(SqlValue),
    /// A known-empty value written inline as `''`.
    Empty,
    /// SQL whose value only the database knows (column, function, list
    /// element), what a NULL from it means, and what it holds.
    Expr(SqlFragment, Nulls, ValueType),
}

/// What is known about a term's emptiness before the query runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Empty,
    NonEmpty,
    Unknown,
}

impl Term {
    /// A database expression whose NULL is PocketBase's empty value.
    pub(crate) fn expr(sql: SqlFragment, ty: ValueType) -> Self {
        Self::Expr(sql, Nulls::Empty, ty)
    }

    fn known(&self) -> Known {
        match self {
            Self::Value(SqlValue::Null) | Self::Nobody(SqlValue::Null) | Self::Empty => {
                Known::Empty
            }
            Self::Value(SqlValue::Text(s)) | Self::Nobody(SqlValue::Text(s)) if s.is_empty() => {
                Known::Empty
            }
            Self::Value(_) | Self::Nobody(_) => Known::NonEmpty,
            Self::Expr(..) => Known::Unknown,
        }
    }

    /// NULL from this term is not the empty value (it is absent or withheld).
    fn null_is_nothing(&self) -> bool {
        matches!(self, Self::Expr(_, Nulls::Absent | Nulls::Withheld, _))
    }

    /// The term as SQL: a `?` for values, the expression otherwise.
    pub(crate) fn to_sql(&self) -> SqlFragment {
        match self {
            Self::Value(v) | Self::Nobody(v) => SqlFragment::param(v.clone()),
            Self::Empty => SqlFragment::raw("''"),
            Self::Expr(sql, ..) => sql.clone(),
        }
    }

    /// The term, with known-empty values written inline as `''`.
    fn or_empty(&self) -> Term {
        match self.known() {
            Known::Empty => Self::Empty,
            _ => self.clone(),
        }
    }
}

/// `left <op> right` for two single values, in the dialect's SQL.
fn binary(d: Dialect, left: &Term, op: Cmp, right: &Term) -> SqlFragment {
    match d {
        Dialect::Sqlite => SqlFragment::concat(&[
            Piece::Sql(&left.to_sql()),
            Piece::Raw(op.sqlite()),
            Piece::Sql(&right.to_sql()),
        ]),
        Dialect::Postgres => postgres::compare(left, op, right),
    }
}

/// The dialect's `false` condition.
pub(crate) fn never(d: Dialect) -> SqlFragment {
    SqlFragment::raw(match d {
        Dialect::Sqlite => "0",
        Dialect::Postgres => "FALSE",
    })
}

/// `left <op> right` for two single-valued terms.
pub(crate) fn compare(d: Dialect, left: &Term, kind: OpKind, right: &Term) -> SqlFragment {
    let nobody_vs_database = matches!(
        (left, right),
        (Term::Nobody(_), Term::Expr(..)) | (Term::Expr(..), Term::Nobody(_))
    );
    let condition = if nobody_vs_database {
        // Nobody is not a value the database can hold: nothing equals,
        // contains or orders against it, and it "differs" only from a value
        // that is there (PocketBase's `'' != ''` is false: a guest must not
        // pass `owner != @request.auth.id` on a record without an owner).
        match (kind, left, right) {
            (OpKind::Neq, db @ Term::Expr(..), _) | (OpKind::Neq, _, db @ Term::Expr(..)) => {
                present(d, db)
            }
            _ => never(d),
        }
    } else {
        match kind {
            OpKind::Eq => equality(d, left, right, false),
            OpKind::Neq => equality(d, left, right, true),
            OpKind::Lt => binary(d, left, Cmp::Lt, right),
            OpKind::Lte => binary(d, left, Cmp::Le, right),
            OpKind::Gt => binary(d, left, Cmp::Gt, right),
            OpKind::Gte => binary(d, left, Cmp::Ge, right),
            OpKind::Like => like(d, left, right, false),
            OpKind::NotLike => like(d, left, right, true),
        }
    };
    withhold(condition, &[left, right])
}

/// `(x IS NOT NULL AND x != '')`: the database value is there.
fn present(d: Dialect, term: &Term) -> SqlFragment {
    let differs = binary(d, term, Cmp::Ne, &Term::Empty);
    SqlFragment::concat(&[
        Piece::Raw("("),
        Piece::Sql(&term.to_sql()),
        Piece::Raw(" IS NOT NULL AND "),
        Piece::Sql(&differs),
        Piece::Raw(")"),
    ])
}

/// `(condition AND x IS NOT NULL …)` for every withheld term: a value the
/// caller may not see satisfies no comparison.
fn withhold(condition: SqlFragment, terms: &[&Term]) -> SqlFragment {
    let mut out = condition;
    for term in terms {
        if let Term::Expr(sql, Nulls::Withheld, _) = term {
            out = SqlFragment::concat(&[
                Piece::Raw("("),
                Piece::Sql(&out),
                Piece::Raw(" AND "),
                Piece::Sql(sql),
                Piece::Raw(" IS NOT NULL)"),
            ]);
        }
    }
    out
}

/// `=` / `!=` with `''` and NULL treated alike; see the module docs.
pub(crate) fn equality(d: Dialect, left: &Term, right: &Term, negate: bool) -> SqlFragment {
    if left.null_is_nothing() || right.null_is_nothing() {
        return strict_equality(d, left, right, negate);
    }
    let (eq, nullness, glue) = if negate {
        (Cmp::IsNot, " IS NOT NULL", " AND ")
    } else {
        (Cmp::Eq, " IS NULL", " OR ")
    };
    let (l, r) = (left.or_empty(), right.or_empty());
    let empty_or_null = |x: &Term| {
        let (is_empty, is_null) = (
            binary(d, x, eq, &Term::Empty),
            SqlFragment::concat(&[Piece::Sql(&x.to_sql()), Piece::Raw(nullness)]),
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
        (Known::Empty, Known::Empty) => binary(d, &Term::Empty, eq, &Term::Empty),
        (Known::NonEmpty, _) | (_, Known::NonEmpty) => binary(d, &l, eq, &r),
        (Known::Empty, _) => empty_or_null(&r),
        (_, Known::Empty) => empty_or_null(&l),
        (Known::Unknown, Known::Unknown) => binary(d, &coalesce(d, &l), eq, &coalesce(d, &r)),
    }
}

/// Equality when a side's NULL means "nothing": that side is compared as
/// is (NULL equals nothing), an empty-valued side as `COALESCE(x, '')`.
fn strict_equality(d: Dialect, left: &Term, right: &Term, negate: bool) -> SqlFragment {
    let side = |t: &Term| match t {
        Term::Expr(_, Nulls::Empty, _) => coalesce(d, t),
        other => other.or_empty(),
    };
    let equal = binary(d, &side(left), Cmp::Eq, &side(right));
    if negate {
        SqlFragment::concat(&[
            Piece::Raw("("),
            Piece::Sql(&equal),
            Piece::Raw(") IS NOT TRUE"),
        ])
    } else {
        equal
    }
}

/// `COALESCE(x, '')`, which has no affinity in SQLite (so neither has the
/// PostgreSQL form, a jsonb value).
fn coalesce(d: Dialect, term: &Term) -> Term {
    let (sql, ty) = match d {
        Dialect::Sqlite => (term.to_sql(), ValueType::Json),
        Dialect::Postgres => (postgres::as_jsonb(term), ValueType::Json),
    };
    let empty = match d {
        Dialect::Sqlite => ", '')",
        Dialect::Postgres => ", '\"\"'::jsonb)",
    };
    Term::expr(
        SqlFragment::concat(&[Piece::Raw("COALESCE("), Piece::Sql(&sql), Piece::Raw(empty)]),
        ty,
    )
}

/// `~` / `!~`: a literal right side becomes a pattern, an expression is wrapped in `%`.
fn like(d: Dialect, left: &Term, right: &Term, negate: bool) -> SqlFragment {
    if d == Dialect::Postgres {
        let pattern = match right {
            Term::Value(v) | Term::Nobody(v) => Term::Value(like_pattern(v)),
            other => other.clone(),
        };
        return postgres::like(left, &pattern, negate);
    }
    let pattern = match right {
        Term::Value(v) | Term::Nobody(v) => SqlFragment::param(like_pattern(v)),
        other => SqlFragment::concat(&[
            Piece::Raw("('%' || "),
            Piece::Sql(&other.to_sql()),
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

/// The length of a JSON array expression (0 for NULL, invalid JSON or a non-array).
pub(crate) fn json_length(d: Dialect, list: &SqlFragment) -> SqlFragment {
    if d == Dialect::Postgres {
        return SqlFragment::concat(&[Piece::Raw("fb_length("), Piece::Sql(list), Piece::Raw(")")]);
    }
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
fn list_or_null(d: Dialect, list: &SqlFragment) -> SqlFragment {
    if d == Dialect::Postgres {
        return SqlFragment::concat(&[Piece::Raw("fb_list("), Piece::Sql(list), Piece::Raw(")")]);
    }
    let length = json_length(d, list);
    SqlFragment::concat(&[
        Piece::Raw("CASE WHEN "),
        Piece::Sql(&length),
        Piece::Raw(" > 0 THEN "),
        Piece::Sql(list),
        Piece::Raw(" ELSE '[null]' END"),
    ])
}

/// The SQL reading one element of an expanded list under `alias`.
pub(crate) fn element_sql(d: Dialect, alias: &str) -> SqlFragment {
    SqlFragment::raw(match d {
        Dialect::Sqlite => format!("{alias}.value"),
        Dialect::Postgres => format!("fb_sqlite({alias}.value)"),
    })
}

/// The table-valued function listing a JSON array's elements.
pub(crate) fn each_function(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "json_each(",
        Dialect::Postgres => "jsonb_array_elements(",
    }
}

/// A multi-valued operand being expanded: its JSON list and the row alias of its elements.
pub(crate) struct Expansion {
    pub(crate) alias: String,
    pub(crate) list: SqlFragment,
    /// What a NULL element (including the one an empty list expands to) means.
    pub(crate) nulls: Nulls,
}

impl Expansion {
    /// The term standing for one element inside the expansion.
    pub(crate) fn element(&self, d: Dialect) -> Term {
        Term::Expr(element_sql(d, &self.alias), self.nulls, ValueType::Element)
    }
}

/// Wraps `condition` (written over the expansions' elements) so it must hold
/// for at least one combination (`any`) or for all of them.
pub(crate) fn over_elements(
    d: Dialect,
    expansions: &[Expansion],
    condition: &SqlFragment,
    any: bool,
) -> SqlFragment {
    let mut from = SqlFragment::default();
    for (i, expansion) in expansions.iter().enumerate() {
        let list = list_or_null(d, &expansion.list);
        let separator = if i == 0 { "" } else { ", " };
        let alias = format!(") AS {}", expansion.alias);
        from = SqlFragment::concat(&[
            Piece::Sql(&from),
            Piece::Raw(separator),
            Piece::Raw(each_function(d)),
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
        Term::expr(
            SqlFragment::raw(format!("\"t\".\"{name}\"")),
            ValueType::Text,
        )
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
            let got = equality(Dialect::Sqlite, &l, &r, negate);
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
        let got = compare(Dialect::Sqlite, &col("a"), OpKind::NotLike, &col("b"));

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
            nulls: Nulls::Empty,
        };
        let condition = compare(
            Dialect::Sqlite,
            &expansion.element(Dialect::Sqlite),
            OpKind::Eq,
            &text("a"),
        );
        let list = "CASE WHEN json_array_length(CASE WHEN json_valid(\"t\".\"c\") THEN \"t\".\"c\" ELSE '[]' END) > 0 THEN \"t\".\"c\" ELSE '[null]' END";

        let any = over_elements(
            Dialect::Sqlite,
            std::slice::from_ref(&expansion),
            &condition,
            true,
        );
        let all = over_elements(
            Dialect::Sqlite,
            std::slice::from_ref(&expansion),
            &condition,
            false,
        );

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
    /// Evaluates `condition` in SQLite: true only when it is TRUE (NULL is no match).
    fn holds(condition: &SqlFragment) -> bool {
        let conn = rusqlite::Connection::open_in_memory().expect("in-memory db");
        let params = condition.params.iter().map(|v| match v {
            SqlValue::Null => rusqlite::types::Value::Null,
            SqlValue::Integer(i) => rusqlite::types::Value::Integer(*i),
            SqlValue::Real(r) => rusqlite::types::Value::Real(*r),
            SqlValue::Text(t) => rusqlite::types::Value::Text(t.clone()),
        });
        conn.query_row(
            &format!("SELECT COALESCE(({}), 0) IS TRUE", condition.sql),
            rusqlite::params_from_iter(params),
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", condition.sql))
    }

    fn db(sql: &str, nulls: Nulls) -> Term {
        Term::Expr(SqlFragment::raw(sql), nulls, ValueType::Json)
    }

    #[test]
    fn nothing_reached_through_a_relation_is_not_the_empty_value() {
        use OpKind::*;
        let absent = db("NULL", Nulls::Absent);
        let empty_null = db("NULL", Nulls::Empty);
        let cases = [
            (
                absent.clone(),
                Eq,
                text(""),
                false,
                "no related row is not ''",
            ),
            (absent.clone(), Neq, text(""), true, "so it differs from ''"),
            (
                absent.clone(),
                Eq,
                Term::Value(SqlValue::Null),
                false,
                "nor null",
            ),
            (absent.clone(), Eq, text("x"), false, "nor a value"),
            (absent.clone(), Neq, text("x"), true, "and differs from it"),
            (
                absent.clone(),
                Eq,
                db("''", Nulls::Empty),
                false,
                "nor an empty column",
            ),
            (
                absent.clone(),
                Neq,
                db("NULL", Nulls::Empty),
                true,
                "and differs from it",
            ),
            (
                absent.clone(),
                Eq,
                absent.clone(),
                false,
                "nothing never equals nothing",
            ),
            (absent.clone(), Neq, absent.clone(), true, "so it differs"),
            (absent.clone(), Lt, text("x"), false, "orderings stay SQL"),
            (
                absent.clone(),
                NotLike,
                text("x"),
                false,
                "NOT LIKE stays SQL",
            ),
            (
                db("''", Nulls::Absent),
                Eq,
                text(""),
                true,
                "a related empty value is ''",
            ),
            (
                db("'a'", Nulls::Absent),
                Neq,
                text("a"),
                false,
                "equal values",
            ),
            (
                empty_null.clone(),
                Eq,
                text(""),
                true,
                "PocketBase: NULL is ''",
            ),
            (
                empty_null,
                Neq,
                text(""),
                false,
                "and never differs from it",
            ),
        ];
        for (left, op, right, want, why) in cases {
            let got = compare(Dialect::Sqlite, &left, op, &right);
            assert_eq!(holds(&got), want, "{why}: {}", got.sql);
            let flipped = compare(Dialect::Sqlite, &right, op, &left);
            if matches!(op, Eq | Neq) {
                assert_eq!(holds(&flipped), want, "{why} (flipped): {}", flipped.sql);
            }
        }
    }

    #[test]
    fn a_withheld_value_satisfies_no_comparison() {
        use OpKind::*;
        let hidden = db("NULL", Nulls::Withheld);
        let shown = db("'a@x.io'", Nulls::Withheld);
        for op in [Eq, Neq, Lt, Lte, Gt, Gte, Like, NotLike] {
            for right in [
                text(""),
                text("a@x.io"),
                text("zzz"),
                Term::Value(SqlValue::Null),
            ] {
                let got = compare(Dialect::Sqlite, &hidden, op, &right);
                assert!(
                    !holds(&got),
                    "{op:?} {right:?} matched a hidden value: {}",
                    got.sql
                );
            }
        }
        assert!(
            holds(&compare(Dialect::Sqlite, &shown, Eq, &text("a@x.io"))),
            "visible and equal"
        );
        assert!(
            holds(&compare(Dialect::Sqlite, &shown, Neq, &text("b"))),
            "visible and different"
        );
        assert!(
            holds(&compare(Dialect::Sqlite, &shown, Like, &text("x.io"))),
            "visible and like"
        );
    }

    #[test]
    fn a_guest_identity_equals_empty_literals_but_no_database_value() {
        use OpKind::*;
        let guest = Term::Nobody(SqlValue::Text(String::new()));
        let missing = Term::Nobody(SqlValue::Null);
        let cases = [
            (
                guest.clone(),
                Eq,
                text(""),
                true,
                "@request.auth.id = '' holds for guests",
            ),
            (guest.clone(), Neq, text(""), false, "and != '' does not"),
            (
                missing.clone(),
                Eq,
                text(""),
                true,
                "a missing auth field is empty too",
            ),
            (
                guest.clone(),
                Eq,
                db("''", Nulls::Empty),
                false,
                "an empty column is not nobody",
            ),
            (
                guest.clone(),
                Eq,
                db("NULL", Nulls::Empty),
                false,
                "nor a NULL column",
            ),
            (
                missing.clone(),
                Eq,
                db("NULL", Nulls::Empty),
                false,
                "nor for other auth fields",
            ),
            (
                guest.clone(),
                Eq,
                db("NULL", Nulls::Absent),
                false,
                "nor no related row",
            ),
            (
                guest.clone(),
                Neq,
                db("''", Nulls::Empty),
                false,
                "an empty column does not differ from a guest (PocketBase: '' != '')",
            ),
            (
                guest.clone(),
                Neq,
                db("NULL", Nulls::Absent),
                false,
                "nor does no related row",
            ),
            (
                guest.clone(),
                Neq,
                db("'u1'", Nulls::Empty),
                true,
                "a stored id differs from a guest",
            ),
            (
                guest.clone(),
                Like,
                db("'abc'", Nulls::Empty),
                false,
                "'' is in every text",
            ),
            (
                db("'abc'", Nulls::Empty),
                Like,
                guest.clone(),
                false,
                "as a pattern too",
            ),
            (
                db("'abc'", Nulls::Empty),
                NotLike,
                guest.clone(),
                false,
                "not like does not hold either (PocketBase: NOT LIKE '%%')",
            ),
            (
                guest.clone(),
                Lt,
                db("'b'", Nulls::Empty),
                false,
                "no ordering",
            ),
            (
                guest,
                Gte,
                db("''", Nulls::Empty),
                false,
                "no ordering either way",
            ),
        ];
        for (left, op, right, want, why) in cases {
            let got = compare(Dialect::Sqlite, &left, op, &right);
            assert_eq!(holds(&got), want, "{why}: {}", got.sql);
        }
    }
}
