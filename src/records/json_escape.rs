//! Writes a string as a JSON string literal, byte for byte as serde_json
//! does, eight bytes at a time where none needs escaping (most text in a
//! list page). Used by `list_json` for text columns.

/// Appends `s` to `out` as a quoted, escaped JSON string.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0; // first byte not yet copied
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        if let Some(escaped) = escape(b) {
            out.extend_from_slice(&bytes[start..i]);
            escaped.write(out);
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any of the eight bytes of `word` is below 0x20, `"` or `\`.
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte is zero in `x` exactly when it equals the byte tested for; the
    // classic "has zero byte" test, exact when combined with `!word & HIGH`
    // (a byte of 0x80 or above is never one of the bytes looked for).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    (below_space | zero(word ^ (ONES * b'"' as u64)) | zero(word ^ (ONES * b'\\' as u64))) != 0
}

/// How serde_json writes a byte that needs escaping.
enum Escaped {
    Short(u8),
    Unicode(u8),
}

impl Escaped {
    fn write(self, out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        match self {
            Escaped::Short(c) => out.extend_from_slice(&[b'\\', c]),
            Escaped::Unicode(b) => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xF)],
            ]),
        }
    }
}

fn escape(b: u8) -> Option<Escaped> {
    Some(match b {
        b'"' => Escaped::Short(b'"'),
        b'\\' => Escaped::Short(b'\\'),
        0x08 => Escaped::Short(b'b'),
        0x0C => Escaped::Short(b'f'),
        b'\n' => Escaped::Short(b'n'),
        b'\r' => Escaped::Short(b'r'),
        b'\t' => Escaped::Short(b't'),
        0..=0x1F => Escaped::Unicode(b),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn every_string_is_written_as_serde_json_writes_it() {
        let every_ascii: String = (0u8..128).map(char::from).collect();
        let mut cases = vec![
            String::new(),
            "plain".into(),
            "exactly8".into(),
            "sixteen bytes!!!".into(),
            "quote \" backslash \\ newline \n tab \t bell \u{7} del \u{7f}".into(),
            "é ✓ 🦀 </script> \u{2028}".into(),
            every_ascii.clone(),
            every_ascii.chars().rev().collect(),
        ];
        // Each special byte at every position of a 17-byte string.
        for special in ['"', '\\', '\n', '\u{1}', '\u{1f}', ' ', '\u{80}'] {
            for at in 0..17 {
                let mut s: String = "abcdefghijklmnopq".into();
                s.replace_range(at..at + 1, &special.to_string());
                cases.push(s);
            }
        }
        for s in cases {
            let expected = serde_json::to_string(&s).expect("serialises");
            assert_eq!(ours(&s), expected, "{s:?}");
        }
    }

    #[test]
    fn the_word_test_flags_exactly_the_bytes_that_need_escaping() {
        for b in 0u8..=255 {
            for at in 0..8 {
                let mut word = [b'a'; 8];
                word[at] = b;
                assert_eq!(
                    needs_escape(u64::from_le_bytes(word)),
                    escape(b).is_some(),
                    "byte {b:#04x} at {at}"
                );
            }
        }
    }
}
