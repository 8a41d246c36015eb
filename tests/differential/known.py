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
    return not world.path_values(coll, rec_id, path)


def guest_empty_auth(case, world):
    """A guest's `@request.auth.id`/`email` is "" and PocketBase lets "" equal an empty
    relation or field (`members.id ?= @request.auth.id` on a record with no members).
    Ferrobase matches nothing for a guest. Explained when every record PocketBase alone
    shows has an empty value on some auth-compared path of the rule in force."""
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
    return bool(guarded) and _extra_in_pb(case) is not None


def filter_hidden_email(case, world):
    """In a client `filter`, Ferrobase treats an email its owner keeps hidden
    (emailVisibility false) as absent; PocketBase lets a filter probe it. Explained for
    filters that read an email, when Ferrobase shows a subset."""
    if case["kind"] != "filter" or case["actor"] == "superuser":
        return False
    reads_email = any(a.email for a in atoms_of(case.get("filter_expr")))
    return reads_email and _extra_in_pb(case) is not None


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
]


def classify(case, world):
    """The name of the deliberate difference that explains `case`, or None."""
    for name, check in DELIBERATE:
        if check(case, world):
            return name
    return None
