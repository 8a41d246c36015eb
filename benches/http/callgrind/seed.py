#!/usr/bin/env python3
"""Seeds a Ferrobase data dir the way bench.py's prepare does (schema, users, SEED_RECORDS
posts and owned_posts), saves the superuser's and users' tokens in DATA_DIR/tokens.json,
stops the server and checkpoints the WAL. stdlib only.

usage: seed.py BINARY DATA_DIR"""
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("SEED_RECORDS", "10000")
import bench  # noqa: E402

binary, data_dir = sys.argv[1], os.path.abspath(sys.argv[2])
bench.PIN = False
server = bench.Server("fb", binary, bench.free_port(), os.path.dirname(data_dir))
server.data_dir = data_dir
server.start()
try:
    token = bench.superuser_token(server)
    bench.create_schema(server, token)
    errors = []
    bench.seed_batches(server, token, [("posts", "p", 0, bench.SEED_RECORDS),
                                       ("owned_posts", "o", 0, bench.SEED_RECORDS)], errors)
    if errors:
        raise SystemExit("seeding failed: " + "; ".join(errors[:5]))
    users = []
    for i in range(bench.N_USERS):
        st, data = bench.request(server.port, "POST", "/api/collections/users/auth-with-password",
                                 {"identity": bench.user_email(i), "password": bench.USER_PASSWORD})
        users.append(bench.expect("user login", st, data)["token"])
    with open(os.path.join(data_dir, "tokens.json"), "w") as f:
        json.dump({"super": token, "users": users}, f)
finally:
    server.stop()
# Every run starts from the same file state: the seeding's WAL folded into data.db.
with sqlite3.connect(os.path.join(data_dir, "data.db")) as db:
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
