#!/usr/bin/env python3
"""Measures continuous replication with Litestream (the figures in the README).

Starts ferrobase with [replication] to a file:// replica (sync interval 1 s, the
default), loads RECORDS records through the batch API, then:
- lag: SAMPLES single writes, one every 1.5 s; for each, the time from the
  write's acknowledgement until a new LTX file holding it appears in the replica;
- restore: stops the server and times `ferrobase restore --from REPLICA` into a
  fresh dir (litestream restore plus PRAGMA integrity_check), and checks the
  restored record count.
Not part of tests/run.sh (it is a measurement, ~2-4 minutes). Loopback only.

Environment: FERROBASE_BIN (default target/debug or release ferrobase),
LITESTREAM (default tests/.venv-litestream/bin/litestream), RECORDS (100000),
SAMPLES (20), KEEP_DATA=1 keeps the temp dir.
"""

import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, Server, create_collection, ferrobase_bin, log, request  # noqa: E402

RECORDS = int(os.environ.get("RECORDS", 100_000))
SAMPLES = int(os.environ.get("SAMPLES", 20))
BATCH = 500
LAG_TIMEOUT_S = 30


def newest_txid(replica_dir):
    """The highest TXID among the replica's level-0 LTX files of data.db (0 if none)."""
    level0 = os.path.join(replica_dir, "data.db", "ltx", "0")
    try:
        names = os.listdir(level0)
    except FileNotFoundError:
        return 0
    return max((int(n.split("-")[1].split(".")[0], 16) for n in names if n.endswith(".ltx")),
               default=0)


def main():
    binary = ferrobase_bin()
    litestream = os.environ.get(
        "LITESTREAM", os.path.join(ROOT, "tests", ".venv-litestream", "bin", "litestream"))
    work = tempfile.mkdtemp(prefix="ferrobase-replication-")
    data_dir, replica = os.path.join(work, "data"), os.path.join(work, "replica")
    os.environ["FERROBASE_REPLICATION_REPLICA"] = "file://" + replica
    os.environ["FERROBASE_REPLICATION_LITESTREAM"] = litestream
    server = Server(binary, data_dir, os.path.join(work, "server.log"))
    try:
        server.upsert_superuser()
        server.start()
        token = server.superuser_token()
        status, body = request(server.port, "PATCH", "/api/settings",
                               {"batch": {"enabled": True, "maxRequests": BATCH}}, token=token)
        assert status == 200, (status, body)
        create_collection(server.port, token, {
            "name": "notes", "type": "base",
            "fields": [{"name": "title", "type": "text"}, {"name": "n", "type": "number"}]})
        started = time.time()
        for first in range(0, RECORDS, BATCH):
            reqs = [{"method": "POST", "url": "/api/collections/notes/records",
                     "body": {"title": f"note {i} " + "x" * 40, "n": i}}
                    for i in range(first, min(first + BATCH, RECORDS))]
            status, body = request(server.port, "POST", "/api/batch", {"requests": reqs},
                                   token=token, timeout=120)
            assert status == 200, (status, str(body)[:300])
        log(f"loaded {RECORDS} records in {time.time() - started:.1f} s")
        time.sleep(3)  # let Litestream catch up with the load

        lags = []
        for i in range(SAMPLES):
            before = newest_txid(replica)
            status, _ = request(server.port, "POST", "/api/collections/notes/records",
                                {"title": f"lag {i}", "n": -i}, token=token)
            acked = time.time()
            assert status == 200
            while newest_txid(replica) <= before:
                if time.time() - acked > LAG_TIMEOUT_S:
                    raise RuntimeError(f"write {i} not in the replica after {LAG_TIMEOUT_S} s")
                time.sleep(0.005)
            lags.append(time.time() - acked)
            time.sleep(1.5)
        lags.sort()
        log(f"lag write->replica over {SAMPLES} writes: median {statistics.median(lags):.2f} s, "
            f"p90 {lags[int(len(lags) * 0.9) - 1]:.2f} s, max {lags[-1]:.2f} s")

        assert server.stop() == 0
        restored_dir = os.path.join(work, "restored")
        started = time.time()
        r = subprocess.run([binary, "restore", "--from", "file://" + replica,
                            f"--dir={restored_dir}"], capture_output=True)
        took = time.time() - started
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        conn = sqlite3.connect(os.path.join(restored_dir, "data.db"))
        count = conn.execute("SELECT count(*) FROM notes").fetchone()[0]
        conn.close()
        size = os.path.getsize(os.path.join(restored_dir, "data.db"))
        expected = RECORDS + SAMPLES
        log(f"restore of a {size / 1e6:.1f} MB data.db ({count} records) with integrity "
            f"check: {took:.2f} s")
        assert count == expected, f"restored {count} records, expected {expected}"
        print(f"replication: lag median {statistics.median(lags):.2f} s max {lags[-1]:.2f} s; "
              f"restore {took:.2f} s for {count} records")
    finally:
        server.kill()
        if os.environ.get("KEEP_DATA") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
