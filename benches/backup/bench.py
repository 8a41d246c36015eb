#!/usr/bin/env python3
"""How long backing up and restoring RECORDS records takes (issue 8).

    python3 benches/backup/bench.py            # uses target/release/ferrobase

Starts the release server on a fresh data dir, creates a `posts` collection and
seeds RECORDS records through the HTTP API (concurrent keep-alive clients), then
times, each once:

  api backup     POST /api/backups (answers when the archive is written)
  cli backup     `ferrobase backup create` next to the running server
  cli restore    `ferrobase backup restore FILE` on the stopped server's dir
  api restore    POST /api/backups/{key}/restore until /api/health answers again
                 and the record count is back

After each restore the record count is checked through the API and
`ferrobase db check` must pass. Loopback only; stops by itself.

Environment: FERROBASE_BIN [target/release/ferrobase], RECORDS [100000],
SEED_WORKERS [16]. Server handling and HTTP come from tests/reliability/common.py.
"""
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "reliability"))
from common import HOST, Server, create_collection, request, request_on  # noqa: E402

FB_BIN = os.path.abspath(os.environ.get("FERROBASE_BIN")
                         or os.path.join(ROOT, "target", "release", "ferrobase"))
RECORDS = int(os.environ.get("RECORDS", "100000"))
SEED_WORKERS = int(os.environ.get("SEED_WORKERS", "16"))


def expect(what, answer, ok=(200, 204)):
    status, data = answer
    if status not in ok:
        raise RuntimeError(f"{what}: HTTP {status}: {str(data)[:400]}")
    return data


def seed(port, token):
    create_collection(port, token, {
        "name": "posts", "type": "base", "listRule": "", "viewRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "body", "type": "text"},
                   {"name": "views", "type": "number"}, {"name": "published", "type": "bool"}],
    })
    counter = iter(range(RECORDS))
    lock, errors = threading.Lock(), []

    def worker():
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        while True:
            with lock:
                i = next(counter, None)
            if i is None or errors:
                break
            status, data = request_on(conn, "POST", "/api/collections/posts/records", {
                "title": f"post {i}", "body": "lorem ipsum dolor sit amet " * 4,
                "views": i % 1000, "published": i % 2 == 0}, token)
            if status != 200:
                errors.append(f"HTTP {status}: {data}")
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(SEED_WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"seeding failed: {errors[0]}")


def record_count(port, token):
    data = expect("count", request(port, "GET", "/api/collections/posts/records?perPage=1", None, token))
    return data["totalItems"]


def check_db(data_dir):
    subprocess.run([FB_BIN, "db", "check", f"--dir={data_dir}"], check=True,
                   stdout=subprocess.DEVNULL)


def timed(label, results, f):
    started = time.perf_counter()
    out = f()
    results.append((label, time.perf_counter() - started))
    print(f"  {label}: {results[-1][1]:.2f} s", flush=True)
    return out


def main():
    if not os.access(FB_BIN, os.X_OK):
        sys.exit(f"no binary at {FB_BIN}; run `cargo build --release` first")
    work = tempfile.mkdtemp(prefix="fb-backup-bench-")
    data_dir = os.path.join(work, "data")
    server = Server(FB_BIN, data_dir, os.path.join(work, "server.log"))
    server.upsert_superuser()
    results = []
    try:
        server.start()
        token = server.superuser_token()
        print(f"seeding {RECORDS} records through the API ({SEED_WORKERS} clients)...", flush=True)
        timed("seed", results, lambda: seed(server.port, token))
        assert record_count(server.port, token) == RECORDS
        db_mib = os.path.getsize(os.path.join(data_dir, "data.db")) / 2**20

        timed("api backup (POST /api/backups)", results, lambda: expect(
            "api backup", request(server.port, "POST", "/api/backups", {"name": "api.zip"}, token)))
        timed("cli backup (server running)", results, lambda: subprocess.run(
            [FB_BIN, "backup", "create", "cli.zip", f"--dir={data_dir}"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        archive = os.path.join(data_dir, "backups", "cli.zip")
        zip_mib = os.path.getsize(archive) / 2**20

        # Lose the data, then restore it with the CLI on the stopped server's dir.
        expect("wipe", request(server.port, "DELETE", "/api/collections/posts", None, token))
        server.stop()
        copy = os.path.join(work, "cli.zip")
        shutil.copy(archive, copy)
        timed("cli restore (server stopped)", results, lambda: subprocess.run(
            [FB_BIN, "backup", "restore", copy, f"--dir={data_dir}"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        check_db(data_dir)
        server.start()
        token = server.superuser_token()
        if record_count(server.port, token) != RECORDS:
            raise RuntimeError("cli restore: record count differs")

        # Lose the data again, then restore through the API (the server restarts itself).
        expect("wipe", request(server.port, "DELETE", "/api/collections/posts", None, token))

        def api_restore():
            expect("api restore", request(
                server.port, "POST", "/api/backups/api.zip/restore", None, token))
            deadline = time.time() + 120
            while time.time() < deadline:
                try:
                    fresh = server.superuser_token()
                    if record_count(server.port, fresh) == RECORDS:
                        return
                except (OSError, RuntimeError, http.client.HTTPException):
                    pass
                time.sleep(0.02)
            raise RuntimeError("api restore: records not back within 120 s")

        timed("api restore (until the records are served again)", results, api_restore)
        server.stop()
        check_db(data_dir)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{RECORDS} records, data.db {db_mib:.1f} MiB, archive {zip_mib:.1f} MiB "
          f"({os.cpu_count()} CPUs)")
    print(f"{'step':<52}{'seconds':>9}")
    for label, seconds in results:
        print(f"{label:<52}{seconds:>9.2f}")


if __name__ == "__main__":
    main()
