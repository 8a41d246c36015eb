#!/usr/bin/env python3
"""Sustained mixed load: zero 5xx, flat memory, no descriptor growth.

Starts ferrobase on a fresh data dir (loopback), seeds a collection, then CONNECTIONS
python threads, each with its own keep-alive connection, send a mix of reads and writes:
a warm-up of WARMUP_SECONDS (after which every client disconnects), then LOAD_SECONDS of
the same load with fresh clients. Checks:
  1. no 5xx and no broken connections or timeouts (and no 4xx: every request is valid);
  2. RSS at the end of the load <= 1.5 x RSS at the end of the warm-up (memory flat);
  3. open descriptors at the end of the load within FD_SLACK of those at the end of the
     warm-up, and once the clients have gone, within FD_SLACK of the idle count after
     the warm-up;
  4. the server still answers /api/health and stops cleanly on SIGTERM.
Prints its figures and ends with `P passed, F failed`. Bounded: about
WARMUP_SECONDS + LOAD_SECONDS + 10 s.

Environment: FERROBASE_BIN, LOAD_SECONDS (30), WARMUP_SECONDS (6), CONNECTIONS (64),
KEEP_DATA=1.
"""

import http.client
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from urllib.parse import quote

sys.dont_write_bytecode = True  # no __pycache__ in the work tree for the helper module
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    Server, create_collection, ferrobase_bin, log, request, request_on, summary_line, tail)

LOAD_SECONDS = int(os.environ.get("LOAD_SECONDS", 30))
WARMUP_SECONDS = int(os.environ.get("WARMUP_SECONDS", 6))
CONNECTIONS = int(os.environ.get("CONNECTIONS", 64))
SEED_RECORDS = 1000
RSS_GROWTH_MAX = 1.5
FD_SLACK = 8  # a lazily opened pool connection or a socket mid-close, not a leak
REQUEST_TIMEOUT_S = 15
COLLECTION = "load_items"


class Client(threading.Thread):
    """One keep-alive connection: 80% reads (view, filtered list, list), 20% writes
    (7% create, 6% update and 7% delete of records this client created)."""

    def __init__(self, no, port, user_token, stop_at):
        super().__init__(daemon=True)
        self.no, self.port, self.token, self.stop_at = no, port, user_token, stop_at
        self.name = f"load-client-{no}"
        self.rng = random.Random(no)
        self.count, self.statuses, self.errors = 0, {}, []
        self.mine = []

    def pick(self):
        r, rng = self.rng.random(), self.rng
        base = f"/api/collections/{COLLECTION}/records"
        if r < 0.40:
            return "GET", f"{base}/s{rng.randrange(SEED_RECORDS):014d}", None
        if r < 0.65:
            flt = quote(f"n >= {rng.randrange(1000)} && flag = true")
            return "GET", f"{base}?perPage=30&sort=-n,id&filter={flt}", None
        if r < 0.80:
            return "GET", f"{base}?page={rng.randrange(1, 20)}&perPage=50&fields=id,n", None
        # Creates and deletes balance out, so the database stays about the same size and
        # memory that keeps growing after warm-up is the server's, not a growing cache.
        if r < 0.87 or not self.mine:
            body = {"title": f"load {self.no} {self.count}", "n": rng.randrange(1000),
                    "flag": rng.random() < 0.5, "payload": {"k": [1, 2, 3], "s": "x" * 200}}
            return "POST", base, body
        if r < 0.93:
            return "PATCH", f"{base}/{rng.choice(self.mine)}", {"n+": 1, "title": "updated"}
        return "DELETE", f"{base}/{self.mine.pop(rng.randrange(len(self.mine)))}", None

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        while time.time() < self.stop_at:
            method, path, body = self.pick()
            try:
                status, data = request_on(conn, method, path, body, self.token)
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(f"{method} {path}: {e!r}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                  timeout=REQUEST_TIMEOUT_S)
                continue
            self.count += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status >= 500 and len(self.errors) < 20:
                self.errors.append(f"{method} {path}: HTTP {status} {str(data)[:200]}")
            if method == "POST" and status == 200:
                self.mine.append(data["id"])
        conn.close()


def seed(server, token):
    fields = [{"name": "title", "type": "text"}, {"name": "n", "type": "number"},
              {"name": "flag", "type": "bool"}, {"name": "payload", "type": "json"}]
    create_collection(server.port, token, {
        "name": COLLECTION, "type": "base", "listRule": "", "viewRule": "",
        "createRule": "", "updateRule": "", "deleteRule": "", "fields": fields,
        "indexes": [f"CREATE INDEX idx_{COLLECTION}_n ON {COLLECTION} (n)"]})
    errors = []

    def worker(k):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for i in range(k, SEED_RECORDS, 8):
            status, data = request_on(conn, "POST", f"/api/collections/{COLLECTION}/records", {
                "id": f"s{i:014d}", "title": f"seed {i}", "n": (i * 7919) % 1000,
                "flag": i % 3 != 0, "payload": {"i": i}}, token)
            if status != 200:
                errors.append(f"seed {i}: HTTP {status} {data}")
                return
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])


def run_clients(server, first_no, seconds):
    stop_at = time.time() + seconds
    clients = [Client(first_no + i, server.port, None, stop_at) for i in range(CONNECTIONS)]
    for c in clients:
        c.start()
    return clients


def join_clients(clients):
    for c in clients:
        c.join(max(0.0, c.stop_at - time.time()) + REQUEST_TIMEOUT_S + 5)


