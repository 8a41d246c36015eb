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
  FANOUT_SUBSCRIBERS=1000, FANOUT_EVENTS=50, FANOUT_RATE=10   realtime_fanout shape
  BATCH_SIZE=50         creates per request in batch_create
  SEED_BATCH=500        records per /api/batch request while seeding
  DELETE_POOL=10000*(DURATION+WARMUP)   `trash` records seeded for the delete workload
  COLD_STARTS=5         starts per server for cold_start (the median is reported)
  MODE=scaling or SIZES=...   the scaling run: SCALE_WORKLOADS at each size in SIZES
  MODE=all              the full table, then the scaling run (everything in one command)
  SIZES=10000,100000    record counts for the scaling run
  SCALE_WORKLOADS=list_filter,list_rule,get_one,expand,create
  REPORT_DIR            where latest.md / scaling.md / scaling.svg go (default benches/http/results)
  KEEP_DATA=1           keep the temporary data dirs and logs
  RESULTS_DIR           where the JSON results go (default benches/http/.peer/results)
"""

import asyncio
import json
import os
import resource
import struct
import zlib
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import http.client
import urllib.parse
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
# delete removes records of its own collection (`trash`), so it does not disturb the others.
ALL_WORKLOADS = [
    "cold_start", "ceiling", "get_one", "get_one_nolog", "list_filter", "list_skiptotal",
    "list_rule", "expand", "full_list", "file", "thumb", "update", "mixed", "create",
    "batch_create", "delete", "auth", "realtime", "realtime_fanout",
]
# workloads that wrk drives (the others are driven from python)
PYTHON_WORKLOADS = ("cold_start", "realtime", "realtime_fanout")


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
FANOUT_SUBSCRIBERS = env_int("FANOUT_SUBSCRIBERS", 1000)
FANOUT_EVENTS = env_int("FANOUT_EVENTS", 50)
FANOUT_RATE = env_int("FANOUT_RATE", 10)
FANOUT_PER_ADDRESS = 50
BATCH_SIZE = env_int("BATCH_SIZE", 50)
SEED_BATCH = env_int("SEED_BATCH", 500)
# enough for 10,000 deletes/s through warm-up and measurement; delete stops before it runs out
DELETE_POOL = env_int("DELETE_POOL", 10000 * (DURATION + WARMUP))
COLD_STARTS = env_int("COLD_STARTS", 5)
SIZES = [int(x) for x in os.environ.get("SIZES", "10000,100000").split(",") if x]
MODE = os.environ.get("MODE", "")
if MODE not in ("", "table", "scaling", "all"):
    raise SystemExit(f"MODE must be table, scaling or all, not {MODE!r}")
# SIZES alone implies the scaling run; MODE=all runs the table first, then the scaling run.
SCALING = MODE in ("scaling", "all") or (MODE == "" and "SIZES" in os.environ)
TABLE = MODE in ("table", "all") or not SCALING
SCALE_WORKLOADS = [w for w in os.environ.get(
    "SCALE_WORKLOADS", "list_filter,list_rule,get_one,expand,create").split(",") if w]
REPORT_DIR = os.environ.get("REPORT_DIR", os.path.join(HERE, "results"))
N_TEAMS = 5
SERVER_CPU = os.environ.get("SERVER_CPU", "1")
LOADGEN_CPU = os.environ.get("LOADGEN_CPU", "0")
WORKLOADS = [w for w in os.environ.get("WORKLOADS", ",".join(ALL_WORKLOADS)).split(",") if w]
PIN = (os.cpu_count() or 1) >= 2
# Ferrobase on PostgreSQL as a third server (run.sh starts a PostgreSQL on SERVER_CPU and
# sets both; unset: two servers).
PG_URL = os.environ.get("BENCH_PG_URL", "")
PG_POSTMASTER = int(os.environ.get("BENCH_PG_POSTMASTER", "0") or 0)
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
    """One server process pinned to SERVER_CPU, with its own fresh data dir; with db_url,
    Ferrobase on a fresh database of that PostgreSQL (which runs on SERVER_CPU too)."""

    def __init__(self, name, binary, port, workdir, db_url=None):
        self.name, self.binary, self.port = name, binary, port
        self.data_dir = os.path.join(workdir, f"{name}_data")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.proc = None
        self.supports_realtime = False
        self.db_args = []
        if db_url:
            self.db_args = [f"--db={fresh_pg_database(db_url, os.path.basename(workdir))}"]

    def start(self):
        subprocess.run(
            [self.binary, *self.db_args, "superuser", "upsert", *SUPERUSER,
             f"--dir={self.data_dir}"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cmd = [self.binary, *self.db_args, "serve", f"--http={HOST}:{self.port}",
               f"--dir={self.data_dir}"]
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
        """The server's CPU seconds; on PostgreSQL plus those of every PostgreSQL process
        (the database works for this server alone)."""
        total = proc_cpu_seconds(self.proc.pid)
        if self.db_args and PG_POSTMASTER:
            total += sum(proc_cpu_seconds(pid) for pid in pg_processes())
        return total

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


def proc_cpu_seconds(pid):
    """utime + stime of one process (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # fields[11], fields[12] are utime and stime (fields 14 and 15 of stat(5)).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pg_processes():
    """The benchmark PostgreSQL's postmaster and its children (backends, writers)."""
    pids = [PG_POSTMASTER]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == PG_POSTMASTER:
                pids.append(int(entry))
    return pids


def fresh_pg_database(url, tag):
    """Creates an empty database named after tag on the server at url; its URL."""
    name = "bench_" + re.sub(r"[^a-z0-9_]", "_", tag.lower())
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
                    f'DROP DATABASE IF EXISTS "{name}"', "-c", f'CREATE DATABASE "{name}"'],
                   check=True, stdout=subprocess.DEVNULL)
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


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


