#!/bin/bash
# Instructions per request under callgrind (independent of machine load).
# usage: profile.sh BINARY DATA_DIR OUT_DIR WORKLOAD:N [WORKLOAD:N ...]
# Runs BINARY serve on DATA_DIR (seeded by seed.py; use a copy: requests write logs
# and mixed writes records) under valgrind --tool=callgrind; per workload sends 20
# warm-up requests, zeroes the counters, sends N requests, dumps, and prints the
# instructions of every thread over the N requests, divided by N. Read a dump with
# callgrind_annotate --inclusive=yes OUT_DIR/callgrind.out.<pid>.<k>.
set -euo pipefail
BIN=$1; DATA=$2; OUT=$3; shift 3
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
  "$BIN" serve --http=127.0.0.1:$PORT --dir="$DATA" > "$OUT/server.log" 2>&1 &
VPID=$!
trap 'kill $VPID 2>/dev/null; wait $VPID 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do curl -sf http://127.0.0.1:$PORT/api/health >/dev/null && break; sleep 0.2; done
for spec in "$@"; do
  wl=${spec%%:*}; n=${spec##*:}
  python3 "$HERE/drive.py" $PORT "$DATA/tokens.json" "$wl" 20 1
  sleep 1
  callgrind_control -z $VPID >/dev/null
  python3 "$HERE/drive.py" $PORT "$DATA/tokens.json" "$wl" "$n" 2
  callgrind_control -d "$wl" $VPID >/dev/null
  f=$(ls -t "$OUT"/callgrind.out.$VPID.* | head -1)
  total=$(grep -m1 '^summary:' "$f" | awk '{print $2}')
  echo "$wl: $((total / n)) instructions per request ($n requests; $f)"
done
