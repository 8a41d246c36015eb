"""Random worlds: schemas, records, users and the rule/filter grammar (seeded, stdlib only).

A world is one auth collection of users (A, B, C can log in, E never does), maybe a
second auth collection (staff, with actor D), and 1-3 base collections with text,
number, bool, select (single and multi) and relation (single and multi, to the users
and to each other) fields. Everything is described here as plain data; `run.py` creates
it on both servers with the same ids.

Rules and filters are trees of atoms. Each atom carries its text and, for atoms that
compare a record path with `@request.auth.*`, the path (`auth_path`), so a guest-side
difference can be checked against deliberate difference (1) in `known.py`: it is only
deliberate when that path is empty on the record.
"""

PASSWORD = "Passw0rd!diff"
TITLES = ["alpha", "Beta", "", "gamma x", "ALPHA"]
SELECT_VALUES = ["a", "b", "c"]


def rid(prefix, *nums):
    """A 15-char [a-z0-9] id, the same on both servers."""
    body = prefix + "".join(f"{n:03d}" for n in nums)
    return (body + "0" * 15)[:15] if len(body) <= 15 else body[:15]


class Atom:
    """One comparison. `auth_path`: the record path compared with the requester's id or
    email (for classifying guest differences); `joins`: collections joined through
    relation/back-relation paths (for classifying client-filter differences);
    `email`: reads an auth collection's email through the filter."""

    def __init__(self, text, auth_path=None, joins=(), email=False):
        self.text, self.auth_path, self.joins, self.email = text, auth_path, tuple(joins), email

    def render(self):
        return self.text


class Node:
    def __init__(self, op, left, right):
        self.op, self.left, self.right = op, left, right

    def render(self):
        return f"({self.left.render()} {self.op} {self.right.render()})"


def atoms_of(expr):
    if expr is None or expr == "":  # superusers only / public: no atoms
        return []
    if isinstance(expr, Atom):
        return [expr]
    return atoms_of(expr.left) + atoms_of(expr.right)


