#!/usr/bin/env python3
"""Sends N requests of one workload (as workloads.lua builds them) over one keep-alive
connection, in a fixed pseudo-random sequence. stdlib only.

usage: drive.py PORT TOKENS_JSON WORKLOAD N SEED
WORKLOAD: list_rule | full_list | list_skiptotal | list_filter | expand | get_one | mixed"""
import http.client
import json
import random
import sys

port, tokens = int(sys.argv[1]), json.load(open(sys.argv[2]))
workload, n, rng = sys.argv[3], int(sys.argv[4]), random.Random(int(sys.argv[5]))
posts = "/api/collections/posts/records"


def list_filter(skip_total):
    return (posts + "?perPage=50&sort=-views,id" + ("&skipTotal=1" if skip_total else "")
            + "&filter=(views%%3E%%3D%d%%20%%26%%26%%20published%%3Dtrue)" % rng.randint(0, 990))


def request():
    """(method, path, body, token) of the next request."""
    if workload == "list_rule":
        return ("GET", "/api/collections/owned_posts/records?perPage=50&sort=-views,id&page=%d"
                % rng.randint(1, 10), None, tokens["users"][0])
    if workload == "full_list":
        return "GET", posts + "?perPage=500&skipTotal=1&page=%d" % rng.randint(1, 20), None, None
    if workload in ("list_filter", "list_skiptotal"):
        return "GET", list_filter(workload == "list_skiptotal"), None, None
    if workload == "expand":
        return ("GET", posts + "?perPage=50&sort=-views,id&expand=owner.team&page=%d"
                % rng.randint(1, 10), None, None)
    if workload == "get_one":
        return "GET", posts + "/p%014d" % rng.randint(0, 9999), None, None
    if workload == "mixed":  # 60 % view, 30 % list_filter, 5 % create, 5 % update
        r = rng.randint(1, 100)
        if r <= 60:
            return "GET", posts + "/p%014d" % rng.randint(0, 9999), None, None
        if r <= 90:
            return "GET", list_filter(False), None, None
        if r <= 95:
            return ("POST", posts, {"title": "bench", "body": "created by the benchmark",
                                    "views": rng.randint(0, 999), "published": True,
                                    "owner": "u%014d" % 0}, None)
        return ("PATCH", posts + "/p%014d" % rng.randint(0, 9999),
                {"views": rng.randint(0, 999)}, None)
    raise SystemExit(f"unknown workload {workload}")


conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for _ in range(n):
    method, path, body, token = request()
    headers = {"Authorization": token} if token else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise SystemExit(f"{method} {path}: HTTP {resp.status} {data[:200]!r}")
