#!/usr/bin/env python3
"""Size and build time of /api/openapi.json and .yaml for a 50-collection schema (issue 19).

Starts the binary on a fresh data dir (loopback, port picked by the kernel),
creates 50 base collections of fifteen fields each (every field type; each
collection after the first also points to the one before it), then per
audience and format times the first GET of the document (built) against the
median of 20 more (cached), and one GET /api/typegen per language (generated
on every request, never cached). Bounded: one server, ~250 requests,
stopped at the end.

    cargo build --locked --bin ferrobase
    python3 benches/openapi/measure.py        # FB_BIN=target/release/ferrobase for a release build
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("FB_BIN", os.path.join(ROOT, "target", "debug", "ferrobase"))
EMAIL, PASSWORD = "bench@example.com", "bench-pass-123"
COLLECTIONS = 50
FIELDS = [
    {"name": "title", "type": "text", "required": True, "max": 100},
    {"name": "n", "type": "number", "min": 0, "max": 10},
    {"name": "ok", "type": "bool"},
    {"name": "mail", "type": "email"},
    {"name": "site", "type": "url"},
    {"name": "when", "type": "date"},
    {"name": "s", "type": "select", "values": ["a", "b", "c"], "maxSelect": 1},
    {"name": "f", "type": "file", "maxSelect": 3, "maxSize": 1000},
    {"name": "j", "type": "json"},
    {"name": "rel", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
    {"name": "body", "type": "editor"},
    {"name": "count", "type": "number", "onlyInt": True},
    {"name": "tags", "type": "select", "values": ["x", "y", "z", "yes"], "maxSelect": 3},
    {"name": "where", "type": "geoPoint"},
    {"name": "created", "type": "autodate", "onCreate": True},
]


def request(base, method, path, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["Authorization"] = token
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, data, headers, method=method)) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {path}: {e.code} {e.read().decode()}")


def timed(base, path, token):
    start = time.perf_counter()
    body = request(base, "GET", path, token=token)
    return time.perf_counter() - start, len(body)


def main():
    with tempfile.TemporaryDirectory() as root:
        # pb_migrations and pb_hooks live beside the data dir: keep them in root too.
        data = os.path.join(root, "pb_data")
        subprocess.run([BINARY, "superuser", "upsert", EMAIL, PASSWORD, "--dir", data],
                       check=True, capture_output=True)
        server = subprocess.Popen([BINARY, "serve", "--http", "127.0.0.1:0", "--dir", data,
                                   "--automigrate=false"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            base = server.stdout.readline().split("Server started at ")[1].strip()
            login = {"identity": EMAIL, "password": PASSWORD}
            token = json.loads(request(base, "POST", "/api/collections/_superusers/auth-with-password", login))["token"]
            previous = None
            for i in range(COLLECTIONS):
                fields = list(FIELDS)
                if previous:
                    fields.append({"name": "prev", "type": "relation", "collectionId": previous,
                                   "maxSelect": 5})
                created = request(base, "POST", "/api/collections", {
                    "name": f"c{i:02d}", "type": "base", "listRule": "", "viewRule": "", "fields": fields,
                }, token)
                previous = json.loads(created)["id"]
            for who, t in [("superuser", token), ("guest", None)]:
                for fmt in ["json", "yaml"]:
                    path = f"/api/openapi.{fmt}"
                    first, size = timed(base, path, t)
                    cached = sorted(timed(base, path, t)[0] for _ in range(20))
                    print(f"{who} {fmt}: {size} bytes; first GET (build) {first * 1000:.1f} ms, "
                          f"cached median {cached[10] * 1000:.2f} ms")
            for lang in ["ts", "dart"]:
                runs = sorted(timed(base, f"/api/typegen?lang={lang}", token) for _ in range(5))
                print(f"typegen {lang}: {runs[0][1]} bytes, median {runs[2][0] * 1000:.1f} ms")
        finally:
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    sys.exit(main())
