#!/usr/bin/env python3
"""kill -9 during writes to a searchable collection never leaves the full-text index
and the table apart.

For each of CYCLES cycles: WORKERS threads create, update and delete records whose
searchable `body` and `tag` hold random words; the server is killed with SIGKILL at a
random moment (0.5-2 s in) and restarted on the same data dir. Then, through the
server's own SQLite (`POST /api/sql`, read-only): the index holds exactly one row per
table row (counts equal, no table rowid missing from the index, no index rowid
without a row); and through the API, for every word of the vocabulary, `?search=word`
finds exactly the records that `filter=body ~ 'word' || tag ~ 'word'` scans out of
the table. PRAGMA integrity_check must say ok. Loopback only; bounded (a 90 s budget).

Environment: FERROBASE_BIN (default target/release/ferrobase, else target/debug/ferrobase),
CYCLES (4), WORKERS (4), SEED (random; printed), KEEP_DATA=1 keeps the data dir.
Ends with `P passed, F failed` (cycles).
"""

import http.client
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    Server, create_collection, ferrobase_bin, log, request, request_on, summary_line, tail)

CYCLES = int(os.environ.get("CYCLES", 4))
WORKERS = int(os.environ.get("WORKERS", 4))
SEED = int(os.environ.get("SEED", random.randrange(1 << 30)))
KILL_AFTER_S = (0.5, 2.0)
BUDGET_S = 90
COLLECTION = "notes"
# No word contains another, so `~` (substring) and a word search agree.
VOCAB = ["apple", "banana", "cherry", "damson", "elder", "fig", "grape", "kiwi"]


class Worker(threading.Thread):
    def __init__(self, port, rng):
        super().__init__(daemon=True)
        self.port, self.rng = port, rng
        self.ids, self.writes, self.errors = [], 0, []

    def text(self):
        return " ".join(self.rng.choice(VOCAB) for _ in range(self.rng.randrange(0, 4)))

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        base = f"/api/collections/{COLLECTION}/records"
        while True:
            roll = self.rng.random()
            try:
                if self.ids and roll < 0.3:
                    rid = self.rng.choice(self.ids)
                    status, data = request_on(conn, "PATCH", f"{base}/{rid}",
                                              {"body": self.text(), "tag": self.text()})
                elif self.ids and roll < 0.45:
                    rid = self.ids.pop(self.rng.randrange(len(self.ids)))
                    status, data = request_on(conn, "DELETE", f"{base}/{rid}")
                else:
                    status, data = request_on(conn, "POST", base,
                                              {"body": self.text(), "tag": self.text()})
                    if status == 200:
                        self.ids.append(data["id"])
            except (OSError, http.client.HTTPException):
                return  # the server is gone
            if status >= 500:
                self.errors.append(f"HTTP {status} {str(data)[:200]}")
            self.writes += 1


def sql(port, token, query):
    status, data = request(port, "POST", "/api/sql", {"query": query}, token)
    if status != 200:
        raise RuntimeError(f"/api/sql {query!r}: HTTP {status} {data}")
    return data["rows"][0][0]


def list_ids(port, token, params):
    ids, page = set(), 1
    while True:
        q = urllib.parse.urlencode(dict(params, perPage=500, page=page, skipTotal=1))
        status, data = request(port, "GET", f"/api/collections/{COLLECTION}/records?{q}",
                               token=token)
        if status != 200:
            raise RuntimeError(f"list {params}: HTTP {status} {data}")
        if not data["items"]:
            return ids
        ids.update(item["id"] for item in data["items"])
        page += 1


def check(port, token, fts):
    """Problems found comparing the index with the table (empty: they agree)."""
    problems = []
    rows = int(sql(port, token, f"SELECT count(*) FROM {COLLECTION}"))
    indexed = int(sql(port, token, f'SELECT count(*) FROM "{fts}"'))
    missing = int(sql(port, token, f'SELECT count(*) FROM {COLLECTION} '
                                   f'WHERE rowid NOT IN (SELECT rowid FROM "{fts}")'))
    stray = int(sql(port, token, f'SELECT count(*) FROM "{fts}" '
                                 f'WHERE rowid NOT IN (SELECT rowid FROM {COLLECTION})'))
    if (rows, missing, stray) != (indexed, 0, 0):
        problems.append(f"table {rows} rows, index {indexed}; {missing} unindexed, {stray} stray")
    for word in VOCAB:
        found = list_ids(port, token, {"search": word})
        scanned = list_ids(port, token, {"filter": f"body ~ '{word}' || tag ~ '{word}'"})
        if found != scanned:
            problems.append(f"{word!r}: search {len(found)} vs scan {len(scanned)} "
                            f"(only search: {sorted(found - scanned)[:3]}, "
                            f"only scan: {sorted(scanned - found)[:3]})")
    integrity = sql(port, token, "PRAGMA integrity_check")
    if integrity != "ok":
        problems.append(f"integrity_check: {integrity}")
    return rows, problems


def main():
    started = time.time()
    rng = random.Random(SEED)
    work = tempfile.mkdtemp(prefix="ferrobase-search-crash-")
    data_dir = os.path.join(work, "data")
    server = Server(ferrobase_bin(), data_dir, os.path.join(work, "server.log"))
    log(f"search_crash: {server.binary}, {CYCLES} cycles x {WORKERS} workers, SEED={SEED}, dir {work}")
    passed = failed = 0
    try:
        server.upsert_superuser()
        server.start()
        token = server.superuser_token()
        created = create_collection(server.port, token, {
            "name": COLLECTION, "type": "base",
            "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
            "fields": [{"name": "body", "type": "text", "searchable": True},
                       {"name": "tag", "type": "text", "searchable": True, "searchWeight": 2}]})
        fts = f"_fts_{created['id']}"
        for cycle in range(1, CYCLES + 1):
            if time.time() - started > BUDGET_S - 20:
                log(f"cycle {cycle}: skipped, time budget ({BUDGET_S} s) nearly spent")
                break
            workers = [Worker(server.port, random.Random(rng.random())) for _ in range(WORKERS)]
            delay = rng.uniform(*KILL_AFTER_S)
            for w in workers:
                w.start()
            time.sleep(delay)
            server.kill()
            for w in workers:
                w.join(15)
            server.start()
            token = server.superuser_token()
            rows, problems = check(server.port, token, fts)
            problems += [e for w in workers for e in w.errors]
            ok = not problems
            passed, failed = passed + ok, failed + (not ok)
            log(f"cycle {cycle}: SIGKILL after {delay:.2f} s; {sum(w.writes for w in workers)} "
                f"writes answered; {rows} records; index agrees: {'yes' if ok else 'NO'}")
            for p in problems[:10]:
                log(f"  {p}")
        server.stop()
    except Exception as e:  # noqa: BLE001 - any setup failure fails the run, with the log
        log(f"search_crash: error: {e!r}")
        log(f"server log tail:\n{tail(server.log_path)}")
        failed += 1
    finally:
        server.kill()
        if os.environ.get("KEEP_DATA") == "1" or failed:
            log(f"data dir and server log kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    log(f"search_crash: {time.time() - started:.1f} s")
    return summary_line(passed, failed)


if __name__ == "__main__":
    sys.exit(main())
