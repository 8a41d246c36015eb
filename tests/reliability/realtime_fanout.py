#!/usr/bin/env python3
"""Realtime fan-out at SUBSCRIBERS SSE connections: every event delivered, latency, flat memory.

Starts ferrobase on a fresh data dir (loopback), creates a public collection, opens
SUBSCRIBERS raw SSE connections (asyncio sockets, one task each) subscribed to
`feed/*`, then creates ROUNDS x EVENTS records one after another (INTERVAL_MS apart)
and times, per subscriber, the arrival of each record's event against the moment the
create response arrived (the write had committed by then). Checks:
  1. every subscriber receives every event, once, in order;
  2. p99 latency (create response -> event delivered) <= P99_MAX_MS;
  3. memory stays flat: RSS after the last round <= RSS after the first round x 1.2
     + 8 MiB (the same work again must not grow the process);
  4. after the clients disconnect the server still answers and stops on SIGTERM.
Prints the figures (RSS idle, with the connections open, after each round; p50/p99/max)
and ends with `P passed, F failed`. Bounded: a few seconds plus
ROUNDS x EVENTS x INTERVAL_MS.

Environment: FERROBASE_BIN, SUBSCRIBERS (1000), EVENTS (20), ROUNDS (2),
INTERVAL_MS (100), P99_MAX_MS (2000), USERS (0). With USERS=N the subscribers are
N distinct users (tokens by impersonation) and the collection's list rule is
`@request.auth.id != ''`, so every event needs one rule check per user instead of
one for all guests: the worst case for the fan-out's grouping. FERROBASE_BIN may name PocketBase's binary
(same CLI) to measure the peer the same way; it is started on a port picked here,
since PocketBase does not report the port it bound for `:0`.
"""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import statistics
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the work tree for the helper module
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    HOST, STARTUP_TIMEOUT_S, Server, create_collection, ferrobase_bin, log, request, server_env,
    summary_line, tail)

SUBSCRIBERS = int(os.environ.get("SUBSCRIBERS", 1000))
USERS = int(os.environ.get("USERS", 0))
EVENTS = int(os.environ.get("EVENTS", 20))
ROUNDS = int(os.environ.get("ROUNDS", 2))
INTERVAL_MS = int(os.environ.get("INTERVAL_MS", 100))
P99_MAX_MS = float(os.environ.get("P99_MAX_MS", 2000))
CONNECT_TIMEOUT_S = 30
# Every subscriber connects from loopback, one address: lift the per-address
# stream cap (realtime.max_streams_per_ip) unless the caller set it.
os.environ.setdefault("FERROBASE_REALTIME_MAX_STREAMS_PER_IP", "0")
DELIVERY_TIMEOUT_S = 15
RSS_GROWTH_MAX = 1.2
RSS_SLACK_KIB = 8 * 1024
COLLECTION = "feed"


class PeerServer(Server):
    """PocketBase: started on a free port chosen here (it echoes `:0` when given port 0)."""

    def start(self):
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            self.port = probe.getsockname()[1]
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(
                [self.binary, "serve", f"--http={HOST}:{self.port}", f"--dir={self.data_dir}"],
                stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                cwd=os.path.dirname(self.data_dir), env=server_env())
        deadline = time.time() + STARTUP_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited at start (code {self.proc.returncode})")
            if self.health_ok():
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server did not start within {STARTUP_TIMEOUT_S} s")