def team_id(i):
    return "t%014d" % i


WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray").split()
# Texts drawn once from a fixed seed; record i picks from them by a hash of i, which keeps
# generating a million records cheap (the python driver shares a core with wrk).
_RNG = random.Random(20261207)
TITLES = [" ".join(_RNG.choice(WORDS) for _ in range(4)) for _ in range(1024)]
BODIES = [" ".join(_RNG.choice(WORDS) for _ in range(30)) for _ in range(1024)]


def _mix(x):
    """splitmix64 finaliser: a well-spread 64-bit hash of x."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def record(prefix, i):
    """Deterministic record i: identical on both servers."""
    h = _mix(ord(prefix) << 40 | i)
    return {
        "id": "%s%014d" % (prefix, i),
        "title": f"Post {i} " + TITLES[h & 1023],
        "body": BODIES[(h >> 10) & 1023],
        "views": (h >> 20) % 1000,
        "published": (h >> 32) % 10 < 7,
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


def superuser_token(server):
    st, data = request(server.port, "POST", "/api/collections/_superusers/auth-with-password",
                       {"identity": SUPERUSER[0], "password": SUPERUSER[1]})
    return expect(f"{server.name}: superuser login", st, data)["token"]


def create_schema(server, token):
    port = server.port
    # /api/batch carries the seeding (many records per request) and batch_create.
    expect(f"{server.name}: enable batch", *request(port, "PATCH", "/api/settings", {
        "batch": {"enabled": True, "maxRequests": max(SEED_BATCH, BATCH_SIZE, 50),
                  "timeout": 60, "maxBodySize": 64 << 20}}, token))
    # expand 2 levels: posts.owner -> users, users.team -> teams (both readable by anyone).
    expect(f"{server.name}: create teams", *request(port, "POST", "/api/collections", {
        "name": "teams", "type": "base", "listRule": "", "viewRule": "",
        "fields": [{"name": "name", "type": "text"}]}, token))
    for i in range(N_TEAMS):
        expect(f"{server.name}: create team {i}", *request(
            port, "POST", "/api/collections/teams/records",
            {"id": team_id(i), "name": f"team {i}"}, token))
    users = expect(f"{server.name}: get users", *request(port, "GET", "/api/collections/users",
                                                          token=token))
    fields = users["fields"] + [{"name": "team", "type": "relation", "collectionId": "teams",
                                 "maxSelect": 1, "cascadeDelete": False}]
    teams_id = expect(f"{server.name}: get teams", *request(
        port, "GET", "/api/collections/teams", token=token))["id"]
    fields[-1]["collectionId"] = teams_id
    expect(f"{server.name}: users.team", *request(port, "PATCH", "/api/collections/users", {
        "listRule": "", "viewRule": "", "fields": fields}, token))
    for i in range(N_USERS):
        expect(f"{server.name}: create user {i}", *request(port, "POST", "/api/collections/users/records", {
            "id": user_id(i), "email": user_email(i), "name": f"bench user {i}",
            "team": team_id(i % N_TEAMS),
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
    # delete: anyone may delete; its records are seeded right before the workload.
    expect(f"{server.name}: create trash", *request(port, "POST", "/api/collections", {
        "name": "trash", "type": "base", "listRule": "", "viewRule": "", "createRule": None,
        "updateRule": None, "deleteRule": "", "fields": post_fields()}, token))
    # file and thumb: one 1 MiB PNG, thumbs 100x100.
    expect(f"{server.name}: create media", *request(port, "POST", "/api/collections", {
        "name": "media", "type": "base", "listRule": "", "viewRule": "",
        "fields": [{"name": "title", "type": "text"},
                   {"name": "file", "type": "file", "maxSelect": 1, "maxSize": 5 << 20,
                    "mimeTypes": ["image/png"], "thumbs": ["100x100"], "protected": False}]},
        token))


def seed_batches(server, token, jobs, errors):
    """Sends jobs (collection, prefix, first, count) as /api/batch requests of creates,
    SEED_WORKERS keep-alive clients at once."""
    chunks = []
    for coll, prefix, first, count in jobs:
        for start in range(first, first + count, SEED_BATCH):
            chunks.append((coll, prefix, start, min(first + count, start + SEED_BATCH)))

    def worker(k):
        conn = http.client.HTTPConnection(HOST, server.port, timeout=120)
        for coll, prefix, start, end in chunks[k::SEED_WORKERS]:
            body = {"requests": [
                {"method": "POST", "url": f"/api/collections/{coll}/records",
                 "body": record(prefix, i)} for i in range(start, end)]}
            status, data = request_on(conn, "POST", "/api/batch", body, token)
            if status != 200:
                errors.append(f"{server.name} {coll} {start}..{end}: HTTP {status} "
                              f"{str(data)[:300]}")
                return
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(SEED_WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def dump(server, token, coll):
    """Every record of coll as comparable tuples, in id order (keyset pages of 500)."""
    out, last = [], ""
    keys = ("id", "title", "body", "views", "published", "owner")
    while True:
        flt = urllib.parse.quote(f'id>"{last}"')
        data = expect(f"{server.name}: list {coll}", *request(
            server.port, "GET",
            f"/api/collections/{coll}/records?perPage=500&sort=id&skipTotal=1&filter={flt}",
            token=token))
        if not data["items"]:
            return out
        out += [tuple(item.get(k) for k in keys) for item in data["items"]]
        last = data["items"][-1]["id"]


def count(server, token, coll):
    data = expect(f"{server.name}: count {coll}", *request(
        server.port, "GET", f"/api/collections/{coll}/records?perPage=1&fields=id", token=token))
    return data["totalItems"]


def verify(servers, tokens, n):
    """Both servers hold the same n records per collection: every record compared up to
    100,000, beyond that the counts and 200 records picked at random."""
    for coll, prefix in (("posts", "p"), ("owned_posts", "o")):
        if n <= 100_000:
            dumps = [dump(s, tokens[s.name], coll) for s in servers]
            if len(dumps[0]) != n or any(d != dumps[0] for d in dumps):
                raise RuntimeError(f"{coll}: servers differ after seeding "
                                   f"({[len(d) for d in dumps]} records)")
            continue
        counts = [count(s, tokens[s.name], coll) for s in servers]
        if any(c != n for c in counts):
            raise RuntimeError(f"{coll}: {counts} records after seeding, expected {n}")
        keys = ("id", "title", "body", "views", "published", "owner")
        for i in random.Random(n).sample(range(n), 200):
            want = tuple(record(prefix, i)[k] for k in keys)
            for s in servers:
                got = expect(f"{s.name}: view {coll}", *request(
                    s.port, "GET", f"/api/collections/{coll}/records/{want[0]}",
                    token=tokens[s.name]))
                if tuple(got.get(k) for k in keys) != want:
                    raise RuntimeError(f"{s.name}: {coll} {want[0]} differs after seeding")


def png_bytes(side=512):
    """An uncompressed side x side RGBA PNG of noise: 1 MiB of pixels, about 1 MiB on disk."""
    rng = random.Random(7)
    row = side * 4
    raw = b"".join(b"\x00" + rng.randbytes(row) for _ in range(side))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b""))


def seed_file(server, token):
    """Uploads the PNG to `media`; returns its download path. Asks for the 100x100 thumb
    once, so that the thumb workload measures serving a cached thumb."""
    boundary = "benchboundary7d1f"
    png = png_bytes()
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nbench\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
    conn.request("POST", "/api/collections/media/records", body, {
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": token})
    resp = conn.getresponse()
    data = json.loads(resp.read() or b"null")
    conn.close()
    rec = expect(f"{server.name}: upload the 1 MiB file", resp.status, data)
    path = f"/api/files/media/{rec['id']}/{rec['file']}"
    for suffix, what in (("", "file"), ("?thumb=100x100", "thumb")):
        conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
        conn.request("GET", path + suffix)
        resp = conn.getresponse()
        got = resp.read()
        conn.close()
        if resp.status != 200 or not got.startswith(b"\x89PNG"):
            raise RuntimeError(f"{server.name}: GET {what} {path}{suffix}: HTTP {resp.status}")
        if what == "file" and got != png:
            raise RuntimeError(f"{server.name}: the downloaded file differs from the upload")
        if what == "thumb" and len(got) >= len(png):
            raise RuntimeError(f"{server.name}: ?thumb=100x100 answered the original file")
    log(f"{server.name}: 1 MiB file at {path} ({len(png)} bytes), thumb 100x100 made")
    return path


def prepare(servers, workloads):
    """Schema, users and SEED_RECORDS records on every server; returns per server its
    superuser token, the 10 user tokens, the file path and seeding seconds."""
    state = {}
    for s in servers:
        token = superuser_token(s)
        create_schema(s, token)
        state[s.name] = {"super": token}
    log(f"seeding {SEED_RECORDS} posts + {SEED_RECORDS} owned_posts into each server, one "
        f"server after the other (/api/batch, {SEED_BATCH} creates per request, "
        f"{SEED_WORKERS} clients)")
    for s in servers:
        t0, errors = time.time(), []
        seed_batches(s, state[s.name]["super"],
                     [("posts", "p", 0, SEED_RECORDS), ("owned_posts", "o", 0, SEED_RECORDS)],
                     errors)
        if errors:
            raise RuntimeError("seeding failed: " + "; ".join(errors[:5]))
        state[s.name]["seed_s"] = time.time() - t0
        log(f"{s.name}: seeded {2 * SEED_RECORDS} records in {state[s.name]['seed_s']:.1f} s "
            f"({2 * SEED_RECORDS / state[s.name]['seed_s']:.0f} records/s)")
    log("checking both servers hold identical data")
    verify(servers, {s.name: state[s.name]["super"] for s in servers}, SEED_RECORDS)
    for s in servers:
        users = []
        for i in range(N_USERS):
            st, data = request(s.port, "POST", "/api/collections/users/auth-with-password",
                               {"identity": user_email(i), "password": USER_PASSWORD})
            users.append(expect(f"{s.name}: user login", st, data)["token"])
        state[s.name]["users"] = users
        # expand must really reach two levels (a rule hiding users or teams would make it
        # a cheaper no-op without any error).
        page = expect(f"{s.name}: expand check", *request(
            s.port, "GET", "/api/collections/posts/records?perPage=1&sort=id&expand=owner.team"))
        team = (page["items"][0].get("expand", {}).get("owner", {}).get("expand", {})
                .get("team", {}))
        if team.get("id") != team_id(0):
            raise RuntimeError(f"{s.name}: expand=owner.team did not reach teams: {page}")
        if "file" in workloads or "thumb" in workloads:
            state[s.name]["file"] = seed_file(s, state[s.name]["super"])
    return state


# ---------------------------------------------------------------- wrk workloads

def set_log_days(server, days):
    token = superuser_token(server)
    st, data = request(server.port, "PATCH", "/api/settings", {"logs": {"maxDays": days}},
                       token=token)
    expect(f"{server.name}: logs.maxDays = {days}", st, data)


def connections_for(workload):
    return AUTH_CONNECTIONS if workload == "auth" else CONNECTIONS


def run_wrk(server, workload, token, seconds, out_path, extra=None):
    env = dict(os.environ,
               BENCH_WORKLOAD=workload, BENCH_RECORDS=str(SEED_RECORDS), BENCH_TOKEN=token,
               BENCH_EMAIL=user_email(0), BENCH_PASSWORD=USER_PASSWORD,
               BENCH_OWNER=user_id(0), BENCH_OUT=out_path, BENCH_BATCH=str(BATCH_SIZE),
               BENCH_CONNECTIONS=str(connections_for(workload)), **(extra or {}))
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


def wait_idle(server, limit_s=60):
    """Waits until the server uses under 10% of a core over 0.5 s (at most limit_s): wrk
    hangs up at the end of a run, but a server may still be working through the
    requests queued by then, which would slow the next measurement."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        cpu0 = server.cpu_seconds()
        time.sleep(0.5)
        if server.cpu_seconds() - cpu0 < 0.05:
            return
    log(f"{server.name}: still busy {limit_s} s after the previous workload")


