"""Deliberate differences between Ferrobase and PocketBase 0.40.6, each with its reason
and a check that decides whether one observed difference is an instance of it.

A difference is *deliberate* only when a check below explains it; everything else is
*unexplained* and fails the run. The checks are narrow on purpose: each requires the
difference to go in the safe direction (Ferrobase shows less) and to involve the exact
shape the reason names.
"""

from world import atoms_of

GUEST_ACTORS = ("guest", "forged")


def _ids(answer):
    return set(answer.get("ids") or [])


def _extra_in_pb(case):
    """Ids PocketBase shows and Ferrobase does not, or None if Ferrobase shows anything
    PocketBase hides or the statuses differ in another way."""
    pb, fb = case["pb"], case["fb"]
    if case["kind"] in ("view", "update"):
        if pb["status"] == 200 and fb["status"] == 404:
            return {case["record"]}
        return None
    if pb["status"] != 200 or fb["status"] != 200:
        return None
    if not _ids(fb) <= _ids(pb):
        return None
    return _ids(pb) - _ids(fb)


def _auth_path_empty(world, coll, rec_id, path):
    if path[0] == "@collection":
        _, other, field = path
        return any(f.get(field) in ("", None, []) for f in world.records[other].values())
    return world.path_dead_ends(coll, rec_id, path)


def guest_empty_auth(case, world):
    """A guest's `@request.auth.id`/`email` is "" and PocketBase lets "" equal an empty
    relation or field (`members.id ?= @request.auth.id` on a record with no members).
    Ferrobase matches nothing for a guest. Explained when every record PocketBase alone
    shows has an empty value on some auth-compared path of the rule in force; through a
    multi-valued hop or a back-relation one empty branch is enough (PocketBase compares
    each joined chain: `c_via_links.members.id ?= ''` matches a record when any record
    linking to it has no members)."""
    if case["actor"] not in GUEST_ACTORS or case["kind"] == "rule-accept":
        return False
    extra = _extra_in_pb(case)
    paths = [a.auth_path for a in atoms_of(case.get("rule_expr")) if a.auth_path]
    if not extra or not paths:
        return False
    return all(any(_auth_path_empty(world, case["collection"], r, p) for p in paths)
               for r in extra)


def filter_join_list_rule(case, world):
    """In a client `filter`, Ferrobase applies each joined collection's list rule to the
    joined rows (PocketBase joins rows the requester cannot list). Explained for a
    filtered list that joins a collection whose list rule is not public, when Ferrobase
    shows a subset of what PocketBase shows."""
    if case["kind"] != "filter" or case["actor"] == "superuser":
        return False
    joins = {j for a in atoms_of(case.get("filter_expr")) for j in a.joins}
    guarded = [j for j in joins if case["rules"].get(j, {}).get("listRule") != ""]
    return bool(guarded) and bool(_extra_in_pb(case))


def filter_hidden_email(case, world):
    """In a client `filter`, Ferrobase treats an email its owner keeps hidden
    (emailVisibility false) as absent; PocketBase lets a filter probe it. Explained for
    filters that read an email, when Ferrobase shows a subset."""
    if case["kind"] != "filter" or case["actor"] == "superuser":
        return False
    reads_email = any(a.email for a in atoms_of(case.get("filter_expr")))
    return reads_email and bool(_extra_in_pb(case))


def _empty_literal_paths(expr):
    """Relation paths an atom compares for equality with an empty literal
    (`a.b ?= ''`, `x_via_y.f = null`), in `World.path_dead_ends` form."""
    out = []
    for atom in atoms_of(expr):
        parts = atom.text.split(" ")
        if len(parts) != 3 or parts[1] not in ("=", "?=") or parts[2] not in ("''", "null"):
            continue
        segments = parts[0].split(".")
        if len(segments) < 2 or any(s.startswith("@") for s in segments):
            continue
        out.append([("via", *s.split("_via_", 1)) if "_via_" in s else s for s in segments])
    return out


def absent_relation_is_not_empty(case, world):
    """Through a relation or back-relation that reaches no row, Ferrobase has no value
    (`x_via_y.title ?= ''` does not match a record nothing links to), where PocketBase's
    LEFT JOIN yields NULL and NULL equals ''. It is what keeps a requester with an empty
    identity field from matching every record with no related rows. Explained when
    Ferrobase shows a subset and every record only PocketBase shows reaches no value on
    a path the filter or rule compares with an empty literal."""
    extra = _extra_in_pb(case)
    if not extra:
        return False
    paths = _empty_literal_paths(case.get("filter_expr")) + _empty_literal_paths(case.get("rule_expr"))
    if not paths:
        return False
    return all(any(world.path_dead_ends(case["collection"], r, p) for p in paths)
               for r in extra)