class Subscriber:
    """One SSE connection: reads frames and notes when each titled record arrives."""

    def __init__(self):
        self.client_id = None
        self.arrivals = {}  # title -> monotonic time
        self.order = []
        self.reader = self.writer = None
        self.connected = asyncio.Event()

    async def open(self, port):
        self.reader, self.writer = await asyncio.open_connection(HOST, port)
        self.writer.write(f"GET /api/realtime HTTP/1.1\r\nHost: {HOST}\r\n"
                          "Accept: text/event-stream\r\n\r\n".encode())
        await self.writer.drain()
        await self.reader.readuntil(b"\r\n\r\n")  # response head

    async def run(self):
        buf = b""
        while True:
            chunk = await self.reader.read(65536)
            if not chunk:
                return
            now = time.monotonic()
            buf += chunk
            # Chunked transfer encoding: frames end with a blank line; the chunk-size
            # lines between them never contain "\n\n".
            while b"\n\n" in buf:
                frame, buf = buf.split(b"\n\n", 1)
                self.on_frame(frame.decode(errors="replace"), now)

    def on_frame(self, frame, now):
        fields = {}
        for line in frame.splitlines():
            key, sep, value = line.partition(":")
            if sep and key in ("id", "event", "data"):
                fields[key] = value
        if fields.get("event") == "PB_CONNECT":
            self.client_id = fields.get("id")
            self.connected.set()
        elif "data" in fields:
            title = json.loads(fields["data"])["record"]["title"]
            self.order.append(title)
            self.arrivals.setdefault(title, now)

    def close(self):
        if self.writer:
            self.writer.close()


