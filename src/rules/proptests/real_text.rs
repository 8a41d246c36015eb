//! Reals written as text: SQLite's `CAST(x AS TEXT)` (the bundled 3.54,
//! `%!.17g`) against the dialect's `fb_real_text` on PostgreSQL, for the
//! awkward values by name and for random bit patterns (`FB_REAL_CASES`
//! raises their count).

use std::env;

use rusqlite::Connection;

use crate::pg_testing::{PgSchema, server};
use crate::rules::SqlValue;

/// Random reals in an ordinary run.
const CASES: usize = 3_000;

/// Values whose text is easy to get wrong: 17 digits, cut-short digits,
/// exponents at the edges of fixed notation, subnormals, the extremes.
fn named() -> Vec<f64> {
    let mut v = vec![
        1.0 / 3.0,
        0.1 + 0.2,
        0.1,
        49.47,
        1e-7,
        1e-4,
        1e-5,
        1.5e-4,
        1e21,
        1e17,
        1e16 + 2.0,
        9_007_199_254_740_993_f64,
        2.5,
        -2.5,
        123_456.789,
        1e100,
        1e-100,
        5e-324,
        2.2250738585072014e-308,
        f64::MAX,
        f64::MIN_POSITIVE,
        f64::EPSILON,
        1.0 + f64::EPSILON,
        0.9999999999999999,
        99.99999999999999,
        1.7e-5,
        3.0e-310,
        1_125_899_906_842_623.1,
        9.2e18,
        -1e300,
    ];
    v.extend((1..=40).map(|i| f64::from(i) / 7.0));
    v.extend((-30..30).map(|e| 1.1 * 10f64.powi(e)));
    v
}

/// A tiny deterministic generator (xorshift), so a failure repeats.
fn random_reals(n: usize) -> Vec<f64> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let x = f64::from_bits(state);
        // Half of them nearer the numbers people store.
        let x = if out.len() % 2 == 0 {
            x
        } else {
            (state % 1_000_000_007) as f64 / 997.0
        };
        if x.is_finite() {
            out.push(x);
        }
    }
    out
}

#[test]
fn reals_read_as_text_are_sqlites_text_on_postgres() {
    let Some(url) = server() else {
        return;
    };
    let count = env::var("FB_REAL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    let sqlite = Connection::open_in_memory().expect("sqlite");
    let mut pg = PgSchema::open(&url);
    let mut values = named();
    values.extend(random_reals(count));
    for x in values {
        let want: String = sqlite
            .query_row("SELECT CAST(?1 AS TEXT)", [x], |r| r.get(0))
            .expect("sqlite text");
        let got = pg
            .column("SELECT fb_real_text(?)", &[SqlValue::Real(x)])
            .expect("fb_real_text");
        assert_eq!(got, vec![want], "{x:e} (bits {:#x})", x.to_bits());
    }
}
