//! What keeping a full-text index costs a group of record creates, in the
//! bundled SQLite: each create in its own savepoint (as the writer runs
//! grouped jobs), where FTS5 flushes a segment at every savepoint, against
//! the same index writes applied together before the commit.
//!
//! `cargo run --release --example fts_groups` (ROWS, GROUP, WORDS to change
//! the shape).
use rusqlite::Connection;
use std::time::Instant;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A deterministic text of `words` words `w0000`…`w4999`, Zipf-like (rank
/// r drawn with weight 1/r, as in benches/search).
fn text(i: usize, words: usize) -> String {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = String::with_capacity(words * 7);
    for _ in 0..words {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // 5000^u - 1 for u uniform in [0, 1): log-uniform ranks, i.e. Zipf s = 1.
        let u = (x >> 11) as f64 / (1u64 << 53) as f64;
        let w = (5000f64.powf(u) - 1.0) as u32;
        out.push_str(&format!("w{w:04} "));
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    NoIndex,
    IndexPerSavepoint,
    IndexAtEnd,
}

fn run(
    mode: Mode,
    rows: usize,
    group: usize,
    words: usize,
    automerge: u32,
) -> rusqlite::Result<f64> {
    let dir = std::env::temp_dir().join(format!("fts_groups-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("t.db");
    let _ = std::fs::remove_file(&path);
    let conn = Connection::open(&path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;
         CREATE TABLE posts (id TEXT PRIMARY KEY, title TEXT, body TEXT);
         CREATE VIRTUAL TABLE fts USING fts5(c0, c1, tokenize = 'unicode61 remove_diacritics 2');",
    )?;
    conn.execute(
        "INSERT INTO fts (fts, rank) VALUES ('automerge', ?1)",
        [automerge],
    )?;
    let texts: Vec<String> = (0..rows).map(|i| text(i, words)).collect();
    let start = Instant::now();
    let mut created = 0usize;
    for chunk in texts.chunks(group) {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let mut deferred = Vec::new();
        for text in chunk {
            conn.execute_batch("SAVEPOINT fb_job")?;
            created += 1;
            conn.prepare_cached("INSERT INTO posts (id, title, body) VALUES (?1, ?2, ?3)")?
                .execute((format!("r{created:014}"), "a title of a post", text))?;
            let rowid = conn.last_insert_rowid();
            match mode {
                Mode::NoIndex => {}
                Mode::IndexPerSavepoint => {
                    conn.prepare_cached("INSERT INTO fts (rowid, c0, c1) VALUES (?1, ?2, ?3)")?
                        .execute((rowid, "a title of a post", text))?;
                }
                Mode::IndexAtEnd => deferred.push((rowid, text)),
            }
            conn.execute_batch("RELEASE fb_job")?;
        }
        for (rowid, text) in deferred {
            conn.prepare_cached("INSERT INTO fts (rowid, c0, c1) VALUES (?1, ?2, ?3)")?
                .execute((rowid, "a title of a post", text))?;
        }
        conn.execute_batch("COMMIT")?;
    }
    let micros = start.elapsed().as_secs_f64() * 1e6 / rows as f64;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(micros)
}

fn main() -> rusqlite::Result<()> {
    let (rows, group, words) = (env("ROWS", 20_000), env("GROUP", 16), env("WORDS", 170));
    // ONLY=none|savepoint|end with AUTOMERGE: one run, for instruction
    // counts under callgrind (timings move with whatever else runs).
    if let Ok(only) = std::env::var("ONLY") {
        let mode = match only.as_str() {
            "none" => Mode::NoIndex,
            "savepoint" => Mode::IndexPerSavepoint,
            _ => Mode::IndexAtEnd,
        };
        let t = run(mode, rows, group, words, env("AUTOMERGE", 4) as u32)?;
        println!("{only}: {t:.1} µs per create");
        return Ok(());
    }
    println!("{rows} creates in groups of {group}, {words} words each; µs per create:");
    let base = run(Mode::NoIndex, rows, group, words, 4)?;
    println!("  no index                               {base:7.1}");
    for automerge in [4, 16] {
        for (mode, name) in [
            (
                Mode::IndexPerSavepoint,
                "index written in each job's savepoint",
            ),
            (Mode::IndexAtEnd, "index written once before the commit  "),
        ] {
            let t = run(mode, rows, group, words, automerge)?;
            println!(
                "  {name} automerge {automerge:2}: {t:7.1} (+{:.0} %)",
                (t / base - 1.0) * 100.0
            );
        }
    }
    Ok(())
}
