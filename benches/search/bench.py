#!/usr/bin/env python3
"""Full-text search vs a `~` scan, the write cost of the index, and aggregation vs
summing on the client (issue 20). Ferrobase only.

Seeds RECORDS records (~1 KB of text each, words `w0000`…`w4999`, Zipf-like) owned by
one user into `articles` (searchable `body`) and the same into `plain` (no index),
both under the list rule `owner = @request.auth.id`, through `/api/batch` (500 a
batch, the two collections in turn; the time spent in each collection's batches is
its write cost; WRITE_ONLY=1 then updates and deletes UPDATES of them the same
way, timed per collection, and stops there). Then, as that user,
QUERIES sequential requests each (perPage 20, with totals): `?search=A B` against
`?filter=body ~ 'A' && body ~ 'B'` on the same data (checked to find the same total),
p50/p99 and the ratio; and `aggregate?groupBy=kind&aggregate=count(),sum(amount)`
against fetching every record (perPage 1000) and summing in Python (checked equal).
Loopback only; sequential; nothing runs in the background afterwards.

    cargo build --locked --bin ferrobase          # or --release, then FB_BIN=target/release/ferrobase
    python3 benches/search/bench.py               # RECORDS=100000 QUERIES=40
"""

import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("FB_BIN", os.path.join(ROOT, "target", "debug", "ferrobase"))
RECORDS = int(os.environ.get("RECORDS", "100000"))
QUERIES = int(os.environ.get("QUERIES", "40"))
# WRITE_ONLY=1: seed and report the write cost, skip the queries.
WRITE_ONLY = os.environ.get("WRITE_ONLY") == "1"
# CREATES_SECONDS=N (with WRITE_ONLY=1): after the seeding, single creates from
# CREATES_CONNECTIONS concurrent wrk connections, N seconds into each collection,
# twice in turn: what the index costs writes that arrive together (the writer
# commits them in groups) rather than in batches of 500.
CREATES_SECONDS = int(os.environ.get("CREATES_SECONDS", "0"))
CREATES_CONNECTIONS = int(os.environ.get("CREATES_CONNECTIONS", "64"))
# Records updated and then deleted after the seeding (WRITE_ONLY runs only).
UPDATES = min(int(os.environ.get("UPDATES", "10000")), RECORDS)
BATCH = 500
EMAIL, PASSWORD = "bench@example.com", "bench-pass-123"
USER = ("reader@example.com", "reader-pass-123")
VOCAB = [f"w{i:04d}" for i in range(5000)]
KINDS = ["news", "blog", "docs", "faq"]


def call(base, method, path, body=None, token=None, timeout=600):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": token} if token else {})})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def start(work):
    data = os.path.join(work, "pb_data")
    subprocess.run([BINARY, "superuser", "upsert", EMAIL, PASSWORD, f"--dir={data}"],
                   check=True, capture_output=True, cwd=work)
    out = open(os.path.join(work, "stdout"), "wb")
    proc = subprocess.Popen([BINARY, "serve", "--http=127.0.0.1:0", f"--dir={data}"],
                            stdout=out, stderr=subprocess.DEVNULL, cwd=work)
    deadline = time.time() + 60
    while time.time() < deadline:
        with open(os.path.join(work, "stdout"), "rb") as f:
            m = re.search(rb"http://127\.0\.0\.1:(\d+)", f.readline())
        if m:
            return proc, f"http://127.0.0.1:{int(m.group(1))}"
        time.sleep(0.05)
    proc.kill()
    sys.exit("server did not start")


def body_text(rng, weights):
    # ~1 KB: 170 words of 6 bytes.
    return " ".join(rng.choices(VOCAB, weights, k=170))


