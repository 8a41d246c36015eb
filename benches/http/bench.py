#!/usr/bin/env python3
"""Side-by-side HTTP benchmark: Ferrobase against PocketBase 0.40.6.

Started by run.sh (which builds, fetches PocketBase and installs wrk); stdlib only.
Starts both servers on loopback with fresh data dirs, creates the same collections and
seeds identical records through each server's HTTP API, then runs every workload with
wrk, Ferrobase then PocketBase, and prints one table with the ratios.

Environment (all optional; run.sh documents them too):
  FB_BIN, PB_BIN        server binaries (run.sh sets both)
  DURATION=10           seconds measured per workload per server
  WARMUP=2              seconds of unmeasured load before each measurement
  CONNECTIONS=64        wrk connections (one wrk thread, pinned to LOADGEN_CPU)
  AUTH_CONNECTIONS=8    wrk connections for the auth workload (slow password hashes)
  SEED_RECORDS=10000    records seeded into `posts` and into `owned_posts`
  SEED_WORKERS=16       concurrent HTTP clients per server while seeding
  WORKLOADS=...         comma list, default: all (see ALL_WORKLOADS)
  SERVER_CPU=1, LOADGEN_CPU=0   cores for taskset (ignored on a 1-core machine)
  RT_SUBSCRIBERS=100, RT_EVENTS=100, RT_RATE=10   realtime workload shape
  KEEP_DATA=1           keep the temporary data dirs and logs
  RESULTS_DIR           where the JSON results go (default benches/http/.peer/results)
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import http.client
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
SUPERUSER = ("bench-admin@example.com", "bench-Passw0rd!123")
USER_PASSWORD = "bench-Passw0rd!123"
N_USERS = 10
# Reads run first, on exactly the seeded data. Writes follow (create last, since it grows
# the collection by a different amount on each server). auth comes after the rest because
# password hashing can raise a server's resident memory for good, which would otherwise
# show up in the peak RSS of every later workload.
ALL_WORKLOADS = [
    "ceiling", "get_one", "get_one_nolog", "list_filter", "list_rule", "update", "mixed", "create", "auth",
    "realtime",
]


def env_int(name, default):
    return int(os.environ.get(name, default))


DURATION = env_int("DURATION", 10)
WARMUP = env_int("WARMUP", 2)
CONNECTIONS = env_int("CONNECTIONS", 64)
# A password login costs a deliberately slow hash (argon2id / bcrypt): with 64 connections
# on one core each login would queue past wrk's 10 s timeout, so auth uses fewer.
AUTH_CONNECTIONS = min(CONNECTIONS, env_int("AUTH_CONNECTIONS", 8))
SEED_RECORDS = env_int("SEED_RECORDS", 10000)
SEED_WORKERS = env_int("SEED_WORKERS", 16)
RT_SUBSCRIBERS = env_int("RT_SUBSCRIBERS", 100)
RT_EVENTS = env_int("RT_EVENTS", 100)
RT_RATE = env_int("RT_RATE", 10)
SERVER_CPU = os.environ.get("SERVER_CPU", "1")
LOADGEN_CPU = os.environ.get("LOADGEN_CPU", "0")
WORKLOADS = [w for w in os.environ.get("WORKLOADS", ",".join(ALL_WORKLOADS)).split(",") if w]
PIN = (os.cpu_count() or 1) >= 2
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- HTTP helpers

def request(port, method, path, body=None, token=None, timeout=60):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        return request_on(conn, method, path, body, token)
    finally:
        conn.close()


def request_on(conn, method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = token
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    resp = conn.getresponse()
    raw = resp.read()
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = raw[:200]
    return resp.status, data


def expect(what, status, data, ok=(200, 204)):
    if status not in ok:
        raise RuntimeError(f"{what}: HTTP {status}: {json.dumps(data)[:400]}")
    return data


# ---------------------------------------------------------------- servers

class Server:
    """One server process pinned to SERVER_CPU, with its own fresh data dir."""

    def __init__(self, name, binary, port, workdir):
        self.name, self.binary, self.port = name, binary, port
        self.data_dir = os.path.join(workdir, f"{name}_data")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.proc = None
        self.supports_realtime = False

    def start(self):
        subprocess.run(
            [self.binary, "superuser", "upsert", *SUPERUSER, f"--dir={self.data_dir}"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cmd = [self.binary, "serve", f"--http={HOST}:{self.port}", f"--dir={self.data_dir}"]
        if PIN:
            cmd = ["taskset", "-c", SERVER_CPU] + cmd
        self.log_file = open(self.log_path, "wb")
        # taskset execs the server, so proc.pid is the server's own pid.
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
            try:
                if request(self.port, "GET", "/api/health", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer /api/health within 30 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[11], fields[12] are utime and stime (fields 14 and 15 of stat(5)).
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status_kib(self, key):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def reset_peak_rss(self):
        """Resets VmHWM (Linux >= 4.0: writing 5 to clear_refs); False if not allowed."""
        try:
            with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False


class RssSampler(threading.Thread):
    """Samples VmRSS every 100 ms: the peak when VmHWM cannot be reset."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.peak, self.stop_flag = server, 0, threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            try:
                self.peak = max(self.peak, self.server.status_kib("VmRSS"))
            except OSError:
                return
            self.stop_flag.wait(0.1)


