"""Shared helpers for the reliability scripts (stdlib only, loopback only).

Finds the Ferrobase binary, starts it on a free loopback port with a given data dir,
speaks JSON over http.client, and reads a process's RSS, CPU and open descriptors from
/proc. Each script owns its own workload and checks.
"""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST = "127.0.0.1"
SUPERUSER = ("reliability@example.com", "reliability-Passw0rd!1")
STARTUP_TIMEOUT_S = 60


def server_env():
    """The environment for the server: ours minus FERROBASE_BIN, which is this script's
    knob, not a server setting (the server refuses unknown FERROBASE_* variables)."""
    env = dict(os.environ)
    env.pop("FERROBASE_BIN", None)
    return env


def log(msg):
    print(msg, flush=True)


def ferrobase_bin():
    """FERROBASE_BIN, else target/release/ferrobase, else target/debug/ferrobase (built if
    neither exists)."""
    if os.environ.get("FERROBASE_BIN"):
        # Absolute: the server is started from its own data dir.
        return os.path.abspath(os.environ["FERROBASE_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    for profile in ("release", "debug"):
        path = os.path.join(target, profile, "ferrobase")
        if os.access(path, os.X_OK):
            return path
    log("no ferrobase binary found; running cargo build --locked --bin ferrobase")
    subprocess.run(["cargo", "build", "--locked", "--bin", "ferrobase"], cwd=ROOT, check=True)
    return os.path.join(target, "debug", "ferrobase")


class Server:
    """A ferrobase process on 127.0.0.1:<free port> over data_dir.

    The process runs with the data dir's parent as working directory so that no stray
    ./config.toml changes its configuration: these tests exercise the defaults
    (synchronous = FULL)."""

    def __init__(self, binary, data_dir, log_path):
        self.binary, self.data_dir, self.log_path = binary, data_dir, log_path
        self.proc, self.port = None, None

    def upsert_superuser(self):
        r = subprocess.run(
            [self.binary, "superuser", "upsert", *SUPERUSER, f"--dir={self.data_dir}"],
            capture_output=True, cwd=os.path.dirname(self.data_dir), stdin=subprocess.DEVNULL,
            env=server_env())
        if r.returncode != 0:
            raise RuntimeError(f"superuser upsert exited {r.returncode}: "
                               f"{(r.stdout + r.stderr).decode(errors='replace')[-1500:]}")

    def start(self):
        out_path = self.log_path + ".stdout"
        out = open(out_path, "wb")
        err = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", f"--http={HOST}:0", f"--dir={self.data_dir}"],
            stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            cwd=os.path.dirname(self.data_dir), env=server_env())
        out.close()
        err.close()
        deadline = time.time() + STARTUP_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited at start (code {self.proc.returncode}); "
                                   f"log: {tail(self.log_path)}")
            with open(out_path, "rb") as f:
                first = f.readline().decode(errors="replace")
            m = re.search(r"Server started at http://[^:\s]+:(\d+)", first)
            if m and first.endswith("\n"):
                self.port = int(m.group(1))
                if self.health_ok():
                    return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not start within {STARTUP_TIMEOUT_S} s")

    def health_ok(self):
        try:
            return request(self.port, "GET", "/api/health", timeout=5)[0] == 200
        except OSError:
            return False

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout=20):
        """Graceful stop (SIGTERM); SIGKILL if it does not exit in time. Returns the code."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"server did not stop within {timeout} s of SIGTERM; killing it")
                self.kill()
        return self.proc.returncode if self.proc else None

    def superuser_token(self):
        status, data = request(self.port, "POST", "/api/collections/_superusers/auth-with-password",
                               {"identity": SUPERUSER[0], "password": SUPERUSER[1]})
        if status != 200:
            raise RuntimeError(f"superuser login: HTTP {status} {data}")
        return data["token"]

    # /proc readings
    def status_kib(self, key):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def threads(self):
        return self.status_kib("Threads")

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tail(path, n=20):
    try:
        with open(path, "rb") as f:
            return b"".join(f.readlines()[-n:]).decode(errors="replace")
    except OSError:
        return ""


def request(port, method, path, body=None, token=None, timeout=30):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        return request_on(conn, method, path, body, token)
    finally:
        conn.close()


def request_on(conn, method, path, body=None, token=None):
    """(status, parsed JSON or raw bytes) on an open keep-alive connection."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = token
    conn.request(method, path, json.dumps(body).encode() if body is not None else None, headers)
    resp = conn.getresponse()
    raw = resp.read()
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = raw[:300]
    return resp.status, data


def create_collection(port, token, body):
    status, data = request(port, "POST", "/api/collections", body, token)
    if status != 200:
        raise RuntimeError(f"create collection {body.get('name')}: HTTP {status} {data}")
    return data


def summary_line(passed, failed):
    """The closing line CI's runner detection reads."""
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit("common.py is a helper module; run durability.py or load.py")
