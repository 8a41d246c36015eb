//! A small process-wide cache of parsed expressions. Collection rules are
//! parsed on every request that checks them; caching the AST by source text
//! takes parsing off that path. Compilation still runs per request, because
//! `@request.*` values differ between requests.

use super::ast::Expr;
use super::error::RuleError;
use super::parser::parse_filter;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// Entries kept before the cache is cleared (rules are few; request filters vary).
pub const MAX_CACHED_EXPRESSIONS: usize = 1024;

static PARSED: LazyLock<Mutex<HashMap<String, Arc<Expr>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Like [`parse_filter`], answering repeated sources from the cache.
pub fn parse_filter_cached(src: &str) -> Result<Arc<Expr>, RuleError> {
    if let Ok(cache) = PARSED.lock()
        && let Some(expr) = cache.get(src)
    {
        return Ok(expr.clone());
    }
    let expr = Arc::new(parse_filter(src)?);
    if let Ok(mut cache) = PARSED.lock() {
        if cache.len() >= MAX_CACHED_EXPRESSIONS {
            cache.clear();
        }
        cache.insert(src.to_owned(), expr.clone());
    }
    Ok(expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_parse_equals_a_fresh_one_and_errors_are_not_cached() {
        let src = "a = 1 && b ?~ 'x'";
        let first = parse_filter_cached(src).expect("valid");
        let second = parse_filter_cached(src).expect("valid");
        assert!(
            Arc::ptr_eq(&first, &second),
            "the second parse comes from the cache"
        );
        assert_eq!(*first, parse_filter(src).expect("valid"));
        assert!(parse_filter_cached("a = (").is_err());
        assert!(
            parse_filter_cached("a = (").is_err(),
            "still an error the second time"
        );
    }
}