def shared_each_join(case, world):
    """PocketBase joins `json_each(field)` once per query and lets the list rule and the
    client filter share that one joined element, so a rule `tags:each ?= 'c'` with a
    filter `tags:each ?= 'a'` finds no record (no single tag is both). Ferrobase checks
    the rule and the filter each on their own. Explained only when the rule is exactly one
    `F:each ?= 'v'`, the filter reads `F:each` too, Ferrobase shows a superset, and every
    record only Ferrobase shows does hold `v` in `F` (so the rule admits it on its own:
    nothing hidden is shown)."""
    if case["kind"] != "filter":
        return False
    pb, fb = case["pb"], case["fb"]
    if pb["status"] != 200 or fb["status"] != 200 or not _ids(pb) <= _ids(fb):
        return False
    atoms = atoms_of(case.get("rule_expr"))
    if len(atoms) != 1:
        return False
    parts = atoms[0].text.split(" ")
    if len(parts) != 3 or parts[1] != "?=" or not parts[0].endswith(":each"):
        return False
    field, value = parts[0][: -len(":each")], parts[2].strip("'")
    if not any(a.text.startswith(f"{field}:each ") for a in atoms_of(case.get("filter_expr"))):
        return False
    records = world.records[case["collection"]]
    return all(value in (records[r].get(field) or []) for r in _ids(fb) - _ids(pb))


def sort_side_channel(case, world):
    """Sorting by a hidden email or through a relation the requester cannot list would
    order records by data the requester may not see; Ferrobase sorts such values as
    empty. Explained when both show the same ids in a different order under such a sort."""
    sort = case.get("sort") or ""
    if case["kind"] != "filter" or not ("email" in sort or "." in sort):
        return False
    pb, fb = case["pb"], case["fb"]
    return (pb["status"] == fb["status"] == 200 and _ids(pb) == _ids(fb)
            and pb.get("total") == fb.get("total"))


DELIBERATE = [
    ("guest-empty-auth", guest_empty_auth),
    ("filter-join-list-rule", filter_join_list_rule),
    ("filter-hidden-email", filter_hidden_email),
    ("sort-side-channel", sort_side_channel),
    ("absent-relation-is-not-empty", absent_relation_is_not_empty),
    ("shared-each-join", shared_each_join),
]


def classify(case, world):
    """The name of the deliberate difference that explains `case`, or None."""
    for name, check in DELIBERATE:
        if check(case, world):
            return name
    return None


