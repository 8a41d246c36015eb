//! The PostgreSQL dialect of the comparison operators: SQL that gives the
//! answers SQLite gives for the same filter (see `operators.rs` for which
//! comparisons a filter becomes).
//!
//! SQLite compares values by their storage class after applying *affinity*:
//! a number column compared with text that reads as a number compares
//! numbers (`views = '5'` matches 5), a text column compared with a bare
//! number compares text (`title = 5` matches '5'), and otherwise numbers
//! order before text. The compiler knows each operand's affinity (a
//! column's [`ValueType`], none for literals and computed values), so the
//! conversions happen here, at compile time for literals. What is then
//! known to be two numbers or two texts is compared natively (an index can
//! serve it; text in byte order, `COLLATE "C"`); anything else goes through
//! `fb_cmp`, which orders jsonb values as SQLite orders its values.
//!
//! `~` is SQLite's LIKE: ASCII-only case folding, which is PostgreSQL's
//! ILIKE under `COLLATE "C"`. Placeholders stay `?` until [`numbered`]
//! turns them into `$1::type`, `$2::type`, … for the driver.

use super::ast::OpKind;
use super::error::RuleError;
use super::functions;
use super::operators::Term;
use super::scope::{Piece, SqlFragment, SqlValue, ValueType};

/// The SQL functions this dialect calls (`fb_cmp`, `fb_text`, …); run on a
/// database before compiled filters are (idempotent).
pub const FUNCTIONS: &str = include_str!("postgres.sql");

/// The hidden identity column of collection tables, in insertion order
/// (SQLite's rowid), which `@rowid` sorts on.
pub const ROWID_COLUMN: &str = "_fb_rowid";

/// `ORDER BY` items for a value of type `ty`, in SQLite's order: NULL
/// first, then numbers by value, then text by bytes (`descending` reverses
/// all of it).
pub(crate) fn order_by(value: &SqlFragment, ty: ValueType, descending: bool) -> SqlFragment {
    let (direction, nulls) = if descending {
        (" DESC", " NULLS LAST")
    } else {
        (" ASC", " NULLS FIRST")
    };
    let item = |open: &str, close: &str| {
        SqlFragment::concat(&[
            Piece::Raw(open),
            Piece::Sql(value),
            Piece::Raw(close),
            Piece::Raw(direction),
            Piece::Raw(nulls),
        ])
    };
    match ty {
        ValueType::Text | ValueType::ComputedText => item("", " COLLATE \"C\""),
        ValueType::Number | ValueType::ComputedNumber | ValueType::ComputedReal => item("", ""),
        ValueType::Bool => item("(", ")::int"),
        ValueType::Json | ValueType::Element | ValueType::Document => {
            let json = match ty {
                ValueType::Document => wrap("fb_document(", value, ")"),
                _ => value.clone(),
            };
            // Storage class, then number, then text.
            let key = |open: &str, close: &str| {
                SqlFragment::concat(&[
                    Piece::Raw(open),
                    Piece::Sql(&json),
                    Piece::Raw(close),
                    Piece::Raw(direction),
                    Piece::Raw(nulls),
                ])
            };
            SqlFragment::concat(&[
                Piece::Sql(&key("fb_class(", ")")),
                Piece::Raw(", "),
                Piece::Sql(&key("fb_number(", ")")),
                Piece::Raw(", "),
                Piece::Sql(&key("fb_text(", ") COLLATE \"C\"")),
            ])
        }
    }
}

/// A comparison operator between two single values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    /// Plain `!=` (NULL on a NULL side).
    Ne,
    /// SQLite's null-safe `IS NOT`.
    IsNot,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    /// The operator as SQLite writes it.
    pub(crate) fn sqlite(self) -> &'static str {
        match self {
            Self::Eq => " = ",
            Self::Ne => " != ",
            Self::IsNot => " IS NOT ",
            Self::Lt => " < ",
            Self::Le => " <= ",
            Self::Gt => " > ",
            Self::Ge => " >= ",
        }
    }

    fn postgres(self) -> &'static str {
        match self {
            Self::Eq => " = ",
            Self::Ne => " <> ",
            Self::IsNot => " IS DISTINCT FROM ",
            Self::Lt => " < ",
            Self::Le => " <= ",
            Self::Gt => " > ",
            Self::Ge => " >= ",
        }
    }
}

/// What SQLite's comparison rules see in an operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Affinity {
    Text,
    Numeric,
    /// A column without a declared type (`json_each`'s `value`).
    Blob,
    None,
}

