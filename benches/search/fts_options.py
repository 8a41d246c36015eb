#!/usr/bin/env python3
"""What FTS5 table options cost per indexed row, on SQLite alone (issue 20's write
cost): the bench's text (~1 KB, 170 Zipf-like words) into a plain table and, row by
row in the same transaction, into an FTS5 table with each option; 500 rows a
transaction, WAL, synchronous=FULL, as Ferrobase writes. Python's own sqlite3 (its
SQLite version is printed); files in a temp dir, removed at the end.

    python3 benches/search/fts_options.py     # ROWS=20000 RUNS=2
"""

import os
import random
import sqlite3
import tempfile
import time

ROWS = int(os.environ.get("ROWS", "20000"))
RUNS = int(os.environ.get("RUNS", "2"))
EXTERNAL = ", content='t', content_rowid='rowid'"
OPTIONS = {
    "no index": None,
    "regular (Ferrobase)": "",
    "columnsize=0": ", columnsize=0",
    "detail=column": ", detail=column",
    "external content": EXTERNAL,
    "external + columnsize=0": EXTERNAL + ", columnsize=0",
}


def run(work, texts, name, opts):
    path = os.path.join(work, f"{abs(hash(name))}.db")
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("PRAGMA synchronous = FULL")
    c.execute("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT)")
    if opts is not None:
        c.execute("CREATE VIRTUAL TABLE f USING fts5(c0, "
                  f"tokenize = 'unicode61 remove_diacritics 2'{opts})")
    t = time.perf_counter()
    for start in range(0, len(texts), 500):
        c.execute("BEGIN IMMEDIATE")
        for i in range(start, min(start + 500, len(texts))):
            c.execute("INSERT INTO t VALUES (?, ?)", (f"id{i:013d}", texts[i]))
            if opts is not None:
                c.execute("INSERT INTO f (rowid, c0) VALUES (last_insert_rowid(), ?)",
                          (texts[i],))
        c.execute("COMMIT")
    spent = time.perf_counter() - t
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    size = os.path.getsize(path)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return spent * 1e6 / len(texts), size / 1e6


def main():
    vocab = [f"w{i:04d}" for i in range(5000)]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    rng = random.Random(7)
    texts = [" ".join(rng.choices(vocab, weights, k=170)) for _ in range(ROWS)]
    print(f"SQLite {sqlite3.sqlite_version}, {ROWS} rows, {RUNS} runs", flush=True)
    with tempfile.TemporaryDirectory(prefix="fts-options-") as work:
        for _ in range(RUNS):
            for name, opts in OPTIONS.items():
                us, mb = run(work, texts, name, opts)
                print(f"{name:26s} {us:6.1f} us/row  {mb:5.0f} MB", flush=True)


if __name__ == "__main__":
    main()