# ---------------------------------------------------------------- data

def user_id(i):
    return "u%014d" % i


def user_email(i):
    return f"bench{i}@example.com"


WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray").split()


def record(prefix, i):
    """Deterministic record i: identical on both servers."""
    rng = random.Random(f"{prefix}{i}")
    return {
        "id": "%s%014d" % (prefix, i),
        "title": f"Post {i} " + " ".join(rng.choice(WORDS) for _ in range(4)),
        "body": " ".join(rng.choice(WORDS) for _ in range(30)),
        "views": rng.randrange(1000),
        "published": rng.random() < 0.7,
        "owner": user_id(i % N_USERS),
    }


def post_fields():
    return [
        {"name": "title", "type": "text", "required": True, "max": 200},
        {"name": "body", "type": "text"},
        {"name": "views", "type": "number"},
        {"name": "published", "type": "bool"},
        {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_",
         "maxSelect": 1, "cascadeDelete": False},
    ]


def create_schema(server, token):
    port = server.port
    for i in range(N_USERS):
        expect(f"{server.name}: create user {i}", *request(port, "POST", "/api/collections/users/records", {
            "id": user_id(i), "email": user_email(i), "name": f"bench user {i}",
            "password": USER_PASSWORD, "passwordConfirm": USER_PASSWORD}, token))
    owner_rule = "owner = @request.auth.id"
    expect(f"{server.name}: create posts", *request(port, "POST", "/api/collections", {
        "name": "posts", "type": "base",
        "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": None,
        "fields": post_fields(),
        "indexes": ["CREATE INDEX idx_posts_views ON posts (views)"]}, token))
    expect(f"{server.name}: create owned_posts", *request(port, "POST", "/api/collections", {
        "name": "owned_posts", "type": "base",
        "listRule": owner_rule, "viewRule": owner_rule, "createRule": "@request.auth.id != ''",
        "updateRule": owner_rule, "deleteRule": owner_rule,
        "fields": post_fields(),
        "indexes": ["CREATE INDEX idx_owned_posts_owner ON owned_posts (owner)"]}, token))


