//! The parsed shape of a filter: pure data, no SQL. The parser builds it, the
//! compiler reads it. Identifiers are kept as [`Path`]s (segments plus an
//! optional `@collection` alias and trailing modifier) so that later stages,
//! not the parser, decide what a name means: `true`/`false`/`null`, macros
//! and field names all arrive here as paths.

use std::fmt;

use super::error::RuleError;

/// A boolean filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// All of the parts hold (`&&`).
    And(Vec<Expr>),
    /// At least one of the parts holds (`||`).
    Or(Vec<Expr>),
    /// One `operand sign operand` comparison.
    Compare {
        left: Operand,
        op: Op,
        right: Operand,
    },
}

/// One side of a comparison (or a function argument).
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A quoted literal, escapes already removed.
    Text(String),
    /// A number literal exactly as written (validated: optional `-`, digits, at most one `.`).
    Number(String),
    /// A field, `@request.*`, `@collection.*`, macro or `true`/`false`/`null`.
    Identifier(Path),
    /// A function call such as `geoDistance(lon, lat, 1, 2)`.
    Function { name: String, args: Vec<Operand> },
}

/// A comparison operator; `any` marks the `?`-prefixed "at least one" forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// Which comparison.
    pub kind: OpKind,
    /// `true` for `?=`, `?~` and friends.
    pub any: bool,
}

/// The comparison behind an [`Op`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `~` (LIKE)
    Like,
    /// `!~` (NOT LIKE)
    NotLike,
}

impl OpKind {
    /// The operator as written in a filter, without the `?` prefix.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Neq => "!=",
            Self::Lt => "<",
            Self::Lte => "<=",
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Like => "~",
            Self::NotLike => "!~",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = if self.any { "?" } else { "" };
        write!(f, "{prefix}{}", self.kind.symbol())
    }
}

/// A trailing `:modifier` on an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    /// `:isset` — was the `@request.*` key submitted.
    IsSet,
    /// `:changed` — submitted and different from the stored value.
    Changed,
    /// `:length` — number of elements of a multi-valued field.
    Length,
    /// `:each` — compare every element of a multi-valued field.
    Each,
    /// `:lower` — SQL `LOWER()`.
    Lower,
}

impl Modifier {
    /// The modifier's name without the colon.
    pub fn name(self) -> &'static str {
        match self {
            Self::IsSet => "isset",
            Self::Changed => "changed",
            Self::Length => "length",
            Self::Each => "each",
            Self::Lower => "lower",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            Self::IsSet,
            Self::Changed,
            Self::Length,
            Self::Each,
            Self::Lower,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

/// What the first segment of a [`Path`] says about where it points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// A field of the current collection (possibly through relations or JSON).
    Field,
    /// `@request.…`
    Request,
    /// `@collection.<name>[:alias].…`
    Collection,
    /// Any other `@name` (datetime macros such as `@now`).
    Macro,
}

/// A dotted identifier split into segments, e.g. `@collection.users:u.name:lower`
/// → segments `["@collection", "users", "name"]`, alias `u`, modifier `Lower`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Dot-separated parts, without alias or modifier; never empty.
    pub segments: Vec<String>,
    /// The `:alias` of `@collection.<name>:alias`.
    pub alias: Option<String>,
    /// The trailing `:modifier`, applied by the compiler.
    pub modifier: Option<Modifier>,
}

/// Characters that may start an identifier.
pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || matches!(c, '_' | '@' | '#')
}

/// Characters that may continue an identifier.
pub(crate) fn is_ident_continue(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | ':')
}

impl Path {
    /// Parses identifier text such as `meta.x` or `@request.body.tags:each`.
    pub fn parse(raw: &str) -> Result<Self, RuleError> {
        Self::parse_at(raw, 0)
    }

    /// Like [`Path::parse`], reporting errors relative to `pos` in the whole source.
    pub(crate) fn parse_at(raw: &str, pos: usize) -> Result<Self, RuleError> {
        check_identifier(raw, pos)?;
        let parts: Vec<&str> = raw.split('.').collect();
        let last = parts.len() - 1;
        let is_collection = parts[0] == "@collection";
        let mut path = Self {
            segments: Vec::with_capacity(parts.len()),
            alias: None,
            modifier: None,
        };
        for (i, part) in parts.iter().enumerate() {
            let (name, suffix) = match part.split_once(':') {
                Some((name, suffix)) => (name, Some(suffix)),
                None => (*part, None),
            };
            if name.is_empty() || suffix.is_some_and(|s| s.is_empty() || s.contains(':')) {
                return Err(RuleError::lex(pos, format!("malformed identifier `{raw}`")));
            }
            if let Some(suffix) = suffix {
                path.attach_suffix(raw, pos, suffix, is_collection && i == 1, i == last)?;
            }
            path.segments.push(name.to_owned());
        }
        Ok(path)
    }

