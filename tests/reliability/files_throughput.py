"""Upload and download throughput of one file size, local disk vs S3 (moto on
loopback, from tests/.venv-s3), through the HTTP API, plus the server's peak RSS.
Not part of tests/run.sh: a measurement for the README.

    FERROBASE_BIN=target/release/ferrobase SIZE_MIB=1 ROUNDS=20 python3 tests/reliability/files_throughput.py
"""

import http.client
import os
import shutil
import sys
import tempfile
import time

from common import HOST, Server, create_collection, ferrobase_bin, log, request
from files_crash import multipart, start_moto

SIZE = int(float(os.environ.get("SIZE_MIB", 1)) * 1024 * 1024)
ROUNDS = int(os.environ.get("ROUNDS", 20))


def measure(server, token, label):
    create_collection(server.port, token, {
        "name": "t", "type": "base", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "f", "type": "file", "maxSelect": 1, "maxSize": SIZE + 1}]})
    data = os.urandom(SIZE)
    ctype, body = multipart([("f", "x.bin", data)])
    ids, up, down = [], 0.0, 0.0
    for _ in range(ROUNDS):
        conn = http.client.HTTPConnection(HOST, server.port, timeout=120)
        t = time.perf_counter()
        conn.request("POST", "/api/collections/t/records", body, {"Content-Type": ctype})
        resp = conn.getresponse()
        raw = resp.read()
        up += time.perf_counter() - t
        conn.close()
        assert resp.status == 200, raw
        import json
        rec = json.loads(raw)
        ids.append((rec["id"], rec["f"]))
    for rid, name in ids:
        conn = http.client.HTTPConnection(HOST, server.port, timeout=120)
        t = time.perf_counter()
        conn.request("GET", f"/api/files/t/{rid}/{name}")
        got = conn.getresponse().read()
        down += time.perf_counter() - t
        conn.close()
        assert len(got) == SIZE
    mib = SIZE * ROUNDS / 1024 / 1024
    log(f"{label}: {SIZE / 1024 / 1024:g} MiB x {ROUNDS}: upload {mib / up:.1f} MiB/s "
        f"({up / ROUNDS * 1000:.1f} ms each), download {mib / down:.1f} MiB/s "
        f"({down / ROUNDS * 1000:.1f} ms each), server peak RSS {server.status_kib('VmHWM') / 1024:.0f} MiB")


def main():
    binary = ferrobase_bin()
    for label in ("local", "s3"):
        work = tempfile.mkdtemp(prefix="ferrobase-throughput-")
        server = Server(binary, os.path.join(work, "data"), os.path.join(work, "server.log"))
        moto = None
        try:
            server.upsert_superuser()
            server.start()
            token = server.superuser_token()
            if label == "s3":
                moto, endpoint = start_moto()
                status, body = request(server.port, "PATCH", "/api/settings", {"s3": {
                    "enabled": True, "bucket": "crash", "region": "us-east-1", "endpoint": endpoint,
                    "accessKey": "test", "secret": "test", "forcePathStyle": True}}, token=token)
                assert status == 200, body
            measure(server, token, label)
        finally:
            server.kill()
            if moto is not None:
                moto.kill()
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