def main():
    started = time.time()
    binary = ferrobase_bin()
    work = tempfile.mkdtemp(prefix="ferrobase-load-")
    server = Server(binary, os.path.join(work, "data"), os.path.join(work, "server.log"))
    log(f"load: {binary}, {CONNECTIONS} connections, {WARMUP_SECONDS} s warm-up + "
        f"{LOAD_SECONDS} s, dir {work}")
    checks = []  # (name, ok, detail)
    try:
        server.upsert_superuser()
        server.start()
        token = server.superuser_token()
        seed(server, token)
        fds_idle_before = server.fd_count()
        rss_start = server.status_kib("VmRSS")
        cpu0 = server.cpu_seconds()

        # Warm-up: the same load, then every client disconnects, so that pools, caches
        # and thread counts have settled before the baseline is read.
        warm = run_clients(server, 0, WARMUP_SECONDS)
        time.sleep(max(0.0, warm[0].stop_at - 0.5 - time.time()))
        rss_warm, fds_warm = server.status_kib("VmRSS"), server.fd_count()
        anon_warm, file_warm = server.status_kib("RssAnon"), server.status_kib("RssFile")
        join_clients(warm)
        time.sleep(1.0)  # let the server notice the closed connections
        fds_idle_warm = server.fd_count()

        clients = run_clients(server, CONNECTIONS, LOAD_SECONDS)
        stop_at = clients[0].stop_at
        rss_peak, samples = rss_warm, []
        while time.time() < stop_at - 1:
            rss = server.status_kib("VmRSS")
            rss_peak = max(rss_peak, rss)
            samples.append((round(time.time() - started), rss // 1024, server.fd_count()))
            time.sleep(min(2.0, max(0.0, stop_at - 1 - time.time())))
        rss_end, fds_end = server.status_kib("VmRSS"), server.fd_count()
        anon_end, file_end = server.status_kib("RssAnon"), server.status_kib("RssFile")
        join_clients(clients)
        cpu = server.cpu_seconds() - cpu0
        time.sleep(1.0)
        fds_idle_after = server.fd_count()
        clients += warm

        total = sum(c.count for c in clients)
        statuses = {}
        for c in clients:
            for k, v in c.statuses.items():
                statuses[k] = statuses.get(k, 0) + v
        errors = [e for c in clients for e in c.errors]
        n5xx = sum(v for k, v in statuses.items() if k >= 500)
        secs = WARMUP_SECONDS + LOAD_SECONDS
        log(f"requests: {total} in {secs} s ({total / secs:.0f}/s), "
            f"statuses {dict(sorted(statuses.items()))}, connection errors "
            f"{len([e for e in errors if 'HTTP' not in e])}, server CPU {cpu:.1f} s")
        log(f"RSS MiB: start {rss_start / 1024:.1f}, after warm-up {rss_warm / 1024:.1f}, "
            f"peak {rss_peak / 1024:.1f}, end {rss_end / 1024:.1f} "
            f"(limit {RSS_GROWTH_MAX} x warm-up = {RSS_GROWTH_MAX * rss_warm / 1024:.1f})")
        log(f"  of which heap (RssAnon) {anon_warm / 1024:.1f} -> {anon_end / 1024:.1f}, "
            f"file-backed (RssFile: binary, mmap'd database) {file_warm / 1024:.1f} -> "
            f"{file_end / 1024:.1f}")
        log(f"open fds: idle before load {fds_idle_before}, end of warm-up {fds_warm}, "
            f"idle after warm-up {fds_idle_warm}, end of load {fds_end}, idle after load "
            f"{fds_idle_after}; server threads {server.threads()}")
        log("samples (t s, RSS MiB, fds): " + " ".join(f"{s}" for s in samples))
        for e in errors[:10]:
            log(f"  {e}")
        unexpected_4xx = {k: v for k, v in statuses.items() if 400 <= k < 500}
        checks.append(("no 5xx or connection errors", n5xx == 0 and not errors,
                       f"5xx {n5xx}, errors {len(errors)}"))
        checks.append(("no unexpected 4xx", not unexpected_4xx, f"{unexpected_4xx}"))
        checks.append(("memory flat after warm-up", rss_end <= RSS_GROWTH_MAX * rss_warm,
                       f"end {rss_end} KiB vs warm-up {rss_warm} KiB"))
        checks.append(("no descriptor growth",
                       fds_end <= fds_warm + FD_SLACK
                       and fds_idle_after <= fds_idle_warm + FD_SLACK,
                       f"under load {fds_warm} -> {fds_end}; idle {fds_idle_warm} -> "
                       f"{fds_idle_after}"))
        healthy = server.health_ok()
        code = server.stop()
        checks.append(("healthy after load and clean SIGTERM stop", healthy and code == 0,
                       f"health {healthy}, exit code {code}"))
    except Exception as e:  # noqa: BLE001 - a setup failure fails the run, with the log
        checks.append(("setup and load ran", False, repr(e)))
        log(f"server log tail:\n{tail(server.log_path)}")
    finally:
        server.kill()
    failed = [c for c in checks if not c[1]]
    for name, ok, detail in checks:
        log(f"{'ok    ' if ok else 'FAILED'} {name} ({detail})")
    if os.environ.get("KEEP_DATA") == "1" or failed:
        log(f"data dir and server log kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    log(f"load: {time.time() - started:.1f} s")
    return summary_line(len(checks) - len(failed), len(failed))


if __name__ == "__main__":
    sys.exit(main())
