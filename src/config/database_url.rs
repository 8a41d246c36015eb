//! `database.url`: which database Ferrobase runs on. Empty means the
//! embedded SQLite in the data dir; otherwise a PostgreSQL URL
//! (`postgres://user:pass@host:5432/db`, libpq's `sslmode` and
//! `sslrootcert`). Owns how the URL is shown: every message, log line and
//! `Debug` print masks its password. Connecting is `db::postgres`' job.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a URL's password is replaced with wherever it is shown.
const MASK: &str = "***";

/// `database.url`; `Debug` shows it with the password masked.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The PostgreSQL URL, or `None` for the embedded SQLite. The text
    /// holds the password: hand it to the connection code only.
    pub fn postgres(&self) -> Option<&str> {
        Some(self.0.trim()).filter(|url| !url.is_empty())
    }

    /// The URL with its password masked, for messages.
    pub fn redacted(&self) -> String {
        redact_url(self.0.trim())
    }

    /// What is wrong with a non-empty URL, in words (password masked).
    pub fn problem(&self) -> Option<String> {
        let url = self.postgres()?;
        let shown = redact_url(url);
        match url::Url::parse(url) {
            Err(e) => Some(format!(
                "not a valid URL ({e}): {shown}; expected postgres://user:password@host:5432/database"
            )),
            Ok(parsed) if !matches!(parsed.scheme(), "postgres" | "postgresql") => Some(format!(
                "must start with postgres:// or postgresql:// (or be empty for the embedded SQLite), got {shown}"
            )),
            Ok(_) => None,
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

/// `url` with its password masked; a URL that does not parse is masked by
/// [`redact_passwords`] when it has a `scheme://`, else not shown at all
/// (where its password starts cannot be told).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.host().is_some() => {
            if parsed.password().is_some() {
                // Only fails for URLs that cannot carry a password; this one has a host.
                let _ = parsed.set_password(Some(MASK));
            }
            parsed.to_string()
        }
        _ if url.contains("://") => redact_passwords(url),
        _ => "(a URL that does not parse)".to_owned(),
    }
}

/// Masks the password of every `scheme://user:password@host` in free text
/// (a TOML parser's error quoting the line, a URL that does not parse).
/// The user part runs to the last `@` before whitespace or a quote, so a
/// password holding `/` or `@` is masked whole.
pub fn redact_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`'))
            .unwrap_or(tail.len());
        let (word, after) = tail.split_at(end);
        match (word.rfind('@'), word.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&word[..=colon]);
                out.push_str(MASK);
                out.push_str(&word[at..]);
            }
            _ => out.push_str(word),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_in_urls_and_in_free_text() {
        for (shown, why) in [
            (
                redact_url("postgres://app:s3cret@db:5432/app"),
                "a parsed URL",
            ),
            (
                redact_url("postgres://app:s3/cr@t@db/app?x=1"),
                "slash and @ in the password",
            ),
            (redact_url("postgres://app:s3cret@[::1"), "unparseable URL"),
            (
                format!("{}{MASK}", redact_url("postgres:/app:s3cret@h")),
                "no `//`: not shown",
            ),
            (
                redact_passwords("url = postgres://app:s3cret@db/app\n  |  ^ expected"),
                "a TOML error quoting the line",
            ),
            (
                redact_passwords("a \"postgresql://x:s3cret@h\" and 'mysql://y:s3cret@h'"),
                "two quoted URLs",
            ),
            (
                format!("{:?}", DatabaseUrl::new("postgres://app:s3cret@db/app")),
                "Debug",
            ),
        ] {
            assert!(!shown.contains("s3cret"), "{why}: {shown}");
            assert!(shown.contains(MASK), "{why}: {shown}");
        }
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(
            redact_passwords("no url here: a:b@c"),
            "no url here: a:b@c",
            "text without a scheme is left alone"
        );
    }

    #[test]
    fn only_postgres_urls_pass_and_empty_means_sqlite() {
        for (url, ok, why) in [
            ("", true, "empty: SQLite"),
            ("   ", true, "blank: SQLite"),
            ("postgres://u:p@h/db", true, "postgres"),
            (
                "postgresql://u@h:5433/db?sslmode=require",
                true,
                "postgresql",
            ),
            ("mysql://u:p@h/db", false, "another engine"),
            ("/var/lib/data.db", false, "a path"),
            ("postgres://u:p@h:99999/db", false, "port out of range"),
        ] {
            let problem = DatabaseUrl::new(url).problem();
            assert_eq!(problem.is_none(), ok, "{why}: {problem:?}");
            if let Some(p) = problem {
                assert!(!p.contains(":p@"), "{why}: the password leaked: {p}");
            }
        }
        assert_eq!(DatabaseUrl::new(" ").postgres(), None);
        assert_eq!(
            DatabaseUrl::new(" postgres://h/db ").postgres(),
            Some("postgres://h/db")
        );
    }
}
