//! Escaping text for HTML: the one place that knows which characters
//! become entities (mail templates and search marks both use it).

/// The entity `c` is written as in HTML text or a quoted attribute, if any.
fn entity(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\'' => Some("&#39;"),
        _ => None,
    }
}

/// Appends `c` to `out`, escaped.
pub fn push_escaped(out: &mut String, c: char) {
    match entity(c) {
        Some(e) => out.push_str(e),
        None => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_become_entities_and_the_rest_stays() {
        let mut out = String::new();
        "<a href=\"x\">Tom & 'Jé'</a>"
            .chars()
            .for_each(|c| push_escaped(&mut out, c));
        assert_eq!(
            out,
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jé&#39;&lt;/a&gt;"
        );
    }
}
