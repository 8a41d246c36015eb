#!/usr/bin/env python3
"""What one no-op JavaScript hook costs a record create (issue 16).

Starts the release binary twice on fresh data dirs — once without hooks, once
with a `pb_hooks/noop.pb.js` holding one `onRecordCreateRequest((e) => e.next())`
— creates the same collection in both, then drives `POST /records` with wrk
(server pinned to CPU 1, wrk to CPU 0) and prints requests/s, p50/p99 and the
ratio. Loopback only; each run is bounded by DURATION.

    cargo build --release --locked --bin ferrobase
    python3 benches/hooks/bench.py            # DURATION=10 CONNECTIONS=16 ROUNDS=2
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("FB_BIN", os.path.join(ROOT, "target", "release", "ferrobase"))
DURATION = int(os.environ.get("DURATION", "10"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "16"))
ROUNDS = int(os.environ.get("ROUNDS", "2"))
# Extra `serve` arguments for both servers, e.g. FB_ARGS="--hooksPool 8".
EXTRA_ARGS = os.environ.get("FB_ARGS", "").split()
EMAIL, PASSWORD = "bench@example.com", "bench-pass-123"
HOOK = 'onRecordCreateRequest((e) => { e.next() }, "notes")\n'
LUA = """
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/api/collections/notes/records",
    { ["Content-Type"] = "application/json" },
    string.format('{"title":"note %d","body":"created by the hook benchmark"}', n))
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, token=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": token} if token else {})})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def start(root, hooks):
    data = os.path.join(root, "pb_data")
    os.makedirs(data)
    if hooks:
        os.makedirs(os.path.join(root, "pb_hooks"))
        with open(os.path.join(root, "pb_hooks", "noop.pb.js"), "w") as f:
            f.write(HOOK)
    # cwd: the run's own folder, so no ./config.toml is picked up.
    subprocess.run([BINARY, "superuser", "upsert", EMAIL, PASSWORD, f"--dir={data}"],
                   check=True, capture_output=True, cwd=root)
    port = free_port()
    cmd = [BINARY, "serve", f"--http=127.0.0.1:{port}", f"--dir={data}", "--automigrate=false", *EXTRA_ARGS]
    if shutil.which("taskset") and os.cpu_count() > 1:
        cmd = ["taskset", "-c", "1"] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            call(base, "GET", "/api/health")
            break
        except OSError:
            time.sleep(0.1)
    token = call(base, "POST", "/api/collections/_superusers/auth-with-password",
                 {"identity": EMAIL, "password": PASSWORD})["token"]
    call(base, "POST", "/api/collections", {
        "name": "notes", "createRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "body", "type": "text"}],
    }, token)
    return proc, base


def cpu_seconds(pid):
    """User + system CPU time the process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(base, script):
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", "-s", script, base]
    if shutil.which("taskset") and os.cpu_count() > 1:
        cmd = ["taskset", "-c", "0"] + cmd
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=DURATION + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def latency(pct):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, latency(50), latency(99), int(errors.group(1)) if errors else 0


def main():
    if not os.path.exists(BINARY) or not shutil.which("wrk"):
        sys.exit(f"needs {BINARY} (cargo build --release) and wrk (apt-get install wrk)")
    work = tempfile.mkdtemp(prefix="ferrobase-hookbench-")
    script = os.path.join(work, "create.lua")
    with open(script, "w") as f:
        f.write(LUA)
    results = {"no hooks": [], "one no-op hook": []}
    try:
        for round_ in range(ROUNDS):
            for name, hooks in (("no hooks", False), ("one no-op hook", True)):
                proc, base = start(os.path.join(work, f"{round_}-{hooks}"), hooks)
                try:
                    before = cpu_seconds(proc.pid)
                    rps, p50, p99, errors = wrk(base, script)
                    cpu_us = (cpu_seconds(proc.pid) - before) * 1e6 / max(rps * DURATION, 1)
                    results[name].append((rps, p50, p99, errors, cpu_us))
                finally:
                    proc.terminate()
                    proc.wait(timeout=15)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"create, {CONNECTIONS} connections, {DURATION} s x {ROUNDS} rounds (best round shown)")
    print("| setup | req/s | p50 ms | p99 ms | non-2xx | server CPU µs/create |")
    print("|---|---|---|---|---|---|")
    best = {}
    for name, runs in results.items():
        rps, p50, p99, errors, cpu_us = max(runs)
        best[name] = rps
        print(f"| {name} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {errors} | {cpu_us:.0f} |")
    cost = 1 - best["one no-op hook"] / best["no hooks"]
    print(f"cost of one no-op onRecordCreateRequest hook: {cost * 100:.1f} % of create throughput "
          f"({1e6 / best['one no-op hook'] - 1e6 / best['no hooks']:.0f} µs of one core per create)")


if __name__ == "__main__":
    main()
