//! A plain-text rendering of a mail's HTML for the `text/plain` alternative,
//! which mail clients without HTML show and spam filters like to see. Only
//! what our templates use matters: paragraphs, line breaks, links (kept as
//! `label (url)` so the token link survives) and the entities we escape.

/// Converts template HTML to readable text.
pub(super) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut href: Option<String> = None;
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        push_text(&mut out, &rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            rest = &rest[open..];
            break;
        };
        let tag = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        match tag_name(tag).as_str() {
            "br" | "br/" => out.push('\n'),
            "/p" | "/div" | "/h1" | "/h2" | "/h3" | "/li" | "/tr" | "/table" => {
                out.push_str("\n\n")
            }
            "a" => href = attribute(tag, "href").map(|h| decode_entities(&h)),
            "/a" => {
                if let Some(url) = href.take().filter(|u| !u.is_empty()) {
                    out.push_str(&format!(" ({url})"));
                }
            }
            _ => {}
        }
    }
    push_text(&mut out, rest);
    tidy(&out)
}

/// Appends a text node: entities decoded, HTML whitespace collapsed.
fn push_text(out: &mut String, text: &str) {
    let decoded = decode_entities(text);
    let mut last_space = out.ends_with([' ', '\n']) || out.is_empty();
    for c in decoded.chars() {
        if c.is_whitespace() && c != '\u{a0}' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(if c == '\u{a0}' { ' ' } else { c });
            last_space = false;
        }
    }
}

fn tag_name(tag: &str) -> String {
    let end = tag
        .find(|c: char| c.is_whitespace() || c == '>')
        .unwrap_or(tag.len());
    tag[..end].to_ascii_lowercase()
}

/// The value of `name="…"` (or `'…'`) inside a start tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find(&format!("{name}="))? + name.len() + 1;
    let value = &tag[at..];
    let quote = value.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let inner = &value[1..];
    Some(inner[..inner.find(quote)?].to_owned())
}

/// Decodes the entities our escaping produces, `&nbsp;` and numeric ones, in
/// one pass (so `&amp;lt;` stays `&lt;`). Unknown entities are kept as is.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest
            .find(';')
            .filter(|&semi| semi <= 10)
            .and_then(|semi| entity(&rest[1..semi]).map(|c| (semi, c)));
        match decoded {
            Some((semi, c)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some('\u{a0}'),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// Trims every line and keeps at most one blank line between paragraphs.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        out.push_str(line);
        blank_run = 0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_breaks_and_links_become_text() {
        let html = "<p>Hello,</p>\n<p>Click\n  <a class=\"btn\" href=\"https://x.test/?a=1&amp;b=2\">here</a>.</p><p>Bye,<br/>Team</p>";

        let text = html_to_text(html);

        assert_eq!(
            text,
            "Hello,\n\nClick here (https://x.test/?a=1&b=2).\n\nBye,\nTeam"
        );
    }

    #[test]
    fn entities_are_decoded_once() {
        for (html, expected, why) in [
            ("a &amp;lt; b", "a &lt; b", "no double decoding"),
            ("&quot;x&#39;&#x41;", "\"x'A", "named and numeric"),
            ("R&D & co", "R&D & co", "bare ampersands kept"),
            ("&bogus;", "&bogus;", "unknown entity kept"),
        ] {
            assert_eq!(html_to_text(html), expected, "{why}");
        }
    }

    #[test]
    fn unclosed_tag_does_not_lose_text() {
        assert_eq!(html_to_text("a <b"), "a <b");
    }
}
