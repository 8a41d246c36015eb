//! The boundary between the rules compiler and the rest of the server. A
//! [`Scope`] answers "what SQL stands for this field?" and "what value does
//! this `@request.*` key have?"; the compiler produces a [`SqlFragment`]
//! (SQL text plus positional parameters). The scope owns schema knowledge,
//! quoting and permissions; this module owns none of that.

use super::ast::Path;
use super::error::RuleError;

/// What the compiler needs from the caller for one request or rule check.
pub trait Scope {
    /// Resolves a field path (`["title"]`, `["meta", "x"]`, …) to SQL, or fails
    /// for unknown or forbidden fields.
    ///
    /// Resolve `path.segments` (and `path.alias`); the compiler applies
    /// `path.modifier` itself. Relation paths, back-relations and
    /// `@collection.*` also arrive here; return an error for those you do
    /// not support.
    fn column(&self, path: &Path) -> Result<ColumnRef, RuleError>;

    /// The value of an `@request.*` path (`auth.id`, `body.x`, `query.x`,
    /// `headers.x`, `method`, `context`); `None` means the key is missing
    /// (it compares as NULL, and `:isset` is false).
    ///
    /// Look up `path.request_key()`, ignoring `path.modifier`. Arrays and
    /// objects should be returned as JSON text, booleans as `Integer(0|1)`.
    fn request_value(&self, path: &Path) -> Result<Option<SqlValue>, RuleError>;

    /// The SQL this scope's columns are written in, and the compiler writes
    /// too. A PostgreSQL scope gives every [`ColumnRef`] its [`ValueType`].
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    /// Whether the request has no authenticated record (a guest, or a token
    /// that did not verify). Its `@request.auth.*` values then stand for
    /// nobody: they still equal empty literals (`@request.auth.id = ''`), but
    /// never anything the database holds, not even an empty column.
    fn anonymous(&self) -> bool {
        false
    }

    /// Whether the root rows have a `_rowid_` (`@rowid` sorts on it). SQL
    /// views, which back view collections, have none.
    fn has_rowid(&self) -> bool {
        true
    }

    /// Opens `@collection.<name>` as the SQL alias `alias` (already quoted):
    /// the `FROM` item and, optionally, a condition on its rows (e.g. the
    /// collection's list rule). Scopes without other collections refuse.
    fn collection_source(&self, name: &str, alias: &str) -> Result<CollectionSource, RuleError> {
        let _ = alias;
        Err(RuleError::invalid(format!(
            "`@collection.{name}` is not available here"
        )))
    }

    /// Resolves a field path of `@collection.<name>` opened as `alias`.
    fn collection_column(
        &self,
        name: &str,
        alias: &str,
        path: &Path,
    ) -> Result<ColumnRef, RuleError> {
        let _ = (alias, path);
        Err(RuleError::invalid(format!(
            "`@collection.{name}` is not available here"
        )))
    }
    /// The multi-valued steps of `path` whose rows comparisons can share,
    /// outermost first, each named by the segments up to and including it:
    /// `[["x_via_y"], ["x_via_y", "members"]]` for `x_via_y.members.id`,
    /// `[["tags", EACH_STEP]]` for `tags:each`. Any-of comparisons inside one
    /// `&&` that reach the same step are checked on one row of it, as
    /// PocketBase joins each step once per query. Empty (the default): the
    /// path has no shared step and is compared on its own.
    fn shared_steps(&self, path: &Path) -> Vec<Vec<String>> {
        let _ = path;
        Vec::new()
    }

    /// Opens the rows named by `key` (from [`Scope::shared_steps`]) for an
    /// `EXISTS`: relative to the record itself, or to the rows of
    /// `key[..base.0]` already open as `base.1`.
    fn open_rows(
        &self,
        key: &[String],
        base: Option<(usize, &str)>,
    ) -> Result<RowsSource, RuleError> {
        let _ = base;
        Err(RuleError::invalid(format!(
            "`{}` cannot be shared here",
            key.join(".")
        )))
    }

    /// Resolves the rest of a path (`rest`) on one row of `key`, open as
    /// `alias`. For an `EACH_STEP` key `rest` is empty and the answer is the
    /// element itself.
    fn rows_column(
        &self,
        key: &[String],
        alias: &str,
        rest: &Path,
    ) -> Result<ColumnRef, RuleError> {
        let _ = (alias, rest);
        Err(RuleError::invalid(format!(
            "`{}` cannot be shared here",
            key.join(".")
        )))
    }
}

