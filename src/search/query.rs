//! End-user search text to an FTS5 MATCH string. The grammar is small:
//!
//! ```text
//! query  := item*            (items are ANDed)
//! item   := ["-"] term       ("-" excludes records matching the term)
//! term   := '"' phrase '"'   (an unclosed quote runs to the end)
//!         | word ["*"]       ("*" at the end asks for a prefix match)
//! ```
//!
//! Everything else (`NEAR(`, `AND`, `:`, `^`, `{`, parentheses) is plain
//! text: each term is emitted as an FTS5 string in double quotes with inner
//! quotes doubled, so no character of the input can act as FTS5 syntax.
//! Terms without a letter or digit are dropped (the tokenizer would drop
//! them anyway). A column filter restricts the query to the columns the
//! caller may search. The result is always bound as a parameter.
//!
//! ```
//! use ferrobase::search::to_match;
//! assert_eq!(
//!     to_match("cat \"big dog\" fi* -mouse", &[0, 2]).unwrap(),
//!     "{c0 c2} : (\"cat\" AND \"big dog\" AND \"fi\" *) NOT {c0 c2} : (\"mouse\")"
//! );
//! ```

/// Longest accepted search text, in bytes.
pub const MAX_SEARCH_BYTES: usize = 1024;
/// Most terms (words, phrases, exclusions) in one search.
pub const MAX_SEARCH_TERMS: usize = 32;

/// Why a search text was refused (each a 400 for the caller).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SearchQueryError {
    #[error("The search text must be at most {MAX_SEARCH_BYTES} bytes.")]
    TooLong,
    #[error("The search text can have at most {MAX_SEARCH_TERMS} terms.")]
    TooManyTerms,
    #[error("The search text needs at least one word to look for.")]
    NoTerms,
}

#[derive(Debug, PartialEq)]
struct Term {
    text: String,
    prefix: bool,
    exclude: bool,
}

fn split(input: &str) -> Vec<Term> {
    let mut terms = Vec::new();
    let mut chars = input.chars().peekable();
    let separator = |c: char| c.is_whitespace() || c.is_control();
    while let Some(&c) = chars.peek() {
        if separator(c) {
            chars.next();
            continue;
        }
        let exclude = c == '-';
        if exclude {
            chars.next();
        }
        let mut text = String::new();
        let mut prefix = false;
        if chars.peek() == Some(&'"') {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                // Control characters (NUL included) separate words.
                text.push(if c.is_control() { ' ' } else { c });
            }
        } else {
            while let Some(&c) = chars.peek() {
                if separator(c) || c == '"' {
                    break;
                }
                text.push(c);
                chars.next();
            }
            let trimmed = text.trim_end_matches('*');
            prefix = trimmed.len() != text.len();
            text.truncate(trimmed.len());
        }
        if text.chars().any(char::is_alphanumeric) {
            terms.push(Term {
                text,
                prefix,
                exclude,
            });
        }
    }
    terms
}

fn quoted(term: &Term) -> String {
    let body = format!("\"{}\"", term.text.replace('"', "\"\""));
    if term.prefix {
        format!("{body} *")
    } else {
        body
    }
}

