"""The rule and filter grammar: the shapes that decide who sees what.

Rules (list/view/update) draw from owner, membership, relation-of-relation,
back-relation and `@collection` join atoms compared with `@request.auth.*`, plus
comparisons with literals (incl. `''` and `null`), `:length`, `:each`, `:lower`,
combined with `&&`/`||` and parentheses. Update rules may add a `@request.body` clause
and update bodies may use `+`/`-` modifiers. Client filters use the same literal atoms
plus relation paths and emails (positive forms only, so "Ferrobase hides more" is the
only direction a deliberate filter difference can take; see known.py).
"""

from world import SELECT_VALUES, TITLES, Atom, Node


def q(s):
    return "'" + s.replace("'", "\\'") + "'"


def literal_atoms(world, c, rng):
    """Comparisons with literals that every collection has."""
    if world.is_auth(c):
        return [
            Atom(f"name = {q(rng.choice('ABCE'))}"), Atom("verified = true"),
            Atom("emailVisibility = true"), Atom(f"level > {rng.randint(0, 2)}"),
            Atom(f"role = {q(rng.choice(SELECT_VALUES + ['']))}"), Atom("role = null"),
            Atom(f"name:lower = {q(rng.choice('abce'))}"),
            Atom(f"id != {q(world.user_ids[rng.choice('ABCE')])}"),
        ]
    return [
        Atom(f"title = {q(rng.choice(TITLES))}"), Atom("title != ''"), Atom("title = null"),
        Atom(f"title ~ {q(rng.choice(['al', 'ET', 'x']))}"),
        Atom(f"title:lower = {q(rng.choice(['alpha', 'beta']))}"),
        Atom(f"n > {rng.randint(0, 3)}"), Atom(f"n = {rng.randint(0, 4)}"),
        Atom(f"flag = {rng.choice(['true', 'false'])}"),
        Atom(f"kind = {q(rng.choice(SELECT_VALUES + ['']))}"),
        Atom(f"tags:each ?= {q(rng.choice(SELECT_VALUES))}"),
        Atom(f"tags:each = {q(rng.choice(SELECT_VALUES))}"),
        Atom(f"tags:length > {rng.randint(0, 2)}"),
        Atom(f"members:length = {rng.randint(0, 2)}"), Atom("members:length > 1"),
        Atom("owner = ''"), Atom("owner = null"), Atom("link != ''"),
    ]


def auth_atoms(world, c, rng):
    """Comparisons of a record path with the requester (the rules that matter)."""
    me = "@request.auth.id"
    if world.is_auth(c):
        return [Atom(f"id = {me}", ["id"]), Atom(f"email = @request.auth.email", ["email"])]
    out = [
        Atom(f"owner = {me}", ["owner"]), Atom(f"owner.id = {me}", ["owner", "id"]),
        Atom(f"owner != {me}"), Atom(f"members ?= {me}", ["members"]),
        Atom(f"members.id ?= {me}", ["members", "id"]),
        Atom(f"members.email ?= @request.auth.email", ["members", "email"]),
        Atom(f"members:each ?= {me}", ["members"]),
        Atom(f"owner.email = @request.auth.email", ["owner", "email"]),
        Atom(f"link.owner = {me}", ["link", "owner"]),
        Atom(f"link.members.id ?= {me}", ["link", "members", "id"]),
        Atom(f"links.owner.id ?= {me}", ["links", "owner", "id"]),
    ]
    for other, field in world.back_refs(c):
        out.append(Atom(f"{other}_via_{field}.owner ?= {me}",
                        [("via", other, field), "owner"]))
        out.append(Atom(f"{other}_via_{field}.members.id ?= {me}",
                        [("via", other, field), "members", "id"]))
    other = rng.choice(world.bases)
    # @collection joins are uncorrelated: "some record of `other` is mine"
    out.append(Atom(f"@collection.{other}.owner ?= {me}", ["@collection", other, "owner"]))
    if world.staff:
        out.append(Atom(f"staff.id ?= {me}", ["staff", "id"]))
    return out


def request_atoms(world, rng):
    return [
        Atom("@request.auth.id != ''"), Atom("@request.auth.verified = true"),
        Atom(f"@request.auth.collectionName = {q(world.users)}"),
        Atom(f"@request.auth.level > {rng.randint(0, 2)}"),
        Atom(f"@request.auth.name:lower = {q(rng.choice('abcd'))}"),
    ]