/// The SQL the compiler writes.
///
/// The filter language is defined on SQLite's dynamic typing (affinity,
/// storage classes, ASCII-only case folding); on PostgreSQL the compiler
/// writes SQL that gives the same answers, using the `fb_*` functions of
/// [`crate::rules::postgres::FUNCTIONS`] where no native operator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// The embedded SQLite database.
    #[default]
    Sqlite,
    /// PostgreSQL 15 or later.
    Postgres,
}

/// What a column expression holds, for the PostgreSQL dialect: its SQL type
/// there and the affinity SQLite gives it (which decides the conversions
/// made before comparing). SQLite needs none of this: it reads the affinity
/// from the SQL itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueType {
    /// A text column (TEXT affinity; PostgreSQL `text`).
    #[default]
    Text,
    /// A number column (NUMERIC affinity; PostgreSQL `double precision`).
    Number,
    /// A bool column (NUMERIC affinity, compared as 0/1; PostgreSQL `boolean`).
    Bool,
    /// A value read from JSON: a key of a document or an element of a list
    /// (no affinity; PostgreSQL `jsonb`, SQL NULL for JSON null, booleans
    /// as 1/0 as SQLite's `json_extract` gives them).
    Json,
    /// An element of a JSON list as `json_each` gives it (in SQLite a
    /// column with BLOB affinity: a number operand converts it, a text one
    /// does not; PostgreSQL `jsonb`, as [`ValueType::Json`]).
    Element,
    /// A whole JSON column, a document or a list (NUMERIC affinity, as SQLite
    /// gives a column declared JSON; PostgreSQL `jsonb`): a JSON number
    /// compares as that number, anything else as its JSON text.
    Document,
    /// Text computed by an expression (no affinity; PostgreSQL `text`).
    ComputedText,
    /// A whole number computed by an expression (no affinity; PostgreSQL
    /// `int` or `bigint`).
    ComputedNumber,
    /// A real computed by an expression (no affinity; PostgreSQL `double
    /// precision`), written as text the way SQLite writes reals (`0.0`).
    ComputedReal,
}

/// The last segment of a [`Scope::shared_steps`] key naming the elements of a
/// multi-valued field read with `:each` (no field name can contain `:`).
pub const EACH_STEP: &str = ":each";

/// The rows of a multi-valued path step, opened inside an `EXISTS`.
#[derive(Debug, Clone, PartialEq)]
pub struct RowsSource {
    /// The `FROM` items reaching the rows (scope-supplied, no user text),
    /// e.g. `"links" AS "_fb_r3"`. The compiler selects `<alias>.*` from them
    /// (with `condition`) and LEFT JOINs that, so a record without such rows
    /// still has one row of NULLs, as PocketBase's LEFT JOIN does.
    pub from: String,
    /// How the rows link to the record or base row, plus related list rules.
    pub condition: Option<SqlFragment>,
    /// The alias of the rows' table (or `json_each`) that later paths read.
    pub alias: String,
}

/// Another collection joined by an `@collection.<name>` path.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionSource {
    /// The `FROM` item, e.g. `"news" AS "_fb_c1"` (scope-supplied, no user text).
    pub from: String,
    /// An extra condition on the joined rows (e.g. the collection's list rule).
    pub condition: Option<SqlFragment>,
}

/// A column (or column-like expression) supplied by the [`Scope`].
///
/// All compiler handling of a `ColumnRef` lives in `compile::column_operand`,
/// so that a later version can let it carry joins or a subquery.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnRef {
    /// Already-quoted, self-contained SQL expression, e.g. `"posts"."title"`
    /// or `json_extract("posts"."meta", '$.x')`; wrap anything with
    /// operators in parentheses. It is pasted into the SQL as is.
    pub sql: String,
    /// Stored as JSON array text (multi select, multi file, multi relation).
    pub multi: bool,
    /// A JSON array of values reached through a multi-valued relation path
    /// (`tags.title`, `comments_via_post.author`): compared element by
    /// element even without `:each` ("all" without `?`, "any" with it).
    pub expands: bool,
    /// Values for `?` placeholders inside `sql` (e.g. a joined collection's
    /// rule), in order.
    pub params: Vec<SqlValue>,
    /// What a NULL from `sql` means to the comparison operators.
    pub nulls: Nulls,
    /// Asked for `path:length` through a multi-valued hop, `sql` is already
    /// the JSON array of each reached row's list length (never empty: no
    /// row reads as one length of 0), compared element by element as
    /// PocketBase's multi-match subquery does. See [`ColumnRef::lengths`].
    pub per_row_lengths: bool,
    /// What `sql` holds (PostgreSQL only; lists are always `jsonb` arrays there).
    pub ty: ValueType,
}

