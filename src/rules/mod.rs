//! PocketBase's filter/rule language, compiled to parameterised SQL.
//!
//! Used for the `filter` and `sort` list parameters, collection API rules and
//! realtime filters. This module knows the language and SQL; it knows nothing
//! about HTTP, the database handle or the schema. The caller supplies a
//! [`Scope`] that maps field paths to already-quoted SQL and answers
//! `@request.*` lookups, so no identifier reaches SQL without the scope's
//! say-so and every literal becomes a bound `?` parameter.
//!
//! Pipeline: text → `lexer` → tokens → `parser` → [`Expr`] → `compile`
//! (with `operators`, `functions`, `macros`) → [`SqlFragment`].
//! The SQL is SQLite's unless the scope's [`Scope::dialect`] is
//! PostgreSQL, for which [`postgres`] writes SQL giving SQLite's answers.
//!
//! # Grammar
//!
//! ```text
//! expr     := and_expr ("||" and_expr)*          // && binds tighter than ||
//! and_expr := term ("&&" term)*
//! term     := operand sign operand | "(" expr? ")"   // empty groups are dropped
//! operand  := identifier | text | number | function
//! function := name "(" (operand ("," operand)*)? ")" // nesting ≤ MAX_FUNCTION_DEPTH
//! sign     := "?"? ("=" | "!=" | ">" | ">=" | "<" | "<=" | "~" | "!~")
//!
//! text       := '…' | "…"         // only the enclosing quote may be escaped: \' or \"
//! number     := "-"? digits ("." digits)?   // no exponent
//! identifier := [letter _ @ #] [letter digit _ . :]*   // not ending in . or :
//! comment    := "//" to end of line, allowed anywhere between tokens
//! ```
//!
//! Identifiers are [`Path`]s: `field`, `rel.field`, `json.key.0`,
//! `@request.auth.id`, `@collection.name:alias.field`, macros (`@now`,
//! `@todayStart`, `@year`, …) and `true`/`false`/`null`, with an optional
//! trailing `:isset`, `:changed`, `:length`, `:each` or `:lower`. Limits:
//! [`MAX_FILTER_BYTES`], [`MAX_COMPARISONS`], [`MAX_GROUP_DEPTH`].
//!
//! # Example
//!
//! ```
//! use ferrobase::rules::{compile, parse_filter, ColumnRef, Path, RuleError, Scope, SqlValue};
//!
//! struct Posts;
//! impl Scope for Posts {
//!     fn column(&self, path: &Path) -> Result<ColumnRef, RuleError> {
//!         match path.segments.as_slice() {
//!             [name] if name == "title" || name == "views" => {
//!                 Ok(ColumnRef::single(format!("\"posts\".\"{name}\"")))
//!             }
//!             _ => Err(RuleError::unresolved(path, "unknown field")),
//!         }
//!     }
//!     fn request_value(&self, _path: &Path) -> Result<Option<SqlValue>, RuleError> {
//!         Ok(None)
//!     }
//! }
//!
//! let expr = parse_filter("views > 10 && title ~ 'rust'").unwrap();
//! let where_clause = compile(&expr, &Posts).unwrap();
//! assert_eq!(
//!     where_clause.sql,
//!     r#"("posts"."views" > ? AND "posts"."title" LIKE ? ESCAPE '\')"#
//! );
//! assert_eq!(
//!     where_clause.params,
//!     vec![SqlValue::Integer(10), SqlValue::Text("%rust%".into())]
//! );
//! ```
//!
//! Sorting works the same way through [`parse_sort`] and [`compile_sort`]:
//!
//! ```
//! # use ferrobase::rules::{compile_sort, parse_sort, ColumnRef, Path, RuleError, Scope, SqlValue};
//! # struct Posts;
//! # impl Scope for Posts {
//! #     fn column(&self, path: &Path) -> Result<ColumnRef, RuleError> {
//! #         Ok(ColumnRef::single(format!("\"posts\".\"{}\"", path.segments[0])))
//! #     }
//! #     fn request_value(&self, _: &Path) -> Result<Option<SqlValue>, RuleError> { Ok(None) }
//! # }
//! let items = parse_sort("-views,@random").unwrap();
//! assert_eq!(compile_sort(&items, &Posts).unwrap(), r#""posts"."views" DESC, RANDOM()"#);
//! ```

mod ast;
mod cache;
mod compile;
mod error;
mod functions;
mod lexer;
mod macros;
mod operators;
mod params;
mod parser;
pub mod postgres;
#[cfg(test)]
mod proptests;
mod scope;
mod sort;
#[cfg(test)]
mod testing;

pub use ast::{Expr, Modifier, Op, OpKind, Operand, Path, PathKind};
pub use cache::{MAX_CACHED_EXPRESSIONS, parse_filter_cached};
pub use compile::{CompileOptions, compile, compile_with};
pub use error::RuleError;
pub use functions::{GEO_DISTANCE_SQL_FUNCTION, haversine_km};
pub use params::parse_filter_with_params;
pub use parser::{
    MAX_COMPARISONS, MAX_FILTER_BYTES, MAX_FUNCTION_DEPTH, MAX_GROUP_DEPTH, parse_filter,
};
pub use scope::{
    CollectionSource, ColumnRef, Dialect, EACH_STEP, Nulls, RowsSource, Scope, SqlFragment,
    SqlValue, ValueType,
};
pub use sort::{
    MAX_SORT_FIELD_BYTES, MAX_SORT_FIELDS, SortItem, SortTarget, compile_order, compile_sort,
    compile_typed_value, compile_value, parse_sort,
};

/// Prefixes that only superusers may use in `filter`/`sort` query parameters.
const SUPERUSER_ONLY_PREFIXES: [&str; 2] = ["@collection.", "@request."];

/// The superuser-only prefix that raw `filter`/`sort` text contains, if any.
///
/// The API answers 403 "Only superusers can filter by `prefix`" when this is
/// `Some` for a non-superuser. Collection rules may use both freely.
pub fn forbidden_for_non_superusers(src: &str) -> Option<&'static str> {
    SUPERUSER_ONLY_PREFIXES
        .into_iter()
        .find(|prefix| src.contains(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superuser_only_prefixes_are_detected_anywhere_in_the_text() {
        let cases = [
            ("title = 'x'", None, "plain filter"),
            ("@request.auth.id != ''", Some("@request."), "request"),
            (
                "@collection.users.id ?= id",
                Some("@collection."),
                "collection",
            ),
            (
                "a = 1 && @request.x = @collection.y",
                Some("@collection."),
                "collection wins",
            ),
            (
                "title = '@request.'",
                Some("@request."),
                "even inside text, as PocketBase does",
            ),
            ("@requestx = 1", None, "needs the dot"),
            ("@now > created", None, "macros are fine"),
        ];
        for (src, want, why) in cases {
            assert_eq!(forbidden_for_non_superusers(src), want, "{src:?}: {why}");
        }
    }
}