def expr(rng, pools, depth=0):
    """A tree of atoms: mostly one or two, sometimes three, in parentheses."""
    r = rng.random()
    if depth >= 2 or r < 0.45:
        pool = rng.choices(pools, weights=[w for w, _ in pools])[0][1]
        return rng.choice(pool)
    op = "&&" if r < 0.75 else "||"
    return Node(op, expr(rng, pools, depth + 1), expr(rng, pools, depth + 1))


def rule(world, c, rng):
    """None (superusers only), "" (everyone) or an expression tree."""
    r = rng.random()
    if r < 0.06:
        return None
    if r < 0.12:
        return ""
    pools = [(5, auth_atoms(world, c, rng)), (3, literal_atoms(world, c, rng)),
             (1, request_atoms(world, rng))]
    return expr(rng, pools)


BODY_CLAUSES = [
    "@request.body.owner:isset = false", "@request.body.members:isset = false",
    "@request.body.n:isset = false", "@request.body.members:length <= 1",
    "@request.body.touch > 0", "@request.body.owner = @request.auth.id",
    "@request.body.n:changed = false", "@request.body.members:changed = false",
]


def update_rule(world, c, rng, read_rule):
    base = read_rule if rng.random() < 0.5 else rule(world, c, rng)
    if world.is_auth(c) or base is None or rng.random() < 0.5:
        return base
    clause = Atom(rng.choice(BODY_CLAUSES))
    return clause if base == "" else Node("&&", base, clause)


def update_body(world, c, rng, k):
    """A PATCH body: always the harmless `touch`, sometimes a guarded field or modifier."""
    body = {"touch": k}
    if world.is_auth(c):
        return body
    ids = [world.user_ids[u] for u in "ABCE"]
    extra = rng.choice([None, None, ("owner", rng.choice(ids + [""])),
                        ("members+", rng.choice(ids)), ("members-", rng.choice(ids)),
                        ("members", rng.sample(ids, 2)), ("+members", rng.choice(ids)),
                        ("n+", 1), ("n-", 1), ("n", rng.randint(0, 4))])
    if extra:
        body[extra[0]] = extra[1]
    return body


def filter_atoms(world, c, rng):
    """Client filter atoms: literals, relation paths and emails (positive forms)."""
    out = literal_atoms(world, c, rng)
    name = q(rng.choice("ABCE"))
    email = q(world.emails[rng.choice("ABCE")])
    if world.is_auth(c):
        out += [Atom(f"email = {email}", email=True),
                Atom(f"email ~ {q(rng.choice(['a.', 'example']))}", email=True)]
        for b in world.bases:
            out.append(Atom(f"{b}_via_owner.title ?= {q(rng.choice(TITLES))}", joins=[b]))
            out.append(Atom(f"{b}_via_members.n ?> 1", joins=[b]))
        return out
    link, links = world.link_to[c], world.links_to[c]
    out += [
        Atom(f"owner.name = {name}", joins=[world.users]),
        Atom(f"members.name ?= {name}", joins=[world.users]),
        Atom(f"owner.email = {email}", joins=[world.users], email=True),
        Atom(f"members.email ?= {email}", joins=[world.users], email=True),
        Atom(f"owner.email:lower ~ {q('example')}", joins=[world.users], email=True),
        Atom(f"owner.verified = true", joins=[world.users]),
        Atom(f"link.title = {q(rng.choice(TITLES))}", joins=[link]),
        Atom(f"link.owner.name = {name}", joins=[link, world.users]),
        Atom(f"links.n ?> {rng.randint(0, 3)}", joins=[links]),
        Atom(f"members.id ?= {q(world.user_ids[rng.choice('ABCE')])}", joins=[world.users]),
    ]
    for other, field in world.back_refs(c):
        out.append(Atom(f"{other}_via_{field}.title ?= {q(rng.choice(TITLES))}",
                        joins=[other]))
    if rng.random() < 0.1:
        out.append(Atom("@request.auth.id != ''"))  # refused (403) for non-superusers
    return out


def client_filter(world, c, rng):
    return expr(rng, [(1, filter_atoms(world, c, rng))])


def client_sort(world, c, rng):
    """A sort (with an id tiebreak, so order is deterministic) or None."""
    if rng.random() < 0.7:
        return None
    if world.is_auth(c):
        return rng.choice(["-name,id", "email,id", "-email,id", "level,id"])
    return rng.choice(["-n,id", "title,id", "owner.email,id", "-owner.email,id",
                       "owner.name,id", "link.title,id"])


__all__ = ["rule", "update_rule", "update_body", "client_filter", "client_sort", "q"]
