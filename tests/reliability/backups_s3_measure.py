"""Backup create, download and restore through the HTTP API, local disk vs
`backups.s3` on a loopback moto (from tests/.venv-s3), with the server's peak
RSS during each step. The data: RECORDS records plus one STORAGE_MIB file of
random bytes under storage/ (it does not compress, so the archive is at least
that big). Not part of tests/run.sh: a measurement for the README.

    FERROBASE_BIN=target/debug/ferrobase RECORDS=10000 STORAGE_MIB=100 \
        python3 tests/reliability/backups_s3_measure.py
"""

import http.client
import os
import shutil
import sys
import tempfile
import threading
import time

from common import HOST, Server, create_collection, ferrobase_bin, log, request, tail
from files_crash import start_moto

RECORDS = int(os.environ.get("RECORDS", 10000))
STORAGE_MIB = int(os.environ.get("STORAGE_MIB", 100))
SEED_WORKERS = 8
RESTORE_TIMEOUT_S = 300


class PeakRss:
    """Samples a process's VmRSS every 10 ms while in a `with` block."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def _rss_kib(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss_kib())
            time.sleep(0.01)

    def __enter__(self):
        self.before = self._rss_kib()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def seed(port, token):
    create_collection(port, token, {
        "name": "posts", "type": "base", "listRule": "", "viewRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "body", "type": "text"}]})
    counter, lock, errors = iter(range(RECORDS)), threading.Lock(), []

    def worker():
        while not errors:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            status, body = request(port, "POST", "/api/collections/posts/records",
                                   {"title": f"post {i}", "body": "lorem ipsum " * 8}, token)
            if status != 200:
                errors.append(body)

    threads = [threading.Thread(target=worker) for _ in range(SEED_WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"seeding failed: {errors[0]}")


def count(port, token):
    status, body = request(port, "GET", "/api/collections/posts/records?perPage=1", None, token)
    return body["totalItems"] if status == 200 else -1


def step(server, label, f):
    with PeakRss(server.proc.pid) as rss:
        started = time.perf_counter()
        out = f()
        seconds = time.perf_counter() - started
    log(f"  {label}: {seconds:.2f} s, server RSS {rss.before / 1024:.0f} -> peak "
        f"{rss.peak / 1024:.0f} MiB")
    return out, seconds


def measure(server, token, label):
    def create():
        status, body = request(server.port, "POST", "/api/backups", {"name": "bench.zip"},
                               token, timeout=600)
        assert status == 204, body

    def download():
        _, body = request(server.port, "POST", "/api/files/token", None, token)
        conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
        conn.request("GET", f"/api/backups/bench.zip?token={body['token']}")
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        size = 0
        while chunk := resp.read(1 << 20):
            size += len(chunk)
        conn.close()
        return size

    def restore():
        # A record made after the backup: gone once the restore is served.
        # (Not a collection delete: automigrate would replay it after the restore.)
        status, body = request(server.port, "POST", "/api/collections/posts/records",
                               {"title": "after the backup"}, token)
        assert status == 200, body
        status, body = request(server.port, "POST", "/api/backups/bench.zip/restore", None,
                               token, timeout=600)
        assert status == 204, body
        deadline = time.time() + RESTORE_TIMEOUT_S
        while time.time() < deadline:
            try:
                if count(server.port, server.superuser_token()) == RECORDS:
                    return
            except (OSError, RuntimeError, KeyError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        raise RuntimeError("records not back after the restore")

    log(f"{label}:")
    step(server, "create (POST /api/backups)", create)
    size, seconds = step(server, "download (GET /api/backups/bench.zip)", download)
    log(f"    archive {size / 2**20:.1f} MiB, {size / 2**20 / seconds:.0f} MiB/s")
    step(server, "restore (POST …/restore until the records are served)", restore)


def main():
    binary = ferrobase_bin()
    for label in ("local", "s3"):
        work = tempfile.mkdtemp(prefix="ferrobase-backups-s3-")
        data_dir = os.path.join(work, "data")
        server = Server(binary, data_dir, os.path.join(work, "server.log"))
        moto = None
        try:
            server.upsert_superuser()
            server.start()
            token = server.superuser_token()
            seed(server.port, token)
            blob_dir = os.path.join(data_dir, "storage", "bench")
            os.makedirs(blob_dir, exist_ok=True)
            with open(os.path.join(blob_dir, "blob.bin"), "wb") as f:
                for _ in range(STORAGE_MIB):
                    f.write(os.urandom(1 << 20))
            if label == "s3":
                moto, endpoint = start_moto()
                status, body = request(server.port, "PATCH", "/api/settings", {"backups": {"s3": {
                    "enabled": True, "bucket": "crash", "region": "us-east-1",
                    "endpoint": endpoint, "accessKey": "test", "secret": "test",
                    "forcePathStyle": True}}}, token=token)
                assert status == 200, body
            measure(server, token, f"{label}: {RECORDS} records + {STORAGE_MIB} MiB file")
        except Exception:
            log(tail(os.path.join(work, "server.log")))
            raise
        finally:
            server.kill()
            if moto is not None:
                moto.kill()
                moto.wait()
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
