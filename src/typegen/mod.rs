//! Typed client definitions generated from the schema: TypeScript in
//! `pocketbase-typegen`'s shape for the official JS SDK, and Dart record
//! classes for the official Dart SDK. Pure text
//! generation from a [`Snapshot`]; the CLI (`ferrobase typegen`) and
//! `GET /api/typegen` call it.

mod dart;
mod dart_names;
mod ts;

use crate::schema::{CompiledCollection, Field, FieldKind, Snapshot};

/// A target language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    TypeScript,
    Dart,
}

impl Lang {
    /// Parses `ts` (or `typescript`) and `dart`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "ts" | "typescript" => Some(Lang::TypeScript),
            "dart" => Some(Lang::Dart),
            _ => None,
        }
    }
}

/// The definitions of every collection in `snapshot`.
pub fn generate(snapshot: &Snapshot, lang: Lang) -> String {
    match lang {
        Lang::TypeScript => ts::generate(snapshot),
        Lang::Dart => dart::generate(snapshot),
    }
}

/// Fields that appear in records: not hidden, not passwords.
pub(crate) fn shown(c: &CompiledCollection) -> impl Iterator<Item = &Field> {
    c.fields
        .iter()
        .filter(|f| !f.hidden && !matches!(f.kind, FieldKind::Password { .. }))
}

/// `pocketbase-typegen`'s type-name spelling: a name of letters and digits
/// only keeps its case with the first letter capitalised (`blogPosts` →
/// `BlogPosts`); otherwise each `_`/`-`-separated part is capitalised and
/// the rest lower-cased (`post_titles` → `PostTitles`, `_authOrigins` →
/// `Authorigins`).
pub(crate) fn pascal_case(name: &str) -> String {
    if name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return capitalised(name);
    }
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .map(|part| capitalised(&part.to_ascii_lowercase()))
        .collect()
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_spelled_as_pocketbase_typegen_spells_them() {
        for (name, expected) in [
            ("posts", "Posts"),
            ("post_titles", "PostTitles"),
            ("_authOrigins", "Authorigins"),
            ("a-b", "AB"),
            ("blogPosts", "BlogPosts"),
            ("blog_Posts", "BlogPosts"),
        ] {
            assert_eq!(pascal_case(name), expected, "{name}");
        }
    }
}