/// How an operand is held on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// `double precision`, `bigint` or `int`, written as text as SQLite
    /// writes a NUMERIC column's value (whole numbers without `.0`, reals
    /// by `fb_real_text`).
    Number,
    /// `double precision` computed by each engine's own functions
    /// (`geoDistance`); never converted to text, as its last digits can
    /// differ between the engines.
    Real,
    /// `text`.
    Text,
    /// `jsonb` holding a number or a string (SQL NULL for nothing).
    Dynamic,
}

/// An operand on its way to PostgreSQL.
#[derive(Debug, Clone)]
enum Side {
    /// A value known while compiling, bound as a parameter.
    Literal(SqlValue),
    /// The empty text, written inline.
    Empty,
    /// SQL whose value only the database knows.
    Sql(SqlFragment, Class),
}

fn side(term: &Term) -> (Side, Affinity) {
    match term {
        Term::Value(v) | Term::Nobody(v) => (Side::Literal(v.clone()), Affinity::None),
        Term::Empty => (Side::Empty, Affinity::None),
        Term::Expr(sql, _, ty) => {
            let sql = sql.clone();
            match ty {
                ValueType::Text => (Side::Sql(sql, Class::Text), Affinity::Text),
                ValueType::Number => (Side::Sql(sql, Class::Number), Affinity::Numeric),
                ValueType::Bool => (Side::Sql(as_int(&sql), Class::Number), Affinity::Numeric),
                ValueType::Json => (Side::Sql(sql, Class::Dynamic), Affinity::None),
                ValueType::Element => (Side::Sql(sql, Class::Dynamic), Affinity::Blob),
                ValueType::Document => (
                    Side::Sql(wrap("fb_document(", &sql, ")"), Class::Dynamic),
                    Affinity::Numeric,
                ),
                ValueType::ComputedText => (Side::Sql(sql, Class::Text), Affinity::None),
                ValueType::ComputedNumber => (Side::Sql(sql, Class::Number), Affinity::None),
                ValueType::ComputedReal => (Side::Sql(sql, Class::Real), Affinity::None),
            }
        }
    }
}

fn as_int(sql: &SqlFragment) -> SqlFragment {
    wrap("(", sql, ")::int")
}

fn wrap(open: &str, sql: &SqlFragment, close: &str) -> SqlFragment {
    SqlFragment::concat(&[Piece::Raw(open), Piece::Sql(sql), Piece::Raw(close)])
}

/// SQLite's NUMERIC affinity applied to an operand.
fn numeric(side: Side) -> Side {
    match side {
        Side::Literal(SqlValue::Text(text)) => {
            Side::Literal(sqlite_number(&text).unwrap_or(SqlValue::Text(text)))
        }
        Side::Sql(sql, Class::Text) => {
            Side::Sql(wrap("fb_numeric(to_jsonb(", &sql, "))"), Class::Dynamic)
        }
        Side::Sql(sql, Class::Dynamic) => Side::Sql(wrap("fb_numeric(", &sql, ")"), Class::Dynamic),
        other => other,
    }
}

/// SQLite's TEXT affinity applied to an operand.
fn text(side: Side) -> Side {
    match side {
        Side::Literal(SqlValue::Integer(i)) => Side::Literal(SqlValue::Text(i.to_string())),
        Side::Literal(SqlValue::Real(r)) => Side::Literal(SqlValue::Text(sqlite_real_text(r))),
        Side::Sql(sql, Class::Number) => Side::Sql(wrap("fb_number_text(", &sql, ")"), Class::Text),
        Side::Sql(sql, Class::Dynamic) => Side::Sql(wrap("fb_text(", &sql, ")"), Class::Text),
        other => other,
    }
}

/// The conversions SQLite makes before comparing two operands.
fn converted(left: &Term, right: &Term) -> (Side, Side) {
    let ((l, la), (r, ra)) = (side(left), side(right));
    match (la, ra) {
        (Affinity::Numeric, Affinity::Text | Affinity::Blob | Affinity::None) => (l, numeric(r)),
        (Affinity::Text | Affinity::Blob | Affinity::None, Affinity::Numeric) => (numeric(l), r),
        (Affinity::Text, Affinity::None) => (l, text(r)),
        (Affinity::None, Affinity::Text) => (text(l), r),
        _ => (l, r),
    }
}

