#!/usr/bin/env bash
# Ferrobase on PostgreSQL under load, for profiles and before/after checks:
# for each binary given (release builds), a fresh durable PostgreSQL 15
# (tests/postgres/throwaway.sh with PG_DURABLE=1; DURABLE=0 turns fsync off),
# one server on it, 200 records, then `health`, `get_one` and `create` for
# DURATION seconds each from wrk (16 connections, after 3 s of warm-up).
# Binaries alternate for ROUNDS rounds, so a busy machine slows all alike.
# PERF=1 records each run with `perf record -a -g` and prints which processes
# the CPU went to and PostgreSQL's main phases (every postgres process on the
# machine counts: run it on a quiet one).
#
#   bash benches/postgres/profile.sh OLD_BIN NEW_BIN      # ROUNDS=2 DURATION=10 PERF=0
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: profile.sh BIN [BIN…]" >&2; exit 2; }
here=$(cd "$(dirname "$0")/../.." && pwd)
rounds=${ROUNDS:-2} duration=${DURATION:-10} perf=${PERF:-0}
out=$(mktemp -d /tmp/fb-pg-profile.XXXX)
echo "results and profiles in $out"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One run: fresh PostgreSQL and server for binary $1, results tagged $2.
run() {
  local bin=$1 tag=$2 work port pid
  work=$(mktemp -d "$out/run.XXXX")
  PG_DURABLE=${DURABLE:-1} bash "$here/tests/postgres/throwaway.sh" start "$work/pg" > "$work/env"
  local url
  url=$(grep '^PG_TEST_URL=' "$work/env" | cut -d= -f2-)
  port=$(free_port)
  FERROBASE_DATABASE_URL=$url "$bin" --dir "$work/data" superuser upsert su@example.com 'a-long-password-1' >/dev/null 2>&1
  FERROBASE_DATABASE_URL=$url "$bin" --dir "$work/data" serve --http "127.0.0.1:$port" > "$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.1; done
  local id
  id=$(python3 - "$port" <<'PY'
import json, sys, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
def call(method, path, body=None, token=None):
    headers = {"content-type": "application/json", **({"authorization": token} if token else {})}
    req = urllib.request.Request(base + path, method=method, headers=headers,
                                 data=json.dumps(body).encode() if body is not None else None)
    return json.load(urllib.request.urlopen(req))
token = call("POST", "/api/collections/_superusers/auth-with-password",
             {"identity": "su@example.com", "password": "a-long-password-1"})["token"]
call("POST", "/api/collections", {"name": "posts", "type": "base", "listRule": "", "viewRule": "",
     "createRule": "", "fields": [{"name": "title", "type": "text"}, {"name": "views", "type": "number"}]}, token)
ids = [call("POST", "/api/collections/posts/records", {"title": f"post {i}", "views": i})["id"] for i in range(200)]
print(ids[100])
PY
)
  printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' \
    "'{\"title\":\"hello\",\"views\":3}'" > "$work/create.lua"
  local base="http://127.0.0.1:$port/api/collections/posts/records"
  for w in health get_one create; do
    local args=("$base/$id")
    [ "$w" = health ] && args=("http://127.0.0.1:$port/api/health")
    [ "$w" = create ] && args=(-s "$work/create.lua" "$base")
    wrk -t1 -c16 -d3s "${args[@]}" > /dev/null
    if [ "$perf" = 1 ]; then
      perf record -a -g -F 499 -o "$out/$tag.$w.perf" -- wrk -t1 -c16 -d"${duration}s" "${args[@]}" > "$out/$tag.$w.wrk" 2>/dev/null
    else
      wrk -t1 -c16 -d"${duration}s" "${args[@]}" > "$out/$tag.$w.wrk"
    fi
    printf '%-24s %-8s %s req/s\n' "$tag" "$w" "$(awk '/Requests\/sec/ {print $2}' "$out/$tag.$w.wrk")"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  bash "$here/tests/postgres/throwaway.sh" stop "$work/pg"
}

for round in $(seq "$rounds"); do
  n=0
  for bin in "$@"; do
    n=$((n + 1))
    run "$bin" "bin$n.round$round"
  done
done

if [ "$perf" = 1 ]; then
  for data in "$out"/*.perf; do
    echo "== $(basename "$data" .perf): CPU by process"
    perf report -i "$data" --no-children -g none --sort comm --stdio 2>/dev/null | grep '%' | head -8 || true
    echo "-- PostgreSQL's phases (share of all samples)"
    perf report -i "$data" --children -g none --comm postgres --sort sym --stdio 2>/dev/null |
      grep -E ' (PostgresMain|pg_plan_query|raw_parser|parse_analyze_(var|fixed)params|PortalRun|secure_read|CommitTransactionCommand)$' || true
  done
fi
