//! Random values for `autogeneratePattern`. Supports the form PocketBase's own
//! defaults use: one character class and a repeat count, e.g. `[a-z0-9]{15}`.

use rand::Rng;

/// Longest value a pattern may generate.
pub const MAX_GENERATED_LEN: usize = 255;

/// A parsed `[class]{n}` pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Generator {
    alphabet: Vec<char>,
    len: usize,
}

impl Generator {
    /// Parses `[a-zA-Z0-9_]{n}`-style patterns; `None` for anything else.
    pub fn parse(pattern: &str) -> Option<Self> {
        let rest = pattern.strip_prefix('[')?;
        let (class, rest) = rest.split_once(']')?;
        let count = rest.strip_prefix('{')?.strip_suffix('}')?;
        let len: usize = count
            .parse()
            .ok()
            .filter(|n| (1..=MAX_GENERATED_LEN).contains(n))?;
        let alphabet = expand_class(class)?;
        Some(Self { alphabet, len })
    }

    /// A fresh random value.
    pub fn generate(&self) -> String {
        let mut rng = rand::rng();
        (0..self.len)
            .map(|_| self.alphabet[rng.random_range(0..self.alphabet.len())])
            .collect()
    }
}

fn expand_class(class: &str) -> Option<Vec<char>> {
    let chars: Vec<char> = class.chars().collect();
    let mut alphabet = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !c.is_ascii_alphanumeric() && c != '_' && c != '-' {
            return None;
        }
        if i + 2 < chars.len() && chars[i + 1] == '-' {
            let end = chars[i + 2];
            if end < c {
                return None;
            }
            alphabet.extend(c..=end);
            i += 3;
        } else {
            alphabet.push(c);
            i += 1;
        }
    }
    alphabet.dedup();
    (!alphabet.is_empty()).then_some(alphabet)
}

/// `[a-zA-Z0-9]`: tokens, secrets, keys, client ids.
pub const ALPHANUMERIC: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// `[a-z0-9]`: record ids and name suffixes.
pub const LOWER_ALPHANUMERIC: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

/// A new 15-character record id (`[a-z0-9]{15}`).
pub fn record_id() -> String {
    random_string(LOWER_ALPHANUMERIC, 15)
}

/// A fresh auth record `tokenKey` (50 × `[a-zA-Z0-9]`); rotating it revokes
/// every token signed with the old one.
pub fn token_key() -> String {
    random_string(ALPHANUMERIC, 50)
}

/// A random string over `alphabet` (ASCII).
pub fn random_string(alphabet: &str, len: usize) -> String {
    let bytes = alphabet.as_bytes();
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(bytes[rng.random_range(0..bytes.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_and_count_patterns_generate_matching_values() {
        let g = Generator::parse("[a-z0-9]{15}").expect("parses");
        let v = g.generate();
        assert_eq!(v.len(), 15);
        assert!(
            v.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{v}"
        );
    }

    #[test]
    fn unsupported_patterns_are_refused() {
        for p in [
            "abc",
            "[a-z]",
            "[a-z]{0}",
            "[z-a]{3}",
            "[.]{3}",
            "[a-z]{9999}",
        ] {
            assert!(Generator::parse(p).is_none(), "{p}");
        }
    }
}