def wrk_workload(server, workload, token, workdir, extra=None, warmup_extra=None):
    wait_idle(server)
    if WARMUP > 0:
        run_wrk(server, workload, token, WARMUP, os.path.join(workdir, "warmup.json"),
                warmup_extra if warmup_extra is not None else extra)
    out = os.path.join(workdir, f"{workload}-{server.name}.json")
    wait_idle(server, 15)
    w, rss, cpu = measure(server, lambda: run_wrk(server, workload, token, DURATION, out, extra))
    e = w["errors"]
    if w["requests"] == 0:
        raise RuntimeError(f"no response within the {DURATION} s run ({CONNECTIONS} "
                           f"connections; a longer DURATION may help)")
    return {
        "duration_s": w["duration_us"] / 1e6,
        "rps": w["requests"] / (w["duration_us"] / 1e6),
        "p50_ms": w["latency_us"]["p50"] / 1000, "p99_ms": w["latency_us"]["p99"] / 1000,
        "requests": w["requests"], "non2xx": e["status"],
        "sock_errors": e["connect"] + e["read"] + e["write"] + e["timeout"],
        "rss_mib": rss, "cpu_s": cpu,
    }


def delete_workload(server, state, workdir):
    """Seeds DELETE_POOL `trash` records (ids d%014d), then deletes them in order: the
    warm-up takes the first fifth, the measured run the rest (it stops before running out)."""
    t0, errors = time.time(), []
    seed_batches(server, state["super"], [("trash", "d", 0, DELETE_POOL)], errors)
    if errors:
        raise RuntimeError("seeding trash failed: " + "; ".join(errors[:5]))
    log(f"{server.name}: {DELETE_POOL} trash records seeded in {time.time() - t0:.1f} s")
    split = DELETE_POOL // 5
    r = wrk_workload(server, "delete", "", workdir,
                     extra={"BENCH_DELETE_FROM": str(split), "BENCH_DELETE_TO": str(DELETE_POOL)},
                     warmup_extra={"BENCH_DELETE_FROM": "0", "BENCH_DELETE_TO": str(split)})
    left = count(server, state["super"], "trash")
    r["note"] = f"{DELETE_POOL - left} of {DELETE_POOL} trash records deleted in total"
    if r["duration_s"] < DURATION * 0.9:
        r["note"] += (f"; ran out of records after {r['duration_s']:.1f} s of {DURATION} s "
                      f"(raise DELETE_POOL)")
    return r


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