/// What a NULL coming out of a [`ColumnRef`] stands for.
///
/// PocketBase treats `''` and NULL as one empty value, which is right for
/// what a record holds (`title = ''`, `author = ''`). A relation path that
/// reaches no related row has no value at all, and letting that absence
/// equal `''` would make a guest's empty `@request.auth.id` match every
/// record whose relation list is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nulls {
    /// NULL is the empty value: it equals `''` and NULL (PocketBase's rule).
    #[default]
    Empty,
    /// NULL is "nothing there" (no related row, missing JSON key through a
    /// relation): `=` never holds, `!=` always does, other operators follow SQL.
    Absent,
    /// NULL stands for a value the caller may not see (a hidden email): no
    /// comparison with it holds, whatever the operator.
    Withheld,
}

impl ColumnRef {
    /// A single-valued column.
    pub fn single(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            multi: false,
            expands: false,
            params: Vec::new(),
            nulls: Nulls::Empty,
            per_row_lengths: false,
            ty: ValueType::Text,
        }
    }

    /// A column holding a JSON array of values.
    pub fn multi(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            multi: true,
            expands: false,
            params: Vec::new(),
            nulls: Nulls::Empty,
            per_row_lengths: false,
            ty: ValueType::Text,
        }
    }

    /// A JSON array of the values a multi-valued relation path reaches.
    pub fn each(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            multi: true,
            expands: true,
            params: Vec::new(),
            nulls: Nulls::Empty,
            per_row_lengths: false,
            ty: ValueType::Text,
        }
    }

    /// A JSON array of the list lengths of every row a multi-valued path
    /// reaches (`x_via_y.members:length`), one number per row; the
    /// comparison holds for all of them (any with `?`).
    pub fn lengths(sql: impl Into<String>) -> Self {
        Self {
            per_row_lengths: true,
            ..Self::each(sql)
        }
    }

    /// Attaches values for the `?` placeholders in `sql`.
    pub fn with_params(mut self, params: Vec<SqlValue>) -> Self {
        self.params = params;
        self
    }

    /// Says what the column holds (see [`ValueType`]).
    pub fn with_type(mut self, ty: ValueType) -> Self {
        self.ty = ty;
        self
    }

    /// Says what a NULL from this column means (see [`Nulls`]).
    pub fn with_nulls(mut self, nulls: Nulls) -> Self {
        self.nulls = nulls;
        self
    }
}

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// SQL NULL.
    Null,
    /// 64-bit signed integer.
    Integer(i64),
    /// 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
}

/// SQL text with positional `?` placeholders and the values for them, in order.
///
/// The caller binds `params` in order and may append its own placeholders
/// after the fragment. Wrap the fragment in parentheses when combining it
/// with other conditions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlFragment {
    /// SQL text; holds no user input, only placeholders, fixed SQL and scope-supplied names.
    pub sql: String,
    /// One value per `?` in `sql`, in order.
    pub params: Vec<SqlValue>,
}

/// A piece of SQL being assembled: fixed text or an existing fragment.
pub(crate) enum Piece<'a> {
    Raw(&'a str),
    Sql(&'a SqlFragment),
}

impl SqlFragment {
    /// Fixed SQL written by the compiler or supplied by the scope (never user input).
    pub(crate) fn raw(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// A single `?` bound to `value`.
    pub(crate) fn param(value: SqlValue) -> Self {
        Self {
            sql: "?".into(),
            params: vec![value],
        }
    }

    /// Concatenates pieces, keeping every fragment's params in textual order.
    pub(crate) fn concat(pieces: &[Piece<'_>]) -> Self {
        let mut out = Self::default();
        for piece in pieces {
            match piece {
                Piece::Raw(text) => out.sql.push_str(text),
                Piece::Sql(fragment) => out.push(fragment),
            }
        }
        out
    }

    /// Appends another fragment.
    pub(crate) fn push(&mut self, other: &SqlFragment) {
        self.sql.push_str(&other.sql);
        self.params.extend(other.params.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenation_keeps_params_in_placeholder_order() {
        let a = SqlFragment::param(SqlValue::Integer(1));
        let b = SqlFragment::param(SqlValue::Text("b".into()));

        let joined = SqlFragment::concat(&[
            Piece::Sql(&a),
            Piece::Raw(" < "),
            Piece::Sql(&b),
            Piece::Raw(" OR "),
            Piece::Sql(&a),
        ]);

        assert_eq!(joined.sql, "? < ? OR ?");
        assert_eq!(
            joined.params,
            vec![
                SqlValue::Integer(1),
                SqlValue::Text("b".into()),
                SqlValue::Integer(1)
            ],
            "a repeated fragment repeats its params"
        );
    }

    #[test]
    fn column_constructors_set_the_multi_flag() {
        assert!(!ColumnRef::single("\"t\".\"a\"").multi, "single");
        assert!(ColumnRef::multi("\"t\".\"a\"").multi, "multi");
    }
}
