#!/usr/bin/env python3
"""What the search index's catch-up adds to raw SQL (the SQL console) on a large
searchable collection. Seeds RECORDS records into `articles` (searchable body) and
`plain` (none) as benches/search/bench.py does, then times, one console request
each, ROUNDS single-row INSERTs, UPDATEs of the body, UPDATEs of a number
(`amount = amount + 1`, a counter) and DELETEs on each collection; prints the
median ms per request. Loopback only; sequential; the server is stopped at the end.

    FB_BIN=target/release/ferrobase python3 benches/search/raw_sql.py   # RECORDS=100000 ROUNDS=15
"""

import os
import random
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "15"))


def main():
    work = tempfile.mkdtemp(prefix="ferrobase-raw-sql-bench-")
    proc, base = bench.start(work)
    try:
        su = bench.call(base, "POST", "/api/collections/_superusers/auth-with-password",
                        {"identity": bench.EMAIL, "password": bench.PASSWORD})["token"]
        bench.call(base, "PATCH", "/api/settings",
                   {"batch": {"enabled": True, "maxRequests": bench.BATCH, "timeout": 120}}, su)
        users = bench.call(base, "GET", "/api/collections/users", token=su)
        for name, searchable in (("plain", False), ("articles", True)):
            body = {"name": "body", "type": "text", "max": 5000, "searchable": searchable}
            bench.call(base, "POST", "/api/collections", {"name": name, "fields": [
                {"name": "owner", "type": "relation", "collectionId": users["id"], "maxSelect": 1},
                body,
                {"name": "kind", "type": "select", "values": bench.KINDS, "maxSelect": 1},
                {"name": "amount", "type": "number", "onlyInt": True}]}, su)
        weights = [1 / (i + 1) for i in range(len(bench.VOCAB))]
        _, ids = bench.seed(base, su, "", weights)
        rng = random.Random(5)
        for name in ("plain", "articles"):
            spent = {"insert": [], "update": [], "counter": [], "delete": []}
            for i in range(ROUNDS):
                text = bench.body_text(rng, weights)
                rid = ids[name][i]
                for verb, sql in (
                    ("insert", f"INSERT INTO {name} (id, body) VALUES ('rawbench{i:07d}', '{text}')"),
                    ("update", f"UPDATE {name} SET body = '{text}' WHERE id = '{rid}'"),
                    ("counter", f"UPDATE {name} SET amount = amount + 1 WHERE id = '{rid}'"),
                    ("delete", f"DELETE FROM {name} WHERE id = '{ids[name][-1 - i]}'"),
                ):
                    t = time.perf_counter()
                    bench.call(base, "POST", "/api/sql", {"query": sql}, su)
                    spent[verb].append((time.perf_counter() - t) * 1000)
            print(f"{name}, {bench.RECORDS} records, one-row console writes, median of {ROUNDS}: "
                  + ", ".join(f"{v} {statistics.median(ms):.1f} ms" for v, ms in spent.items()),
                  flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