class World:
    def __init__(self, rng, w):
        self.rng, self.w = rng, w
        self.users = f"u{w}"
        self.users_id = f"pbc_u{w:010d}"
        self.staff = f"s{w}" if rng.random() < 0.4 else None
        self.staff_id = f"pbc_s{w:010d}"
        n_base = rng.randint(1, 3)
        self.bases = [f"c{w}_{i}" for i in range(n_base)]
        self.base_ids = {c: f"pbc_c{w:07d}{i:03d}" for i, c in enumerate(self.bases)}
        # link/links: each base collection points at a random base (itself included)
        self.link_to = {c: rng.choice(self.bases) for c in self.bases}
        self.links_to = {c: rng.choice(self.bases) for c in self.bases}
        self.records = {}  # collection -> {id: fields}
        self._make_users()
        self._make_records()

    # ---- schema -------------------------------------------------------------
    def auth_fields(self):
        return [{"name": "name", "type": "text"}, {"name": "level", "type": "number"},
                {"name": "role", "type": "select", "values": SELECT_VALUES, "maxSelect": 1},
                {"name": "touch", "type": "number"}]

    def base_fields(self, c, with_relations):
        fields = [{"name": "title", "type": "text"}, {"name": "n", "type": "number"},
                  {"name": "flag", "type": "bool"},
                  {"name": "kind", "type": "select", "values": SELECT_VALUES, "maxSelect": 1},
                  {"name": "tags", "type": "select", "values": SELECT_VALUES, "maxSelect": 3},
                  {"name": "touch", "type": "number"}]
        if with_relations:
            rel = [("owner", self.users_id, 1), ("members", self.users_id, 5),
                   ("link", self.base_ids[self.link_to[c]], 1),
                   ("links", self.base_ids[self.links_to[c]], 5)]
            if self.staff:
                rel.append(("staff", self.staff_id, 3))
            fields += [{"name": n, "type": "relation", "collectionId": cid, "maxSelect": m}
                       for n, cid, m in rel]
        return fields

    def collection_bodies(self):
        """Create bodies in order, then PATCH bodies that add the relation fields (so the
        base collections can point at each other)."""
        creates = [{"id": self.users_id, "name": self.users, "type": "auth",
                    "fields": self.auth_fields()}]
        if self.staff:
            creates.append({"id": self.staff_id, "name": self.staff, "type": "auth",
                            "fields": self.auth_fields()})
        for c in self.bases:
            creates.append({"id": self.base_ids[c], "name": c, "type": "base",
                            "fields": self.base_fields(c, False)})
        patches = [(c, {"fields": self.base_fields(c, True)}) for c in self.bases]
        return creates, patches

    # ---- data ---------------------------------------------------------------
    def _make_users(self):
        rng = self.rng
        self.user_ids, self.emails = {}, {}
        self.records[self.users] = {}
        for k, name in enumerate("ABCE"):
            uid = rid(f"u{name.lower()}{self.w}x", k)
            email = f"{name.lower()}.w{self.w}@example.com"
            self.user_ids[name], self.emails[name] = uid, email
            self.records[self.users][uid] = {
                "email": email, "emailVisibility": rng.random() < 0.5,
                "verified": rng.random() < 0.6, "name": name, "level": rng.randint(0, 3),
                "role": rng.choice(SELECT_VALUES + [""]), "touch": 0}
        if self.staff:
            self.records[self.staff] = {}
            uid = rid(f"sd{self.w}x", 0)
            self.user_ids["D"], self.emails["D"] = uid, f"d.w{self.w}@example.com"
            self.records[self.staff][uid] = {
                "email": self.emails["D"], "emailVisibility": rng.random() < 0.5,
                "verified": rng.random() < 0.6, "name": "D", "level": rng.randint(0, 3),
                "role": rng.choice(SELECT_VALUES), "touch": 0}

    def _make_records(self):
        rng, users = self.rng, list(self.user_ids[u] for u in "ABCE")
        for ci, c in enumerate(self.bases):
            self.records[c] = {
                rid(f"r{self.w}x", ci, k): None for k in range(rng.randint(3, 7))}
        for ci, c in enumerate(self.bases):
            for rec_id in self.records[c]:
                maybe = rng.random
                self.records[c][rec_id] = {
                    "title": rng.choice(TITLES), "n": rng.randint(0, 4), "flag": maybe() < 0.5,
                    "kind": rng.choice(SELECT_VALUES + [""]),
                    "tags": rng.sample(SELECT_VALUES, rng.randint(0, 3)),
                    "touch": 0,
                    "owner": rng.choice(users) if maybe() < 0.75 else "",
                    "members": rng.sample(users, rng.choice([0, 0, 1, 2, 3])),
                    "link": (rng.choice(list(self.records[self.link_to[c]]))
                             if maybe() < 0.6 else ""),
                    "links": rng.sample(list(self.records[self.links_to[c]]),
                                        rng.randint(0, 2)),
                }
                if self.staff:
                    self.records[c][rec_id]["staff"] = (
                        [self.user_ids["D"]] if maybe() < 0.4 else [])

    def create_order(self):
        """(collection, id, body) for every record; users first, then base records
        without relations, then PATCHes with relations (links may point forward)."""
        out = []
        for coll in [self.users] + ([self.staff] if self.staff else []):
            for uid, f in self.records[coll].items():
                out.append(("POST", coll, uid, dict(f, id=uid, password=PASSWORD,
                                                    passwordConfirm=PASSWORD)))
        rel = ("owner", "members", "link", "links", "staff")
        for c in self.bases:
            for rec_id, f in self.records[c].items():
                out.append(("POST", c, rec_id,
                            dict({k: v for k, v in f.items() if k not in rel}, id=rec_id)))
        for c in self.bases:
            for rec_id, f in self.records[c].items():
                out.append(("PATCH", c, rec_id, {k: v for k, v in f.items() if k in rel}))
        return out

    def summary(self):
        """One line: collections, where relations point, and the users' visibility."""
        users = ", ".join(f"{n}(verified={self.records[self.users][i]['verified']}, "
                          f"emailVisibility={self.records[self.users][i]['emailVisibility']})"
                          for n, i in self.user_ids.items() if n != "D")
        rels = ", ".join(f"{c}.link->{self.link_to[c]} {c}.links->{self.links_to[c]}"
                         for c in self.bases)
        return (f"auth {self.users} [{users}]" + (f", auth {self.staff} [D]" if self.staff else "")
                + f"; base {', '.join(self.bases)}; {rels}")

    def collections(self):
        return [self.users] + ([self.staff] if self.staff else []) + self.bases

    def is_auth(self, c):
        return c in (self.users, self.staff)

    # ---- path evaluation (for classification only) --------------------------
    def path_dead_ends(self, coll, rec_id, path):
        """Whether some chain of rows along `path` from the record reaches no value:
        a relation hop (or back-relation) with no row, or an empty last field. Through
        a multi-valued hop that is what PocketBase's joins compare with `?=`: one
        member without an owner is enough, however many others have one."""
        def walk(c, r, i):
            seg, last = path[i], i == len(path) - 1
            if isinstance(seg, tuple):
                _, vc, vf = seg
                hits = [x for x, f in self.records[vc].items()
                        if f.get(vf) == r or r in (f.get(vf) or [])]
                if not hits:
                    return True
                return not last and any(walk(vc, x, i + 1) for x in hits)
            value = r if seg == "id" else self.records[c][r].get(seg)
            items = [x for x in (value if isinstance(value, list) else [value])
                     if x not in ("", None)]
            if not items:
                return True
            if last:
                return False
            target = self.relation_target(c, seg)
            return any(walk(target, x, i + 1) for x in items
                       if x in self.records.get(target, {}))
        return walk(coll, rec_id, 0)

    def relation_target(self, c, field):
        if field in ("owner", "members"):
            return self.users
        if field == "staff":
            return self.staff
        if field == "link":
            return self.link_to[c]
        if field == "links":
            return self.links_to[c]
        return None

    def back_refs(self, c):
        """(collection, field) pairs whose relation points at c (for x_via_y paths)."""
        return ([(o, "link") for o in self.bases if self.link_to[o] == c]
                + [(o, "links") for o in self.bases if self.links_to[o] == c])


def forge(token, rng):
    """A token that must not authenticate: the real one with a changed signature, or
    the same claims under `alg: none`."""
    head, payload, sig = token.split(".")
    if rng.random() < 0.5:
        flip = "A" if sig[-5] != "A" else "B"
        return f"{head}.{payload}.{sig[:-5]}{flip}{sig[-4:]}"
    return f"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."


__all__ = ["Atom", "Node", "World", "atoms_of", "forge", "PASSWORD"]
