"""kill -9 while files are uploaded, replaced and deleted; then check that no record
points at a missing file, that every acknowledged upload is still served with its
bytes, and that no staging temp file survives the restart.

Stored files are written (and synced) before the transaction that references them
commits, and old files are removed only after it: a crash may leave an orphan file,
never a dangling name. Loopback only; bounded in time (CYCLES, ~40 s).

FILES_ON=s3 runs the same on S3: a moto server from tests/.venv-s3 (installed by
tests/run.sh) on a loopback port, a fresh bucket, and the s3 settings pointing at
it before the first cycle; the checks are the same HTTP reads.
"""

import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from common import HOST, Server, create_collection, ferrobase_bin, log, request, summary_line, tail

CYCLES = int(os.environ.get("CYCLES", 3))
WORKERS = int(os.environ.get("WORKERS", 4))
SEED = int(os.environ.get("SEED", random.randrange(1 << 30)))
KILL_AFTER_S = (0.5, 2.0)
REQUEST_TIMEOUT_S = 10
COLLECTION = "blobs"
FILES_ON = os.environ.get("FILES_ON", "local")
MOTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".venv-s3", "bin", "moto_server")


def start_moto():
    """(process, endpoint) of a moto server on a free loopback port with bucket `crash`."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([MOTO, "-H", HOST, "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while True:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("PUT", "/crash")
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return proc, f"http://{HOST}:{port}"
        except OSError:
            pass
        if time.time() > deadline:
            proc.kill()
            raise RuntimeError("moto_server did not start")
        time.sleep(0.2)


def multipart(files):
    """(content type, body) for [(field, filename, bytes)]."""
    boundary = "----ferrobase%016x" % random.getrandbits(64)
    parts = []
    for field, name, data in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


def send_form(port, method, path, files):
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
    try:
        ctype, body = multipart(files)
        conn.request(method, path, body, {"Content-Type": ctype})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else None)
    finally:
        conn.close()


class Worker(threading.Thread):
    """Creates records with two files, replaces their files, deletes some; remembers the
    contents of every acknowledged file by stored name."""

    def __init__(self, port, rng, acked, deleted):
        super().__init__(daemon=True)
        self.port, self.rng, self.acked, self.deleted = port, rng, acked, deleted
        self.stop = False

    def blob(self):
        return os.urandom(self.rng.randrange(10, 20_000))

    def run(self):
        try:
            while not self.stop:
                a, b = self.blob(), self.blob()
                status, rec = send_form(self.port, "POST", f"/api/collections/{COLLECTION}/records",
                                        [("f", "a.bin", a), ("f", "b.bin", b)])
                if status != 200:
                    continue
                rid = rec["id"]
                self.acked[(rid, rec["f"][0])] = a
                self.acked[(rid, rec["f"][1])] = b
                c = self.blob()
                status, upd = send_form(self.port, "PATCH", f"/api/collections/{COLLECTION}/records/{rid}",
                                        [("f", "c.bin", c)])
                if status == 200:
                    self.acked[(rid, upd["f"][0])] = c
                if self.rng.random() < 0.3:
                    # Counted before the request: a delete in flight at the kill may have committed.
                    self.deleted.add(rid)
                    request(self.port, "DELETE", f"/api/collections/{COLLECTION}/records/{rid}",
                            timeout=REQUEST_TIMEOUT_S)
        except (OSError, http.client.HTTPException, ValueError):
            return  # the server was killed mid-request


def check(port, acked, deleted):
    """Problems found after a restart (empty list: all good)."""
    problems = []
    stored = {}
    page_no = 1
    while True:  # perPage is capped at 1000: walk every page
        status, page = request(port, "GET",
                               f"/api/collections/{COLLECTION}/records?perPage=1000&sort=id&page={page_no}")
        if status != 200:
            return [f"list page {page_no}: HTTP {status}"]
        stored.update((r["id"], r) for r in page["items"])
        if page_no >= page["totalPages"]:
            break
        page_no += 1
    for rec in stored.values():
        for name in rec["f"]:
            conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
            conn.request("GET", f"/api/files/{COLLECTION}/{rec['id']}/{name}")
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            if resp.status != 200:
                problems.append(f"record {rec['id']} names {name}, which is not served (HTTP {resp.status})")
            elif (rec["id"], name) in acked and acked[(rec["id"], name)] != data:
                problems.append(f"record {rec['id']}: {name} has other bytes than were uploaded")
    # Every acknowledged create that was not (possibly) deleted must still be there.
    for rid in {rid for rid, _ in acked} - deleted:
        if rid not in stored:
            problems.append(f"acknowledged record {rid} is missing")
    return problems


def main():
    started = time.time()
    rng = random.Random(SEED)
    binary = ferrobase_bin()
    work = tempfile.mkdtemp(prefix="ferrobase-files-crash-")
    data_dir = os.path.join(work, "data")
    server = Server(binary, data_dir, os.path.join(work, "server.log"))
    moto = None
    log(f"files crash ({FILES_ON}): {binary}, {CYCLES} cycles x {WORKERS} workers, SEED={SEED}, dir {work}")
    passed = failed = 0
    try:
        server.upsert_superuser()
        server.start()
        token = server.superuser_token()
        if FILES_ON == "s3":
            moto, endpoint = start_moto()
            status, body = request(server.port, "PATCH", "/api/settings", {"s3": {
                "enabled": True, "bucket": "crash", "region": "us-east-1", "endpoint": endpoint,
                "accessKey": "test", "secret": "test", "forcePathStyle": True}}, token=token)
            if status != 200:
                raise RuntimeError(f"s3 settings refused: {status} {body}")
            log(f"files on S3: bucket crash at {endpoint}")
        create_collection(server.port, token, {
            "name": COLLECTION, "type": "base", "listRule": "", "viewRule": "", "createRule": "",
            "updateRule": "", "deleteRule": "",
            "fields": [{"name": "f", "type": "file", "maxSelect": 3}]})
        acked, deleted = {}, set()
        for cycle in range(1, CYCLES + 1):
            workers = [Worker(server.port, random.Random(rng.random()), acked, deleted)
                       for _ in range(WORKERS)]
            for w in workers:
                w.start()
            delay = rng.uniform(*KILL_AFTER_S)
            time.sleep(delay)
            server.kill()
            for w in workers:
                w.stop = True
                w.join(REQUEST_TIMEOUT_S + 5)
            server.start()
            problems = check(server.port, acked, deleted)
            leftovers = os.listdir(os.path.join(data_dir, "storage", ".tmp"))
            if leftovers:
                problems.append(f"staging files left after restart: {leftovers[:5]}")
            ok = not problems
            passed, failed = passed + ok, failed + (not ok)
            log(f"cycle {cycle}: killed after {delay:.2f} s; {len(acked)} acknowledged files so far, "
                f"{len(deleted)} records deleted -> {'ok' if ok else 'FAILED'}")
            for p in problems[:10]:
                log(f"  {p}")
        server.stop()
    except Exception as e:  # noqa: BLE001 - any setup failure fails the run, with the log
        log(f"files crash: error: {e!r}")
        log(f"server log tail:\n{tail(server.log_path)}")
        failed += 1
    finally:
        server.kill()
        if moto is not None:
            moto.kill()
        if os.environ.get("KEEP_DATA") == "1" or failed:
            log(f"data dir and server log kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    log(f"files crash: {time.time() - started:.1f} s")
    return summary_line(passed, failed)


if __name__ == "__main__":
    sys.exit(main())
