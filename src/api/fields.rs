//! The `fields` query parameter: keeps only the listed keys of a JSON
//! response (dot paths go deeper, `*` keeps a whole level, `:excerpt(n,true)`
//! turns HTML into plain text of at most n characters; `:highlight` and
//! `:snippet` keep a value the list handler marked from a `search`). List responses keep
//! their pagination keys and apply the selection to each item.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A parsed selection tree.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FieldSelection {
    all: bool,
    excerpt: Option<(usize, bool)>,
    children: BTreeMap<String, FieldSelection>,
}

impl FieldSelection {
    /// Parses `a,b.c,*,body:excerpt(100,true)`; `None` for an empty
    /// parameter or one that does not parse (see [`FieldSelection::parse_strict`]).
    pub fn parse(raw: &str) -> Option<Self> {
        Self::parse_strict(raw).ok().flatten()
    }

    /// Like [`FieldSelection::parse`], but refuses what PocketBase's picker
    /// refuses: unbalanced parentheses, a modifier other than `excerpt` (or
    /// `highlight`/`snippet`, Ferrobase's search marks), or
    /// `excerpt` without a positive length or with more than two arguments.
    pub fn parse_strict(raw: &str) -> Result<Option<Self>, String> {
        let mut depth = 0usize;
        for c in raw.chars() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| "unbalanced parenthesis".to_owned())?;
                }
                _ => {}
            }
        }
        if depth != 0 {
            return Err("unbalanced parenthesis".into());
        }
        let mut root = FieldSelection::default();
        let mut any = false;
        for item in split_top_level(raw) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            any = true;
            let (path, excerpt) = match item.split_once(':') {
                // Filled in by the list handler before selection (see [`search_marks`]).
                Some((path, "highlight" | "snippet")) => (path, None),
                Some((path, modifier)) => (path, Some(parse_excerpt(modifier)?)),
                None => (item, None),
            };
            let mut node = &mut root;
            for seg in path.split('.') {
                if seg == "*" {
                    node.all = true;
                    break;
                }
                node = node.children.entry(seg.to_owned()).or_default();
            }
            if excerpt.is_some() {
                node.excerpt = excerpt;
            }
        }
        Ok(any.then_some(root))
    }

    /// Applies the selection to a response body.
    pub fn apply(&self, body: Value, is_list: bool) -> Value {
        match body {
            Value::Object(mut map) if is_list => {
                if let Some(Value::Array(items)) = map.remove("items") {
                    map.insert(
                        "items".into(),
                        Value::Array(items.into_iter().map(|i| self.select(i)).collect()),
                    );
                }
                Value::Object(map)
            }
            other => self.select(other),
        }
    }

    fn select(&self, value: Value) -> Value {
        if let Some((max, ellipsis)) = self.excerpt {
            return match value {
                Value::String(s) => Value::String(excerpt(&s, max, ellipsis)),
                other => other,
            };
        }
        match value {
            Value::Object(map) if !self.is_leaf() => {
                let mut out = Map::new();
                for (k, v) in map {
                    match self.children.get(&k) {
                        Some(child) => {
                            out.insert(k, child.select(v));
                        }
                        None if self.all => {
                            out.insert(k, v);
                        }
                        None => {}
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) if !self.is_leaf() => {
                Value::Array(items.into_iter().map(|i| self.select(i)).collect())
            }
            other => other,
        }
    }

    fn is_leaf(&self) -> bool {
        !self.all && self.children.is_empty()
    }
}

/// The `name:highlight` / `name:snippet` items of a `fields` parameter
/// (top-level fields only): `(name, snippet?)` pairs for the search marks.
pub fn search_marks(raw: &str) -> Vec<(String, bool)> {
    split_top_level(raw)
        .into_iter()
        .filter_map(|item| match item.trim().split_once(':') {
            Some((name, "highlight")) if !name.contains('.') => Some((name.to_owned(), false)),
            Some((name, "snippet")) if !name.contains('.') => Some((name.to_owned(), true)),
            _ => None,
        })
        .collect()
}

fn split_top_level(raw: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in raw.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&raw[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&raw[start..]);
    parts
}

/// `excerpt(max, withEllipsis?)`, the only modifier: `max` a positive integer.
fn parse_excerpt(modifier: &str) -> Result<(usize, bool), String> {
    let modifier = modifier.trim();
    let args = modifier
        .strip_prefix("excerpt")
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix('('))
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(|| format!("missing or invalid modifier {modifier:?}"))?;
    let args: Vec<&str> = args
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    let (max, ellipsis) = match args.as_slice() {
        [max] => (*max, false),
        [max, ellipsis] => (
            *max,
            matches!(*ellipsis, "true" | "1" | "t" | "TRUE" | "True"),
        ),
        _ => return Err("excerpt expects (max, withEllipsis?)".into()),
    };
    match max.parse::<usize>() {
        Ok(max) if max > 0 => Ok((max, ellipsis)),
        _ => Err("excerpt max must be a positive integer".into()),
    }
}

