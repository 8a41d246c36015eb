//! Writes a JSON value as block-style YAML that YAML 1.1 and 1.2 readers
//! (PyYAML, SnakeYAML, js-yaml, libyaml) read back as the same value.
//!
//! Why not a YAML crate: the maintained serde_yaml forks write strings such
//! as `yes`, `no`, `on` and `1e5` bare, which YAML 1.2 reads as strings but
//! YAML 1.1 readers (PyYAML, most OpenAPI tooling in Python and Java) read
//! as booleans or numbers. Here a string stays bare only when it is a plain
//! identifier-like word no YAML version types; everything else is
//! double-quoted, with every character YAML may not carry raw escaped.

use serde_json::{Number, Value};

/// Spaces per nesting level.
const INDENT: usize = 2;

/// `value` as a YAML document (ends with a newline). The top-level keys in
/// `first` come first, in that order (a reader sees `openapi:` before
/// `components:`); all other keys keep the map's order.
pub(crate) fn to_string(value: &Value, first: &[&str]) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => {
            let leading = first.iter().filter_map(|k| map.get_key_value(*k));
            let rest = map.iter().filter(|(k, _)| !first.contains(&k.as_str()));
            mapping(&mut out, leading.chain(rest), 0);
        }
        Value::Array(items) if !items.is_empty() => sequence(&mut out, items, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

/// A value that fits on its key's or dash's line: a scalar or `{}`/`[]`.
fn inline(value: &Value) -> Option<String> {
    match value {
        Value::Object(m) if m.is_empty() => Some("{}".to_owned()),
        Value::Array(a) if a.is_empty() => Some("[]".to_owned()),
        Value::Object(_) | Value::Array(_) => None,
        other => Some(scalar(other)),
    }
}

fn mapping<'a>(
    out: &mut String,
    entries: impl IntoIterator<Item = (&'a String, &'a Value)>,
    indent: usize,
) {
    for (key, value) in entries {
        out.push_str(&" ".repeat(indent));
        out.push_str(&string(key));
        match inline(value) {
            Some(text) => {
                out.push_str(": ");
                out.push_str(&text);
                out.push('\n');
            }
            None => {
                out.push_str(":\n");
                block(out, value, indent + INDENT);
            }
        }
    }
}

fn sequence(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        match inline(item) {
            Some(text) => {
                out.push_str(&" ".repeat(indent));
                out.push_str("- ");
                out.push_str(&text);
                out.push('\n');
            }
            None => {
                // Compact form: the item's first line goes after the dash.
                let mut inner = String::new();
                block(&mut inner, item, indent + INDENT);
                out.push_str(&" ".repeat(indent));
                out.push_str("- ");
                out.push_str(&inner[indent + INDENT..]);
            }
        }
    }
}

/// A non-empty mapping or sequence at `indent`.
fn block(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) => mapping(out, map, indent),
        Value::Array(items) => sequence(out, items, indent),
        _ => {}
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => string(s),
        Value::Array(_) | Value::Object(_) => String::new(),
    }
}

/// Integers as they are; floats always with a `.` and a signed exponent,
/// which YAML 1.1 needs to read `1e30` as a number.
fn number(n: &Number) -> String {
    let text = n.to_string();
    if n.is_f64()
        && let Some((mantissa, exponent)) = text.split_once(['e', 'E'])
    {
        let mantissa = if mantissa.contains('.') {
            mantissa.to_owned()
        } else {
            format!("{mantissa}.0")
        };
        let exponent = if exponent.starts_with(['-', '+']) {
            exponent.to_owned()
        } else {
            format!("+{exponent}")
        };
        return format!("{mantissa}e{exponent}");
    }
    text
}

/// Words that some YAML version reads as null or a boolean.
const TYPED_WORDS: &[&str] = &["null", "true", "false", "yes", "no", "on", "off", "y", "n"];

fn string(s: &str) -> String {
    let bare = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./{}-".contains(c))
        && !TYPED_WORDS.contains(&s.to_ascii_lowercase().as_str());
    if bare {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if must_escape(c) => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Characters YAML does not allow raw (non-printable), or reads as line
/// breaks (YAML 1.1's NEL, LS, PS), or strips (a byte-order mark). All are
/// in the Basic Multilingual Plane, so `\uXXXX` covers them.
fn must_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}'
        | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_block_style_with_compact_sequences() {
        let doc = json!({"a": {"b": [1, {"c": "d", "e": []}], "f": {}}, "g": null});
        assert_eq!(
            to_string(&doc, &["g"]),
            "g: null\na:\n  b:\n    - 1\n    - c: d\n      e: []\n  f: {}\n"
        );
    }

    #[test]
    fn quotes_whatever_a_yaml_reader_could_type_or_misread() {
        for (raw, written) in [
            ("yes", r#""yes""#),
            ("Off", r#""Off""#),
            ("null", r#""null""#),
            ("1.0", r#""1.0""#),
            ("200", r#""200""#),
            ("", r#""""#),
            ("a: b", r#""a: b""#),
            ("- x", r#""- x""#),
            ("#c", r##""#c""##),
            ("~", r#""~""#),
            ("say \"hi\"\n", r#""say \"hi\"\n""#),
            (
                "\u{7}\u{85}\u{2028}\u{feff}",
                r#""\u0007\u0085\u2028\uFEFF""#,
            ),
            ("é😀", "\"é😀\""),
            ("/api/x/{id}", "/api/x/{id}"),
            ("posts.Record", "posts.Record"),
        ] {
            assert_eq!(string(raw), written, "{raw:?}");
        }
    }

    #[test]
    fn floats_carry_a_dot_and_a_signed_exponent() {
        for (value, written) in [
            (json!(1e30), "1.0e+30"),
            (json!(2.5e-7), "2.5e-7"),
            (json!(1000.0), "1000.0"),
            (json!(-3), "-3"),
        ] {
            assert_eq!(scalar(&value), written, "{value}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_string_key_or_number_reads_back_unchanged(
            key in "\\PC{0,12}|[ -~]{0,12}",
            text in "\\PC{0,24}|[\u{0}-\u{ff}]{0,24}|(yes|no|on|off|null|~|0x1f|1e3|\\.inf)",
            n in proptest::num::f64::NORMAL,
            i in proptest::num::i64::ANY,
        ) {
            let doc = json!({ key.clone(): [text.clone(), n, i, {key: {}}] });
            let back: Value = serde_yaml_ng::from_str(&to_string(&doc, &[])).expect("parses");
            proptest::prop_assert_eq!(back, doc);
        }
    }
}