/// Translates `input` into an FTS5 query over the columns `c{i}` for each
/// `i` in `columns` (which must not be empty).
pub fn to_match(input: &str, columns: &[usize]) -> Result<String, SearchQueryError> {
    if input.len() > MAX_SEARCH_BYTES {
        return Err(SearchQueryError::TooLong);
    }
    let terms = split(input);
    if terms.len() > MAX_SEARCH_TERMS {
        return Err(SearchQueryError::TooManyTerms);
    }
    let (excluded, wanted): (Vec<Term>, Vec<Term>) = terms.into_iter().partition(|t| t.exclude);
    if wanted.is_empty() || columns.is_empty() {
        return Err(SearchQueryError::NoTerms);
    }
    let filter = columns
        .iter()
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let group = |terms: &[Term], op: &str| terms.iter().map(quoted).collect::<Vec<_>>().join(op);
    let mut out = format!("{{{filter}}} : ({})", group(&wanted, " AND "));
    if !excluded.is_empty() {
        out.push_str(&format!(
            " NOT {{{filter}}} : ({})",
            group(&excluded, " OR ")
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().expect("memory db");
        conn.execute_batch(
            "CREATE VIRTUAL TABLE f USING fts5(c0, c1, tokenize = 'unicode61 remove_diacritics 2');
             INSERT INTO f (rowid, c0, c1) VALUES
               (1, 'The big dog barks', 'secret word'),
               (2, 'Crème brûlée recipe', ''),
               (3, 'a cat and a mouse', 'NEAR AND OR');",
        )
        .expect("fixture");
        conn
    }

    fn hits(conn: &Connection, input: &str, columns: &[usize]) -> Result<Vec<i64>, String> {
        let m = to_match(input, columns).map_err(|e| e.to_string())?;
        let mut stmt = conn
            .prepare("SELECT rowid FROM f WHERE f MATCH ?1 ORDER BY rowid")
            .expect("prepare");
        let rows = stmt
            .query_map([m.as_str()], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<i64>, _>>());
        rows.map_err(|e| format!("sqlite refused {m:?}: {e}"))
    }

    #[test]
    fn bundled_sqlite_has_fts5() {
        let conn = Connection::open_in_memory().expect("memory db");
        let on: bool = conn
            .query_row("SELECT sqlite_compileoption_used('ENABLE_FTS5')", [], |r| {
                r.get(0)
            })
            .expect("compile option");
        assert!(on, "rusqlite's bundled SQLite must compile FTS5 in");
    }

    #[test]
    fn the_query_forms_select_the_expected_rows() {
        let conn = db();
        for (input, want, why) in [
            ("dog", vec![1], "a plain word"),
            ("DOG barks", vec![1], "words are ANDed, case folded"),
            ("\"big dog\"", vec![1], "a phrase"),
            ("\"dog big\"", vec![], "a phrase keeps its order"),
            ("bar*", vec![1], "a prefix"),
            ("creme brulee", vec![2], "diacritics folded"),
            ("a -mouse", vec![], "an exclusion"),
            ("cat -dog", vec![3], "an exclusion of another row"),
            ("AND", vec![3], "an FTS5 keyword is a plain word"),
            ("secret", vec![], "a column outside the filter"),
        ] {
            assert_eq!(hits(&conn, input, &[0]), Ok(want), "{input:?}: {why}");
        }
        assert_eq!(hits(&conn, "secret", &[0, 1]), Ok(vec![1]), "both columns");
    }

    #[test]
    fn fts5_syntax_in_the_input_never_reaches_sqlite_as_syntax() {
        let conn = db();
        let long = "word ".repeat(300);
        let corpus = [
            "\"",
            "\"\"",
            "\"\"\"",
            "*",
            "**",
            "a*b",
            "NEAR(",
            "NEAR(a b, 2)",
            "AND OR NOT",
            "a AND",
            "NOT a",
            "^a",
            "a^",
            ":",
            "c0:",
            "c0 : dog",
            "title:dog",
            "{c0 c1}: dog",
            "(",
            ")",
            "((dog",
            "dog))",
            "a\0b",
            "\0",
            "-",
            "--dog",
            "-\"",
            "dog -",
            "\u{1F600}",
            "\u{1F600} dog",
            "שלום עולם",
            "مرحبا",
            "dog\u{202E}god",
            "'",
            "';--",
            "\\",
            "+dog",
            "dog\"*\"",
            "\"dog\" *",
            "-*",
            "*dog",
        ];
        for input in corpus.iter().copied().chain([long.as_str()]) {
            match to_match(input, &[0, 1]) {
                Ok(_) => {
                    let r = hits(&conn, input, &[0, 1]);
                    assert!(r.is_ok(), "{input:?} must give a valid query: {r:?}");
                }
                Err(e) => assert!(
                    matches!(
                        e,
                        SearchQueryError::NoTerms
                            | SearchQueryError::TooManyTerms
                            | SearchQueryError::TooLong
                    ),
                    "{input:?} refused with {e:?}"
                ),
            }
        }
        assert_eq!(
            to_match(&"x".repeat(MAX_SEARCH_BYTES + 1), &[0]),
            Err(SearchQueryError::TooLong)
        );
    }
}
