//! One-pass `{PLACEHOLDER}` substitution. The template is scanned once, left
//! to right, and substituted values are never scanned again: a record email
//! or app name containing `{TOKEN}` stays literal text instead of leaking the
//! token somewhere the template author didn't put it.

/// Longest placeholder name we look up (`RECORD:emailVisibility` fits).
const MAX_PLACEHOLDER_LEN: usize = 64;

/// How a substituted value is written into the output.
#[derive(Clone, Copy)]
pub(super) enum Escape {
    /// HTML text or attribute value: `& < > " '` become entities.
    Html,
    /// A header line (the subject): control characters become spaces.
    Header,
}

/// Replaces every `{NAME}` for which `lookup` has a value; other braces and
/// unknown names are copied as they are.
pub(super) fn substitute<'v>(
    template: &str,
    lookup: impl Fn(&str) -> Option<&'v str>,
    escape: Escape,
) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after
            .find('}')
            .filter(|&close| close <= MAX_PLACEHOLDER_LEN)
            .and_then(|close| lookup(&after[..close]).map(|v| (close, v)));
        match value {
            Some((close, value)) => {
                write_escaped(&mut out, value, escape);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    if let Escape::Header = escape {
        // The template itself may carry a newline too; a subject is one line.
        out = out.replace(char::is_control, " ");
    }
    out
}

fn write_escaped(out: &mut String, value: &str, escape: Escape) {
    match escape {
        Escape::Html => {
            for c in value.chars() {
                crate::html::push_escaped(out, c);
            }
        }
        Escape::Header => {
            out.extend(value.chars().map(|c| if c.is_control() { ' ' } else { c }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<&'static str> {
        match name {
            "A" => Some("<a&b>"),
            "LOOP" => Some("{A}"),
            _ => None,
        }
    }

    #[test]
    fn known_placeholders_are_replaced_and_the_rest_is_kept() {
        for (template, expected, why) in [
            ("x{A}y", "x&lt;a&amp;b&gt;y", "value escaped for HTML"),
            ("{B}", "{B}", "unknown name kept"),
            ("{{A}}", "{&lt;a&amp;b&gt;}", "extra braces kept"),
            ("{A", "{A", "unclosed brace kept"),
            ("}{", "}{", "stray braces kept"),
            ("{LOOP}", "{A}", "substituted text is not scanned again"),
            (
                "é{A}ü",
                "é&lt;a&amp;b&gt;ü",
                "multi-byte text around a placeholder",
            ),
        ] {
            assert_eq!(substitute(template, vars, Escape::Html), expected, "{why}");
        }
    }

    #[test]
    fn header_values_lose_control_characters_but_not_markup() {
        let lookup = |n: &str| (n == "V").then_some("a\r\nBcc: x@y <b>");

        let subject = substitute("Hi\n{V}", lookup, Escape::Header);

        assert_eq!(subject, "Hi a  Bcc: x@y <b>");
    }
}
