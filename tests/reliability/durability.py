#!/usr/bin/env python3
"""Neither kill -9 nor SIGTERM under load loses an acknowledged write.

For each of CYCLES cycles: WORKERS threads send concurrent creates and updates to a
ferrobase server and remember every write that got a 2xx; the server is stopped at a
random moment (0.5-2 s in): with SIGKILL in odd cycles, with SIGTERM in even ones (a
graceful stop under load, which must also exit 0 within its drain bound); it is restarted on the same data dir and every
acknowledged write must be there with its exact values, and PRAGMA integrity_check must
say ok. Loopback only; bounded (about 5-30 s per cycle, a 110 s budget overall).

Each record is written by one worker only, one request at a time, so its last
acknowledged value is exactly what must be stored, unless a later write of that worker
was in flight when the server died: then either value is acceptable (and whichever is
stored becomes the reference for the next cycle).

Environment: FERROBASE_BIN (default target/release/ferrobase, else target/debug/ferrobase),
CYCLES (5), WORKERS (8), SEED (random; printed so that a failure can be replayed),
KEEP_DATA=1 keeps the data dir and server log.
Prints `acknowledged writes lost: L of N` and ends with `P passed, F failed` (cycles).
"""

import http.client
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the work tree for the helper module
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    Server, create_collection, ferrobase_bin, log, request, request_on, summary_line, tail)

CYCLES = int(os.environ.get("CYCLES", 5))
WORKERS = int(os.environ.get("WORKERS", 8))
SEED = int(os.environ.get("SEED", random.randrange(1 << 30)))
KILL_AFTER_S = (0.5, 2.0)
BUDGET_S = 110  # the whole script stays under 2 minutes
REQUEST_TIMEOUT_S = 10
COLLECTION = "durable"
# Text that must come back byte for byte: quotes, backslashes, non-ASCII, astral plane.
ALPHABET = "abcxyz0189 '\"\\%_-üß€日本𝄞"


class Rec:
    """What the test knows about one record: its acknowledged history, and the value of
    a write that was in flight when the server died (None if none was)."""

    __slots__ = ("acked", "inflight")

    def __init__(self):
        self.acked = []          # values dicts, oldest first, each got a 2xx
        self.inflight = None     # values dict sent without an answer


class Worker(threading.Thread):
    def __init__(self, no, port, cycle, records, rng):
        super().__init__(daemon=True)
        self.no, self.port, self.cycle, self.rng = no, port, cycle, rng
        self.records = records  # id -> Rec, this worker's own records only
        self.acked_writes = 0
        self.statuses = {}
        self.unexpected = []
        self.seq = 0

    def values(self):
        r = self.rng
        return {
            "worker": self.no,
            "val": "<" + "".join(r.choice(ALPHABET) for _ in range(r.randrange(0, 40))) + ">",
            "n": r.randrange(-(1 << 40), 1 << 40) + r.choice((0, 0.25, 0.5)),
            "flag": r.random() < 0.5,
        }

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        own = [rid for rid, rec in self.records.items() if rec.acked]
        while True:
            update = own and self.rng.random() < 0.6
            vals = self.values()
            if update:
                rid = self.rng.choice(own)
                method, path, body = "PATCH", f"/api/collections/{COLLECTION}/records/{rid}", vals
            else:
                self.seq += 1
                rid = "%02d%02d%011d" % (self.cycle, self.no, self.seq)
                method, path = "POST", f"/api/collections/{COLLECTION}/records"
                body = dict(vals, id=rid)
                self.records[rid] = Rec()
            rec = self.records[rid]
            rec.inflight = vals
            try:
                status, data = request_on(conn, method, path, body)
            except (OSError, http.client.HTTPException):
                return  # the server is gone; this write stays "in flight"
            self.statuses[status] = self.statuses.get(status, 0) + 1
            rec.inflight = None
            if 200 <= status < 300:
                rec.acked.append(vals)
                self.acked_writes += 1
                if not update:
                    own.append(rid)
                mismatch = [k for k in vals if data.get(k) != vals[k]]
                if mismatch:
                    self.unexpected.append(f"{method} {rid}: response differs in {mismatch}")
            else:
                self.unexpected.append(f"{method} {rid}: HTTP {status} {str(data)[:200]}")
                if not update:
                    del self.records[rid]


def dump_all(port, token):
    """Every stored record of the collection, by id."""
    out, page = {}, 1
    while True:
        status, data = request(port, "GET",
                               f"/api/collections/{COLLECTION}/records"
                               f"?perPage=500&sort=id&skipTotal=1&page={page}", token=token)
        if status != 200:
            raise RuntimeError(f"listing after restart: HTTP {status} {data}")
        for item in data["items"]:
            out[item["id"]] = item
        if not data["items"]:
            return out
        page += 1