async def post_json(port, path, body, token=None):
    """A one-shot POST on its own connection; returns the status code."""
    reader, writer = await asyncio.open_connection(HOST, port)
    payload = json.dumps(body).encode()
    auth = f"Authorization: {token}\r\n" if token else ""
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n{auth}"
                 f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)
    await writer.drain()
    head = await reader.readuntil(b"\r\n")
    writer.close()
    return int(head.split()[1])


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def make_user_tokens(port, token):
    """USERS users (created concurrently: password hashing dominates) and a token for each."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i):
        status, rec = request(port, "POST", "/api/collections/users/records", {
            "email": f"fan{i}@example.com", "password": "fan-out-Passw0rd",
            "passwordConfirm": "fan-out-Passw0rd"}, token)
        if status != 200:
            raise RuntimeError(f"create user {i}: HTTP {status} {rec}")
        status, auth = request(port, "POST", f"/api/collections/users/impersonate/{rec['id']}",
                               {"duration": 3600}, token)
        if status != 200:
            raise RuntimeError(f"impersonate user {i}: HTTP {status} {auth}")
        return auth["token"]

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(USERS)))


async def main_async(server, token, checks):
    port = server.port
    tokens = [None]
    if USERS:
        started = time.monotonic()
        tokens = await asyncio.get_running_loop().run_in_executor(
            None, make_user_tokens, port, token)
        log(f"{USERS} users created in {time.monotonic() - started:.1f} s")
    rss_idle = server.status_kib("VmRSS")
    subs = [Subscriber() for _ in range(SUBSCRIBERS)]
    started = time.monotonic()
    # Open in slices so the listen backlog is never the bottleneck.
    for i in range(0, SUBSCRIBERS, 100):
        await asyncio.gather(*(s.open(port) for s in subs[i:i + 100]))
    readers = [asyncio.create_task(s.run()) for s in subs]
    await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in subs)), CONNECT_TIMEOUT_S)
    statuses = []
    for i in range(0, SUBSCRIBERS, 100):
        statuses += await asyncio.gather(*(
            post_json(port, "/api/realtime", {"clientId": s.client_id, "subscriptions": [f"{COLLECTION}/*"]},
                      tokens[(i + j) % len(tokens)])
            for j, s in enumerate(subs[i:i + 100])))
    log(f"{SUBSCRIBERS} SSE connections open and subscribed in {time.monotonic() - started:.1f} s")
    checks.append(("every subscription accepted (204)", all(st == 204 for st in statuses),
                   f"statuses {sorted(set(statuses))}"))
    rss_connected = server.status_kib("VmRSS")

    loop = asyncio.get_running_loop()
    latencies, from_sent, firsts, lasts, rss_rounds, expected = [], [], [], [], [], []
    for rnd in range(ROUNDS):
        for n in range(EVENTS):
            title = f"r{rnd}e{n}"
            expected.append(title)
            sent = time.monotonic()
            status, _ = await loop.run_in_executor(
                None, lambda t=title: request(port, "POST", f"/api/collections/{COLLECTION}/records",
                                              {"title": t}, token))
            committed = time.monotonic()
            if status != 200:
                raise RuntimeError(f"create {title}: HTTP {status}")
            deadline = committed + DELIVERY_TIMEOUT_S
            while time.monotonic() < deadline and not all(title in s.arrivals for s in subs):
                await asyncio.sleep(0.005)
            arrived = [s.arrivals[title] for s in subs if title in s.arrivals]
            latencies += [max(0.0, t - committed) * 1000 for t in arrived]
            from_sent += [(t - sent) * 1000 for t in arrived]
            if arrived:
                firsts.append(max(0.0, min(arrived) - committed) * 1000)
                lasts.append(max(0.0, max(arrived) - committed) * 1000)
            await asyncio.sleep(INTERVAL_MS / 1000)
        rss_rounds.append(server.status_kib("VmRSS"))

    complete = [s for s in subs if s.order == expected]
    checks.append(("every subscriber received every event once, in order", len(complete) == len(subs),
                   f"{len(complete)} of {len(subs)} complete"))
    latencies.sort()
    p50, p99, worst = percentile(latencies, 50), percentile(latencies, 99), latencies[-1] if latencies else 0
    log(f"latency create-response -> delivery over {len(latencies)} deliveries: "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms "
        f"(mean {statistics.fmean(latencies) if latencies else 0:.1f} ms)")
    from_sent.sort()
    firsts.sort()
    lasts.sort()
    log(f"latency create-request sent -> delivery: p50 {percentile(from_sent, 50):.1f} ms, "
        f"p99 {percentile(from_sent, 99):.1f} ms")
    log(f"per event, first subscriber reached: p50 {percentile(firsts, 50):.1f} ms; "
        f"last of {SUBSCRIBERS} reached: p50 {percentile(lasts, 50):.1f} ms, "
        f"max {lasts[-1] if lasts else 0:.1f} ms (after the create response; the reading "
        "side is one Python thread, so the spread is partly the client's)")
    checks.append((f"p99 latency <= {P99_MAX_MS:.0f} ms", p99 <= P99_MAX_MS, f"p99 {p99:.1f} ms"))
    log("RSS: idle {:.1f} MiB, {} connections {:.1f} MiB, after rounds {}".format(
        rss_idle / 1024, SUBSCRIBERS, rss_connected / 1024,
        ", ".join(f"{r / 1024:.1f} MiB" for r in rss_rounds)))
    flat = rss_rounds[-1] <= rss_rounds[0] * RSS_GROWTH_MAX + RSS_SLACK_KIB
    checks.append(("memory flat across rounds", flat,
                   f"{rss_rounds[0] / 1024:.1f} -> {rss_rounds[-1] / 1024:.1f} MiB"))

    for s in subs:
        s.close()
    for r in readers:
        r.cancel()
    await asyncio.gather(*readers, return_exceptions=True)


def main():
    binary = ferrobase_bin()
    work = tempfile.mkdtemp(prefix="ferrobase-fanout-")
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir)
    kind = PeerServer if os.path.basename(binary).startswith("pocketbase") else Server
    server = kind(binary, data_dir, os.path.join(work, "server.log"))
    checks = []
    try:
        server.upsert_superuser()
        server.start()
        token = server.superuser_token()
        create_collection(server.port, token, {
            "name": COLLECTION, "listRule": "@request.auth.id != ''" if USERS else "", "viewRule": "",
            "fields": [{"name": "title", "type": "text"}]})
        who = f"{USERS} distinct users" if USERS else "guests"
        log(f"binary {binary}; {SUBSCRIBERS} subscribers ({who}), {ROUNDS} x {EVENTS} events")
        asyncio.run(main_async(server, token, checks))
        checks.append(("server answers after the clients left", server.health_ok(), ""))
        code = server.stop()
        checks.append(("server stops on SIGTERM", code == 0, f"exit code {code}"))
    except Exception as e:  # report, do not hang
        checks.append(("run completed", False, f"{type(e).__name__}: {e}; log: {tail(server.log_path)}"))
        server.kill()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    passed = failed = 0
    for name, ok, detail in checks:
        log(f"{'PASS' if ok else 'FAIL'}: {name}" + (f" ({detail})" if detail else ""))
        passed, failed = passed + ok, failed + (not ok)
    return summary_line(passed, failed)


if __name__ == "__main__":
    sys.exit(main())
