//! `$security.randomStringByRegex(pattern)`: a random string the pattern
//! matches, as PocketBase's: an open repetition (`*`, `+`, `{n,}`) repeats
//! at most [`OPEN_REPEAT`] more times, `.` picks a letter or digit, and
//! anchors and boundaries add nothing. Bounded where PocketBase is not: the
//! pattern is at most [`MAX_PATTERN_BYTES`] and its longest possible
//! output at most [`MAX_OUTPUT_CHARS`] (`a{1000}{1000}` is refused before
//! anything is generated), so a hook cannot spend the server's memory on it.

use crate::hooks::HookError;
use rand::Rng;
use regex_syntax::hir::{Class, Hir, HirKind};

/// How many more times an open repetition repeats at most (PocketBase's 6).
const OPEN_REPEAT: u32 = 6;
/// Longest pattern accepted.
const MAX_PATTERN_BYTES: usize = 1024;
/// Longest string a pattern may produce.
const MAX_OUTPUT_CHARS: u64 = 64 * 1024;
/// A class with more characters than this is an "any character" (`.`,
/// `[^x]`): PocketBase picks a letter or digit for it.
const ANY_CLASS_CHARS: u64 = 0x10000;
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A random string matching `pattern`, or why there is none.
pub(super) fn generate(pattern: &str) -> Result<String, HookError> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(HookError::bad_request(format!(
            "The pattern is longer than {MAX_PATTERN_BYTES} bytes."
        )));
    }
    let hir = regex_syntax::ParserBuilder::new()
        .nest_limit(64)
        // ASCII classes, as Go's Perl syntax: `\d` is 0-9, not every script's digits.
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| HookError::bad_request(format!("Invalid pattern: {e}")))?;
    if longest(&hir) > MAX_OUTPUT_CHARS {
        return Err(HookError::bad_request(format!(
            "The pattern can produce more than {MAX_OUTPUT_CHARS} characters."
        )));
    }
    let mut out = String::new();
    write(&hir, &mut rand::rng(), &mut out)?;
    Ok(out)
}

/// The longest output `hir` can produce (saturating).
fn longest(hir: &Hir) -> u64 {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => 0,
        HirKind::Literal(l) => l.0.len() as u64,
        HirKind::Class(_) => 1,
        HirKind::Repetition(r) => {
            let max = r.max.unwrap_or(r.min.saturating_add(OPEN_REPEAT));
            longest(&r.sub).saturating_mul(u64::from(max))
        }
        HirKind::Capture(c) => longest(&c.sub),
        HirKind::Concat(list) => list.iter().map(longest).fold(0, u64::saturating_add),
        HirKind::Alternation(list) => list.iter().map(longest).max().unwrap_or(0),
    }
}

fn write(hir: &Hir, rng: &mut impl Rng, out: &mut String) -> Result<(), HookError> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(l) => out.push_str(&String::from_utf8_lossy(&l.0)),
        HirKind::Class(class) => out.push(pick(class, rng)?),
        HirKind::Repetition(r) => {
            let max = r.max.unwrap_or(r.min.saturating_add(OPEN_REPEAT));
            for _ in 0..rng.random_range(r.min..=max.max(r.min)) {
                write(&r.sub, rng, out)?;
            }
        }
        HirKind::Capture(c) => write(&c.sub, rng, out)?,
        HirKind::Concat(list) => {
            for h in list {
                write(h, rng, out)?;
            }
        }
        HirKind::Alternation(list) => {
            if let Some(h) = list.get(rng.random_range(0..list.len().max(1))) {
                write(h, rng, out)?;
            }
        }
    }
    Ok(())
}

/// A character of the class, every one equally likely.
fn pick(class: &Class, rng: &mut impl Rng) -> Result<char, HookError> {
    let ranges: Vec<(u32, u32)> = match class {
        Class::Unicode(c) => c
            .ranges()
            .iter()
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect(),
        // A byte class (ASCII mode) covering half the bytes or more is an
        // "any character" (`.`, `[^a]`); otherwise only its ASCII part counts.
        Class::Bytes(c) if c.ranges().iter().map(|r| r.len()).sum::<usize>() >= 128 => {
            return Ok(char::from(ALNUM[rng.random_range(0..ALNUM.len())]));
        }
        Class::Bytes(c) => c
            .ranges()
            .iter()
            .filter(|r| r.start() < 0x80)
            .map(|r| (u32::from(r.start()), u32::from(r.end().min(0x7F))))
            .collect(),
    };
    let total: u64 = ranges.iter().map(|(a, b)| u64::from(b - a) + 1).sum();
    if total == 0 {
        return Err(HookError::bad_request("The pattern has an empty class."));
    }
    if total > ANY_CLASS_CHARS {
        let i = rng.random_range(0..ALNUM.len());
        return Ok(char::from(ALNUM[i]));
    }
    let mut n = rng.random_range(0..total);
    for (a, b) in ranges {
        let size = u64::from(b - a) + 1;
        if n < size {
            // Surrogates are not in a Unicode class; a byte class is ASCII here.
            let code = a + u32::try_from(n).unwrap_or(0);
            return char::from_u32(code)
                .ok_or_else(|| HookError::bad_request("The pattern has an invalid class."));
        }
        n -= size;
    }
    Err(HookError::bad_request("The pattern has an empty class."))
}

#[cfg(test)]
mod tests {
    use super::generate;

    #[test]
    fn generated_strings_match_their_pattern() {
        let lower = |s: &str| s.chars().all(|c| c.is_ascii_lowercase());
        let alnum = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric());
        type Check<'a> = &'a dyn Fn(&str) -> bool;
        let cases: [(&str, Check); 6] = [
            ("[a-z]{10}", &|s| s.len() == 10 && lower(s)),
            (r"\d{4}-\d{2}", &|s| {
                s.len() == 7
                    && &s[4..5] == "-"
                    && s.replace('-', "").chars().all(|c| c.is_ascii_digit())
            }),
            ("(red|green|blue)", &|s| {
                ["red", "green", "blue"].contains(&s)
            }),
            ("^pb_[A-Z0-9]{5,8}$", &|s| {
                s.starts_with("pb_") && (8..=11).contains(&s.len()) && alnum(&s[3..])
            }),
            ("a+b*", &|s| {
                let a = s.chars().take_while(|&c| c == 'a').count();
                (1..=7).contains(&a) && s[a..].chars().all(|c| c == 'b') && s.len() - a <= 6
            }),
            (".{12}", &|s| s.len() == 12 && alnum(s)),
        ];
        for (pattern, ok) in cases {
            for _ in 0..20 {
                let s = generate(pattern).expect("generates");
                assert!(ok(&s), "{s:?} should match {pattern:?}");
            }
        }
    }

    #[test]
    fn patterns_that_are_invalid_or_too_large_are_refused() {
        let long = "a".repeat(2000);
        for (pattern, why) in [
            ("a{1000}{1000}", "nested counts past the output cap"),
            ("(x{60000}){5}", "grouped count past the cap"),
            ("[z-a]", "invalid class"),
            ("(", "unbalanced"),
            (long.as_str(), "pattern past its size cap"),
            ("[^\\x00-\\x{10FFFF}]", "empty class"),
        ] {
            assert!(
                generate(pattern).is_err(),
                "{pattern:?} ({why}) must be refused"
            );
        }
    }
}