def verify(stored, all_records):
    """Checks every record against what was acknowledged; updates the reference to the
    stored state. Returns (acknowledged writes lost, descriptions)."""
    lost, problems = 0, []
    for rid, rec in list(all_records.items()):
        got = stored.get(rid)
        candidates = []
        if rec.acked:
            candidates.append(rec.acked[-1])
        if rec.inflight is not None:
            candidates.append(rec.inflight)
        if got is None:
            if rec.acked:
                lost += len(rec.acked)
                problems.append(f"{rid}: missing after restart ({len(rec.acked)} acknowledged writes)")
            del all_records[rid]  # an unacknowledged create that never landed: fine
            continue
        got_vals = {k: got.get(k) for k in ("worker", "val", "n", "flag")}
        match = next((c for c in candidates if c == got_vals), None)
        if match is None:
            older = [i for i, v in enumerate(rec.acked) if v == got_vals]
            n_lost = len(rec.acked) - 1 - older[-1] if older else 1
            lost += n_lost
            problems.append(f"{rid}: stored {got_vals}, last acknowledged {rec.acked[-1:]}, "
                            f"in flight {rec.inflight}")
            rec.acked.append(got_vals)  # continue from what is stored
        elif match is rec.inflight and (not rec.acked or match is not rec.acked[-1]):
            rec.acked.append(match)  # the in-flight write landed; it is the reference now
        rec.inflight = None
    unknown = set(stored) - set(all_records)
    if unknown:
        problems.append(f"{len(unknown)} records nobody created, e.g. {sorted(unknown)[:3]}")
    return lost, problems


def integrity_check(db_path):
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()


def main():
    started = time.time()
    rng = random.Random(SEED)
    binary = ferrobase_bin()
    work = tempfile.mkdtemp(prefix="ferrobase-durability-")
    data_dir = os.path.join(work, "data")
    server = Server(binary, data_dir, os.path.join(work, "server.log"))
    log(f"durability: {binary}, {CYCLES} cycles x {WORKERS} workers, SEED={SEED}, dir {work}")
    passed = failed = 0
    total_acked = total_lost = 0
    per_worker = [dict() for _ in range(WORKERS)]
    try:
        server.upsert_superuser()
        server.start()
        token = server.superuser_token()
        create_collection(server.port, token, {
            "name": COLLECTION, "type": "base",
            "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": None,
            "fields": [{"name": "worker", "type": "number"}, {"name": "val", "type": "text"},
                       {"name": "n", "type": "number"}, {"name": "flag", "type": "bool"}]})
        for cycle in range(1, CYCLES + 1):
            if time.time() - started > BUDGET_S - 20:
                log(f"cycle {cycle}: skipped, time budget ({BUDGET_S} s) nearly spent")
                break
            workers = [Worker(w, server.port, cycle, per_worker[w],
                              random.Random(rng.random())) for w in range(WORKERS)]
            delay = rng.uniform(*KILL_AFTER_S)
            for w in workers:
                w.start()
            time.sleep(delay)
            how = "SIGKILL" if cycle % 2 else "SIGTERM"
            exit_code = server.kill() if how == "SIGKILL" else server.stop()
            for w in workers:
                w.join(REQUEST_TIMEOUT_S + 5)
            acked = sum(w.acked_writes for w in workers)
            statuses = {}
            for w in workers:
                for k, v in w.statuses.items():
                    statuses[k] = statuses.get(k, 0) + v
            unexpected = [u for w in workers for u in w.unexpected]
            inflight = sum(1 for recs in per_worker for r in recs.values() if r.inflight is not None)

            server.start()
            token = server.superuser_token()
            stored = dump_all(server.port, token)
            all_records = {}
            for recs in per_worker:
                all_records.update(recs)
            lost, problems = verify(stored, all_records)
            for recs in per_worker:  # drop what verify() forgot (creates that never landed)
                for rid in [r for r in recs if r not in all_records]:
                    del recs[rid]
            integrity = integrity_check(os.path.join(data_dir, "data.db"))
            total_acked += acked
            total_lost += lost
            clean_exit = how == "SIGKILL" or exit_code == 0
            if not clean_exit:
                problems.append(f"SIGTERM under load: exit code {exit_code}, expected 0")
            ok = lost == 0 and not problems and not unexpected and integrity == [("ok",)]
            passed, failed = passed + ok, failed + (not ok)
            log(f"cycle {cycle}: {how} after {delay:.2f} s; {acked} acknowledged writes "
                f"(statuses {statuses}), {inflight} in flight; {len(stored)} records stored; "
                f"lost {lost}; integrity_check {integrity[0][0] if len(integrity) == 1 else integrity[:5]}"
                f" -> {'ok' if ok else 'FAILED'}")
            for p in (problems + unexpected)[:10]:
                log(f"  {p}")
        code = server.stop()
        final = integrity_check(os.path.join(data_dir, "data.db"))
        log(f"after graceful stop: exit code {code}, integrity_check {final[0][0] if len(final) == 1 else final[:5]}")
        if final != [("ok",)]:
            failed += 1
    except Exception as e:  # noqa: BLE001 - any setup failure fails the run, with the log
        log(f"durability: error: {e!r}")
        log(f"server log tail:\n{tail_log(server)}")
        failed += 1
    finally:
        server.kill()
        if os.environ.get("KEEP_DATA") == "1" or failed:
            log(f"data dir and server log kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    log(f"acknowledged writes lost: {total_lost} of {total_acked}")
    log(f"durability: {time.time() - started:.1f} s")
    return summary_line(passed, failed)


def tail_log(server):
    return tail(server.log_path)


if __name__ == "__main__":
    sys.exit(main())
