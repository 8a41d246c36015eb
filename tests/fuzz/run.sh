#!/usr/bin/env bash
# Builds the cargo-fuzz targets and runs each one for a bounded number of
# executions (libFuzzer, no sanitizer: the crate forbids unsafe code, and
# debug assertions plus overflow checks stay on).
#   bash tests/fuzz/run.sh            smoke run (20,000 executions a target; in tests/run.sh)
#   bash tests/fuzz/run.sh 10000000   the long run quoted in README.md
# New inputs libFuzzer finds go to tests/fuzz/corpus/ (ignored); crashes to
# tests/fuzz/artifacts/, and the run fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-20000}
max_seconds=${FUZZ_MAX_SECONDS:-3600}
targets=(filter index_sql record_input multipart)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "cargo-fuzz not found; installing it from crates.io"
  cargo install cargo-fuzz --locked --version 0.13.2 --quiet
fi
# libFuzzer's instrumentation flags are unstable options: use a nightly
# toolchain where rustup has one, else let the stable compiler accept them.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
flags=(--fuzz-dir tests/fuzz --sanitizer none --debug-assertions)

"${fuzz[@]}" build "${flags[@]}" >/dev/null
passed=0
failed=0
for target in "${targets[@]}"; do
  corpus="tests/fuzz/corpus/$target"
  mkdir -p "$corpus"
  dict=()
  [ -f "tests/fuzz/dict/$target.dict" ] && dict=("-dict=tests/fuzz/dict/$target.dict")
  log="$(mktemp)"
  if "${fuzz[@]}" run "${flags[@]}" "$target" "$corpus" "tests/fuzz/seeds/$target" -- \
      -runs="$runs" -max_total_time="$max_seconds" -max_len=4096 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
    executed=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    echo "fuzz $target: ${executed:-?} executions, 0 crashes"
    passed=$((passed + 1))
  else
    echo "fuzz $target: FAILED" >&2
    tail -40 "$log" >&2
    failed=$((failed + 1))
  fi
  rm -f "$log"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
