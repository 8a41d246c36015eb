//! Rules and filters that follow relation paths, by every kind of caller
//! (guest, forged token, member, non-member, superuser): a guest's empty
//! `@request.auth.*` must match no record, not even one whose relation list
//! is empty; collection rules reach related rows whatever the related
//! collection's own list rule; client filters and sorts only see emails the
//! caller may see (issue 14, items 1 and 4).

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const PASSWORD: &str = "secret-pass-1";
/// A well-formed JWT signed with the wrong key: must count as a guest.
const FORGED: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6ImFiYyIsInR5cGUiOiJhdXRoIiwiY29sbGVjdGlvbklkIjoiX3BiX3VzZXJzX2F1dGhfIiwicmVmcmVzaGFibGUiOnRydWUsImV4cCI6NDEwMjQ0NDgwMH0.c2lnbmF0dXJlLW5vdC12YWxpZA";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Guest,
    Forged,
    Alice,
    Bob,
    Super,
}

const EVERYONE: [Who; 5] = [Who::Guest, Who::Forged, Who::Alice, Who::Bob, Who::Super];

struct World {
    app: TestApp,
    alice: (String, String),
    bob: (String, String),
    carol: (String, String),
    users_id: String,
    teams_id: String,
    /// Team name → id: `alpha` (members [alice], owner alice), `empty`
    /// (no members, no owner, no seats), `beta` (members [bob], owner bob).
    teams: Vec<(&'static str, String)>,
}

async fn sign_up(app: &TestApp, email: &str, visible: bool) -> (String, String) {
    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/records",
            None,
            Some(json!({
                "email": email, "name": email.split('@').next(), "emailVisibility": visible,
                "password": PASSWORD, "passwordConfirm": PASSWORD,
            })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "sign-up {email}: {body}");
    let token = app.login_as("users", email, PASSWORD).await;
    (body["id"].as_str().expect("id").to_owned(), token)
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

async fn world() -> World {
    let app = spawn_app().await;
    let alice = sign_up(&app, "alice@example.com", false).await;
    let bob = sign_up(&app, "bob@example.com", false).await;
    let carol = sign_up(&app, "carol@example.com", true).await;
    let (_, users) = status_json(app.su(Method::GET, "/api/collections/users", None).await).await;
    let users_id = id_of(&users);
    let teams = app
        .create_collection_ok(json!({
            "name": "teams",
            "fields": [
                {"name": "name", "type": "text"},
                {"name": "members", "type": "relation", "collectionId": users_id, "maxSelect": 10},
                {"name": "owner", "type": "relation", "collectionId": users_id}
            ]
        }))
        .await;
    let teams_id = id_of(&teams);
    app.create_collection_ok(json!({
        "name": "seats", "listRule": "", "viewRule": "",
        "fields": [
            {"name": "team", "type": "relation", "collectionId": teams_id},
            {"name": "user", "type": "relation", "collectionId": users_id}
        ]
    }))
    .await;
    let mut named = Vec::new();
    for (name, member) in [
        ("alpha", Some(&alice.0)),
        ("empty", None),
        ("beta", Some(&bob.0)),
    ] {
        let members: Vec<&String> = member.into_iter().collect();
        let owner = member.cloned().unwrap_or_default();
        let team = app
            .create_record_ok(
                "teams",
                json!({"name": name, "members": members, "owner": owner}),
            )
            .await;
        if let Some(user) = member {
            app.create_record_ok("seats", json!({"team": id_of(&team), "user": user}))
                .await;
        }
        named.push((name, id_of(&team)));
    }
    World {
        app,
        alice,
        bob,
        carol,
        users_id,
        teams_id,
        teams: named,
    }
}

impl World {
    fn token(&self, who: Who) -> Option<&str> {
        match who {
            Who::Guest => None,
            Who::Forged => Some(FORGED),
            Who::Alice => Some(&self.alice.1),
            Who::Bob => Some(&self.bob.1),
            Who::Super => Some(&self.app.superuser_token),
        }
    }

    async fn call(
        &self,
        who: Who,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        status_json(self.app.request(method, path, self.token(who), body).await).await
    }

    async fn set_rules(&self, collection: &str, rules: Value) {
        let (status, body) = status_json(self.app.update_collection(collection, rules).await).await;
        assert_eq!(status, 200, "set rules on {collection}: {body}");
    }

    /// `(status, names of the listed items, totalItems)`.
    async fn list(
        &self,
        who: Who,
        collection: &str,
        query: &[(&str, &str)],
        key: &str,
    ) -> (u16, Vec<String>, i64) {
        let (status, body) = status_json(
            self.app
                .list_records(collection, query, self.token(who))
                .await,
        )
        .await;
        let names = body["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| i[key].as_str().unwrap_or("?").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        (status, names, body["totalItems"].as_i64().unwrap_or(-1))
    }

    fn team_id(&self, name: &str) -> &str {
        &self.teams.iter().find(|(n, _)| *n == name).expect("team").1
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// Lists, views and PATCHes every team as every caller and compares the
/// teams each one reaches with `expected(who)`; returns the failures.
async fn check_teams(
    w: &World,
    rule: &str,
    expected: &dyn Fn(Who) -> &'static [&'static str],
) -> Vec<String> {
    let mut failures = Vec::new();
    for who in EVERYONE {
        // Superusers skip every rule.
        let want = if who == Who::Super {
            set(&["alpha", "empty", "beta"])
        } else {
            set(expected(who))
        };
        let (status, names, total) = w.list(who, "teams", &[], "name").await;
        let got: BTreeSet<String> = names.into_iter().collect();
        if status != 200 || got != want || total != want.len() as i64 {
            failures.push(format!(
                "rule {rule:?}, {who:?} list: got {status} {got:?} (totalItems {total}), want {want:?}"
            ));
        }
        for (name, id) in &w.teams {
            let allowed = want.contains(*name);
            let path = format!("/api/collections/teams/records/{id}");
            let (view, body) = w.call(who, Method::GET, &path, None).await;
            let view_ok = if allowed {
                view == 200
            } else {
                view == 404 && body["status"] == 404 && body["data"] == json!({})
            };
            if !view_ok {
                failures.push(format!(
                    "rule {rule:?}, {who:?} view {name}: got {view} {body}, allowed {allowed}"
                ));
            }
            let (update, body) = w
                .call(who, Method::PATCH, &path, Some(json!({"name": name})))
                .await;
            if update != if allowed { 200 } else { 404 } {
                failures.push(format!(
                    "rule {rule:?}, {who:?} PATCH {name}: got {update} {body}, allowed {allowed}"
                ));
            }
        }
    }
    failures
}

#[tokio::test]
async fn membership_rules_admit_members_and_never_guests() {
    let w = world().await;
    type Expect = fn(Who) -> &'static [&'static str];
    // Teams: alpha = {alice}, empty = {}, beta = {bob}; owners alike.
    let cases: Vec<(&str, Expect)> = vec![
        ("members.id ?= @request.auth.id", |who| match who {
            Who::Alice => &["alpha"],
            Who::Bob => &["beta"],
            Who::Super => &["alpha", "empty", "beta"],
            _ => &[],
        }),
        ("members.id = @request.auth.id", |who| match who {
            Who::Alice => &["alpha"],
            Who::Bob => &["beta"],
            Who::Super => &["alpha", "empty", "beta"],
            _ => &[],
        }),
        ("members.email ?= @request.auth.email", |who| match who {
            Who::Alice => &["alpha"],
            Who::Bob => &["beta"],
            Who::Super => &["alpha", "empty", "beta"],
            _ => &[],
        }),
        (
            "members.email:lower ?= @request.auth.email:lower",
            |who| match who {
                Who::Alice => &["alpha"],
                Who::Bob => &["beta"],
                Who::Super => &["alpha", "empty", "beta"],
                _ => &[],
            },
        ),
        (
            "@request.auth.id != '' && members.id ?= @request.auth.id",
            |who| match who {
                Who::Alice => &["alpha"],
                Who::Bob => &["beta"],
                Who::Super => &["alpha", "empty", "beta"],
                _ => &[],
            },
        ),
        ("members:each ?= @request.auth.id", |who| match who {
            Who::Alice => &["alpha"],
            Who::Bob => &["beta"],
            Who::Super => &["alpha", "empty", "beta"],
            _ => &[],
        }),
        ("seats_via_team.user ?= @request.auth.id", |who| match who {
            Who::Alice => &["alpha"],
            Who::Bob => &["beta"],
            Who::Super => &["alpha", "empty", "beta"],
            _ => &[],
        }),
        (
            "seats_via_team.user.id ?= @request.auth.id",
            |who| match who {
                Who::Alice => &["alpha"],
                Who::Bob => &["beta"],
                Who::Super => &["alpha", "empty", "beta"],
                _ => &[],
            },
        ),
        ("owner.id = @request.auth.id", |who| match who {
            Who::Alice => &["alpha"],
            Who::Bob => &["beta"],
            Who::Super => &["alpha", "empty", "beta"],
            _ => &[],
        }),
        ("owner = @request.auth.id", |who| match who {
            Who::Alice => &["alpha"],
            Who::Bob => &["beta"],
            Who::Super => &["alpha", "empty", "beta"],
            _ => &[],
        }),
        ("members ~ @request.auth.id", |who| match who {
            Who::Alice => &["alpha"],
            Who::Bob => &["beta"],
            Who::Super => &["alpha", "empty", "beta"],
            _ => &[],
        }),
        // A bare multi relation is its JSON text (PocketBase): matches nobody.
        ("members ?= @request.auth.id", |who| match who {
            Who::Super => &["alpha", "empty", "beta"],
            _ => &[],
        }),
        // Negations: nobody is a member of `empty`, and a guest is nobody.
        // A guest differs from every member, but not from "no member" ('' != '').
        ("members.id ?!= @request.auth.id", |who| match who {
            Who::Alice => &["empty", "beta"],
            Who::Bob => &["alpha", "empty"],
            Who::Super => &["alpha", "empty", "beta"],
            _ => &["alpha", "beta"],
        }),
        // A guest differs from every member, but not from "no member" ('' != '').
        ("members.id != @request.auth.id", |who| match who {
            Who::Alice => &["empty", "beta"],
            Who::Bob => &["alpha", "empty"],
            Who::Super => &["alpha", "empty", "beta"],
            _ => &["alpha", "beta"],
        }),
        // PocketBase's empty-list idioms keep working.
        ("members:length = 0", |_| &["empty"]),
        ("members = '[]'", |_| &["empty"]),
        ("owner = ''", |_| &["empty"]),
        ("@request.auth.id = ''", |who| match who {
            Who::Guest | Who::Forged => &["alpha", "empty", "beta"],
            Who::Super => &["alpha", "empty", "beta"],
            _ => &[],
        }),
    ];
    let mut failures = Vec::new();
    for (rule, expected) in cases {
        w.set_rules(
            "teams",
            json!({"listRule": rule, "viewRule": rule, "updateRule": rule}),
        )
        .await;
        failures.extend(check_teams(&w, rule, &expected).await);
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn membership_rules_work_when_the_users_list_rule_is_superusers_only() {
    let w = world().await;
    w.set_rules("users", json!({"listRule": null, "viewRule": null}))
        .await;
    let rule = "members.id ?= @request.auth.id";
    w.set_rules(
        "teams",
        json!({"listRule": rule, "viewRule": rule, "updateRule": rule}),
    )
    .await;

    let failures = check_teams(&w, rule, &|who| match who {
        Who::Alice => &["alpha"],
        Who::Bob => &["beta"],
        Who::Super => &["alpha", "empty", "beta"],
        _ => &[],
    })
    .await;

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn nested_membership_rules_guard_team_docs_for_every_action() {
    let w = world().await;
    w.set_rules(
        "teams",
        json!({"listRule": "members.id ?= @request.auth.id", "viewRule": "members.id ?= @request.auth.id"}),
    )
    .await;
    w.app
        .create_collection_ok(json!({
            "name": "team_docs",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "team", "type": "relation", "collectionId": w.teams_id}
            ]
        }))
        .await;
    let mut docs = Vec::new();
    for team in ["alpha", "empty", "beta"] {
        let doc = w
            .app
            .create_record_ok("team_docs", json!({"title": team, "team": w.team_id(team)}))
            .await;
        docs.push((team, id_of(&doc)));
    }
    let mut failures = Vec::new();
    for rule in [
        "team.members.id ?= @request.auth.id",
        "team.members ?= @request.auth.id",
        "team.members.email ?= @request.auth.email",
        "@request.auth.id != '' && team.members.id ?= @request.auth.id",
        "team.owner.id = @request.auth.id",
        "team.seats_via_team.user ?= @request.auth.id",
    ] {
        w.set_rules(
            "team_docs",
            json!({"listRule": rule, "viewRule": rule, "updateRule": rule, "createRule": rule}),
        )
        .await;
        for who in EVERYONE {
            let reach: &[&str] = match who {
                Who::Alice => &["alpha"],
                Who::Bob => &["beta"],
                Who::Super => &["alpha", "empty", "beta"],
                _ => &[],
            };
            let (status, names, total) = w.list(who, "team_docs", &[], "title").await;
            let got: BTreeSet<String> = names.into_iter().collect();
            if status != 200 || got != set(reach) || total != reach.len() as i64 {
                failures.push(format!(
                    "{rule:?} {who:?} list: {status} {got:?} ({total}), want {reach:?}"
                ));
            }
            for (team, doc) in &docs {
                let allowed = reach.contains(team);
                let path = format!("/api/collections/team_docs/records/{doc}");
                let (view, body) = w.call(who, Method::GET, &path, None).await;
                if view != if allowed { 200 } else { 404 } {
                    failures.push(format!("{rule:?} {who:?} view {team}: {view} {body}"));
                }
                let (update, body) = w
                    .call(who, Method::PATCH, &path, Some(json!({"title": team})))
                    .await;
                if update != if allowed { 200 } else { 404 } {
                    failures.push(format!("{rule:?} {who:?} PATCH {team}: {update} {body}"));
                }
                let (create, body) = w
                    .call(
                        who,
                        Method::POST,
                        "/api/collections/team_docs/records",
                        Some(json!({"title": format!("new {team}"), "team": w.team_id(team)})),
                    )
                    .await;
                if create != if allowed { 200 } else { 400 } {
                    failures.push(format!(
                        "{rule:?} {who:?} create into {team}: {create} {body}"
                    ));
                }
                if let Some(created) = body["id"].as_str().filter(|_| create == 200) {
                    w.app.delete_record("team_docs", created).await;
                }
            }
        }
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn public_collections_do_not_reach_hidden_teams_through_expand_or_filter() {
    let w = world().await;
    let rule = "members.id ?= @request.auth.id";
    w.set_rules("teams", json!({"listRule": rule, "viewRule": rule}))
        .await;
    w.app
        .create_collection_ok(json!({
            "name": "notes", "listRule": "", "viewRule": "",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "team", "type": "relation", "collectionId": w.teams_id}
            ]
        }))
        .await;
    for team in ["alpha", "empty", "beta"] {
        w.app
            .create_record_ok("notes", json!({"title": team, "team": w.team_id(team)}))
            .await;
    }
    let mut failures = Vec::new();
    for who in EVERYONE {
        let reach: &[&str] = match who {
            Who::Alice => &["alpha"],
            Who::Bob => &["beta"],
            Who::Super => &["alpha", "empty", "beta"],
            _ => &[],
        };
        let (status, body) = status_json(
            w.app
                .list_records("notes", &[("expand", "team")], w.token(who))
                .await,
        )
        .await;
        let expanded: BTreeSet<String> = body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["expand"]["team"]["name"].as_str().map(str::to_owned))
            .collect();
        if status != 200 || expanded != set(reach) {
            failures.push(format!(
                "{who:?} expand=team: {status} {expanded:?}, want {reach:?}"
            ));
        }
        // A team the caller may not list is no team: `=` and `~` never match
        // it, and (as in PocketBase) a filter that joins it drops the note
        // whatever the operator, so the answer never depends on its fields.
        // `team.id` reads the note's own column and joins nothing.
        let hidden: Vec<&str> = ["alpha", "empty", "beta"]
            .into_iter()
            .filter(|t| !reach.contains(t))
            .collect();
        for (filter, want) in [
            (
                "team.name ~ 'a'",
                reach.iter().copied().filter(|t| t.contains('a')).collect(),
            ),
            (
                "team.name = 'empty'",
                reach.iter().copied().filter(|t| *t == "empty").collect(),
            ),
            (
                "team.name != 'alpha'",
                reach.iter().copied().filter(|t| *t != "alpha").collect(),
            ),
            (
                "team.id != ''",
                reach.iter().copied().chain(hidden.clone()).collect(),
            ),
            ("team.members.id ?= ''", Vec::new()),
        ] {
            let (status, names, _) = w.list(who, "notes", &[("filter", filter)], "title").await;
            let got: BTreeSet<String> = names.into_iter().collect();
            if status != 200 || got != set(&want) {
                failures.push(format!(
                    "{who:?} filter {filter:?}: {status} {got:?}, want {want:?}"
                ));
            }
        }
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A world where everyone may list users and posts point at users.
async fn email_world() -> World {
    let w = world().await;
    w.set_rules("users", json!({"listRule": "", "viewRule": ""}))
        .await;
    w.set_rules("teams", json!({"listRule": "", "viewRule": ""}))
        .await;
    w.app
        .create_collection_ok(json!({
            "name": "posts", "listRule": "", "viewRule": "",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "author", "type": "relation", "collectionId": w.users_id}
            ]
        }))
        .await;
    for (title, author) in [
        ("by alice", &w.alice.0),
        ("by bob", &w.bob.0),
        ("by carol", &w.carol.0),
    ] {
        w.app
            .create_record_ok("posts", json!({"title": title, "author": author}))
            .await;
    }
    w
}

#[tokio::test]
async fn filters_only_match_emails_the_caller_may_see() {
    let w = email_world().await;
    // alice and bob hide their emails, carol shows hers; as in PocketBase,
    // a client filter matches only emails with emailVisibility on (not even
    // the caller's own hidden one).
    let users = |who: Who, hit: &[&'static str]| -> Vec<&'static str> {
        hit.iter()
            .copied()
            .filter(|u| who == Who::Super || *u == "carol")
            .collect()
    };
    let mut failures = Vec::new();
    for who in EVERYONE {
        for (collection, filter, hits, key) in [
            ("users", "email ~ 'alice'", vec!["alice"], "name"),
            (
                "users",
                "email = 'alice@example.com'",
                vec!["alice"],
                "name",
            ),
            ("users", "email < 'b'", vec!["alice"], "name"),
            ("users", "email > 'b'", vec!["bob", "carol"], "name"),
            ("users", "email:lower ~ 'ALICE'", vec!["alice"], "name"),
            (
                "users",
                "email !~ 'zzz'",
                vec!["alice", "bob", "carol"],
                "name",
            ),
            (
                "users",
                "email != 'zzz@example.com'",
                vec!["alice", "bob", "carol"],
                "name",
            ),
            (
                "users",
                "email ~ 'example' || id = 'none'",
                vec!["alice", "bob", "carol"],
                "name",
            ),
            ("posts", "author.email ~ 'alice'", vec!["alice"], "title"),
            ("posts", "author.email < 'b'", vec!["alice"], "title"),
            ("posts", "author.email:lower ~ 'bob'", vec!["bob"], "title"),
            (
                "posts",
                "author.email != ''",
                vec!["alice", "bob", "carol"],
                "title",
            ),
            ("teams", "members.email ?~ 'alice'", vec!["alice"], "name"),
            (
                "teams",
                "seats_via_team.user.email ?~ 'bob'",
                vec!["bob"],
                "name",
            ),
            (
                "users",
                "posts_via_author.author.email ?~ 'alice'",
                vec!["alice"],
                "name",
            ),
        ] {
            let (status, names, _) = w.list(who, collection, &[("filter", filter)], key).await;
            let want = users(who, &hits);
            // Map each returned row back to the user it belongs to.
            let got: BTreeSet<String> = names
                .iter()
                .map(|n| match collection {
                    "posts" => n.trim_start_matches("by ").to_owned(),
                    "teams" => match n.as_str() {
                        "alpha" => "alice".to_owned(),
                        "beta" => "bob".to_owned(),
                        other => other.to_owned(),
                    },
                    _ => n.clone(),
                })
                .collect();
            let rows = match collection {
                "users" => names.len(),
                _ => got.len(),
            };
            if status != 200 || got != set(&want) || rows != want.len() {
                failures.push(format!(
                    "{who:?} {collection} filter {filter:?}: {status} {names:?}, want {want:?}"
                ));
            }
        }
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn sorting_by_email_never_orders_by_a_hidden_value() {
    let w = email_world().await;
    let mut failures = Vec::new();
    for who in EVERYONE {
        for (collection, sort, key) in [
            ("users", "email", "name"),
            ("users", "-email", "name"),
            ("posts", "author.email", "title"),
            ("posts", "-author.email", "title"),
        ] {
            let (status, names, _) = w
                .list(who, collection, &[("sort", &format!("{sort},-id"))], key)
                .await;
            let (status_ids, by_id, _) = w.list(who, collection, &[("sort", "-id")], key).await;
            let who_sees = |email_owner: &str| who == Who::Super || email_owner == "carol";
            let owner = |n: &String| -> String {
                match collection {
                    "posts" => n.trim_start_matches("by ").to_owned(),
                    _ => n.clone(),
                }
            };
            // Expected: visible emails in order, hidden ones together (NULL
            // sorts first ascending, last descending) in the tie-break order.
            let mut visible: Vec<String> = by_id
                .iter()
                .filter(|n| who_sees(&owner(n)))
                .cloned()
                .collect();
            visible.sort_by_key(|n| owner(n));
            let hidden: Vec<String> = by_id
                .iter()
                .filter(|n| !who_sees(&owner(n)))
                .cloned()
                .collect();
            let want: Vec<String> = if sort.starts_with('-') {
                visible.iter().rev().cloned().chain(hidden).collect()
            } else {
                hidden.into_iter().chain(visible).collect()
            };
            if status != 200 || status_ids != 200 || names != want {
                failures.push(format!(
                    "{who:?} {collection} sort {sort:?}: {status} {names:?}, want {want:?}"
                ));
            }
        }
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn rules_may_still_use_emails_and_superusers_filter_by_every_email() {
    let w = email_world().await;
    w.set_rules(
        "posts",
        json!({"listRule": "author.email = 'alice@example.com' || author.email = @request.auth.email"}),
    )
    .await;

    let (_, guest, _) = w.list(Who::Guest, "posts", &[], "title").await;
    let (_, bob, _) = w.list(Who::Bob, "posts", &[], "title").await;
    let (_, su, _) = w
        .list(
            Who::Super,
            "users",
            &[("filter", "email ~ 'bob'"), ("sort", "email")],
            "name",
        )
        .await;

    assert_eq!(
        guest,
        vec!["by alice"],
        "the rule reads alice's hidden email"
    );
    assert_eq!(bob.len(), 2, "bob sees alice's post and his own: {bob:?}");
    assert_eq!(su, vec!["bob"], "superusers filter by hidden emails");
}

/// PocketBase ANDs the list rule of every collection a client `filter` or
/// `sort` joins onto the whole query (a missing related row passes), so a
/// record whose related row the caller may not list drops out even when
/// another `||` branch matches it. Ferrobase does the same, so such an answer
/// never holds more than PocketBase's; `team.id` reads the record's own
/// column and joins nothing, so it drops nothing.
#[tokio::test]
async fn filters_and_sorts_through_a_relation_drop_records_whose_related_row_is_hidden() {
    let w = world().await;
    let rule = "members.id ?= @request.auth.id";
    w.set_rules("teams", json!({"listRule": rule, "viewRule": rule}))
        .await;
    w.app
        .create_collection_ok(json!({
            "name": "notes", "listRule": "", "viewRule": "",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "team", "type": "relation", "collectionId": w.teams_id}
            ]
        }))
        .await;
    for team in ["alpha", "empty", "beta"] {
        w.app
            .create_record_ok("notes", json!({"title": team, "team": w.team_id(team)}))
            .await;
    }
    w.app
        .create_record_ok("notes", json!({"title": "none", "team": ""}))
        .await;
    let mut failures = Vec::new();
    for who in EVERYONE {
        let reach: &[&str] = match who {
            Who::Alice => &["alpha", "none"],
            Who::Bob => &["beta", "none"],
            Who::Super => &["alpha", "empty", "beta", "none"],
            _ => &["none"],
        };
        let all = &["alpha", "empty", "beta", "none"];
        for (query, want, why) in [
            (
                [
                    ("filter", "(team.name = 'zzz' || title != '')"),
                    ("sort", "id"),
                ],
                reach,
                "an || branch on the record itself",
            ),
            (
                [
                    ("filter", "(title != '' || team.name != 'zzz')"),
                    ("sort", "id"),
                ],
                reach,
                "!= through the relation",
            ),
            (
                [("filter", "title != ''"), ("sort", "team.name,id")],
                reach,
                "a sort through the relation",
            ),
            (
                [
                    ("filter", "(team.id = 'zzz' || title != '')"),
                    ("sort", "id"),
                ],
                all,
                "team.id joins nothing",
            ),
        ] {
            let (status, names, total) = w.list(who, "notes", &query, "title").await;
            let got: BTreeSet<String> = names.into_iter().collect();
            if status != 200 || got != set(want) || total != want.len() as i64 {
                failures.push(format!(
                    "{who:?} {query:?} ({why}): {status} {got:?} total {total}, want {want:?}"
                ));
            }
        }
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Found by the differential suite: a guest's identity "differed" from an
/// empty owner, so `owner != @request.auth.id` let guests list, view and
/// PATCH ownerless records. As in PocketBase (`'' != ''` is false), a guest
/// differs only from an owner that is there.
#[tokio::test]
async fn not_equal_rules_never_admit_guests_to_ownerless_records() {
    let w = world().await;
    type Expect = fn(Who) -> &'static [&'static str];
    // Owners: alpha = alice, empty = none, beta = bob.
    let not_mine: Expect = |who| match who {
        Who::Alice => &["empty", "beta"],
        Who::Bob => &["alpha", "empty"],
        _ => &["alpha", "beta"],
    };
    let not_a_member: Expect = |who| match who {
        Who::Alice => &["empty", "beta"],
        Who::Bob => &["alpha", "empty"],
        _ => &[],
    };
    let cases: Vec<(&str, Expect)> = vec![
        ("owner != @request.auth.id", not_mine),
        ("@request.auth.id != owner", not_mine),
        ("owner.id != @request.auth.id", not_mine),
        ("owner !~ @request.auth.id", |who| match who {
            Who::Alice => &["empty", "beta"],
            Who::Bob => &["alpha", "empty"],
            _ => &[],
        }),
        (
            "members.id ?!= @request.auth.id && @request.auth.id != ''",
            not_a_member,
        ),
    ];
    let mut failures = Vec::new();
    for (rule, expected) in cases {
        w.set_rules(
            "teams",
            json!({"listRule": rule, "viewRule": rule, "updateRule": rule}),
        )
        .await;
        failures.extend(check_teams(&w, rule, &expected).await);
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Projects linked by `links` (project, owner, members) and `crews` with
/// members and tags, for the shared-row rules below.
struct LinkWorld {
    w: World,
    /// Project name → id: `split` (one link alice owns with member bob, one
    /// bob owns with member alice), `both` (one link alice owns and is a
    /// member of), `none` (no link).
    projects: Vec<(&'static str, String)>,
    /// Crew name → id: `mixed` [alice (verified), bob], `solo` [bob].
    crews: Vec<(&'static str, String)>,
}

async fn link_world() -> LinkWorld {
    let w = world().await;
    let (alice, bob) = (w.alice.0.clone(), w.bob.0.clone());
    let (status, body) = w
        .call(
            Who::Super,
            Method::PATCH,
            &format!("/api/collections/users/records/{alice}"),
            Some(json!({"verified": true})),
        )
        .await;
    assert_eq!(status, 200, "verify alice: {body}");
    let projects = w
        .app
        .create_collection_ok(
            json!({"name": "projects", "fields": [{"name": "name", "type": "text"}]}),
        )
        .await;
    w.app
        .create_collection_ok(json!({
            "name": "links", "listRule": "", "viewRule": "",
            "fields": [
                {"name": "project", "type": "relation", "collectionId": id_of(&projects)},
                {"name": "owner", "type": "relation", "collectionId": w.users_id},
                {"name": "members", "type": "relation", "collectionId": w.users_id, "maxSelect": 9}
            ]
        }))
        .await;
    w.app
        .create_collection_ok(json!({
            "name": "crews",
            "fields": [
                {"name": "name", "type": "text"},
                {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2},
                {"name": "members", "type": "relation", "collectionId": w.users_id, "maxSelect": 9}
            ]
        }))
        .await;
    let mut named = Vec::new();
    for name in ["split", "both", "none"] {
        let project = w
            .app
            .create_record_ok("projects", json!({"name": name}))
            .await;
        named.push((name, id_of(&project)));
    }
    let project = |name: &str| {
        named
            .iter()
            .find(|(n, _)| *n == name)
            .expect("project")
            .1
            .clone()
    };
    for (on, owner, members) in [
        ("split", &alice, vec![&bob]),
        ("split", &bob, vec![&alice]),
        ("both", &alice, vec![&alice]),
    ] {
        w.app
            .create_record_ok(
                "links",
                json!({"project": project(on), "owner": owner, "members": members}),
            )
            .await;
    }
    let mut crews = Vec::new();
    for (name, members, tags) in [
        ("mixed", vec![&alice, &bob], vec!["a", "b"]),
        ("solo", vec![&bob], vec!["a"]),
    ] {
        let crew = w
            .app
            .create_record_ok(
                "crews",
                json!({"name": name, "members": members, "tags": tags}),
            )
            .await;
        crews.push((name, id_of(&crew)));
    }
    LinkWorld {
        w,
        projects: named,
        crews,
    }
}

impl LinkWorld {
    /// Sets `rule` as `collection`'s list and view rule, then lists and views
    /// every record as every caller; returns the mismatches with `expected`.
    async fn check(
        &self,
        collection: &str,
        records: &[(&'static str, String)],
        rule: &str,
        expected: &dyn Fn(Who) -> &'static [&'static str],
    ) -> Vec<String> {
        self.w
            .set_rules(collection, json!({"listRule": rule, "viewRule": rule}))
            .await;
        let mut failures = Vec::new();
        for who in EVERYONE {
            let want = if who == Who::Super {
                records.iter().map(|(n, _)| (*n).to_owned()).collect()
            } else {
                set(expected(who))
            };
            let (status, names, total) = self.w.list(who, collection, &[], "name").await;
            let got: BTreeSet<String> = names.into_iter().collect();
            if status != 200 || got != want || total != want.len() as i64 {
                failures.push(format!(
                    "{rule:?}, {who:?} list: got {status} {got:?} (totalItems {total}), want {want:?}"
                ));
            }
            for (name, id) in records {
                let path = format!("/api/collections/{collection}/records/{id}");
                let (view, _) = self.w.call(who, Method::GET, &path, None).await;
                let allowed = want.contains(*name);
                if view != if allowed { 200 } else { 404 } {
                    failures.push(format!(
                        "{rule:?}, {who:?} view {name}: got {view}, allowed {allowed}"
                    ));
                }
            }
        }
        failures
    }
}

/// PocketBase joins each relation path once per query, so any-of
/// comparisons on one path inside `&&` must hold for the same related row:
/// owning one linking record and being a member of another is not being
/// the owner-member of one.
#[tokio::test]
async fn any_of_comparisons_on_one_back_relation_need_one_linking_record() {
    let lw = link_world().await;
    let rule = "links_via_project.owner ?= @request.auth.id && links_via_project.members.id ?= @request.auth.id";

    let mut failures = lw
        .check("projects", &lw.projects, rule, &|who| match who {
            Who::Alice => &["both"],
            _ => &[],
        })
        .await;
    lw.w.set_rules("projects", json!({"listRule": "", "viewRule": ""}))
        .await;
    let alice = &lw.w.alice.0;
    let filter = format!(
        "links_via_project.owner ?= '{alice}' && links_via_project.members.id ?= '{alice}'"
    );
    // Client filters too (users public, so every member row may be joined).
    lw.w.set_rules("users", json!({"listRule": "", "viewRule": ""}))
        .await;
    for (who, want) in [
        (Who::Alice, vec!["both"]),
        (Who::Bob, vec!["both"]),
        (Who::Guest, vec!["both"]),
    ] {
        let (status, names, _) =
            lw.w.list(who, "projects", &[("filter", &filter)], "name")
                .await;
        if status != 200 || names != want {
            failures.push(format!("{who:?} filter {filter:?}: got {status} {names:?}"));
        }
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn any_of_comparisons_on_one_multi_relation_need_one_member() {
    let lw = link_world().await;
    type Expect = fn(Who) -> &'static [&'static str];
    let cases: [(&str, Expect); 3] = [
        (
            // Bob is in mixed, but its verified member is alice.
            "members.id ?= @request.auth.id && members.verified ?= true",
            |who| match who {
                Who::Alice => &["mixed"],
                _ => &[],
            },
        ),
        (
            "members:each ?= @request.auth.id && members.verified ?= false",
            |who| match who {
                Who::Bob => &["mixed", "solo"],
                _ => &[],
            },
        ),
        // PocketBase joins `json_each(tags)` once: no single tag is both.
        ("tags:each ?= 'a' && tags:each ?= 'b'", |_| &[]),
    ];
    let mut failures = Vec::new();
    for (rule, expected) in cases {
        failures.extend(lw.check("crews", &lw.crews, rule, &expected).await);
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The submitted list is joined once too: `@request.body.tags:each` any-of
/// comparisons inside `&&` read one element, as PocketBase 0.40.6 (which
/// refuses both `&&` creates below with a 400).
#[tokio::test]
async fn body_each_comparisons_inside_and_need_one_submitted_element() {
    let lw = link_world().await;
    let mut failures = Vec::new();
    for (rule, want) in [
        (
            "@request.body.tags:each ?= 'a' && @request.body.tags:each ?= 'b'",
            400,
        ),
        (
            "@request.body.tags:each ?= 'a' && @request.body.tags:each ?!= 'a'",
            400,
        ),
        (
            "@request.body.tags:each ?= 'a' || @request.body.tags:each ?= 'b'",
            200,
        ),
        (
            "@request.body.tags:each ?= 'a' && @request.body.tags:each ?!= 'b'",
            200,
        ),
    ] {
        lw.w.set_rules("crews", json!({"createRule": rule})).await;
        for who in [Who::Alice, Who::Bob] {
            let (status, body) =
                lw.w.call(
                    who,
                    Method::POST,
                    "/api/collections/crews/records",
                    Some(json!({"name": "new", "tags": ["a", "b"]})),
                )
                .await;
            if status != want {
                failures.push(format!(
                    "{rule:?}, {who:?}: got {status} {body}, want {want}"
                ));
            }
        }
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `:length` through a back-relation is read on each linking record, as
/// PocketBase's multi-match subquery does: `> 0` needs every link of the
/// project to have a member (`?>`: one), not a total over all of them, so a
/// project with one empty link and one link with a member does not pass.
#[tokio::test]
async fn length_through_a_back_relation_needs_every_linking_record() {
    let mut lw = link_world().await;
    let (alice, bob) = (lw.w.alice.0.clone(), lw.w.bob.0.clone());
    let corner =
        lw.w.app
            .create_record_ok("projects", json!({"name": "corner"}))
            .await;
    for (owner, members) in [(&alice, vec![]), (&bob, vec![&alice])] {
        lw.w.app
            .create_record_ok(
                "links",
                json!({"project": id_of(&corner), "owner": owner, "members": members}),
            )
            .await;
    }
    lw.projects.push(("corner", id_of(&corner)));
    type Expect = fn(Who) -> &'static [&'static str];
    let users: Expect = |who| match who {
        Who::Alice | Who::Bob => &["split", "both"],
        _ => &[],
    };
    let any: Expect = |who| match who {
        Who::Alice | Who::Bob => &["split", "both", "corner"],
        _ => &[],
    };
    let cases: [(&str, Expect); 4] = [
        (
            "@request.auth.id != '' && links_via_project.members:length > 0",
            users,
        ),
        (
            "@request.auth.id != '' && links_via_project.members:length = 1",
            users,
        ),
        (
            "@request.auth.id != '' && links_via_project.members:length ?> 0",
            any,
        ),
        // No link at all reads as one link of length 0, as in PocketBase.
        (
            "@request.auth.id != '' && links_via_project.members:length = 0",
            |who| match who {
                Who::Alice | Who::Bob => &["none"],
                _ => &[],
            },
        ),
    ];
    let mut failures = Vec::new();
    for (rule, expected) in cases {
        failures.extend(lw.check("projects", &lw.projects, rule, &expected).await);
    }
    // Sorting still takes one number per project (the members of all its links).
    let sort = [("sort", "-links_via_project.members:length,name")];
    let (status, names, _) = lw.w.list(Who::Super, "projects", &sort, "name").await;
    if status != 200 || names != ["split", "both", "corner", "none"] {
        failures.push(format!("sort by length: got {status} {names:?}"));
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
