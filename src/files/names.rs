//! Stored file names: `snake_case(base)_<10 random [a-z0-9]><ext>`, built by
//! the server only, so a stored name never carries a path separator, a
//! leading dot or anything a client chose verbatim.

use rand::Rng;

const RANDOM_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const RANDOM_LEN: usize = 10;
const MAX_BASE_CHARS: usize = 100;
const MIN_BASE_CHARS: usize = 3;
const MAX_EXT_CHARS: usize = 20;

fn random_part() -> String {
    let mut rng = rand::rng();
    (0..RANDOM_LEN)
        .map(|_| RANDOM_ALPHABET[rng.random_range(0..RANDOM_ALPHABET.len())] as char)
        .collect()
}

/// The extension of `name` with its dot, keeping one inner extension
/// (`a.tar.gz` → `.tar.gz`); `""` when there is none.
fn extension(name: &str) -> &str {
    let Some(last) = name.rfind('.') else {
        return "";
    };
    match name[..last].rfind('.') {
        Some(inner) => &name[inner..],
        None => &name[last..],
    }
}

/// Lower snake case as PocketBase's `inflector.Snakecase`: ASCII letters
/// and digits kept, camelCase split, runs of anything else collapsed to one
/// `_`, no leading or trailing `_` (stored file names, backup and migration
/// names).
pub fn snake_case(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut prev_lower = false;
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && prev_lower && !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c.to_ascii_lowercase());
        } else {
            prev_lower = false;
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// A fresh stored name for an upload called `original`; `detected_ext`
/// (with its dot) is used when the original has no usable extension.
pub fn stored_name(original: &str, detected_ext: &str) -> String {
    // Browsers send bare names, but some clients send a path.
    let original = original.rsplit(['/', '\\']).next().unwrap_or_default();
    let raw_ext = extension(original);
    let mut ext: String = raw_ext
        .chars()
        .filter(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '=' | '#' | '*')
        })
        .collect::<String>()
        .to_ascii_lowercase();
    if ext.trim_matches('.').is_empty() {
        ext = detected_ext.to_owned();
    }
    if ext.len() > MAX_EXT_CHARS {
        ext = format!(
            ".{}",
            &ext[ext.len() - MAX_EXT_CHARS..].trim_start_matches('.')
        );
    }
    let mut base = snake_case(&original[..original.len() - raw_ext.len()]);
    if base.len() < MIN_BASE_CHARS {
        base.push_str(&random_part());
    } else if base.len() > MAX_BASE_CHARS {
        base.truncate(MAX_BASE_CHARS);
    }
    format!("{base}_{}{ext}", random_part())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(name: &str) -> (String, String) {
        // Replace the random part so names can be compared.
        let (head, ext) = name.split_at(name.find('.').unwrap_or(name.len()));
        let base = head.get(..head.len() - RANDOM_LEN - 1).unwrap_or_default();
        (base.to_owned(), ext.to_owned())
    }

    #[test]
    fn names_follow_pocketbase_observations() {
        for (original, base, ext, why) in [
            (
                "My Doc File.txt",
                "my_doc_file",
                ".txt",
                "spaces become underscores",
            ),
            ("test.png", "test", ".png", "plain name"),
            (
                "archive.tar.gz",
                "archive",
                ".tar.gz",
                "double extension kept",
            ),
            ("../../etc/passwd", "passwd", "", "path parts dropped"),
            (
                "CamelCase.JPG",
                "camel_case",
                ".jpg",
                "camel case split, ext lowercased",
            ),
        ] {
            let name = stored_name(original, "");
            assert_eq!(
                shape(&name),
                (base.to_owned(), ext.to_owned()),
                "{original}: {why}"
            );
        }
    }

    #[test]
    fn short_or_extensionless_names_get_padding_and_a_detected_extension() {
        let name = stored_name("blob", ".txt");
        assert!(
            name.starts_with("blob_") && name.ends_with(".txt"),
            "{name}"
        );
        let short = stored_name("a.png", "");
        assert_eq!(short.len(), 1 + 10 + 1 + 10 + 4, "{short}");
        assert!(!stored_name("..", "").starts_with('.'));
    }
}