/// Block-level tags: their boundaries separate words; inline tags don't.
const BLOCK_TAGS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "td",
    "th",
    "table",
    "blockquote",
    "pre",
    "hr",
    "section",
    "article",
    "header",
    "footer",
];

/// Plain text of an HTML fragment, cut to `max` characters (`...` appended when cut).
fn excerpt(html: &str, max: usize, ellipsis: bool) -> String {
    let mut text = String::new();
    let mut tag: Option<String> = None;
    for c in html.chars() {
        match (&mut tag, c) {
            (None, '<') => tag = Some(String::new()),
            (Some(name), '>') => {
                let name = name
                    .trim_start_matches('/')
                    .split([' ', '/'])
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if BLOCK_TAGS.contains(&name.as_str()) {
                    text.push(' ');
                }
                tag = None;
            }
            (Some(name), c) => name.push(c),
            (None, c) => text.push(c),
        }
    }
    let plain = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if plain.chars().count() <= max {
        return plain;
    }
    let mut cut: String = plain.chars().take(max).collect();
    cut = cut.trim_end().to_owned();
    if ellipsis {
        cut.push_str("...");
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn search_marks_are_top_level_highlight_and_snippet_items() {
        assert_eq!(
            search_marks("id, title:highlight,body:snippet,x.y:highlight,z:excerpt(5)"),
            vec![("title".to_owned(), false), ("body".to_owned(), true)]
        );
        let sel = FieldSelection::parse_strict("id,title:highlight")
            .expect("accepted")
            .expect("not empty");
        assert_eq!(
            sel.apply(json!({"id": 1, "title": "<mark>a</mark>", "x": 2}), false),
            json!({"id": 1, "title": "<mark>a</mark>"}),
            "a marked value is kept as the handler filled it in"
        );
        assert!(FieldSelection::parse_strict("title:shout").is_err());
    }

    #[test]
    fn selection_keeps_listed_paths_only() {
        let sel = FieldSelection::parse("id,record.email,meta.*").expect("parsed");
        let out = sel.apply(
            json!({"id": 1, "x": 2, "record": {"email": "e", "pw": "p"}, "meta": {"a": 1}}),
            false,
        );
        assert_eq!(
            out,
            json!({"id": 1, "record": {"email": "e"}, "meta": {"a": 1}})
        );
    }

    #[test]
    fn lists_keep_pagination_and_filter_items() {
        let sel = FieldSelection::parse("id").expect("parsed");
        let out = sel.apply(json!({"page": 1, "items": [{"id": "a", "t": 1}]}), true);
        assert_eq!(out, json!({"page": 1, "items": [{"id": "a"}]}));
    }

    #[test]
    fn excerpt_strips_html_and_truncates() {
        let sel = FieldSelection::parse("body:excerpt(5,true)").expect("parsed");
        let out = sel.apply(json!({"body": "<p>Hello <b>world</b></p>"}), false);
        assert_eq!(out, json!({"body": "Hello..."}));
        let inline = FieldSelection::parse("b:excerpt(100)").expect("parsed");
        let out = inline.apply(
            json!({"b": "<p>Hello <b>Beta</b>, bye.</p><p>Next</p>"}),
            false,
        );
        assert_eq!(
            out,
            json!({"b": "Hello Beta, bye. Next"}),
            "inline tags add no space, blocks do"
        );
    }

    #[test]
    fn garbage_selections_are_refused() {
        for (raw, why) in [
            ("a:excerpt(-1)", "negative length"),
            ("a:excerpt(0)", "zero length"),
            ("a:excerpt(abc)", "text length"),
            ("a:excerpt()", "no length"),
            ("a:excerpt", "no arguments at all"),
            ("a:excerpt(5,true,1)", "too many arguments"),
            ("a:excerpt(99999999999999999999999)", "length past usize"),
            ("a:upper", "unknown modifier"),
            ("a:", "empty modifier"),
            ("a:excerpt(5", "unclosed parenthesis"),
            ("a)", "stray closing parenthesis"),
        ] {
            assert!(
                FieldSelection::parse_strict(raw).is_err(),
                "{raw:?} ({why}) should be refused"
            );
        }
        for raw in [
            "",
            ",,,",
            "a, b.c",
            "*",
            "a:excerpt(5)",
            "a:excerpt( 5 , true )",
        ] {
            assert!(
                FieldSelection::parse_strict(raw).is_ok(),
                "{raw:?} should parse"
            );
        }
    }
}
