//! The one error type of the rules module. Every stage (lexer, parser,
//! compiler, sort, and `Scope` implementations) reports through
//! [`RuleError`]; the API layer decides the HTTP status (a request
//! `filter`/`sort` error is a 400 with a generic message, a collection rule
//! error is a `validation_invalid_rule`). Messages are for logs and the admin
//! UI: they name the position and what was expected, never SQL.

use std::fmt;

use super::ast::Path;

/// Everything that can go wrong while parsing or compiling a filter, a rule or a sort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    /// The filter holds no comparison at all (blank, comments or empty groups only).
    Empty,
    /// The source text is longer than the allowed number of bytes.
    TooLong { bytes: usize, max: usize },
    /// A malformed token: stray character, bad number, unterminated text.
    Lex { pos: usize, message: String },
    /// A well-formed token in a place where the grammar wants something else.
    Unexpected {
        pos: usize,
        found: String,
        expected: &'static str,
    },
    /// More comparisons than allowed.
    TooManyComparisons { max: usize },
    /// Parentheses nested deeper than allowed.
    TooDeep { pos: usize, max: usize },
    /// Function calls nested deeper than allowed.
    FunctionTooDeep { pos: usize, max: usize },
    /// An identifier the `Scope` does not know or does not allow.
    Unresolved { name: String, reason: String },
    /// Parsed fine but means nothing: unknown function or macro, wrong arity, misplaced modifier.
    Invalid { message: String },
    /// More sort fields than allowed.
    TooManySortFields { max: usize },
    /// One sort field is longer than the allowed number of bytes.
    SortFieldTooLong { pos: usize, max: usize },
}

impl RuleError {
    /// The error a `Scope` returns for a path it cannot or will not resolve.
    pub fn unresolved(path: &Path, reason: impl Into<String>) -> Self {
        Self::Unresolved {
            name: path.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
        }
    }

    pub(crate) fn lex(pos: usize, message: impl Into<String>) -> Self {
        Self::Lex {
            pos,
            message: message.into(),
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty filter expression"),
            Self::TooLong { bytes, max } => {
                write!(f, "filter is {bytes} bytes long, at most {max} are allowed")
            }
            Self::Lex { pos, message } => write!(f, "{message} at {pos}"),
            Self::Unexpected {
                pos,
                found,
                expected,
            } => write!(f, "unexpected {found} at {pos}, expected {expected}"),
            Self::TooManyComparisons { max } => {
                write!(f, "too many comparisons, at most {max} are allowed")
            }
            Self::TooDeep { pos, max } => {
                write!(f, "groups nested too deeply at {pos}, at most {max} levels")
            }
            Self::FunctionTooDeep { pos, max } => {
                write!(
                    f,
                    "functions nested too deeply at {pos}, at most {max} levels"
                )
            }
            Self::Unresolved { name, reason } => write!(f, "cannot resolve `{name}`: {reason}"),
            Self::Invalid { message } => write!(f, "{message}"),
            Self::TooManySortFields { max } => {
                write!(f, "too many sort fields, at most {max} are allowed")
            }
            Self::SortFieldTooLong { pos, max } => {
                write!(f, "sort field at {pos} is longer than {max} bytes")
            }
        }
    }
}

impl std::error::Error for RuleError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_position_and_what_was_expected() {
        let cases = [
            (
                RuleError::Unexpected {
                    pos: 14,
                    found: "`)`".into(),
                    expected: "an operand",
                },
                "unexpected `)` at 14, expected an operand",
                "parser error",
            ),
            (
                RuleError::lex(3, "invalid number `1e3`"),
                "invalid number `1e3` at 3",
                "lexer error",
            ),
            (
                RuleError::TooLong {
                    bytes: 4000,
                    max: 3500,
                },
                "filter is 4000 bytes long, at most 3500 are allowed",
                "length limit",
            ),
        ];
        for (error, want, why) in cases {
            assert_eq!(error.to_string(), want, "{why}");
        }
    }

    #[test]
    fn scope_errors_name_the_full_path() {
        let path = Path::parse("author.name:lower").expect("valid path");

        let error = RuleError::unresolved(&path, "relations are not supported yet");

        assert_eq!(
            error.to_string(),
            "cannot resolve `author.name:lower`: relations are not supported yet"
        );
    }
}