fn class(side: &Side) -> Option<Class> {
    match side {
        Side::Literal(SqlValue::Null) => None,
        Side::Literal(SqlValue::Integer(_) | SqlValue::Real(_)) => Some(Class::Number),
        Side::Sql(_, Class::Real) => Some(Class::Number),
        Side::Literal(SqlValue::Text(_)) | Side::Empty => Some(Class::Text),
        Side::Sql(_, class) => Some(*class),
    }
}

fn sql(side: &Side) -> SqlFragment {
    match side {
        Side::Literal(SqlValue::Null) => SqlFragment::raw("NULL"),
        Side::Literal(v) => SqlFragment::param(v.clone()),
        Side::Empty => SqlFragment::raw("''"),
        Side::Sql(sql, _) => sql.clone(),
    }
}

/// The operand as a jsonb value (SQL NULL for NULL).
fn jsonb(side: &Side) -> SqlFragment {
    match side {
        Side::Literal(SqlValue::Null) => SqlFragment::raw("NULL::jsonb"),
        Side::Empty => SqlFragment::raw("'\"\"'::jsonb"),
        Side::Sql(sql, Class::Dynamic) => sql.clone(),
        other => wrap("to_jsonb(", &sql(other), ")"),
    }
}

/// `left <op> right` with SQLite's answer.
pub(crate) fn compare(left: &Term, op: Cmp, right: &Term) -> SqlFragment {
    let (l, r) = converted(left, right);
    match (class(&l), class(&r)) {
        (None, None) => SqlFragment::raw("FALSE"),
        (None, Some(_)) | (Some(_), None) => {
            let other = if class(&l).is_none() { &r } else { &l };
            match (op, other) {
                (Cmp::IsNot, Side::Sql(sql, _)) => wrap("(", sql, " IS NOT NULL)"),
                (Cmp::IsNot, _) => SqlFragment::raw("TRUE"),
                // NULL compared is NULL, which no condition tells from FALSE.
                _ => SqlFragment::raw("FALSE"),
            }
        }
        (Some(Class::Number), Some(Class::Number)) => SqlFragment::concat(&[
            Piece::Sql(&sql(&l)),
            Piece::Raw(op.postgres()),
            Piece::Sql(&sql(&r)),
        ]),
        (Some(Class::Text), Some(Class::Text)) => SqlFragment::concat(&[
            Piece::Sql(&sql(&l)),
            Piece::Raw(op.postgres()),
            Piece::Sql(&sql(&r)),
            Piece::Raw(" COLLATE \"C\""),
        ]),
        _ => {
            let (jl, jr) = (jsonb(&l), jsonb(&r));
            let open = match op {
                Cmp::IsNot => "fb_distinct(",
                _ => "fb_cmp(",
            };
            let mut out = SqlFragment::concat(&[
                Piece::Raw(open),
                Piece::Sql(&jl),
                Piece::Raw(", "),
                Piece::Sql(&jr),
                Piece::Raw(")"),
            ]);
            if op != Cmp::IsNot {
                out.sql.push_str(op.postgres());
                out.sql.push('0');
            }
            out
        }
    }
}

/// The text SQLite's LIKE reads from an operand.
fn like_text(term: &Term) -> Side {
    let (side, _) = side(term);
    text(side)
}

/// `left LIKE pattern` (`negate`: NOT LIKE), where a literal pattern has
/// already been made (`operators::like_pattern`); an expression pattern is
/// wrapped in `%`.
pub(crate) fn like(left: &Term, pattern: &Term, negate: bool) -> SqlFragment {
    let subject = sql(&like_text(left));
    let pattern = match like_text(pattern) {
        Side::Literal(SqlValue::Null) => return SqlFragment::raw("FALSE"),
        Side::Literal(SqlValue::Text(p)) if ends_in_escape(&p) => {
            // SQLite: a pattern ending in the escape character matches
            // nothing; PostgreSQL would raise an error.
            return if negate {
                wrap("(", &subject, " IS NOT NULL)")
            } else {
                SqlFragment::raw("FALSE")
            };
        }
        literal @ Side::Literal(_) => sql(&literal),
        other => wrap("('%' || ", &sql(&other), " || '%')"),
    };
    let op = if negate { " NOT ILIKE " } else { " ILIKE " };
    SqlFragment::concat(&[
        Piece::Sql(&subject),
        Piece::Raw(" COLLATE \"C\""),
        Piece::Raw(op),
        Piece::Sql(&pattern),
        Piece::Raw(" ESCAPE '\\'"),
    ])
}