def seed(server, token, errors):
    """Creates SEED_RECORDS posts and owned_posts with SEED_WORKERS keep-alive clients."""
    jobs = [("posts", "p", i) for i in range(SEED_RECORDS)]
    jobs += [("owned_posts", "o", i) for i in range(SEED_RECORDS)]

    def worker(k):
        conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
        for coll, prefix, i in jobs[k::SEED_WORKERS]:
            status, data = request_on(conn, "POST", f"/api/collections/{coll}/records",
                                      record(prefix, i), token)
            if status != 200:
                errors.append(f"{server.name} {coll} {i}: HTTP {status} {str(data)[:200]}")
                return
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(SEED_WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def dump(server, token, coll):
    """Every record of coll as comparable tuples, sorted by id."""
    out, page = [], 1
    keys = ("id", "title", "body", "views", "published", "owner")
    while True:
        data = expect(f"{server.name}: list {coll}", *request(
            server.port, "GET",
            f"/api/collections/{coll}/records?perPage=500&sort=id&skipTotal=1&page={page}",
            token=token))
        out += [tuple(item.get(k) for k in keys) for item in data["items"]]
        if not data["items"]:
            return out
        page += 1


def prepare(servers):
    tokens = {}
    for s in servers:
        st, data = request(s.port, "POST", "/api/collections/_superusers/auth-with-password",
                           {"identity": SUPERUSER[0], "password": SUPERUSER[1]})
        tokens[s.name] = expect(f"{s.name}: superuser login", st, data)["token"]
        create_schema(s, tokens[s.name])
    log(f"seeding {SEED_RECORDS} posts + {SEED_RECORDS} owned_posts into each server "
        f"({SEED_WORKERS} clients per server, both servers at once)")
    t0, errors = time.time(), []
    threads = [threading.Thread(target=seed, args=(s, tokens[s.name], errors)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("seeding failed: " + "; ".join(errors[:5]))
    log(f"seeded in {time.time() - t0:.1f} s; checking both servers hold identical data")
    for coll in ("posts", "owned_posts"):
        dumps = [dump(s, tokens[s.name], coll) for s in servers]
        if len(dumps[0]) != SEED_RECORDS or any(d != dumps[0] for d in dumps):
            raise RuntimeError(f"{coll}: servers differ after seeding "
                               f"({[len(d) for d in dumps]} records)")
    user_tokens = {}
    for s in servers:
        st, data = request(s.port, "POST", "/api/collections/users/auth-with-password",
                           {"identity": user_email(0), "password": USER_PASSWORD})
        user_tokens[s.name] = expect(f"{s.name}: user login", st, data)["token"]
    return user_tokens


# ---------------------------------------------------------------- wrk workloads

def set_log_days(server, days):
    st, data = request(server.port, "POST", "/api/collections/_superusers/auth-with-password",
                       {"identity": SUPERUSER[0], "password": SUPERUSER[1]})
    token = expect(f"{server.name}: superuser login", st, data)["token"]
    st, data = request(server.port, "PATCH", "/api/settings", {"logs": {"maxDays": days}},
                       token=token)
    expect(f"{server.name}: logs.maxDays = {days}", st, data)


def connections_for(workload):
    return AUTH_CONNECTIONS if workload == "auth" else CONNECTIONS


def run_wrk(server, workload, token, seconds, out_path):
    env = dict(os.environ,
               BENCH_WORKLOAD=workload, BENCH_RECORDS=str(SEED_RECORDS), BENCH_TOKEN=token,
               BENCH_EMAIL=user_email(0), BENCH_PASSWORD=USER_PASSWORD,
               BENCH_OWNER=user_id(0), BENCH_OUT=out_path)
    cmd = ["wrk", "-t1", f"-c{connections_for(workload)}", f"-d{seconds}s", "--timeout", "10s",
           "-s", os.path.join(HERE, "workloads.lua"), f"http://{HOST}:{server.port}"]
    if PIN:
        cmd = ["taskset", "-c", LOADGEN_CPU] + cmd
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=seconds + 60)
    if proc.returncode != 0 or not os.path.exists(out_path):
        raise RuntimeError(f"wrk failed for {workload} on {server.name}: "
                           f"{proc.stdout.decode(errors='replace')[-500:]}")
    with open(out_path) as f:
        return json.load(f)


def measure(server, run):
    """Runs run() and returns (its result, peak RSS MiB, CPU seconds) for server."""
    if server.proc.poll() is not None:
        raise RuntimeError(f"{server.name} is no longer running; see {server.log_path}")
    hwm_reset = server.reset_peak_rss()
    sampler = RssSampler(server)
    sampler.start()
    cpu0 = server.cpu_seconds()
    result = run()
    cpu = server.cpu_seconds() - cpu0
    sampler.stop_flag.set()
    sampler.join()
    peak_kib = max(sampler.peak, server.status_kib("VmHWM") if hwm_reset else 0)
    if server.proc.poll() is not None:
        raise RuntimeError(f"{server.name} died during the workload; see {server.log_path}")
    return result, peak_kib / 1024, cpu


def wrk_workload(server, workload, token, workdir):
    if WARMUP > 0:
        run_wrk(server, workload, token, WARMUP, os.path.join(workdir, "warmup.json"))
    out = os.path.join(workdir, f"{workload}-{server.name}.json")
    w, rss, cpu = measure(server, lambda: run_wrk(server, workload, token, DURATION, out))
    e = w["errors"]
    return {
        "rps": w["requests"] / (w["duration_us"] / 1e6),
        "p50_ms": w["latency_us"]["p50"] / 1000, "p99_ms": w["latency_us"]["p99"] / 1000,
        "requests": w["requests"], "non2xx": e["status"],
        "sock_errors": e["connect"] + e["read"] + e["write"] + e["timeout"],
        "rss_mib": rss, "cpu_s": cpu,
    }


# ---------------------------------------------------------------- realtime

def probe_realtime(server):
    """True if GET /api/realtime answers an SSE stream (PocketBase's PB_CONNECT)."""
    try:
        conn = http.client.HTTPConnection(HOST, server.port, timeout=3)
        conn.request("GET", "/api/realtime", headers={"Accept": "text/event-stream"})
        resp = conn.getresponse()
        ok = resp.status == 200 and "text/event-stream" in (resp.getheader("Content-Type") or "")
        conn.close()
        return ok
    except OSError:
        return False


def read_event(resp):
    """One SSE event as (event name, data text); None at end of stream."""
    name, data = "message", []
    while True:
        line = resp.readline()
        if not line:
            return None
        line = line.decode().rstrip("\r\n")
        if line == "":
            if data:
                return name, "\n".join(data)
            continue
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def realtime_workload(server):
    """RT_SUBSCRIBERS SSE clients subscribe to `posts`; RT_EVENTS creates are sent at
    RT_RATE per second; latency is create sent -> event read by each subscriber."""
    latencies, failures, lock = [], [], threading.Lock()
    ready = threading.Barrier(RT_SUBSCRIBERS + 1, timeout=60)
    conns = []

    def subscriber():
        try:
            conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
            with lock:
                conns.append(conn)
            conn.request("GET", "/api/realtime", headers={"Accept": "text/event-stream"})
            resp = conn.getresponse()
            name, data = read_event(resp)
            client_id = json.loads(data)["clientId"]
            expect("subscribe", *request(server.port, "POST", "/api/realtime", {
                "clientId": client_id, "subscriptions": ["posts"]}))
        except Exception as e:  # noqa: BLE001 - counted and reported
            with lock:
                failures.append(repr(e))
            ready.abort()
            return
        ready.wait()
        got = 0
        while got < RT_EVENTS:
            try:
                ev = read_event(resp)
            except OSError:
                break
            if ev is None:
                break
            if ev[0] != "posts":
                continue
            title = json.loads(ev[1]).get("record", {}).get("title", "")
            if title.startswith("rt "):
                sent = float(title.split()[1])
                with lock:
                    latencies.append(time.monotonic() - sent)
                got += 1

    def run():
        threads = [threading.Thread(target=subscriber, daemon=True)
                   for _ in range(RT_SUBSCRIBERS)]
        for t in threads:
            t.start()
        ready.wait()
        conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
        t0 = time.monotonic()
        for i in range(RT_EVENTS):
            delay = t0 + i / RT_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body = {"title": f"rt {time.monotonic():.6f} {i}", "views": i,
                    "published": True, "owner": user_id(0)}
            expect("realtime create", *request_on(conn, "POST", "/api/collections/posts/records",
                                                  body))
        deadline = time.time() + 10
        for t in threads:
            t.join(max(0.0, deadline - time.time()))
        for c in conns:
            c.close()
        return len(latencies)

    try:
        delivered, rss, cpu = measure(server, run)
    except threading.BrokenBarrierError:
        raise RuntimeError(f"realtime subscribe failed on {server.name}: {failures[:3]}")
    lat = sorted(latencies)
    pct = (lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1000) if lat else (lambda p: 0)
    return {"subscribers": RT_SUBSCRIBERS, "events": RT_EVENTS,
            "delivered": delivered, "expected": RT_EVENTS * RT_SUBSCRIBERS,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "rss_mib": rss, "cpu_s": cpu}


# ---------------------------------------------------------------- report

def fmt_table(results):
    head = (f"{'workload':<12} {'server':<11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'non-2xx':>8} {'sockerr':>7} {'peak RSS MiB':>12} {'CPU s':>6}   "
            f"{'FB/PB req/s':>11} {'FB/PB p99':>9}")
    lines = [head, "-" * len(head)]
    for workload, per in results.items():
        if workload == "realtime":
            continue
        fb, pb = per.get("ferrobase"), per.get("pocketbase")
        for name, r in per.items():
            ratio = ""
            if name == "ferrobase" and fb and pb and pb["rps"] and pb["p99_ms"]:
                ratio = f"{fb['rps'] / pb['rps']:>10.2f}x {fb['p99_ms'] / pb['p99_ms']:>8.2f}x"
            lines.append(
                f"{workload:<12} {name:<11} {r['rps']:>9.1f} {r['p50_ms']:>8.2f} "
                f"{r['p99_ms']:>8.2f} {r['non2xx']:>8} {r['sock_errors']:>7} "
                f"{r['rss_mib']:>12.1f} {r['cpu_s']:>6.2f}   {ratio}")
    rt = results.get("realtime")
    if rt:
        lines += ["", f"realtime: {RT_SUBSCRIBERS} subscribers, {RT_EVENTS} creates at "
                      f"{RT_RATE}/s, latency = create sent -> event read by a subscriber"]
        for name, r in rt.items():
            if r is None:
                lines.append(f"realtime     {name:<11} not implemented in {name} yet")
                continue
            lines.append(
                f"realtime     {name:<11} delivered {r['delivered']}/{r['expected']}  "
                f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
                f"peak RSS {r['rss_mib']:.1f} MiB  CPU {r['cpu_s']:.2f} s")
    return "\n".join(lines)


def main():
    fb_bin, pb_bin = os.environ["FB_BIN"], os.environ["PB_BIN"]
    if PIN:
        # The orchestrator (seeding, sampling, realtime clients) shares the load generator's core.
        os.sched_setaffinity(0, {int(LOADGEN_CPU)})
    workdir = tempfile.mkdtemp(prefix="ferrobase-bench-")
    servers = [Server("ferrobase", fb_bin, free_port(), workdir),
               Server("pocketbase", pb_bin, free_port(), workdir)]
    pidfile = os.environ.get("BENCH_PIDFILE")

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    started, load_at_start = datetime.now(timezone.utc), load_avg()
    try:
        for s in servers:
            s.start()
            if pidfile:
                with open(pidfile, "a") as f:
                    f.write(f"{s.proc.pid}\n")
        log(f"ferrobase on :{servers[0].port} (pid {servers[0].proc.pid}), "
            f"pocketbase on :{servers[1].port} (pid {servers[1].proc.pid}); "
            f"servers on CPU {SERVER_CPU if PIN else '-'}, wrk on CPU {LOADGEN_CPU if PIN else '-'}")
        tokens = prepare(servers)
        results = {}
        for workload in WORKLOADS:
            results[workload] = {}
            for s in servers:
                if workload == "realtime":
                    if not probe_realtime(s):
                        print(f"realtime: not implemented in {s.name.capitalize()} yet", flush=True)
                        results[workload][s.name] = None
                        continue
                    log(f"realtime on {s.name}")
                    results[workload][s.name] = realtime_workload(s)
                    continue
                log(f"{workload} on {s.name} ({WARMUP}s warm-up + {DURATION}s, "
                    f"{connections_for(workload)} connections)")
                token = tokens[s.name] if workload == "list_rule" else ""
                if workload == "get_one_nolog":
                    # The same get_one with request logging off (logs.maxDays = 0),
                    # to measure what logging every request costs.
                    set_log_days(s, 0)
                    try:
                        results[workload][s.name] = wrk_workload(s, "get_one", token, workdir)
                    finally:
                        set_log_days(s, 5)
                else:
                    results[workload][s.name] = wrk_workload(s, workload, token, workdir)
                time.sleep(1)
        print()
        print(f"Ferrobase vs PocketBase 0.40.6 — {started:%Y-%m-%d %H:%M} UTC, "
              f"{os.cpu_count()} CPUs ({cpu_model()}), loadavg at start {load_at_start}")
        print(f"DURATION={DURATION}s WARMUP={WARMUP}s CONNECTIONS={CONNECTIONS} "
              f"(auth: {AUTH_CONNECTIONS}) SEED_RECORDS={SEED_RECORDS}; wrk 1 thread; ceiling = GET /api/health "
              f"(each server's HTTP stack + JSON, no database)")
        print(fmt_table(results))
        for name in ("ferrobase", "pocketbase"):
            on, off = (results.get(w, {}).get(name) for w in ("get_one", "get_one_nolog"))
            if on and off:
                print(f"request logging cost ({name}): get_one with logs = "
                      f"{100 * on['rps'] / off['rps']:.0f}% of the requests/s without")
        print(f"loadavg at end {load_avg()}")
        save(results, started)
        return 0
    finally:
        for s in servers:
            s.stop()
        if os.environ.get("KEEP_DATA") == "1":
            log(f"kept data dirs and logs in {workdir}")
        else:
            subprocess.run(["rm", "-rf", workdir])


def save(results, started):
    out_dir = os.environ.get("RESULTS_DIR", os.path.join(HERE, ".peer", "results"))
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"bench-{started:%Y%m%dT%H%M%SZ}.json")
    with open(path, "w") as f:
        json.dump({"started": started.isoformat(), "duration_s": DURATION,
                   "connections": CONNECTIONS, "seed_records": SEED_RECORDS,
                   "results": results}, f, indent=2)
    log(f"results saved to {path}")


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def load_avg():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
