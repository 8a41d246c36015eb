#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for the tests: `start DIR` initialises a cluster in
# DIR (as the `postgres` user when run as root: initdb refuses root), listens
# on a free loopback port with a private socket directory, fsync off (unless
# PG_DURABLE=1) and deadlocks
# detected after 100 ms (the race tests meet many), and
# prints `PG_TEST_URL=postgres://…` on stdout (and, for the TLS tests,
# `PG_TEST_TLS_URL`, a role admitted over TLS only, and `PG_TEST_CA`); `stop DIR` stops it and removes
# DIR. Installs Debian's postgresql when the binaries are missing.
set -euo pipefail
cmd=${1:?usage: throwaway.sh start|stop DIR}
dir=${2:?usage: throwaway.sh start|stop DIR}

bin=/usr/lib/postgresql/15/bin
if [ ! -x "$bin/postgres" ]; then
  echo "PostgreSQL 15 not found; installing Debian's postgresql" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# PG_DURABLE=1 (the benchmark): PostgreSQL's own defaults, every commit synced.
durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
[ "${PG_DURABLE:-0}" = 1 ] && durability=""

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      chown postgres "$dir"
      # The postgres user must reach DIR: open the (temporary) parents up to /.
      p=$(dirname "$(realpath "$dir")")
      while [ "$p" != / ] && ! runuser -u postgres -- test -x "$p"; do chmod o+x "$p"; p=$(dirname "$p"); done
    fi
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$dir/socket"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/socket"
    # TLS: a CA of its own signs a certificate for 127.0.0.1; the role
    # fb_tls may log in over TLS only, so a test connecting as it proves TLS.
    tls="$dir/tls"
    mkdir -p "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ferrobase test CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
      -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$tls/ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
      -CAcreateserial -days 2 -extfile "$tls/ext" -out "$tls/server.pem" 2>/dev/null
    chmod 600 "$tls/server.key"
    [ "$(id -u)" = 0 ] && chown -R postgres "$tls"
    { printf 'hostnossl all fb_tls 127.0.0.1/32 reject\nhostssl all fb_tls 127.0.0.1/32 trust\n'
      cat "$dir/data/pg_hba.conf"; } > "$tls/hba" && cp "$tls/hba" "$dir/data/pg_hba.conf"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start -o \
      "-p $port -k $dir/socket -c listen_addresses=127.0.0.1 $durability -c max_connections=200 -c deadlock_timeout=100ms -c ssl=on -c ssl_cert_file=$tls/server.pem -c ssl_key_file=$tls/server.key" >/dev/null
    as_owner "$bin/psql" -q -h "$dir/socket" -p "$port" -U postgres -d postgres -c "CREATE ROLE fb_tls LOGIN SUPERUSER" >/dev/null
    echo "PG_TEST_URL=postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
    echo "PG_TEST_TLS_URL=postgres://fb_tls@127.0.0.1:$port/postgres"
    echo "PG_TEST_CA=$tls/ca.pem"
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: throwaway.sh start|stop DIR" >&2; exit 2 ;;
esac