fn ends_in_escape(pattern: &str) -> bool {
    pattern.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// SQLite's `LOWER(x)`: ASCII-only, on the text of the value.
pub(crate) fn lower(term: &Term) -> SqlFragment {
    wrap("lower(", &sql(&like_text(term)), " COLLATE \"C\")")
}

/// A term as jsonb, for functions taking any value (`fb_geo_distance`).
pub(crate) fn as_jsonb(term: &Term) -> SqlFragment {
    jsonb(&side(term).0)
}

/// A filter function (`geoDistance`, `strftime`) as PostgreSQL SQL giving
/// SQLite's answers, and what it returns. Wrong arity and unknown names
/// fail exactly as on SQLite.
pub(crate) fn call(name: &str, args: &[Term]) -> Result<(SqlFragment, ValueType), RuleError> {
    match (name, args) {
        ("geoDistance", [lon_a, lat_a, lon_b, lat_b]) => {
            let args: Vec<SqlFragment> = [lon_a, lat_a, lon_b, lat_b]
                .into_iter()
                .map(as_jsonb)
                .collect();
            functions::call(name, &args)
        }
        ("strftime", [format, rest @ ..]) => strftime(format, rest),
        _ => {
            let args: Vec<SqlFragment> = args.iter().map(Term::to_sql).collect();
            functions::call(name, &args)?;
            Err(RuleError::invalid(format!(
                "`{name}` is not supported on PostgreSQL"
            )))
        }
    }
}

/// `strftime(format, value?, 'unixepoch'?)` through `fb_strftime`, `''`
/// where SQLite's is NULL. Other modifiers answer a clear error.
fn strftime(format: &Term, rest: &[Term]) -> Result<(SqlFragment, ValueType), RuleError> {
    let format = match like_text(format) {
        Side::Sql(_, Class::Real) => {
            return Err(RuleError::invalid(
                "geoDistance() cannot be a strftime format on PostgreSQL",
            ));
        }
        side => sql(&side),
    };
    let value = match rest.first() {
        Some(term) => as_jsonb(term),
        None => SqlFragment::raw("'\"now\"'::jsonb"),
    };
    let unixepoch = match rest.get(1..).unwrap_or_default() {
        [] => "FALSE",
        [Term::Value(SqlValue::Text(m))] if m.eq_ignore_ascii_case("unixepoch") => "TRUE",
        _ => {
            return Err(RuleError::invalid(
                "strftime modifiers other than 'unixepoch' are not supported on PostgreSQL",
            ));
        }
    };
    let sql = SqlFragment::concat(&[
        Piece::Raw("COALESCE(fb_strftime("),
        Piece::Sql(&format),
        Piece::Raw(", "),
        Piece::Sql(&value),
        Piece::Raw(&format!(", {unixepoch}), '')")),
    ]);
    Ok((sql, ValueType::ComputedText))
}

/// A condition (true/false) used as a value: 1 or 0, as SQLite has it.
pub(crate) fn condition_value(condition: &SqlFragment) -> SqlFragment {
    wrap("(CASE WHEN ", condition, " THEN 1 ELSE 0 END)")
}

/// Refuses what this dialect cannot answer as SQLite does: a computed real
/// (`geoDistance`) read as text, by `~`/`!~` or against a text column,
/// where SQLite writes digits PostgreSQL does not.
pub(crate) fn check_comparable(left: &Term, kind: OpKind, right: &Term) -> Result<(), RuleError> {
    let real = |t: &Term| matches!(t, Term::Expr(_, _, ValueType::ComputedReal));
    let text = |t: &Term| matches!(t, Term::Expr(_, _, ValueType::Text));
    let as_text = matches!(kind, OpKind::Like | OpKind::NotLike)
        || (real(left) && text(right))
        || (real(right) && text(left));
    if as_text && (real(left) || real(right)) {
        return Err(RuleError::invalid(
            "geoDistance() cannot be compared as text on PostgreSQL",
        ));
    }
    Ok(())
}

/// Checks a bound text PostgreSQL could not hold.
pub(crate) fn check_text(value: &SqlValue) -> Result<(), RuleError> {
    match value {
        SqlValue::Text(t) if t.contains('\0') => Err(RuleError::invalid(
            "text with a NUL character cannot be compared on PostgreSQL",
        )),
        _ => Ok(()),
    }
}

/// The fragment's SQL for PostgreSQL: every `?` outside quotes becomes
/// `$n` with a cast naming its value's type, so the server never has to
/// guess a parameter's type.
pub fn numbered(fragment: &SqlFragment) -> String {
    let mut out = String::with_capacity(fragment.sql.len() + 8 * fragment.params.len());
    let mut quote: Option<char> = None;
    let mut n = 0;
    for c in fragment.sql.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, '?') => {
                let cast = match fragment.params.get(n) {
                    Some(SqlValue::Integer(_)) => "int8",
                    Some(SqlValue::Real(_)) => "float8",
                    _ => "text",
                };
                n += 1;
                out.push_str(&format!("${n}::{cast}"));
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// Text as SQLite's NUMERIC affinity reads it: an integer or a real when
/// the whole text (spaces around allowed) is a decimal number.
pub(crate) fn sqlite_number(text: &str) -> Option<SqlValue> {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c');
    let t = text.trim_matches(is_space);
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int)
        && frac.is_none_or(digits)
        && !(int.is_empty() && frac.is_none_or(str::is_empty));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !mantissa_ok || !exponent_ok {
        return None;
    }
    if frac.is_none()
        && exponent.is_none()
        && let Ok(i) = t.parse::<i64>()
    {
        return Some(SqlValue::Integer(i));
    }
    t.parse::<f64>().ok().map(SqlValue::Real)
}

/// A real as SQLite writes it as text: the shortest digits that read back
/// as the same real, fixed from 1e-4 up to 1e17, with `.0` on whole
/// numbers and before an exponent (`5.0`, `2.5`, `1.0e+20`). SQLite
/// writes 17 digits where fewer do not round-trip (1/3 is
/// 0.33333333333333332); literals a filter spells out never need that.
pub(crate) fn sqlite_real_text(value: f64) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            String::new()
        } else if value > 0.0 {
            "Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if value == 0.0 {
        return "0.0".into();
    }
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if value < 0.0 { "-" } else { "" };
    if !(-4..17).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}.{rest}e{exp_sign}{:02}", exponent.abs());
    }
    let point = exponent + 1;
    let text = if point <= 0 {
        let zeros = "0".repeat(usize::try_from(-point).unwrap_or(0));
        format!("0.{zeros}{digits}")
    } else {
        let point = usize::try_from(point).unwrap_or(0);
        if digits.len() <= point {
            format!("{digits}{}.0", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reals_are_written_as_sqlite_writes_them() {
        for (value, want) in [
            (5.0, "5.0"),
            (2.5, "2.5"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (1e20, "1.0e+20"),
            (1e-5, "1.0e-05"),
            (123456.789, "123456.789"),
            (0.30000000000000004, "0.30000000000000004"),
            (1e15, "1000000000000000.0"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (1e100, "1.0e+100"),
            (0.0, "0.0"),
            (0.0001, "0.0001"),
        ] {
            assert_eq!(sqlite_real_text(value), want, "{value}");
        }
    }

    #[test]
    fn numeric_affinity_reads_only_whole_decimal_numbers() {
        for (text, want) in [
            ("5", Some(SqlValue::Integer(5))),
            (" -5 ", Some(SqlValue::Integer(-5))),
            ("+5", Some(SqlValue::Integer(5))),
            ("2.5", Some(SqlValue::Real(2.5))),
            ("1.", Some(SqlValue::Real(1.0))),
            (".5", Some(SqlValue::Real(0.5))),
            ("1e3", Some(SqlValue::Real(1000.0))),
            ("", None),
            (".", None),
            ("5x", None),
            ("0x10", None),
            ("1e", None),
            ("- 5", None),
            ("Inf", None),
        ] {
            assert_eq!(sqlite_number(text), want, "{text:?}");
        }
    }

    #[test]
    fn placeholders_are_numbered_and_typed_outside_quotes() {
        let fragment = SqlFragment {
            sql: "a = ? AND b = '?' AND \"c?\" < ? AND d = ?".into(),
            params: vec![
                SqlValue::Integer(1),
                SqlValue::Real(2.5),
                SqlValue::Text("x".into()),
            ],
        };
        assert_eq!(
            numbered(&fragment),
            "a = $1::int8 AND b = '?' AND \"c?\" < $2::float8 AND d = $3::text"
        );
    }

    #[test]
    fn patterns_ending_in_the_escape_character_are_detected() {
        assert!(ends_in_escape("50%\\"));
        assert!(!ends_in_escape("50%\\\\"));
        assert!(!ends_in_escape("%a%"));
    }
}
