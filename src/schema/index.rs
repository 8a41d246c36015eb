//! Collection indexes. PocketBase clients send indexes as `CREATE INDEX` SQL
//! text; we never execute that text. It is parsed into an [`IndexDef`] (a
//! name, columns, an optional `col != ''` condition) and SQL is rendered back
//! from the parsed parts with quoted, validated identifiers.

use super::names::{CollectionName, FieldName};

/// A parsed index definition.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexDef {
    pub unique: bool,
    pub name: String,
    pub columns: Vec<IndexColumn>,
    /// Only partial indexes of the form `column != ''` are supported.
    pub where_not_empty: Option<FieldName>,
}

/// One indexed column.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexColumn {
    pub field: FieldName,
    pub nocase: bool,
    pub descending: bool,
}

/// The reason an index string was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("Invalid index definition: {0}.")]
pub struct IndexError(pub String);

impl IndexDef {
    /// Parses PocketBase's index SQL form, e.g.
    /// ``CREATE UNIQUE INDEX `idx_x` ON `posts` (`slug` COLLATE NOCASE, `n` DESC) WHERE `slug` != ''``.
    pub fn parse(sql: &str) -> Result<Self, IndexError> {
        let tokens = tokenize(sql)?;
        let mut t = Cursor {
            tokens: &tokens,
            pos: 0,
        };
        t.keyword("CREATE")?;
        let unique = t.maybe_keyword("UNIQUE");
        t.keyword("INDEX")?;
        if t.maybe_keyword("IF") {
            t.keyword("NOT")?;
            t.keyword("EXISTS")?;
        }
        let name = t.ident()?;
        if name.len() > 100
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || name.to_ascii_lowercase().starts_with("sqlite_")
        {
            return Err(IndexError(format!("bad index name {name:?}")));
        }
        t.keyword("ON")?;
        let _table = t.ident()?; // the collection's current name is used when rendering
        t.punct("(")?;
        let mut columns = Vec::new();
        loop {
            let field = field_name(&t.ident()?)?;
            let mut col = IndexColumn {
                field,
                nocase: false,
                descending: false,
            };
            if t.maybe_keyword("COLLATE") {
                t.keyword("NOCASE")?;
                col.nocase = true;
            }
            if t.maybe_keyword("DESC") {
                col.descending = true;
            } else {
                t.maybe_keyword("ASC");
            }
            columns.push(col);
            if t.maybe_punct(")") {
                break;
            }
            t.punct(",")?;
        }
        let where_not_empty = if t.maybe_keyword("WHERE") {
            let field = field_name(&t.ident()?)?;
            if !(t.maybe_punct("!=") || t.maybe_punct("<>")) {
                return Err(IndexError(
                    "only `WHERE column != ''` conditions are supported".into(),
                ));
            }
            t.empty_string()?;
            Some(field)
        } else {
            None
        };
        if t.pos != tokens.len() {
            return Err(IndexError("unexpected text after the definition".into()));
        }
        Ok(Self {
            unique,
            name,
            columns,
            where_not_empty,
        })
    }

    /// PocketBase's display form (backtick quoting), as returned in collection JSON.
    pub fn to_pb_sql(&self, table: &CollectionName) -> String {
        self.render(table.as_str(), |s| format!("`{s}`"))
    }

    /// Executable SQL with every identifier quoted by [`crate::db::ident`].
    pub fn to_sql(&self, table: &CollectionName) -> String {
        self.render(table.as_str(), crate::db::ident)
    }

    /// The index on PostgreSQL: `COLLATE NOCASE` becomes an index on
    /// `lower(column)` (ASCII-only folding under the column's `COLLATE "C"`,
    /// as SQLite's NOCASE), so a unique NOCASE index refuses the same pairs.
    /// A `!= ''` condition on a `jsonb` column (a multi value) compares its
    /// JSON text.
    pub fn to_postgres_sql(&self, table: &CollectionName, jsonb: impl Fn(&str) -> bool) -> String {
        let quote = crate::db::ident;
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let column = quote(c.field.as_str());
                let mut s = if c.nocase && !jsonb(c.field.as_str()) {
                    format!("lower({column})")
                } else {
                    column
                };
                if c.descending {
                    s.push_str(" DESC");
                }
                s
            })
            .collect();
        let mut sql = format!(
            "CREATE {}INDEX {} ON {} ({})",
            if self.unique { "UNIQUE " } else { "" },
            quote(&self.name),
            quote(table.as_str()),
            cols.join(", ")
        );
        if let Some(f) = &self.where_not_empty {
            let column = quote(f.as_str());
            let text = if jsonb(f.as_str()) {
                format!("{column}::text")
            } else {
                column
            };
            sql.push_str(&format!(" WHERE {text} <> ''"));
        }
        sql
    }

    fn render(&self, table: &str, quote: impl Fn(&str) -> String) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let mut s = quote(c.field.as_str());
                if c.nocase {
                    s.push_str(" COLLATE NOCASE");
                }
                if c.descending {
                    s.push_str(" DESC");
                }
                s
            })
            .collect();
        let mut sql = format!(
            "CREATE {}INDEX {} ON {} ({})",
            if self.unique { "UNIQUE " } else { "" },
            quote(&self.name),
            quote(table),
            cols.join(", ")
        );
        if let Some(f) = &self.where_not_empty {
            sql.push_str(&format!(" WHERE {} != ''", quote(f.as_str())));
        }
        sql
    }

    /// True for a single-column unique index on `field` (PocketBase's uniqueness marker).
    pub fn is_unique_on(&self, field: &str) -> bool {
        self.unique && self.columns.len() == 1 && self.columns[0].field.as_str() == field
    }
}

