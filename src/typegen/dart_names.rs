//! Dart identifiers for collection, field and select-value names. Schema
//! names are ASCII letters, digits and `_` but may start with a digit or an
//! underscore (library-private in Dart), or be a Dart keyword or a name the
//! generated code already uses; select values are any text. The rules are
//! deterministic for a given schema:
//! - a name that cannot stand as it is gets a `$` in front (`class` →
//!   `$class`, `1st` → `$1st`, `_x` → `$_x`); no schema name contains `$`,
//!   so this never makes two names equal;
//! - select values keep ASCII letters, digits and `_`, everything else
//!   becomes `_`;
//! - a type or enum-constant name already taken gets `$2`, `$3`, … in the
//!   order the schema lists them.

use std::collections::HashSet;

/// Reserved words, built-in identifiers and contextual keywords (Dart 3):
/// escaped wherever they would appear as an identifier, even where the
/// language would allow some of them, so one rule covers every position.
const KEYWORDS: &[&str] = &[
    "abstract",
    "as",
    "assert",
    "async",
    "await",
    "base",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "covariant",
    "default",
    "deferred",
    "do",
    "dynamic",
    "else",
    "enum",
    "export",
    "extends",
    "extension",
    "external",
    "factory",
    "false",
    "final",
    "finally",
    "for",
    "Function",
    "get",
    "hide",
    "if",
    "implements",
    "import",
    "in",
    "inline",
    "interface",
    "is",
    "late",
    "library",
    "mixin",
    "new",
    "null",
    "of",
    "on",
    "operator",
    "part",
    "required",
    "rethrow",
    "return",
    "sealed",
    "set",
    "show",
    "static",
    "super",
    "switch",
    "sync",
    "this",
    "throw",
    "true",
    "try",
    "type",
    "typedef",
    "var",
    "void",
    "when",
    "while",
    "with",
    "yield",
];

/// Members every generated class has (its own and `Object`'s); a field of
/// the same name would clash.
const CLASS_MEMBERS: &[&str] = &[
    "id",
    "collectionId",
    "collectionName",
    "fromJson",
    "fromRecord",
    "toJson",
    "hashCode",
    "runtimeType",
    "toString",
    "noSuchMethod",
];

/// Members every generated enum has (its own, `Enum`'s and `Object`'s),
/// and the types its body names; a constant of the same name would clash
/// or shadow the type.
const ENUM_MEMBERS: &[&str] = &[
    "value",
    "values",
    "index",
    "name",
    "fromValue",
    "hashCode",
    "runtimeType",
    "toString",
    "noSuchMethod",
    "String",
    "Object",
];

/// Top-level names the generated file uses or would shadow from `dart:core`
/// and the SDK; no generated type may take them.
pub(super) const TYPE_NAMES: &[&str] = &[
    "String",
    "int",
    "double",
    "num",
    "bool",
    "DateTime",
    "List",
    "Map",
    "Object",
    "Null",
    "Iterable",
    "Enum",
    "Never",
    "Record",
    "Type",
    "Symbol",
    "Future",
    "Stream",
    "Set",
    "Duration",
    "Uri",
    "Error",
    "Exception",
    "RecordModel",
    "PocketBase",
    "GeoPoint",
    "Collections",
];

/// Whether `ident` cannot be used as it is where `members` are declared
/// and `types` are referenced.
fn must_escape(ident: &str, members: &[&str], types: &HashSet<String>) -> bool {
    ident.is_empty()
        || ident.starts_with(|c: char| c.is_ascii_digit() || c == '_')
        || KEYWORDS.contains(&ident)
        || members.contains(&ident)
        || types.contains(ident)
}

/// A field's Dart name in a class whose type names are all in `types`.
pub(super) fn member(name: &str, types: &HashSet<String>) -> String {
    if must_escape(name, CLASS_MEMBERS, types) {
        format!("${name}")
    } else {
        name.to_owned()
    }
}

/// Hands out unique identifiers within one scope.
#[derive(Default)]
pub(super) struct Scope {
    taken: HashSet<String>,
}