async def _read_head(reader):
    """Status code and lower-cased headers of an HTTP/1.1 response."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before the response")
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
        if not line:
            return status, headers
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()


async def _http(port, method, path, body=None, token=None, source=None):
    """One request on its own connection (Connection: close) from source (an address of
    this host, or any); (status, parsed JSON)."""
    reader, writer = await asyncio.open_connection(
        HOST, port, local_addr=(source, 0) if source else None)
    payload = json.dumps(body).encode() if body is not None else b""
    head = (f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n")
    if token:
        head += f"Authorization: {token}\r\n"
    writer.write(head.encode() + b"\r\n" + payload)
    await writer.drain()
    status, headers = await _read_head(reader)
    if "content-length" in headers:
        raw = await reader.readexactly(int(headers["content-length"]))
    else:
        raw = await reader.read()  # chunked bodies are small JSON here; close ends it
        if headers.get("transfer-encoding") == "chunked":
            raw = _dechunk(raw)
    writer.close()
    return status, json.loads(raw) if raw else None


def _dechunk(raw):
    out, i = b"", 0
    while i < len(raw):
        j = raw.index(b"\r\n", i)
        size = int(raw[i:j].split(b";")[0], 16)
        if size == 0:
            break
        out += raw[j + 2:j + 2 + size]
        i = j + 2 + size + 2
    return out


class SseClient:
    """One realtime connection: reads the event stream (chunked or not) and counts
    the benchmark's create events, each with its create-to-delivery latency."""

    def __init__(self, port, token, latencies, source):
        self.port, self.token, self.latencies, self.source = port, token, latencies, source
        self.got, self.buf, self.client_id = 0, b"", None
        self.connected = asyncio.Event()

    async def events(self, reader, chunked):
        """Raw byte blocks of the body, de-chunked."""
        while True:
            if chunked:
                line = await reader.readline()
                if not line:
                    return
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    return
                data = await reader.readexactly(size + 2)
                yield data[:-2]
            else:
                data = await reader.read(65536)
                if not data:
                    return
                yield data

    async def run(self):
        reader, self.writer = await asyncio.open_connection(
            HOST, self.port, local_addr=(self.source, 0))
        self.writer.write(f"GET /api/realtime HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                          f"Accept: text/event-stream\r\n\r\n".encode())
        await self.writer.drain()
        status, headers = await _read_head(reader)
        if status != 200:
            raise RuntimeError(f"GET /api/realtime: HTTP {status}")
        async for block in self.events(reader, headers.get("transfer-encoding") == "chunked"):
            self.buf += block.replace(b"\r\n", b"\n")
            while b"\n\n" in self.buf:
                raw, self.buf = self.buf.split(b"\n\n", 1)
                self.on_event(raw.decode())

    def on_event(self, raw):
        name, data = "message", []
        for line in raw.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if not data:
            return
        payload = json.loads("\n".join(data))
        if name == "PB_CONNECT":
            self.client_id = payload["clientId"]
            self.connected.set()
            return
        title = (payload.get("record") or {}).get("title", "")
        if title.startswith("rt "):
            self.latencies.append(time.monotonic() - float(title.split()[1]))
            self.got += 1

    def close(self):
        if getattr(self, "writer", None):
            self.writer.close()


async def _fanout(server, state):
    n, events = FANOUT_SUBSCRIBERS, FANOUT_EVENTS
    users = state["users"]
    # Half the subscribers are user 0, the owner of every record created; the other half
    # are users 1..9, whom the owner rule hides those records from.
    tokens = [users[0] if k % 2 == 0 else users[1 + (k // 2) % (N_USERS - 1)] for k in range(n)]
    latencies = []
    # 1,000 clients are not one address: each loopback source address (127.0.0.2, .3, ...)
    # opens FANOUT_PER_ADDRESS streams, below Ferrobase's default cap of 100 streams per
    # address (`realtime.max_streams_per_ip`); PocketBase has no such cap.
    clients = [SseClient(server.port, t, latencies, f"127.0.0.{2 + k // FANOUT_PER_ADDRESS}")
               for k, t in enumerate(tokens)]
    tasks = [asyncio.create_task(c.run()) for c in clients]
    try:
        deadline = time.monotonic() + 60
        while not all(c.connected.is_set() for c in clients):
            failed = [t for t in tasks if t.done()]
            if failed:
                raise RuntimeError(f"{server.name}: realtime stream failed: "
                                   f"{failed[0].exception()!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name}: not every stream got PB_CONNECT in 60 s")
            await asyncio.sleep(0.05)
        sem = asyncio.Semaphore(32)

        async def subscribe(c):
            async with sem:
                st, data = await _http(server.port, "POST", "/api/realtime", {
                    "clientId": c.client_id, "subscriptions": ["owned_posts"]}, c.token,
                    c.source)  # both servers accept a subscription only from the stream's address
                expect(f"{server.name}: realtime subscribe", st, data)

        await asyncio.wait_for(asyncio.gather(*(subscribe(c) for c in clients)), 120)
        loop = asyncio.get_running_loop()

        def create_all():
            conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
            t0 = time.monotonic()
            for i in range(events):
                delay = t0 + i / FANOUT_RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                body = {"title": f"rt {time.monotonic():.6f} {i}", "views": i,
                        "published": True, "owner": user_id(0)}
                expect(f"{server.name}: fan-out create", *request_on(
                    conn, "POST", "/api/collections/owned_posts/records", body, users[0]))
            conn.close()

        await loop.run_in_executor(None, create_all)
        owners = clients[0::2]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(c.got < events for c in owners):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # time for any event that should not come at all
    finally:
        for c in clients:
            c.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    owners_got = [c.got for c in clients[0::2]]
    others_got = [c.got for c in clients[1::2]]
    return latencies, owners_got, others_got


def fanout_workload(server, state):
    """FANOUT_SUBSCRIBERS SSE clients subscribe to `owned_posts` (list/view rule
    owner = @request.auth.id); FANOUT_EVENTS records owned by user 0 are created at
    FANOUT_RATE/s. Every owner subscriber must get every event, the others none."""
    (latencies, owners_got, others_got), rss, cpu = measure(
        server, lambda: asyncio.run(_fanout(server, state)))
    lat = sorted(latencies)
    pct = (lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1000) if lat else (lambda p: 0)
    expected = FANOUT_EVENTS * len(owners_got)
    return {"subscribers": FANOUT_SUBSCRIBERS, "events": FANOUT_EVENTS,
            "delivered": sum(owners_got), "expected": expected,
            "owners_complete": sum(1 for g in owners_got if g == FANOUT_EVENTS),
            "owners": len(owners_got), "leaked": sum(others_got),
            "exact": sum(owners_got) == expected and sum(others_got) == 0,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "rss_mib": rss, "cpu_s": cpu}


# ---------------------------------------------------------------- cold start

def cold_start(name, binary, workdir):
    """Spawn -> first 200 from /api/health, COLD_STARTS times on a data dir that holds
    one superuser (so PocketBase does not open its installer); median and all runs, ms."""
    times = []
    for i in range(COLD_STARTS):
        data_dir = os.path.join(workdir, f"cold-{name}-{i}")
        subprocess.run([binary, "superuser", "upsert", *SUPERUSER, f"--dir={data_dir}"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = free_port()
        cmd = [binary, "serve", f"--http={HOST}:{port}", f"--dir={data_dir}"]
        if PIN:
            cmd = ["taskset", "-c", SERVER_CPU] + cmd
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL)
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited during cold start")
                if time.monotonic() - t0 > 30:
                    raise RuntimeError(f"{name} not healthy 30 s after spawn")
                try:
                    if request(port, "GET", "/api/health", timeout=2)[0] == 200:
                        break
                except OSError:
                    time.sleep(0.002)
            times.append((time.monotonic() - t0) * 1000)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        time.sleep(0.2)
    return {"median_ms": sorted(times)[len(times) // 2], "runs_ms": times}


# ---------------------------------------------------------------- report

def fmt_table(results):
    """The Markdown table of one run (wrk workloads), then cold start and realtime."""
    lines = ["| workload | server | req/s | p50 ms | p99 ms | non-2xx | sock err | peak RSS MiB "
             "| CPU s | FB/PB req/s | FB/PB p99 |",
             "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for workload, per in results.items():
        if workload in PYTHON_WORKLOADS:
            continue
        fb, pb = per.get("ferrobase"), per.get("pocketbase")
        for name, r in per.items():
            if "error" in r:
                lines.append(f"| {workload} | {name} | FAILED: {r['error']} | | | | | | | | |")
                continue
            ratio = " | "
            if (name != "pocketbase" and pb and "error" not in pb
                    and pb["rps"] and pb["p99_ms"]):
                ratio = f"{r['rps'] / pb['rps']:.2f}x | {r['p99_ms'] / pb['p99_ms']:.2f}x"
            lines.append(
                f"| {workload} | {name} | {r['rps']:.1f} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {r['non2xx']} | {r['sock_errors']} | "
                f"{r['rss_mib']:.1f} | {r['cpu_s']:.2f} | {ratio} |")
    notes = [f"- {w} on {n}: {r['note']}" for w, per in results.items()
             for n, r in per.items() if r and r.get("note")]
    if notes:
        lines += [""] + notes
    cs = results.get("cold_start")
    if cs:
        lines += ["", f"cold start (spawn -> first 200 on /api/health, data dir with one "
                      f"superuser, median of {COLD_STARTS}):"]
        for name, r in cs.items():
            if "error" in r:
                lines.append(f"- {name}: FAILED: {r['error']}")
                continue
            runs = ", ".join(f"{t:.0f}" for t in r["runs_ms"])
            lines.append(f"- {name}: {r['median_ms']:.0f} ms (runs: {runs} ms)")
    rt = results.get("realtime")
    if rt:
        lines += ["", f"realtime: {RT_SUBSCRIBERS} subscribers on `posts`, {RT_EVENTS} creates "
                      f"at {RT_RATE}/s, latency = create sent -> event read by a subscriber"]
        for name, r in rt.items():
            if r is None or "error" in r:
                lines.append(f"- {name}: " + (f"FAILED: {r['error']}" if r else "not implemented"))
                continue
            lines.append(
                f"- {name}: delivered {r['delivered']}/{r['expected']}, "
                f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
                f"peak RSS {r['rss_mib']:.1f} MiB, CPU {r['cpu_s']:.2f} s")
    fo = results.get("realtime_fanout")
    if fo:
        lines += ["", f"realtime_fanout: {FANOUT_SUBSCRIBERS} subscribers on `owned_posts` "
                      f"(rule owner = @request.auth.id; half are the owner, half other users), "
                      f"{FANOUT_EVENTS} creates at {FANOUT_RATE}/s, latency = create sent -> "
                      f"event read"]
        for name, r in fo.items():
            if r is None or "error" in r:
                lines.append(f"- {name}: " + (f"FAILED: {r['error']}" if r else "not implemented"))
                continue
            verdict = "exact" if r["exact"] else "NOT EXACT"
            lines.append(
                f"- {name}: {verdict}: owners got {r['delivered']}/{r['expected']} "
                f"({r['owners_complete']}/{r['owners']} owners got all), others got "
                f"{r['leaked']} (must be 0); p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
                f"peak RSS {r['rss_mib']:.1f} MiB, CPU {r['cpu_s']:.2f} s")
    return "\n".join(lines)


def header(started, load_at_start):
    third = (" and Ferrobase on PostgreSQL 15 (`ferrobase_pg`: fsync on, same CPU as the "
             "servers; its CPU s include PostgreSQL's, its RSS is Ferrobase's alone)"
             if PG_URL else "")
    return (f"Ferrobase vs PocketBase 0.40.6{third} — {started:%Y-%m-%d %H:%M} UTC, "
            f"{os.cpu_count()} CPUs ({cpu_model()}), loadavg at start {load_at_start}\n\n"
            f"DURATION={DURATION}s WARMUP={WARMUP}s CONNECTIONS={CONNECTIONS} "
            f"(auth: {AUTH_CONNECTIONS}) SEED_RECORDS={SEED_RECORDS}; wrk 1 thread; "
            f"servers on CPU {SERVER_CPU if PIN else '-'}, wrk and the driver on CPU "
            f"{LOADGEN_CPU if PIN else '-'}")


# ---------------------------------------------------------------- runs

def run_suite(fb_bin, pb_bin, workloads, workdir, pidfile):
    """Fresh servers, schema and SEED_RECORDS records, then every workload in order:
    Ferrobase then PocketBase. Returns (results, seeding seconds per server)."""
    results = {}
    if "cold_start" in workloads:
        results["cold_start"] = {}
        for name, binary in (("ferrobase", fb_bin), ("pocketbase", pb_bin)):
            log(f"cold_start on {name} ({COLD_STARTS} starts)")
            try:
                results["cold_start"][name] = cold_start(name, binary, workdir)
            except Exception as e:  # noqa: BLE001 - reported, run goes on
                results["cold_start"][name] = {"error": str(e)[:300]}
    run_dir = tempfile.mkdtemp(prefix=f"n{SEED_RECORDS}-", dir=workdir)
    servers = [Server("ferrobase", fb_bin, free_port(), run_dir)]
    if PG_URL:
        servers.append(Server("ferrobase_pg", fb_bin, free_port(), run_dir, db_url=PG_URL))
    servers.append(Server("pocketbase", pb_bin, free_port(), run_dir))
    try:
        for s in servers:
            s.start()
            if pidfile:
                with open(pidfile, "a") as f:
                    f.write(f"{s.proc.pid}\n")
        log(", ".join(f"{s.name} on :{s.port} (pid {s.proc.pid})" for s in servers) +
            f"; servers on CPU {SERVER_CPU if PIN else '-'}, wrk on CPU {LOADGEN_CPU if PIN else '-'}")
        state = prepare(servers, workloads)
        for workload in workloads:
            if workload == "cold_start":
                continue
            results[workload] = {}
            for s in servers:
                try:
                    results[workload][s.name] = one_workload(s, state[s.name], workload,
                                                             run_dir)
                except Exception as e:  # noqa: BLE001 - reported in the table, run goes on
                    log(f"{workload} on {s.name} FAILED: {e}")
                    results[workload][s.name] = {"error": str(e)[:300]}
                time.sleep(1)
        return results, {s.name: state[s.name]["seed_s"] for s in servers}
    finally:
        for s in servers:
            s.stop()


def one_workload(s, st, workload, run_dir):
    """One workload against one server: its result row (None: not implemented)."""
    if workload in ("realtime", "realtime_fanout"):
        if not probe_realtime(s):
            print(f"{workload}: not implemented in {s.name} yet", flush=True)
            return None
        log(f"{workload} on {s.name}")
        if workload == "realtime":
            return realtime_workload(s)
        return fanout_workload(s, st)
    log(f"{workload} on {s.name} ({WARMUP}s warm-up + {DURATION}s, "
        f"{connections_for(workload)} connections)")
    token = st["users"][0] if workload == "list_rule" else ""
    if workload == "get_one_nolog":
        # The same get_one with request logging off (logs.maxDays = 0),
        # to measure what logging every request costs.
        set_log_days(s, 0)
        try:
            return wrk_workload(s, "get_one", token, run_dir)
        finally:
            set_log_days(s, 5)
    if workload == "delete":
        return delete_workload(s, st, run_dir)
    return wrk_workload(s, workload, token, run_dir, {"BENCH_FILE": st.get("file", "")})


def main():
    fb_bin, pb_bin = os.environ["FB_BIN"], os.environ["PB_BIN"]
    # 1,000 SSE subscribers plus the servers' own files need more than 1,024 descriptors;
    # the servers inherit the raised limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    if PIN:
        # The orchestrator (seeding, sampling, realtime clients) shares the load generator's core.
        os.sched_setaffinity(0, {int(LOADGEN_CPU)})
    workdir = tempfile.mkdtemp(prefix="ferrobase-bench-")
    pidfile = os.environ.get("BENCH_PIDFILE")

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    started, load_at_start = datetime.now(timezone.utc), load_avg()
    try:
        if TABLE:
            table(fb_bin, pb_bin, workdir, pidfile, started, load_at_start)
        if SCALING:
            return scaling(fb_bin, pb_bin, workdir, pidfile, datetime.now(timezone.utc),
                           load_avg())
        return 0
    finally:
        if os.environ.get("KEEP_DATA") == "1":
            log(f"kept data dirs and logs in {workdir}")
        else:
            subprocess.run(["rm", "-rf", workdir])


def table(fb_bin, pb_bin, workdir, pidfile, started, load_at_start):
    """Every workload in WORKLOADS on both servers; writes latest.md."""
    workloads = [w for w in ALL_WORKLOADS if w in WORKLOADS]
    unknown = set(WORKLOADS) - set(ALL_WORKLOADS)
    if unknown:
        raise SystemExit(f"unknown workloads: {sorted(unknown)}")
    results, seed_s = run_suite(fb_bin, pb_bin, workloads, workdir, pidfile)
    text = [header(started, load_at_start), "",
            f"Seeding {2 * SEED_RECORDS} records through /api/batch: " + ", ".join(
                f"{n} {t:.1f} s" for n, t in seed_s.items()), "",
            fmt_table(results)]
    for name in ("ferrobase", "ferrobase_pg", "pocketbase"):
        on, off = (results.get(w, {}).get(name) for w in ("get_one", "get_one_nolog"))
        if on and off and "rps" in on and off.get("rps"):
            text.append(f"\nrequest logging cost ({name}): get_one with logs = "
                        f"{100 * on['rps'] / off['rps']:.0f}% of the requests/s without")
    text.append(f"\nloadavg at end {load_avg()}")
    report = "\n".join(text) + "\n"
    print()
    print(report)
    write_report("latest.md", "# Latest benchmark run\n\nCommand: `bash benches/http/run.sh`"
                 f" ({env_summary()})\n\n" + report)
    save({"results": results, "seed_s": seed_s}, started)


def env_summary():
    knobs = ("MODE", "DURATION", "WARMUP", "CONNECTIONS", "SEED_RECORDS", "WORKLOADS", "SIZES",
             "SCALE_WORKLOADS", "FANOUT_SUBSCRIBERS", "FANOUT_EVENTS")
    set_ = [f"{k}={os.environ[k]}" for k in knobs if k in os.environ]
    return "environment: " + (" ".join(set_) if set_ else "defaults")


def write_report(name, text):
    os.makedirs(REPORT_DIR, exist_ok=True)
    path = os.path.join(REPORT_DIR, name)
    with open(path, "w") as f:
        f.write(text)
    log(f"wrote {path}")


def scaling(fb_bin, pb_bin, workdir, pidfile, started, load_at_start):
    """SCALE_WORKLOADS at each size in SIZES, fresh servers per size; writes scaling.md
    and scaling.svg (req/s and p99 against size)."""
    global SEED_RECORDS
    workloads = [w for w in ALL_WORKLOADS if w in SCALE_WORKLOADS
                 and w not in PYTHON_WORKLOADS]
    per_size, seeding = {}, {}
    for n in SIZES:
        SEED_RECORDS = n
        log(f"=== scaling: {n} records per collection")
        per_size[n], seeding[n] = run_suite(fb_bin, pb_bin, workloads, workdir, pidfile)
        save({"size": n, "results": per_size[n], "seed_s": seeding[n]}, started)
    lines = [f"# Scaling: Ferrobase vs PocketBase 0.40.6 at {', '.join(map(str, SIZES))} records",
             "", f"Command: `MODE=scaling bash benches/http/run.sh` ({env_summary()})", "",
             header(started, load_at_start).replace(f"SEED_RECORDS={SEED_RECORDS}",
                                                    f"SIZES={','.join(map(str, SIZES))}"),
             "", "![req/s and p99 against records](scaling.svg)", "",
             "Seeding (`posts` + `owned_posts`, each N records, through /api/batch, "
             f"{SEED_BATCH} creates per request, {SEED_WORKERS} clients):", ""]
    for n in SIZES:
        lines.append(f"- {n}: " + ", ".join(
            f"{name} {t:.1f} s ({2 * n / t:.0f} records/s)" for name, t in seeding[n].items()))
    lines += ["", "| workload | server | " + " | ".join(f"{n} req/s | {n} p99 ms" for n in SIZES)
              + " | errors (non-2xx + socket) |", "|---|---|" + "--:|--:|" * len(SIZES) + "--:|"]
    for w in workloads:
        for name in ("ferrobase", "pocketbase"):
            cells = []
            bad = 0
            for n in SIZES:
                r = per_size[n][w][name]
                if "error" in r:
                    cells.append("FAILED | ")
                    continue
                cells.append(f"{r['rps']:.1f} | {r['p99_ms']:.2f}")
                bad += r["non2xx"] + r["sock_errors"]
            lines.append(f"| {w} | {name} | " + " | ".join(cells) + f" | {bad} |")
    lines.append(f"\nloadavg at end {load_avg()}")
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    write_report("scaling.md", text)
    write_report("scaling.svg", scaling_svg(per_size, workloads))
    return 0


COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


def scaling_svg(per_size, workloads):
    """Two log-log panels, req/s and p99 against records, one colour per workload;
    Ferrobase solid, PocketBase dashed. Plain SVG text, no plotting library."""
    import math
    sizes = sorted(per_size)
    W, H, pad_l, pad_r, pad_t, pad_b = 460, 330, 62, 16, 34, 46
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H + 70}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{2 * W}" height="{H + 70}" fill="white"/>']

    def panel(x0, key, title):
        vals = [per_size[n][w][s].get(key, 0) for n in sizes for w in workloads
                for s in ("ferrobase", "pocketbase")]
        vals = [v for v in vals if v > 0] or [1]
        lo = 10 ** math.floor(math.log10(min(vals)))
        hi = 10 ** math.ceil(math.log10(max(vals)))
        if hi <= lo:
            hi = lo * 10
        xs = [math.log10(n) for n in sizes]
        xlo, xhi = (xs[0] - 0.2, xs[-1] + 0.2)
        pw, ph = W - pad_l - pad_r, H - pad_t - pad_b

        def px(n):
            return x0 + pad_l + (math.log10(n) - xlo) / (xhi - xlo) * pw

        def py(v):
            v = max(v, lo)
            return pad_t + ph - (math.log10(v) - math.log10(lo)) / (
                math.log10(hi) - math.log10(lo)) * ph

        out.append(f'<text x="{x0 + W / 2}" y="18" text-anchor="middle" font-size="13" '
                   f'font-weight="bold">{title}</text>')
        out.append(f'<rect x="{x0 + pad_l}" y="{pad_t}" width="{pw}" height="{ph}" '
                   f'fill="none" stroke="#888"/>')
        e = math.log10(lo)
        while e <= math.log10(hi) + 1e-9:
            y = py(10 ** e)
            out.append(f'<line x1="{x0 + pad_l}" x2="{x0 + pad_l + pw}" y1="{y:.1f}" '
                       f'y2="{y:.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{x0 + pad_l - 4}" y="{y + 4:.1f}" text-anchor="end">'
                       f'{10 ** e:g}</text>')
            e += 1
        for n in sizes:
            out.append(f'<text x="{px(n):.1f}" y="{pad_t + ph + 16}" text-anchor="middle">'
                       f'{n:,}</text>')
        out.append(f'<text x="{x0 + pad_l + pw / 2}" y="{pad_t + ph + 34}" '
                   f'text-anchor="middle">records per collection (log)</text>')
        for i, w in enumerate(workloads):
            color = COLORS[i % len(COLORS)]
            for s, dash in (("ferrobase", ""), ("pocketbase", ' stroke-dasharray="6,4"')):
                ok = [n for n in sizes if key in per_size[n][w][s]]
                pts = " ".join(f"{px(n):.1f},{py(per_size[n][w][s][key]):.1f}" for n in ok)
                out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                           f'stroke-width="2"{dash}/>')
                for n in ok:
                    out.append(f'<circle cx="{px(n):.1f}" cy="{py(per_size[n][w][s][key]):.1f}" '
                               f'r="3" fill="{color}"/>')

    panel(0, "rps", "requests/s (higher is better)")
    panel(W, "p99_ms", "p99 latency, ms (lower is better)")
    y = H + 12
    for i, w in enumerate(workloads):
        x = 20 + i * 150
        color = COLORS[i % len(COLORS)]
        out.append(f'<line x1="{x}" x2="{x + 24}" y1="{y}" y2="{y}" stroke="{color}" '
                   f'stroke-width="3"/><text x="{x + 30}" y="{y + 4}">{w}</text>')
    out.append(f'<text x="20" y="{y + 26}">solid: Ferrobase    dashed: PocketBase 0.40.6    '
               f'(both axes log scale)</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def save(results, started):
    out_dir = os.environ.get("RESULTS_DIR", os.path.join(HERE, ".peer", "results"))
    os.makedirs(out_dir, exist_ok=True)
    suffix = f"-n{results['size']}" if "size" in results else ""
    path = os.path.join(out_dir, f"bench-{started:%Y%m%dT%H%M%SZ}{suffix}.json")
    with open(path, "w") as f:
        json.dump({"started": started.isoformat(), "duration_s": DURATION,
                   "connections": CONNECTIONS, "seed_records": SEED_RECORDS, **results},
                  f, indent=2)
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
