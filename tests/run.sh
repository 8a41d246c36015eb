#!/usr/bin/env bash
# The whole test suite, from a clean checkout: Rust unit and integration tests,
# then the official PocketBase JS SDK against the built binary.
# Installs what it needs (Node.js/npm from Debian if absent, the SDK from npm).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo test (unit + HTTP integration tests)"
cargo build --locked --bin ferrobase
cargo test --locked

echo "==> reliability: kill -9 durability, sustained load, realtime fan-out (loopback, bounded)"
FERROBASE_BIN="$PWD/target/debug/ferrobase" python3 tests/reliability/durability.py
FERROBASE_BIN="$PWD/target/debug/ferrobase" python3 tests/reliability/load.py
FERROBASE_BIN="$PWD/target/debug/ferrobase" python3 tests/reliability/files_crash.py
FERROBASE_BIN="$PWD/target/debug/ferrobase" python3 tests/reliability/realtime_fanout.py

echo "==> JS SDK compatibility suite (pocketbase@0.28.1 from npm)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node/npm not found; installing Debian's nodejs and npm"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
(cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error && node --test)