def self_test():
    """Table-driven checks of the classifier on a synthetic world, run before every
    comparison: a classifier that explains too much would hide real bugs."""
    import random

    from world import Atom, World

    world = World(random.Random(7), 0)
    c = world.bases[0]
    recs = world.records[c]
    empty = next((r for r, f in recs.items() if not f["members"]), None)
    full = next((r for r, f in recs.items() if f["members"]), None)
    member_rule = Atom("members.id ?= @request.auth.id", ["members", "id"])
    email = Atom("owner.email = 'x'", joins=[world.users], email=True)
    join = Atom("owner.name = 'A'", joins=[world.users])

    def case(kind, actor, pb, fb, rule=member_rule, flt=None, sort=None, users_rule=None):
        return {"kind": kind, "actor": actor, "collection": c, "rule_expr": rule,
                "filter_expr": flt, "sort": sort, "record": pb.get("record"),
                "rules": {world.users: {"listRule": users_rule}},
                "pb": {"status": pb.get("status", 200), "ids": pb.get("ids")},
                "fb": {"status": fb.get("status", 200), "ids": fb.get("ids")}}

    table = [
        (case("list", "guest", {"ids": [empty]}, {"ids": []}), "guest-empty-auth",
         "guest matched an empty member list on PocketBase only"),
        (case("list", "guest", {"ids": [full]}, {"ids": []}), None,
         "the record has members: an empty path cannot explain it"),
        (case("list", "guest", {"ids": []}, {"ids": [empty]}), None,
         "Ferrobase showing more is never deliberate"),
        (case("list", "A", {"ids": [empty]}, {"ids": []}), None,
         "a signed-in user has a real id"),
        (case("view", "forged", {"status": 200, "record": empty}, {"status": 404}),
         "guest-empty-auth", "a forged token is a guest"),
        (case("view", "guest", {"status": 404, "record": empty}, {"status": 200}), None,
         "view shown by Ferrobase only"),
        (case("filter", "B", {"ids": [full]}, {"ids": []}, flt=email, users_rule=""),
         "filter-hidden-email", "Ferrobase hides an email from a filter"),
        (case("filter", "B", {"ids": []}, {"ids": [full]}, flt=email), None,
         "Ferrobase matching more through an email is not deliberate"),
        (case("filter", "B", {"ids": [full]}, {"ids": []}, flt=join, users_rule=""), None,
         "the joined collection is public: its list rule hides nothing"),
        (case("filter", "B", {"ids": [full]}, {"ids": []}, flt=join, users_rule="id = 'x'"),
         "filter-join-list-rule", "the joined collection's list rule hides the row"),
        (case("filter", "B", {"ids": [full, empty]}, {"ids": [empty, full]},
              flt=join, sort="owner.email,id"), "sort-side-channel", "order by a hidden email"),
        (case("filter", "B", {"ids": [full, empty]}, {"ids": [empty, full]},
              flt=Atom("n > 1"), sort="-n,id"), None, "order by a plain field must agree"),
    ]
    if empty is None or full is None:
        raise AssertionError("self-test world lacks a record with and one without members")

    def check(rows):
        for c_, want, why in rows:
            got = classify(c_, world)
            if got != want:
                raise AssertionError(
                    f"known.self_test: {why}: classified {got!r}, want {want!r}")

    check(table)
    # Back-relations: `target` is linked from `full` (members) and `empty` (none).
    target = next(r for r in recs if r not in (empty, full))
    for f in recs.values():
        f["links"] = []
    recs[full]["links"], recs[empty]["links"] = [target], [target]
    via_rule = Atom(f"{c}_via_links.members.id ?= @request.auth.id",
                    [("via", c, "links"), "members", "id"])
    table += [
        (case("list", "guest", {"ids": [target]}, {"ids": []}, rule=via_rule),
         "guest-empty-auth", "one record linking here has no members: PocketBase's "
         "joined chain through it compares '' with ''"),
        (case("list", "guest", {"ids": [full]}, {"ids": []}, rule=via_rule),
         "guest-empty-auth", "no record links here: the back-relation is empty"),
    ]
    check(table[-2:])
    recs[empty]["links"] = []
    table.append((case("list", "guest", {"ids": [target]}, {"ids": []}, rule=via_rule), None,
                  "every record linking here has members: no empty chain explains it"))
    check(table[-1:])
    # No record links to `empty` now: its back-relation reaches no row.
    absent = Atom(f"{c}_via_links.title ?= ''", joins=[c])
    table += [
        (case("filter", "superuser", {"ids": [empty]}, {"ids": []}, flt=absent, rule=None),
         "absent-relation-is-not-empty", "nothing links here: no title to equal ''"),
        (case("filter", "superuser", {"ids": []}, {"ids": [empty]}, flt=absent, rule=None), None,
         "Ferrobase matching more through an absent relation is not deliberate"),
        (case("filter", "superuser", {"ids": [empty]}, {"ids": []},
              flt=Atom(f"{c}_via_links.title ?= 'alpha'", joins=[c]), rule=None), None,
         "a non-empty literal: absence cannot explain it"),
    ]
    check(table[-3:])
    # The rule's and the filter's `:each` on one field: PocketBase shares the join.
    for f in recs.values():
        f["tags"] = []
    recs[full]["tags"], recs[empty]["tags"] = ["a", "c"], ["a"]
    each_rule, each_filter = Atom("tags:each ?= 'c'"), Atom("tags:each ?= 'a'")
    table += [
        (case("filter", "B", {"ids": []}, {"ids": [full]}, rule=each_rule, flt=each_filter),
         "shared-each-join", "the record holds 'c': the rule admits it on its own"),
        (case("filter", "B", {"ids": []}, {"ids": [empty]}, rule=each_rule, flt=each_filter),
         None, "a record without 'c' shown by Ferrobase is a leak, never deliberate"),
        (case("filter", "B", {"ids": []}, {"ids": [full]}, rule=each_rule,
              flt=Atom("n > 1")), None, "the filter does not read tags:each"),
    ]
    check(table[-3:])
    return len(table)
