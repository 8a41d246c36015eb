//! `{:name}` placeholders in a filter, bound to values (PocketBase's
//! `app.FindRecordsByFilter(…, params)`). A value never passes through the
//! lexer: each placeholder outside quotes and comments is first swapped for
//! a quoted marker the lexer reads as text, the filter is parsed, and only
//! then is each marker operand in the tree replaced by its value. So a value
//! such as `' || 1=1 //` stays one operand, whatever it holds.

use super::{Expr, Operand, Path, RuleError, parse_filter};
use serde_json::{Map, Value};

/// Parses `src`, binding each `{:name}` to `params[name]`.
///
/// Strings become text operands, integers and plain decimals numbers,
/// booleans `1`/`0` (how SQLite stores them), `null` the `null` literal, and
/// anything else its JSON text. An unknown name is an error.
pub fn parse_filter_with_params(src: &str, params: &Map<String, Value>) -> Result<Expr, RuleError> {
    if !src.contains("{:") {
        return parse_filter(src);
    }
    let marker = marker_for(src);
    let (rewritten, names) = swap_placeholders(src, &marker)?;
    let mut values = Vec::with_capacity(names.len());
    for name in &names {
        let Some(value) = params.get(name) else {
            return Err(RuleError::invalid(format!(
                "missing value for placeholder {{:{name}}}"
            )));
        };
        values.push(operand_of(value));
    }
    let mut expr = parse_filter(&rewritten)?;
    bind(&mut expr, &marker, &values);
    Ok(expr)
}

/// A marker prefix that `src` does not contain (so no literal of the user's
/// can be mistaken for a placeholder).
fn marker_for(src: &str) -> String {
    let mut marker = String::from("\u{1}pbparam");
    while src.contains(&marker) {
        marker.push('_');
    }
    marker
}

/// Replaces each `{:name}` outside quotes and `//` comments with the text
/// literal `'<marker><index>'`; returns the new text and the names in order.
fn swap_placeholders(src: &str, marker: &str) -> Result<(String, Vec<String>), RuleError> {
    let mut out = String::with_capacity(src.len());
    let mut names = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some((pos, c)) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                while let Some((_, inner)) = chars.next() {
                    out.push(inner);
                    if inner == '\\' {
                        if let Some((_, escaped)) = chars.next() {
                            out.push(escaped);
                        }
                    } else if inner == c {
                        break;
                    }
                }
            }
            '/' if chars.peek().is_some_and(|(_, n)| *n == '/') => {
                out.push(c);
                for (_, inner) in chars.by_ref() {
                    out.push(inner);
                    if inner == '\n' {
                        break;
                    }
                }
            }
            '{' if chars.peek().is_some_and(|(_, n)| *n == ':') => {
                chars.next();
                let mut name = String::new();
                let mut closed = false;
                for (_, inner) in chars.by_ref() {
                    if inner == '}' {
                        closed = true;
                        break;
                    }
                    name.push(inner);
                }
                let valid =
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !closed || !valid {
                    return Err(RuleError::lex(pos, "malformed {:placeholder}".to_owned()));
                }
                out.push('\'');
                out.push_str(marker);
                out.push_str(&names.len().to_string());
                out.push('\'');
                names.push(name);
            }
            _ => out.push(c),
        }
    }
    Ok((out, names))
}

/// The operand a bound value stands for.
fn operand_of(value: &Value) -> Operand {
    match value {
        Value::String(s) => Operand::Text(s.clone()),
        Value::Bool(b) => Operand::Number(if *b { "1" } else { "0" }.to_owned()),
        Value::Null => Operand::Identifier(Path {
            segments: vec!["null".to_owned()],
            alias: None,
            modifier: None,
        }),
        Value::Number(n) => {
            let text = n.to_string();
            // serde_json writes large floats with an exponent, which the
            // filter grammar has no number form for: bind those as text.
            if text.contains(['e', 'E']) {
                Operand::Text(text)
            } else {
                Operand::Number(text)
            }
        }
        other => Operand::Text(other.to_string()),
    }
}

fn bind(expr: &mut Expr, marker: &str, values: &[Operand]) {
    match expr {
        Expr::And(parts) | Expr::Or(parts) => {
            for part in parts {
                bind(part, marker, values);
            }
        }
        Expr::Compare { left, right, .. } => {
            bind_operand(left, marker, values);
            bind_operand(right, marker, values);
        }
    }
}

fn bind_operand(operand: &mut Operand, marker: &str, values: &[Operand]) {
    match operand {
        Operand::Text(text) => {
            let index = text
                .strip_prefix(marker)
                .and_then(|i| i.parse::<usize>().ok());
            if let Some(value) = index.and_then(|i| values.get(i)) {
                *operand = value.clone();
            }
        }
        Operand::Function { args, .. } => {
            for arg in args {
                bind_operand(arg, marker, values);
            }
        }
        Operand::Number(_) | Operand::Identifier(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn each_placeholder_becomes_one_operand_whatever_its_value_holds() {
        for (value, why) in [
            ("x' || 1=1 //", "quote, or and comment"),
            ("\\' || id != '", "backslash and quote"),
            ("{:other}", "a placeholder inside the value"),
            ("\u{1}pbparam0", "the marker itself"),
        ] {
            let expr = parse_filter_with_params(
                "title = {:t}",
                &params(json!({"t": value, "other": "no"})),
            )
            .unwrap_or_else(|e| panic!("{why}: {e}"));
            let Expr::Compare { right, .. } = expr else {
                panic!("{why}: one comparison expected, got {expr:?}");
            };
            assert_eq!(right, Operand::Text(value.to_owned()), "{why}");
        }
    }

    #[test]
    fn placeholders_inside_quotes_and_comments_stay_text() {
        let expr = parse_filter_with_params(
            "title = '{:t}' // {:t}\n && n = {:n}",
            &params(json!({"t": "x", "n": 3})),
        )
        .expect("parses");
        let Expr::And(parts) = expr else {
            panic!("two comparisons expected, got {expr:?}");
        };
        let Expr::Compare { right, .. } = &parts[0] else {
            panic!("comparison expected");
        };
        assert_eq!(right, &Operand::Text("{:t}".to_owned()), "quoted stays");
        let Expr::Compare { right, .. } = &parts[1] else {
            panic!("comparison expected");
        };
        assert_eq!(right, &Operand::Number("3".to_owned()), "number bound");
    }

    #[test]
    fn unknown_or_malformed_placeholders_are_errors() {
        for (src, why) in [
            ("a = {:missing}", "no such param"),
            ("a = {:}", "empty name"),
            ("a = {:a b}", "space in the name"),
            ("a = {:a", "never closed"),
        ] {
            assert!(
                parse_filter_with_params(src, &params(json!({"a": 1}))).is_err(),
                "{src:?} ({why}) should be rejected"
            );
        }
    }
}