    fn attach_suffix(
        &mut self,
        raw: &str,
        pos: usize,
        suffix: &str,
        is_alias: bool,
        is_last: bool,
    ) -> Result<(), RuleError> {
        if is_alias {
            self.alias = Some(suffix.to_owned());
            return Ok(());
        }
        if !is_last {
            return Err(RuleError::lex(
                pos,
                format!("`:` in `{raw}` must start a trailing modifier"),
            ));
        }
        let Some(modifier) = Modifier::from_name(suffix) else {
            return Err(RuleError::lex(
                pos,
                format!("unknown modifier `:{suffix}` in `{raw}`"),
            ));
        };
        self.modifier = Some(modifier);
        Ok(())
    }

    /// Where the path points, judged by its first segment.
    pub fn kind(&self) -> PathKind {
        match self.segments.first().map_or("", String::as_str) {
            "@request" => PathKind::Request,
            "@collection" => PathKind::Collection,
            s if s.starts_with('@') => PathKind::Macro,
            _ => PathKind::Field,
        }
    }

    /// The segments after `@request` (`["auth", "id"]`), or `None` for other paths.
    pub fn request_key(&self) -> Option<&[String]> {
        match self.kind() {
            PathKind::Request => self.segments.get(1..),
            _ => None,
        }
    }

    /// The only segment of a path without dots, alias or modifier (`title`).
    pub fn single_name(&self) -> Option<&str> {
        match (self.segments.as_slice(), &self.alias, self.modifier) {
            ([name], None, None) => Some(name),
            _ => None,
        }
    }
}

fn check_identifier(raw: &str, pos: usize) -> Result<(), RuleError> {
    let mut chars = raw.chars();
    let starts_ok = chars.next().is_some_and(is_ident_start);
    let rest_ok = chars.all(is_ident_continue);
    if !starts_ok || !rest_ok {
        return Err(RuleError::lex(pos, format!("invalid identifier `{raw}`")));
    }
    if raw.ends_with(['.', ':']) {
        return Err(RuleError::lex(
            pos,
            format!("identifier `{raw}` must not end with `.` or `:`"),
        ));
    }
    Ok(())
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(segment)?;
            if let (1, Some(alias)) = (i, &self.alias) {
                write!(f, ":{alias}")?;
            }
        }
        match self.modifier {
            Some(m) => write!(f, ":{}", m.name()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn paths_split_into_segments_alias_and_modifier() {
        let cases = [
            ("title", segs(&["title"]), None, None, "plain field"),
            (
                "meta.x.1",
                segs(&["meta", "x", "1"]),
                None,
                None,
                "json path",
            ),
            (
                "tags:each",
                segs(&["tags"]),
                None,
                Some(Modifier::Each),
                "modifier",
            ),
            (
                "@request.body.owner:isset",
                segs(&["@request", "body", "owner"]),
                None,
                Some(Modifier::IsSet),
                "request modifier",
            ),
            (
                "@collection.users:u.name:lower",
                segs(&["@collection", "users", "name"]),
                Some("u".to_string()),
                Some(Modifier::Lower),
                "collection alias and modifier",
            ),
        ];
        for (raw, segments, alias, modifier, why) in cases {
            let path = Path::parse(raw).unwrap_or_else(|e| panic!("{raw} ({why}): {e}"));

            assert_eq!(path.segments, segments, "{why}");
            assert_eq!(path.alias, alias, "{why}");
            assert_eq!(path.modifier, modifier, "{why}");
            assert_eq!(path.to_string(), raw, "{why}: display round-trips");
        }
    }

    #[test]
    fn malformed_paths_are_rejected() {
        for (raw, why) in [
            ("a..b", "empty segment"),
            ("a:each.b", "modifier before the end"),
            ("a:bogus", "unknown modifier"),
            ("a:each:lower", "two modifiers"),
            ("a.", "trailing dot"),
            ("a:", "trailing colon"),
            ("1abc", "starts with a digit"),
            ("a-b", "dash inside"),
            ("", "empty"),
        ] {
            assert!(Path::parse(raw).is_err(), "{raw:?} ({why}) should fail");
        }
    }

    #[test]
    fn kind_is_decided_by_the_first_segment() {
        let cases = [
            ("title", PathKind::Field),
            ("#x", PathKind::Field),
            ("@request.auth.id", PathKind::Request),
            ("@collection.users.id", PathKind::Collection),
            ("@now", PathKind::Macro),
        ];
        for (raw, kind) in cases {
            let path = Path::parse(raw).expect("valid path");
            assert_eq!(path.kind(), kind, "kind of {raw}");
        }
    }

    #[test]
    fn request_key_drops_the_request_root() {
        let path = Path::parse("@request.auth.id").expect("valid path");

        assert_eq!(path.request_key(), Some(segs(&["auth", "id"]).as_slice()));
        assert_eq!(Path::parse("id").expect("valid").request_key(), None);
    }

    #[test]
    fn operators_display_like_the_source() {
        let op = Op {
            kind: OpKind::NotLike,
            any: true,
        };
        assert_eq!(op.to_string(), "?!~");
    }
}
