//! Recursive-descent parser from tokens to an [`Expr`] (§4.2 of the API
//! reference). It enforces the size limits (bytes, comparisons, group and
//! function nesting), drops empty groups and gives `&&` precedence over
//! `||`. It does not decide what identifiers mean; that is the compiler's
//! and the `Scope`'s job.

use super::ast::{Expr, Operand, Path};
use super::error::RuleError;
use super::lexer::{Tok, Token, tokenize};

/// Longest accepted filter, in bytes.
pub const MAX_FILTER_BYTES: usize = 3500;
/// Most comparisons (`a = b`) one filter may hold.
pub const MAX_COMPARISONS: usize = 200;
/// Deepest nesting of parentheses, in levels.
pub const MAX_GROUP_DEPTH: usize = 32;
/// Deepest nesting of function calls, in levels (`f(g(h(x)))` is 3).
pub const MAX_FUNCTION_DEPTH: usize = 3;

/// Parses a filter or rule into an expression tree.
///
/// Blank input (or input holding only comments and empty groups) is
/// [`RuleError::Empty`]; callers that treat an empty rule as "public" must
/// check for that before parsing.
pub fn parse_filter(src: &str) -> Result<Expr, RuleError> {
    if src.len() > MAX_FILTER_BYTES {
        return Err(RuleError::TooLong {
            bytes: src.len(),
            max: MAX_FILTER_BYTES,
        });
    }
    let mut parser = Parser {
        tokens: tokenize(src)?,
        next: 0,
        comparisons: 0,
        depth: 0,
    };
    let expr = parser.or_expr()?;
    parser.expect_end()?;
    expr.ok_or(RuleError::Empty)
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    comparisons: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // `tokenize` always ends with `End`, and `advance` never moves past it.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.tok != Tok::End {
            self.next += 1;
        }
        token
    }

    fn unexpected(&self, expected: &'static str) -> RuleError {
        let token = self.peek();
        RuleError::Unexpected {
            pos: token.pos,
            found: token.tok.describe(),
            expected,
        }
    }

    fn expect_end(&self) -> Result<(), RuleError> {
        match self.peek().tok {
            Tok::End => Ok(()),
            _ => Err(self.unexpected("`&&`, `||` or the end of the filter")),
        }
    }

    /// `and_expr ("||" and_expr)*`; `None` when every part was an empty group.
    fn or_expr(&mut self) -> Result<Option<Expr>, RuleError> {
        let mut parts = Vec::new();
        loop {
            parts.extend(self.and_expr()?);
            if self.peek().tok != Tok::Or {
                return Ok(join(parts, Join::Or));
            }
            self.advance();
        }
    }

    /// `term ("&&" term)*`
    fn and_expr(&mut self) -> Result<Option<Expr>, RuleError> {
        let mut parts = Vec::new();
        loop {
            parts.extend(self.term()?);
            if self.peek().tok != Tok::And {
                return Ok(join(parts, Join::And));
            }
            self.advance();
        }
    }

    /// `"(" expr? ")" | operand sign operand`; an empty whole filter is allowed
    /// here so that `parse_filter` can report it as `Empty`.
    fn term(&mut self) -> Result<Option<Expr>, RuleError> {
        match self.peek().tok {
            Tok::LParen => self.group(),
            Tok::End if self.next == 0 => Ok(None),
            _ => self.comparison().map(Some),
        }
    }

    fn group(&mut self) -> Result<Option<Expr>, RuleError> {
        let open = self.advance();
        self.depth += 1;
        if self.depth > MAX_GROUP_DEPTH {
            return Err(RuleError::TooDeep {
                pos: open.pos,
                max: MAX_GROUP_DEPTH,
            });
        }
        let inner = match self.peek().tok {
            Tok::RParen => None,
            _ => self.or_expr()?,
        };
        if self.peek().tok != Tok::RParen {
            return Err(self.unexpected("`)`, `&&` or `||`"));
        }
        self.advance();
        self.depth -= 1;
        Ok(inner)
    }

    fn comparison(&mut self) -> Result<Expr, RuleError> {
        let left = self.operand(0, "an operand or `(`")?;
        let Tok::Sign(op) = self.peek().tok else {
            return Err(self.unexpected("an operator such as `=`"));
        };
        self.advance();
        let right = self.operand(0, "an operand")?;
        self.count_comparison()?;
        Ok(Expr::Compare { left, op, right })
    }

    fn count_comparison(&mut self) -> Result<(), RuleError> {
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(RuleError::TooManyComparisons {
                max: MAX_COMPARISONS,
            });
        }
        Ok(())
    }

    /// One operand; `calls` is how many function calls enclose it.
    fn operand(&mut self, calls: usize, expected: &'static str) -> Result<Operand, RuleError> {
        let token = self.peek().clone();
        let operand = match token.tok {
            Tok::Text(s) => Operand::Text(s),
            Tok::Number(n) => Operand::Number(n),
            Tok::Ident(name) => Operand::Identifier(Path::parse_at(&name, token.pos)?),
            Tok::Func(name) => return self.call(name, token.pos, calls + 1),
            _ => return Err(self.unexpected(expected)),
        };
        self.advance();
        Ok(operand)
    }

    /// `name(` already seen as the current token: `(operand ("," operand)*)? ")"`.
    fn call(&mut self, name: String, pos: usize, depth: usize) -> Result<Operand, RuleError> {
        if depth > MAX_FUNCTION_DEPTH {
            return Err(RuleError::FunctionTooDeep {
                pos,
                max: MAX_FUNCTION_DEPTH,
            });
        }
        self.advance();
        let mut args = Vec::new();
        if self.peek().tok == Tok::RParen {
            self.advance();
            return Ok(Operand::Function { name, args });
        }
        loop {
            args.push(self.operand(depth, "a function argument")?);
            let closes = match self.peek().tok {
                Tok::Comma => false,
                Tok::RParen => true,
                _ => return Err(self.unexpected("`,` or `)`")),
            };
            self.advance();
            if closes {
                return Ok(Operand::Function { name, args });
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Join {
    And,
    Or,
}

/// Builds an `And`/`Or` node, flattening nested nodes of the same kind and
/// skipping the node entirely for zero or one part.
fn join(parts: Vec<Expr>, kind: Join) -> Option<Expr> {
    if parts.len() <= 1 {
        return parts.into_iter().next();
    }
    let mut flat = Vec::with_capacity(parts.len());
    for part in parts {
        match (kind, part) {
            (Join::And, Expr::And(inner)) | (Join::Or, Expr::Or(inner)) => flat.extend(inner),
            (_, part) => flat.push(part),
        }
    }
    Some(match kind {
        Join::And => Expr::And(flat),
        Join::Or => Expr::Or(flat),
    })
}

#[cfg(test)]
mod tests {
    use super::super::ast::{Op, OpKind};
    use super::*;

    fn cmp(left: &str, kind: OpKind, right: i64) -> Expr {
        Expr::Compare {
            left: Operand::Identifier(Path::parse(left).expect("valid path")),
            op: Op { kind, any: false },
            right: Operand::Number(right.to_string()),
        }
    }

    fn eq(left: &str, right: i64) -> Expr {
        cmp(left, OpKind::Eq, right)
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let cases = [
            (
                "a=1 && b=2 || c=3",
                Expr::Or(vec![Expr::And(vec![eq("a", 1), eq("b", 2)]), eq("c", 3)]),
                "and first",
            ),
            (
                "c=3 || a=1 && b=2",
                Expr::Or(vec![eq("c", 3), Expr::And(vec![eq("a", 1), eq("b", 2)])]),
                "and last",
            ),
            (
                "(c=3 || a=1) && b=2",
                Expr::And(vec![Expr::Or(vec![eq("c", 3), eq("a", 1)]), eq("b", 2)]),
                "parentheses override",
            ),
            (
                "a=1 && (b=2 && c=3)",
                Expr::And(vec![eq("a", 1), eq("b", 2), eq("c", 3)]),
                "same-kind groups flatten",
            ),
        ];
        for (src, want, why) in cases {
            assert_eq!(parse_filter(src), Ok(want), "{src:?}: {why}");
        }
    }

    #[test]
    fn empty_groups_are_dropped() {
        let cases = [
            ("a=1 && ()", eq("a", 1), "trailing empty group"),
            ("() || a=1", eq("a", 1), "leading empty group"),
            ("((())) && a=1", eq("a", 1), "nested empty groups"),
            ("(a=1)", eq("a", 1), "group of one"),
            ("a=1 // c\n", eq("a", 1), "trailing comment"),
        ];
        for (src, want, why) in cases {
            assert_eq!(parse_filter(src), Ok(want), "{src:?}: {why}");
        }
    }

    #[test]
    fn operands_of_every_kind_parse() {
        let expr = parse_filter("geoDistance(lon, 1.5, -2, strftime('%Y', @now)) ?<= 'x'")
            .expect("parses");

        let Expr::Compare { left, op, right } = expr else {
            panic!("expected a comparison");
        };
        let Operand::Function { name, args } = left else {
            panic!("expected a function");
        };
        assert_eq!(name, "geoDistance");
        assert_eq!(args.len(), 4, "four arguments");
        assert!(
            matches!(&args[3], Operand::Function { name, args } if name == "strftime" && args.len() == 2)
        );
        assert_eq!(
            op,
            Op {
                kind: OpKind::Lte,
                any: true
            }
        );
        assert_eq!(right, Operand::Text("x".into()));
    }

    #[test]
    fn functions_accept_line_comments_and_no_arguments() {
        let cases = [
            (
                "f(// first\n a,\n b) = g()",
                true,
                "line comments inside arguments",
            ),
            ("f() = 1", true, "no arguments"),
            (
                "f(a, /* no */ b) = 1",
                false,
                "block comments are not part of the language",
            ),
            ("f(a = 1", false, "unclosed call"),
        ];
        for (src, ok, why) in cases {
            assert_eq!(parse_filter(src).is_ok(), ok, "{src:?}: {why}");
        }
    }

    #[test]
    fn empty_filters_are_errors() {
        for (src, why) in [
            ("", "empty"),
            ("  \n ", "blank"),
            ("// only", "comment"),
            ("()", "empty group"),
            ("(()) && ()", "only empty groups"),
        ] {
            assert_eq!(parse_filter(src), Err(RuleError::Empty), "{src:?}: {why}");
        }
    }

    #[test]
    fn invalid_filters_report_what_was_expected() {
        let cases = [
            (
                "a = 1 )",
                "unexpected `)` at 6, expected `&&`, `||` or the end of the filter",
                "stray close",
            ),
            (
                "a = )",
                "unexpected `)` at 4, expected an operand",
                "missing right operand",
            ),
            (
                "a = 1 && ",
                "unexpected end of input at 9, expected an operand or `(`",
                "dangling and",
            ),
            (
                "a 1",
                "unexpected number `1` at 2, expected an operator such as `=`",
                "missing operator",
            ),
            (
                "(a = 1",
                "unexpected end of input at 6, expected `)`, `&&` or `||`",
                "unclosed group",
            ),
            (
                "a = 1 b = 2",
                "unexpected identifier `b` at 6, expected `&&`, `||` or the end of the filter",
                "missing join",
            ),
            (
                "f(a,) = 1",
                "unexpected `)` at 4, expected a function argument",
                "trailing comma",
            ),
            (
                "f(a b) = 1",
                "unexpected identifier `b` at 4, expected `,` or `)`",
                "missing comma",
            ),
            (
                "a = = 1",
                "unexpected `=` at 4, expected an operand",
                "double operator",
            ),
            (
                "&& a = 1",
                "unexpected `&&` at 0, expected an operand or `(`",
                "leading join",
            ),
            (
                "a = 1 || || b = 2",
                "unexpected `||` at 9, expected an operand or `(`",
                "double join",
            ),
            (
                "a = (1)",
                "unexpected `(` at 4, expected an operand",
                "group as operand",
            ),
            (
                "a:nope = 1",
                "unknown modifier `:nope` in `a:nope` at 0",
                "unknown modifier",
            ),
        ];
        for (src, want, why) in cases {
            match parse_filter(src) {
                Err(e) => assert_eq!(e.to_string(), want, "{src:?}: {why}"),
                Ok(expr) => panic!("{src:?} ({why}) should fail, got {expr:?}"),
            }
        }
    }

    #[test]
    fn filters_up_to_the_byte_limit_are_accepted() {
        let at_limit = format!("a = '{}'", "x".repeat(MAX_FILTER_BYTES - 6));
        let over = format!("a = '{}'", "x".repeat(MAX_FILTER_BYTES - 5));

        assert_eq!(at_limit.len(), MAX_FILTER_BYTES);
        assert!(parse_filter(&at_limit).is_ok(), "exactly at the limit");
        assert_eq!(
            parse_filter(&over),
            Err(RuleError::TooLong {
                bytes: MAX_FILTER_BYTES + 1,
                max: MAX_FILTER_BYTES
            }),
            "one byte over"
        );
    }

    #[test]
    fn comparison_count_is_limited() {
        let many = |n: usize| vec!["a=1"; n].join("&&");

        assert!(
            parse_filter(&many(MAX_COMPARISONS)).is_ok(),
            "exactly at the limit"
        );
        assert_eq!(
            parse_filter(&many(MAX_COMPARISONS + 1)),
            Err(RuleError::TooManyComparisons {
                max: MAX_COMPARISONS
            }),
            "one over the limit"
        );
    }

    #[test]
    fn group_nesting_is_limited() {
        let nested = |n: usize| format!("{}a = 1{}", "(".repeat(n), ")".repeat(n));

        assert_eq!(
            parse_filter(&nested(MAX_GROUP_DEPTH)),
            Ok(eq("a", 1)),
            "at the limit"
        );
        assert_eq!(
            parse_filter(&nested(MAX_GROUP_DEPTH + 1)),
            Err(RuleError::TooDeep {
                pos: MAX_GROUP_DEPTH,
                max: MAX_GROUP_DEPTH
            }),
            "one level too deep"
        );
        assert!(
            matches!(parse_filter(&nested(64)), Err(RuleError::TooDeep { .. })),
            "far too deep"
        );
    }

    #[test]
    fn function_nesting_is_limited() {
        assert!(parse_filter("f(g(h(x))) = 1").is_ok(), "three levels");
        assert_eq!(
            parse_filter("f(g(h(i(x)))) = 1"),
            Err(RuleError::FunctionTooDeep {
                pos: 6,
                max: MAX_FUNCTION_DEPTH
            }),
            "four levels"
        );
    }

    #[test]
    fn sibling_groups_do_not_add_up_to_the_depth_limit() {
        let one = format!("{}a = 1{}", "(".repeat(20), ")".repeat(20));
        let src = format!("{one} && {one}");

        assert!(
            parse_filter(&src).is_ok(),
            "depth resets after each group closes"
        );
    }
}