def seed(base, su, owner, weights):
    """Seeds `plain` and `articles` batch by batch in turn (same texts, same
    database size at each step, so neither pays for growing the file alone);
    returns each collection's total seeding time and its records' ids."""
    rngs = {name: random.Random(7) for name in ("plain", "articles")}
    spent = {name: 0.0 for name in rngs}
    ids = {name: [] for name in rngs}
    for start in range(0, RECORDS, BATCH):
        order = ("plain", "articles") if (start // BATCH) % 2 == 0 else ("articles", "plain")
        for name in order:
            rng = rngs[name]
            requests = [{"method": "POST", "url": f"/api/collections/{name}/records",
                         "body": {"owner": owner, "body": body_text(rng, weights),
                                  "kind": rng.choice(KINDS), "amount": rng.randrange(0, 1000)}}
                        for _ in range(min(BATCH, RECORDS - start))]
            t = time.perf_counter()
            answers = call(base, "POST", "/api/batch", {"requests": requests}, su)
            spent[name] += time.perf_counter() - t
            ids[name].extend(a["body"]["id"] for a in answers)
    return spent, ids


def rewrite(base, su, ids, weights):
    """Updates the body of the first UPDATES records of each collection, then
    deletes them, through `/api/batch` (500 a batch, the collections in turn,
    same texts); returns each collection's update and delete time."""
    rngs = {name: random.Random(13) for name in ids}
    spent = {(name, verb): 0.0 for name in ids for verb in ("update", "delete")}
    for verb in ("update", "delete"):
        for start in range(0, UPDATES, BATCH):
            order = list(ids) if (start // BATCH) % 2 == 0 else list(reversed(list(ids)))
            for name in order:
                chunk = ids[name][start:min(start + BATCH, UPDATES)]
                url = f"/api/collections/{name}/records/"
                requests = [{"method": "PATCH", "url": url + rid,
                             "body": {"body": body_text(rngs[name], weights)}}
                            if verb == "update" else {"method": "DELETE", "url": url + rid}
                            for rid in chunk]
                t = time.perf_counter()
                call(base, "POST", "/api/batch", {"requests": requests}, su)
                spent[(name, verb)] += time.perf_counter() - t
    return spent


def concurrent_creates(base, su, owner):
    """Creates/s of single creates into each collection under wrk (two rounds,
    the collections in turn); returns {name: [rate per round]}."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "creates.lua")
    rates = {"plain": [], "articles": []}
    for round_ in range(2):
        order = ("plain", "articles") if round_ == 0 else ("articles", "plain")
        for name in order:
            env = {**os.environ, "COLLECTION": name, "OWNER": owner, "TOKEN": su}
            out = subprocess.run(
                ["wrk", "-t1", f"-c{CREATES_CONNECTIONS}", f"-d{CREATES_SECONDS}s",
                 "-s", script, base], env=env, capture_output=True, text=True, check=True).stdout
            m = re.search(r"Requests/sec:\s+([\d.]+)", out)
            if not m or "Non-2xx" in out:
                sys.exit(f"wrk against {name} failed:\n{out}")
            rates[name].append(float(m.group(1)))
    return rates


def timed(base, path, token):
    t = time.perf_counter()
    body = call(base, "GET", path, token=token)
    return (time.perf_counter() - t) * 1000, body


def percentiles(ms):
    ms = sorted(ms)
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))]


def main():
    work = tempfile.mkdtemp(prefix="ferrobase-search-bench-")
    proc, base = start(work)
    try:
        su = call(base, "POST", "/api/collections/_superusers/auth-with-password",
                  {"identity": EMAIL, "password": PASSWORD})["token"]
        call(base, "PATCH", "/api/settings",
             {"batch": {"enabled": True, "maxRequests": BATCH, "timeout": 120}}, su)
        users = call(base, "GET", "/api/collections/users", token=su)
        reader = call(base, "POST", "/api/collections/users/records",
                      {"email": USER[0], "password": USER[1], "passwordConfirm": USER[1]})
        token = call(base, "POST", "/api/collections/users/auth-with-password",
                     {"identity": USER[0], "password": USER[1]})["token"]
        rule = "owner = @request.auth.id"
        for name, searchable in (("plain", False), ("articles", True)):
            body = {"name": "body", "type": "text", "max": 5000}
            if searchable:
                body["searchable"] = True
            call(base, "POST", "/api/collections", {
                "name": name, "listRule": rule, "viewRule": rule, "fields": [
                    {"name": "owner", "type": "relation", "collectionId": users["id"],
                     "maxSelect": 1},
                    body,
                    {"name": "kind", "type": "select", "values": KINDS, "maxSelect": 1},
                    {"name": "amount", "type": "number", "onlyInt": True}]}, su)
        weights = [1 / (i + 1) for i in range(len(VOCAB))]
        seeded, ids = seed(base, su, reader["id"], weights)
        for name in ("plain", "articles"):
            print(f"seeded {RECORDS} records into {name} in {seeded[name]:.1f} s "
                  f"({RECORDS / seeded[name]:.0f} records/s)", flush=True)
        cost = seeded["articles"] / seeded["plain"] - 1
        print(f"write cost of the index: {cost * 100:+.0f} % seeding time", flush=True)
        if WRITE_ONLY and CREATES_SECONDS:
            rates = concurrent_creates(base, su, reader["id"])
            for i, (plain, indexed) in enumerate(zip(rates["plain"], rates["articles"])):
                print(f"single creates, {CREATES_CONNECTIONS} connections, round {i + 1}: "
                      f"plain {plain:.0f}/s, articles {indexed:.0f}/s; write cost of the "
                      f"index: {(plain / indexed - 1) * 100:+.0f} %", flush=True)
        if WRITE_ONLY:
            rewritten = rewrite(base, su, ids, weights)
            for verb in ("update", "delete"):
                plain, indexed = rewritten[("plain", verb)], rewritten[("articles", verb)]
                print(f"{verb}d {UPDATES} records: plain {UPDATES / plain:.0f} records/s, "
                      f"articles {UPDATES / indexed:.0f} records/s; write cost of the index: "
                      f"{(indexed / plain - 1) * 100:+.0f} %", flush=True)
            return

        rng = random.Random(11)
        # Common words (ranks 20-60: each pair in ~10 % of the records) and rare
        # ones (ranks 500-1500: a handful of records per pair).
        for label, lo, hi in (("common", 20, 60), ("rare", 500, 1500)):
            pairs = [(rng.choice(VOCAB[lo:hi]), rng.choice(VOCAB[lo:hi])) for _ in range(QUERIES)]
            search_ms, rank_ms, scan_ms, hits = [], [], [], []
            for a, b in pairs:
                q = urllib.parse.urlencode({"search": f"{a} {b}", "perPage": 20})
                ms, found = timed(base, f"/api/collections/articles/records?{q}", token)
                search_ms.append(ms)
                q = urllib.parse.urlencode({"search": f"{a} {b}", "perPage": 20, "sort": "@rank"})
                rank_ms.append(timed(base, f"/api/collections/articles/records?{q}", token)[0])
                f = urllib.parse.urlencode({"filter": f"body ~ '{a}' && body ~ '{b}'",
                                            "perPage": 20})
                ms, scanned = timed(base, f"/api/collections/articles/records?{f}", token)
                scan_ms.append(ms)
                if found["totalItems"] != scanned["totalItems"]:
                    sys.exit(f"{a} {b}: search found {found['totalItems']}, "
                             f"scan {scanned['totalItems']}")
                hits.append(found["totalItems"])
            (s50, s99), (f50, f99) = percentiles(search_ms), percentiles(scan_ms)
            r50, r99 = percentiles(rank_ms)
            print(f"two {label} words (median {statistics.median(hits):.0f} hits), list rule, "
                  f"perPage 20 with total, {QUERIES} queries: search p50 {s50:.1f} ms "
                  f"p99 {s99:.1f} ms; `~` scan p50 {f50:.1f} ms p99 {f99:.1f} ms; "
                  f"search {f50 / s50:.0f}x faster at p50; with sort=@rank p50 {r50:.1f} ms "
                  f"p99 {r99:.1f} ms", flush=True)

        agg_q = "groupBy=kind&aggregate=count(),sum(amount)"
        agg_ms, agg = timed(base, f"/api/collections/articles/aggregate?{agg_q}", token)
        t = time.perf_counter()
        sums, page = {}, 1
        while True:
            q = urllib.parse.urlencode({"perPage": 1000, "page": page, "skipTotal": 1,
                                        "fields": "kind,amount"})
            items = call(base, "GET", f"/api/collections/articles/records?{q}", token=token)["items"]
            if not items:
                break
            for it in items:
                c, s = sums.get(it["kind"], (0, 0))
                sums[it["kind"]] = (c + 1, s + it["amount"])
            page += 1
        client_ms = (time.perf_counter() - t) * 1000
        want = {g["kind"]: (g["count"], g["sum_amount"]) for g in agg["items"]}
        if want != sums:
            sys.exit(f"aggregate {want} != client sums {sums}")
        print(f"group by kind, count + sum over {RECORDS} records: aggregate {agg_ms:.0f} ms; "
              f"fetching every record (fields=kind,amount) and summing {client_ms:.0f} ms "
              f"({client_ms / agg_ms:.0f}x)", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