fn field_name(raw: &str) -> Result<FieldName, IndexError> {
    FieldName::parse(raw).map_err(|e| IndexError(format!("bad column {raw:?}: {e}")))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Punct(&'static str),
    EmptyString,
}

fn tokenize(sql: &str) -> Result<Vec<Token>, IndexError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | ',' => {
                out.push(Token::Punct(match c {
                    '(' => "(",
                    ')' => ")",
                    _ => ",",
                }));
                i += 1;
            }
            '!' | '<' => {
                let pair: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                match pair.as_str() {
                    "!=" => out.push(Token::Punct("!=")),
                    "<>" => out.push(Token::Punct("<>")),
                    _ => return Err(IndexError("unexpected operator".into())),
                }
                i += 2;
            }
            '\'' => {
                if chars.get(i + 1) == Some(&'\'') {
                    out.push(Token::EmptyString);
                    i += 2;
                } else {
                    return Err(IndexError(
                        "only the empty string literal is supported".into(),
                    ));
                }
            }
            '`' | '"' | '[' => {
                let close = if c == '[' { ']' } else { c };
                let start = i + 1;
                let Some(len) = chars[start..].iter().position(|&x| x == close) else {
                    return Err(IndexError("unterminated quoted name".into()));
                };
                out.push(Token::Quoted(chars[start..start + len].iter().collect()));
                i = start + len + 1;
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push(Token::Word(chars[start..i].iter().collect()));
            }
            other => return Err(IndexError(format!("unexpected character {other:?}"))),
        }
    }
    Ok(out)
}

struct Cursor<'a> {
    tokens: &'a [Token],
    pos: usize,
}

impl Cursor<'_> {
    fn maybe_keyword(&mut self, kw: &str) -> bool {
        match self.tokens.get(self.pos) {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn keyword(&mut self, kw: &str) -> Result<(), IndexError> {
        if self.maybe_keyword(kw) {
            Ok(())
        } else {
            Err(IndexError(format!("expected {kw}")))
        }
    }

    fn maybe_punct(&mut self, p: &str) -> bool {
        match self.tokens.get(self.pos) {
            Some(Token::Punct(x)) if *x == p => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn punct(&mut self, p: &str) -> Result<(), IndexError> {
        if self.maybe_punct(p) {
            Ok(())
        } else {
            Err(IndexError(format!("expected `{p}`")))
        }
    }

    fn ident(&mut self) -> Result<String, IndexError> {
        match self.tokens.get(self.pos) {
            Some(Token::Word(w)) | Some(Token::Quoted(w)) => {
                self.pos += 1;
                Ok(w.clone())
            }
            _ => Err(IndexError("expected a name".into())),
        }
    }

    fn empty_string(&mut self) -> Result<(), IndexError> {
        match self.tokens.get(self.pos) {
            Some(Token::EmptyString) => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(IndexError("expected ''".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_indexes_fold_nocase_columns_with_lower() {
        let table = CollectionName::parse("posts").expect("name");
        let def = IndexDef::parse(
            "CREATE UNIQUE INDEX `idx_slug` ON `posts` (`slug` COLLATE NOCASE, `n` DESC, `tags`) WHERE `tags` != ''",
        )
        .expect("parses");

        let sql = def.to_postgres_sql(&table, |name| name == "tags");

        assert_eq!(
            sql,
            "CREATE UNIQUE INDEX \"idx_slug\" ON \"posts\" (lower(\"slug\"), \"n\" DESC, \"tags\") WHERE \"tags\"::text <> ''"
        );
    }

    #[test]
    fn pocketbase_index_forms_parse_and_render_quoted() {
        let table = CollectionName::parse("posts").expect("name");
        let def = IndexDef::parse(
            "CREATE UNIQUE INDEX `idx_email_x` ON `users` (`email`) WHERE `email` != ''",
        )
        .expect("parses");
        assert_eq!(
            def.to_sql(&table),
            "CREATE UNIQUE INDEX \"idx_email_x\" ON \"posts\" (\"email\") WHERE \"email\" != ''"
        );
        let def = IndexDef::parse("create index idx_a on posts (a COLLATE NOCASE, b desc)")
            .expect("parses");
        assert_eq!(
            def.to_pb_sql(&table),
            "CREATE INDEX `idx_a` ON `posts` (`a` COLLATE NOCASE, `b` DESC)"
        );
    }

    #[test]
    fn anything_beyond_the_supported_form_is_refused() {
        for sql in [
            "DROP TABLE posts",
            "CREATE INDEX x ON posts (a); DROP TABLE posts",
            "CREATE INDEX x ON posts (lower(a))",
            "CREATE INDEX x ON posts (a) WHERE a = 1",
            "CREATE INDEX `x\"y` ON posts (a)",
            "CREATE INDEX x ON posts ()",
            "CREATE INDEX x ON posts (a",
            "CREATE INDEX sqlite_autoindex_x ON posts (a)",
        ] {
            assert!(IndexDef::parse(sql).is_err(), "{sql}");
        }
    }
}