impl Scope {
    /// A scope where `reserved` are already taken.
    pub(super) fn with(reserved: &[&str]) -> Self {
        Self {
            taken: reserved.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    pub(super) fn taken(&self) -> &HashSet<String> {
        &self.taken
    }

    /// `candidate` (escaped if it must be), or with `$2`, `$3`, … appended
    /// when that is taken.
    pub(super) fn claim(&mut self, candidate: &str) -> String {
        self.claim_among(candidate, &[])
    }

    fn claim_among(&mut self, candidate: &str, members: &[&str]) -> String {
        let base = if must_escape(candidate, members, &HashSet::new()) {
            format!("${candidate}")
        } else {
            candidate.to_owned()
        };
        let mut name = base.clone();
        let mut n = 2;
        while self.taken.contains(&name) {
            name = format!("{base}${n}");
            n += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    /// An enum constant for a select value.
    pub(super) fn claim_value(&mut self, value: &str) -> String {
        let cleaned: String = value
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        self.claim_among(&cleaned, ENUM_MEMBERS)
    }
}

/// A Dart single-quoted string literal of `s`: `\`, `'` and `$` escaped
/// (no interpolation), line breaks and other non-printables as escapes.
pub(super) fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_stand_get_a_dollar_in_front() {
        let types: HashSet<String> = ["PostsRecord".to_owned()].into();
        for (name, ident) in [
            ("title", "title"),
            ("class", "$class"),
            ("1st", "$1st"),
            ("_private", "$_private"),
            ("hashCode", "$hashCode"),
            ("toJson", "$toJson"),
            ("name", "name"),
            ("PostsRecord", "$PostsRecord"),
            ("await", "$await"),
        ] {
            assert_eq!(member(name, &types), ident, "{name}");
        }
    }

    #[test]
    fn clashing_names_are_numbered_in_order() {
        let mut scope = Scope::with(TYPE_NAMES);
        assert_eq!(scope.claim("DateTime"), "DateTime$2");
        assert_eq!(scope.claim("PostTitles"), "PostTitles");
        assert_eq!(scope.claim("PostTitles"), "PostTitles$2");
        let mut values = Scope::default();
        let got: Vec<String> = ["a b", "a-b", "", "9", "é", "null", "values", "String"]
            .iter()
            .map(|v| values.claim_value(v))
            .collect();
        assert_eq!(
            got,
            [
                "a_b", "a_b$2", "$", "$9", "$_", "$null", "$values", "$String"
            ]
        );
    }

    #[test]
    fn string_literals_never_interpolate_or_break() {
        assert_eq!(
            string_literal("it's $x\\\n\u{7}é"),
            r"'it\'s \$x\\\n\u{7}é'"
        );
    }

    /// A Dart identifier: letters, digits, `_` and `$`, not starting with a
    /// digit, not a keyword, and public (no leading `_`).
    fn valid_public_identifier(ident: &str) -> bool {
        ident.starts_with(|c: char| c.is_ascii_alphabetic() || c == '$')
            && ident
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            && !KEYWORDS.contains(&ident)
    }

    proptest::proptest! {
        #[test]
        fn any_schema_name_or_select_value_becomes_a_valid_distinct_identifier(
            names in proptest::collection::hash_set("[A-Za-z0-9_]{1,12}", 1..8),
            values in proptest::collection::hash_set("\\PC{0,10}", 1..8),
        ) {
            let types = HashSet::new();
            let fields: HashSet<String> = names.iter().map(|n| member(n, &types)).collect();
            proptest::prop_assert_eq!(fields.len(), names.len(), "field names stay distinct");
            let mut scope = Scope::default();
            let constants: Vec<String> = values.iter().map(|v| scope.claim_value(v)).collect();
            let distinct: HashSet<&String> = constants.iter().collect();
            proptest::prop_assert_eq!(distinct.len(), values.len(), "enum constants stay distinct");
            for ident in fields.iter().chain(&constants) {
                proptest::prop_assert!(valid_public_identifier(ident), "{ident:?}");
            }
        }
    }
}
