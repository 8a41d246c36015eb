"""Sequential request latency of `ferrobase serve` over HTTP, on SQLite or on
PostgreSQL (loopback only, bounded: 500 creates, 500 views, 100 lists).

    python3 tests/reliability/serve_latency.py target/debug/ferrobase DATA_DIR [POSTGRES_URL]

DATA_DIR: an empty data dir; POSTGRES_URL: an empty database (`--db`).
"""
import http.client, json, sys, time, subprocess, re, os
binary, d, db = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
extra = ["--db", db] if db else []
subprocess.run([binary, "superuser", "upsert", "b@b.co", "1234567890", "--dir", d] + extra, check=True, capture_output=True)
p = subprocess.Popen([binary, "serve", "--http", "127.0.0.1:0", "--dir", d] + extra, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    port = int(re.search(r":(\d+)$", p.stdout.readline().strip()).group(1))
    c = http.client.HTTPConnection("127.0.0.1", port)
    def call(m, path, body=None, tok=None):
        h = {"content-type": "application/json"}
        if tok: h["Authorization"] = tok
        c.request(m, path, json.dumps(body) if body is not None else None, h)
        r = c.getresponse(); data = r.read(); return r.status, json.loads(data or b"null")
    _, a = call("POST", "/api/collections/_superusers/auth-with-password", {"identity": "b@b.co", "password": "1234567890"})
    t = a["token"]
    call("POST", "/api/collections", {"name": "bench", "type": "base", "listRule": "", "viewRule": "", "fields": [{"name": "title", "type": "text"}, {"name": "n", "type": "number"}]}, t)
    N = 500
    t0 = time.perf_counter(); ids = []
    for i in range(N):
        s, r = call("POST", "/api/collections/bench/records", {"title": f"t{i}", "n": i}, t); assert s == 200, r; ids.append(r["id"])
    t1 = time.perf_counter()
    for i in ids:
        s, r = call("GET", f"/api/collections/bench/records/{i}"); assert s == 200
    t2 = time.perf_counter()
    for i in range(100):
        s, r = call("GET", "/api/collections/bench/records?filter=n%3E100&sort=-n&perPage=20"); assert s == 200
    t3 = time.perf_counter()
    print(f"{'postgres' if db else 'sqlite'}: create {(t1-t0)/N*1000:.2f} ms, view {(t2-t1)/N*1000:.2f} ms, list(filter+sort) {(t3-t2)/100*1000:.2f} ms")
finally:
    p.kill(); p.wait()
