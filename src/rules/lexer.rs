//! Splits filter text into tokens (§4.1 of the API reference): text, numbers,
//! identifiers, function openers, sign and join operators, parentheses and
//! commas. Whitespace and `//` comments are skipped here. The lexer knows
//! nothing about the grammar; every token carries its byte position so the
//! parser can say where things went wrong.

use super::ast::{Op, OpKind, is_ident_continue, is_ident_start};
use super::error::RuleError;

/// Longest excerpt of user text quoted in an error message, in characters.
const MAX_QUOTED_CHARS: usize = 32;

/// One kind of token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    Number(String),
    Ident(String),
    /// An identifier immediately followed by `(`; the `(` is part of the token.
    Func(String),
    LParen,
    RParen,
    Comma,
    Sign(Op),
    And,
    Or,
    End,
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: usize,
}

impl Tok {
    /// How the token is named in error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Text(s) => format!("text '{}'", clip(s)),
            Self::Number(n) => format!("number `{}`", clip(n)),
            Self::Ident(s) => format!("identifier `{}`", clip(s)),
            Self::Func(s) => format!("function `{}(`", clip(s)),
            Self::LParen => "`(`".into(),
            Self::RParen => "`)`".into(),
            Self::Comma => "`,`".into(),
            Self::Sign(op) => format!("`{op}`"),
            Self::And => "`&&`".into(),
            Self::Or => "`||`".into(),
            Self::End => "end of input".into(),
        }
    }
}

fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// Splits `src` into tokens; the last one is always [`Tok::End`].
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, RuleError> {
    let mut lexer = Lexer { src, pos: 0 };
    let mut tokens = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let done = token.tok == Tok::End;
        tokens.push(token);
        if done {
            return Ok(tokens);
        }
    }
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.src[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, want: char) -> bool {
        let hit = self.peek() == Some(want);
        if hit {
            self.pos += want.len_utf8();
        }
        hit
    }

    fn next_token(&mut self) -> Result<Token, RuleError> {
        self.skip_trivia();
        let pos = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Token { tok: Tok::End, pos });
        };
        let tok = match c {
            '\'' | '"' => self.text()?,
            '(' | ')' | ',' => self.punct(),
            '&' => self.pair('&', Tok::And)?,
            '|' => self.pair('|', Tok::Or)?,
            '-' if self.peek_second().is_some_and(|c| c.is_ascii_digit()) => self.number()?,
            c if c.is_ascii_digit() => self.number()?,
            c if is_ident_start(c) => self.identifier()?,
            '=' | '!' | '<' | '>' | '~' | '?' => self.sign()?,
            other => {
                return Err(RuleError::lex(
                    pos,
                    format!("unexpected character `{other}`"),
                ));
            }
        };
        Ok(Token { tok, pos })
    }

    /// Skips whitespace and `//` comments (to the end of the line).
    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(), self.peek_second()) {
                (Some(' ' | '\t' | '\n' | '\r'), _) => self.pos += 1,
                (Some('/'), Some('/')) => match self.src[self.pos..].find('\n') {
                    Some(offset) => self.pos += offset + 1,
                    None => self.pos = self.src.len(),
                },
                _ => return,
            }
        }
    }

    fn punct(&mut self) -> Tok {
        match self.bump() {
            Some('(') => Tok::LParen,
            Some(')') => Tok::RParen,
            _ => Tok::Comma,
        }
    }

    fn pair(&mut self, c: char, tok: Tok) -> Result<Tok, RuleError> {
        let pos = self.pos;
        self.bump();
        if self.eat(c) {
            Ok(tok)
        } else {
            Err(RuleError::lex(
                pos,
                format!("expected `{c}{c}`, found `{c}`"),
            ))
        }
    }

    /// Quoted text. Escapes as PocketBase decodes them (and as the SDK's
    /// `pb.filter` produces them): `\\`, `\'`, `\"`, `\n`, `\t`; any other
    /// backslash is kept as written.
    fn text(&mut self) -> Result<Tok, RuleError> {
        let start = self.pos;
        let Some(quote) = self.bump() else {
            return Err(RuleError::lex(start, "expected text"));
        };
        let mut out = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(RuleError::lex(start, "unterminated text"));
            };
            if c == quote {
                break;
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(next) = self.bump() else {
                return Err(RuleError::lex(start, "unterminated text"));
            };
            match next {
                '\\' | '\'' | '"' => out.push(next),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
        Ok(Tok::Text(out))
    }

    /// Optional `-`, digits, at most one inner `.`, no exponent or letters after.
    fn number(&mut self) -> Result<Tok, RuleError> {
        let start = self.pos;
        self.eat('-');
        let mut dots = 0;
        while let Some(c) = self.peek() {
            match c {
                '0'..='9' => self.pos += 1,
                '.' => {
                    dots += 1;
                    self.pos += 1;
                }
                _ => break,
            }
        }
        let glued = self.peek().is_some_and(is_ident_continue);
        while self.peek().is_some_and(is_ident_continue) {
            self.bump();
        }
        let text = &self.src[start..self.pos];
        if dots > 1 || text.ends_with('.') || glued {
            return Err(RuleError::lex(
                start,
                format!("invalid number `{}`", clip(text)),
            ));
        }
        Ok(Tok::Number(text.to_owned()))
    }

    fn identifier(&mut self) -> Result<Tok, RuleError> {
        let start = self.pos;
        self.bump();
        while self.peek().is_some_and(is_ident_continue) {
            self.bump();
        }
        let name = &self.src[start..self.pos];
        if name.ends_with(['.', ':']) {
            return Err(RuleError::lex(
                start,
                format!("identifier `{}` must not end with `.` or `:`", clip(name)),
            ));
        }
        if self.eat('(') {
            return Ok(Tok::Func(name.to_owned()));
        }
        Ok(Tok::Ident(name.to_owned()))
    }

    fn sign(&mut self) -> Result<Tok, RuleError> {
        let start = self.pos;
        let any = self.eat('?');
        let first = self.bump();
        let kind = match (first, self.peek()) {
            (Some('='), _) => OpKind::Eq,
            (Some('~'), _) => OpKind::Like,
            (Some('!'), Some('=')) => OpKind::Neq,
            (Some('!'), Some('~')) => OpKind::NotLike,
            (Some('>'), Some('=')) => OpKind::Gte,
            (Some('<'), Some('=')) => OpKind::Lte,
            (Some('>'), _) => OpKind::Gt,
            (Some('<'), _) => OpKind::Lt,
            _ => {
                let seen = &self.src[start..self.pos];
                return Err(RuleError::lex(start, format!("invalid operator `{seen}`")));
            }
        };
        if kind.symbol().len() == 2 {
            self.bump();
        }
        Ok(Tok::Sign(Op { kind, any }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        tokenize(src)
            .unwrap_or_else(|e| panic!("{src:?} should lex: {e}"))
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    fn sign(kind: OpKind, any: bool) -> Tok {
        Tok::Sign(Op { kind, any })
    }

    fn ident(s: &str) -> Tok {
        Tok::Ident(s.into())
    }

    #[test]
    fn valid_inputs_lex_into_the_expected_tokens() {
        let cases = [
            (
                "a = 1",
                vec![ident("a"), sign(OpKind::Eq, false), Tok::Number("1".into())],
                "simple comparison",
            ),
            (
                "a=-1.5",
                vec![
                    ident("a"),
                    sign(OpKind::Eq, false),
                    Tok::Number("-1.5".into()),
                ],
                "negative decimal without spaces",
            ),
            (
                "'it\\'s'",
                vec![Tok::Text("it's".into())],
                "escaped single quote",
            ),
            (
                "\"say \\\"hi\\\"\"",
                vec![Tok::Text("say \"hi\"".into())],
                "escaped double quote",
            ),
            (
                "'a\\\"b'",
                vec![Tok::Text("a\"b".into())],
                "the other quote may be escaped too",
            ),
            (
                "'a\\nb\\tc'",
                vec![Tok::Text("a\nb\tc".into())],
                "newline and tab escapes",
            ),
            (
                "'a\\\\b'",
                vec![Tok::Text("a\\b".into())],
                "escaped backslash",
            ),
            (
                "'a\\sb'",
                vec![Tok::Text("a\\sb".into())],
                "unknown escapes are kept as written",
            ),
            (
                "'ends with backslash\\\\'",
                vec![Tok::Text("ends with backslash\\".into())],
                "a value ending in a backslash closes normally",
            ),
            (
                "\"it's\"",
                vec![Tok::Text("it's".into())],
                "other quote inside text",
            ),
            (
                "a // note\n&& b",
                vec![ident("a"), Tok::And, ident("b")],
                "comment to end of line",
            ),
            ("a // trailing", vec![ident("a")], "comment at end of input"),
            (
                "'//not a comment'",
                vec![Tok::Text("//not a comment".into())],
                "comment marker inside text",
            ),
            (
                "@request.auth.id",
                vec![ident("@request.auth.id")],
                "request path",
            ),
            ("tags:each", vec![ident("tags:each")], "modifier"),
            (
                "#x _y",
                vec![ident("#x"), ident("_y")],
                "hash and underscore starts",
            ),
            (
                "f(a, 'b')",
                vec![
                    Tok::Func("f".into()),
                    ident("a"),
                    Tok::Comma,
                    Tok::Text("b".into()),
                    Tok::RParen,
                ],
                "function call",
            ),
            (
                "f (a)",
                vec![ident("f"), Tok::LParen, ident("a"), Tok::RParen],
                "space before paren is not a call",
            ),
            (
                "(a || b)",
                vec![Tok::LParen, ident("a"), Tok::Or, ident("b"), Tok::RParen],
                "group and or",
            ),
            ("\t\r\n", vec![], "whitespace only"),
            ("ünï", vec![ident("ünï")], "unicode letters"),
        ];
        for (src, mut want, why) in cases {
            want.push(Tok::End);
            assert_eq!(kinds(src), want, "{src:?}: {why}");
        }
    }

    #[test]
    fn every_sign_operator_lexes_with_and_without_the_any_prefix() {
        let ops = [
            ("=", OpKind::Eq),
            ("!=", OpKind::Neq),
            ("<", OpKind::Lt),
            ("<=", OpKind::Lte),
            (">", OpKind::Gt),
            (">=", OpKind::Gte),
            ("~", OpKind::Like),
            ("!~", OpKind::NotLike),
        ];
        for (symbol, kind) in ops {
            for any in [false, true] {
                let prefix = if any { "?" } else { "" };
                let src = format!("a {prefix}{symbol} b");

                let toks = kinds(&src);

                assert_eq!(toks[1], sign(kind, any), "operator in {src:?}");
                assert_eq!(toks.len(), 4, "{src:?} has exactly three tokens");
            }
        }
    }

    #[test]
    fn invalid_inputs_are_rejected_with_a_position() {
        let cases = [
            ("a = 1e3", 4, "exponent"),
            ("a = 1.2.3", 4, "two dots"),
            ("a = 1.", 4, "trailing dot"),
            ("a = 'open", 4, "unterminated single quote"),
            (
                "a = \"open\\\"",
                4,
                "escaped closing quote leaves text open",
            ),
            ("a & b", 2, "single ampersand"),
            ("a | b", 2, "single pipe"),
            ("a ! b", 2, "bang alone"),
            ("a ?? b", 2, "double question mark"),
            ("a. = 1", 0, "identifier ends with a dot"),
            ("a: = 1", 0, "identifier ends with a colon"),
            ("a = $x", 4, "stray dollar"),
            ("a / b", 2, "single slash"),
            ("a = -x", 4, "minus before a letter"),
            ("a = .5", 4, "leading dot"),
        ];
        for (src, want_pos, why) in cases {
            match tokenize(src) {
                Err(RuleError::Lex { pos, .. }) => assert_eq!(pos, want_pos, "{src:?}: {why}"),
                other => panic!("{src:?} ({why}) should fail to lex, got {other:?}"),
            }
        }
    }

    #[test]
    fn token_positions_are_byte_offsets() {
        let tokens = tokenize("ä = 'x'").expect("lexes");

        let positions: Vec<usize> = tokens.iter().map(|t| t.pos).collect();

        assert_eq!(positions, vec![0, 3, 5, 8], "`ä` is two bytes");
    }

    #[test]
    fn long_user_text_is_clipped_in_descriptions() {
        let tok = Tok::Ident("x".repeat(100));

        let described = tok.describe();

        assert!(
            described.len() < 50,
            "description {described:?} should be short"
        );
    }
}
