//! What SQLite's plan choice costs an exact `totalItems` (issue 17, goal 5).
//!
//! Builds a 100,000-row table shaped like the HTTP benchmark's `posts`
//! (only `views` indexed) in a temporary file, then times
//! `count(*) … WHERE views >= ?1 AND published = 1` for several values of
//! `?1`, with the query planner stability guarantee (QPSG) on, as Ferrobase
//! runs, and off, with and without `ANALYZE` statistics. With QPSG off and
//! statistics, SQLite plans each binding by its value (a full scan where the
//! range covers most of the table).
//!
//! ```sh
//! cargo run --release --example count_plans            # ROWS=100000
//! ```

use rusqlite::{Connection, config::DbConfig};
use std::time::Instant;

const COUNT: &str = "SELECT count(*) FROM posts WHERE views >= ?1 AND published = 1";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: i64 = std::env::var("ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("count_plans-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let seed = dir.join("seed.db");
    build(&Connection::open(&seed)?, rows)?;
    println!("{rows} rows; ms per count (20 runs each), then 200 counts of varied values:");
    for (qpsg, analyze) in [(true, false), (true, true), (false, false), (false, true)] {
        let path = dir.join("probe.db");
        std::fs::copy(&seed, &path)?;
        if analyze {
            Connection::open(&path)?.execute_batch("ANALYZE")?;
        }
        let conn = Connection::open(&path)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, qpsg)?;
        let mut cells = Vec::new();
        for n in [100_i64, 500, 900, 990] {
            let (matched, ms) = timed(&conn, &[n; 20])?;
            cells.push(format!("≥{n} ({matched} match) {ms:.2}"));
        }
        let varied: Vec<i64> = (0..200).map(|i| i * 37 % 991).collect();
        let (_, avg) = timed(&conn, &varied)?;
        println!(
            "QPSG {:3} statistics {:3}: {} | varied {avg:.2}",
            if qpsg { "on" } else { "off" },
            if analyze { "yes" } else { "no" },
            cells.join(", ")
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The last count and the mean milliseconds of counting once per value.
fn timed(conn: &Connection, values: &[i64]) -> rusqlite::Result<(i64, f64)> {
    let mut matched = 0;
    for &n in values.iter().take(1) {
        // Warm the cache and the statement before timing.
        matched = conn.prepare_cached(COUNT)?.query_row([n], |r| r.get(0))?;
    }
    let started = Instant::now();
    for &n in values {
        matched = conn.prepare_cached(COUNT)?.query_row([n], |r| r.get(0))?;
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0 / values.len() as f64;
    Ok((matched, ms))
}

/// `rows` posts with ~200 bytes of text, `views` 0..999, 70 % published.
fn build(conn: &Connection, rows: i64) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE posts (id TEXT PRIMARY KEY NOT NULL, title TEXT NOT NULL, \
         body TEXT NOT NULL, views NUMERIC NOT NULL, published BOOLEAN NOT NULL, \
         owner TEXT NOT NULL);",
    )?;
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1) \
         INSERT INTO posts SELECT printf('p%014d', i), 'title ' || hex(randomblob(12)), \
         hex(randomblob(96)), abs(random()) % 1000, abs(random()) % 10 < 7, \
         'u' || (abs(random()) % 10) FROM n",
        [rows],
    )?;
    conn.execute_batch("CREATE INDEX idx_posts_views ON posts (views);")
}
