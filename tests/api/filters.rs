//! The filter language end to end, through `GET …/records`: every operator
//! (plain and `?` any-of forms), modifier, macro, function and path form
//! (JSON, geoPoint, single and multi relations, back-relations), sorting,
//! `fields`, and the error statuses of bad or forbidden filters.
//!
//! One seeded data set (below) is shared by every test; each table-driven
//! test asserts the exact set (or order) of titles returned, as the
//! superuser and as a guest where it matters, and reports every failing case
//! of its table in one assertion message. Expected results follow
//! `pocketbase-api.md` §4 (and its §4.6 table for multi-valued fields).

use crate::helpers::{TestApp, spawn_app, status_json};
use serde_json::{Value, json};
use std::collections::HashMap;

const GENERIC_400: &str = "Something went wrong while processing your request.";

// The five posts, by title. Titles are chosen so that case, `%`, `_` and
// quotes matter in `~` comparisons.
const P1: &str = "Hello";
const P2: &str = "hello world";
const P3: &str = "100% sure";
const P4: &str = "snake_case";
const P5: &str = "It's";
const ALL: &[&str] = &[P1, P2, P3, P4, P5];
const NONE: &[&str] = &[];

/// A server with the data set below, and the ids the filters need.
///
/// | post | views | published | cats    | author | tags        | meta                  | pubdate    | loc            |
/// |------|-------|-----------|---------|--------|-------------|-----------------------|------------|----------------|
/// | P1   | 5     | true      | [a,b]   | alice  | [news,tech] | {"x":1,"y":[1,2]}     | 2024-03-01 | Berlin         |
/// | P2   | 10    | false     | [a]     | bob    | [news]      | {"x":2}               | 2023-06-15 | Paris (~880km) |
/// | P3   | 0     | true      | []      | alice  | []          | null                  | ""         | 0,0            |
/// | P4   | 3     | false     | [b,c]   | —      | [tech]      | {"x":"one"}           | 2999-01-01 | New York       |
/// | P5   | 7.5   | true      | [c]     | carol  | [misc,news] | {"x":null}            | now        | Sydney         |
///
/// People: alice (active, meta.age 30), bob (inactive, 20), carol (active, no meta).
/// Comments: "great" and "meh 50%" on P1, "great" on P2, "spam" on P4.
/// P1 also has the hidden field `secret = 's1'` and `vault` → a record of
/// `vaults`, whose listRule is null (superusers only).
struct Seeded {
    app: TestApp,
    tag: HashMap<&'static str, String>,
    post: HashMap<&'static str, String>,
}

async fn create(app: &TestApp, collection: &str, body: Value) -> String {
    let record = app.create_record_ok(collection, body).await;
    record["id"].as_str().expect("record id").to_owned()
}

async fn seeded() -> Seeded {
    let app = spawn_app().await;
    let people = app
        .create_collection_ok(json!({
            "name": "people", "listRule": "", "viewRule": "",
            "fields": [
                {"name": "name", "type": "text"},
                {"name": "active", "type": "bool"},
                {"name": "meta", "type": "json"}
            ]
        }))
        .await;
    let tags = app
        .create_collection_ok(json!({
            "name": "tags", "listRule": "", "viewRule": "",
            "fields": [{"name": "title", "type": "text"}]
        }))
        .await;
    let vaults = app
        .create_collection_ok(json!({
            "name": "vaults", "listRule": null, "viewRule": null,
            "fields": [{"name": "code", "type": "text"}]
        }))
        .await;
    let posts = app
        .create_collection_ok(json!({
            "name": "posts", "listRule": "", "viewRule": "",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "views", "type": "number"},
                {"name": "published", "type": "bool"},
                {"name": "cats", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
                {"name": "author", "type": "relation", "collectionId": people["id"], "maxSelect": 1},
                {"name": "tags", "type": "relation", "collectionId": tags["id"], "maxSelect": 5},
                {"name": "meta", "type": "json"},
                {"name": "pubdate", "type": "date"},
                {"name": "loc", "type": "geoPoint"},
                {"name": "secret", "type": "text", "hidden": true},
                {"name": "vault", "type": "relation", "collectionId": vaults["id"], "maxSelect": 1}
            ],
            "indexes": ["CREATE INDEX idx_views ON posts (views)"]
        }))
        .await;
    app.create_collection_ok(json!({
        "name": "comments", "listRule": "", "viewRule": "",
        "fields": [
            {"name": "text", "type": "text"},
            {"name": "post", "type": "relation", "collectionId": posts["id"], "maxSelect": 1}
        ]
    }))
    .await;

    let alice = create(
        &app,
        "people",
        json!({"name": "alice", "active": true, "meta": {"age": 30}}),
    )
    .await;
    let bob = create(
        &app,
        "people",
        json!({"name": "bob", "active": false, "meta": {"age": 20}}),
    )
    .await;
    let carol = create(&app, "people", json!({"name": "carol", "active": true})).await;
    let mut tag = HashMap::new();
    for title in ["news", "tech", "misc"] {
        tag.insert(title, create(&app, "tags", json!({ "title": title })).await);
    }
    let vault = create(&app, "vaults", json!({"code": "alpha"})).await;
    let now = chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.3fZ")
        .to_string();
    let rows = [
        json!({"title": P1, "views": 5, "published": true, "cats": ["a", "b"], "author": alice,
               "tags": [tag["news"], tag["tech"]], "meta": {"x": 1, "y": [1, 2]},
               "pubdate": "2024-03-01 10:00:00.000Z", "loc": {"lon": 13.4, "lat": 52.5},
               "secret": "s1", "vault": vault}),
        json!({"title": P2, "views": 10, "published": false, "cats": ["a"], "author": bob,
               "tags": [tag["news"]], "meta": {"x": 2},
               "pubdate": "2023-06-15 12:00:00.000Z", "loc": {"lon": 2.35, "lat": 48.85}}),
        json!({"title": P3, "views": 0, "published": true, "cats": [], "author": alice,
               "tags": [], "meta": null, "pubdate": ""}),
        json!({"title": P4, "views": 3, "published": false, "cats": ["b", "c"], "author": "",
               "tags": [tag["tech"]], "meta": {"x": "one"},
               "pubdate": "2999-01-01 00:00:00.000Z", "loc": {"lon": -74.0, "lat": 40.7}}),
        json!({"title": P5, "views": 7.5, "published": true, "cats": ["c"], "author": carol,
               "tags": [tag["misc"], tag["news"]], "meta": {"x": null},
               "pubdate": now, "loc": {"lon": 151.2, "lat": -33.87}}),
    ];
    let mut post = HashMap::new();
    for (title, row) in [P1, P2, P3, P4, P5].into_iter().zip(rows) {
        post.insert(title, create(&app, "posts", row).await);
    }
    for (text, on) in [("great", P1), ("meh 50%", P1), ("great", P2), ("spam", P4)] {
        create(&app, "comments", json!({"text": text, "post": post[on]})).await;
    }
    Seeded { app, tag, post }
}

/// Who sends the request.
#[derive(Clone, Copy, Debug)]
enum Who {
    Superuser,
    Guest,
}

impl Seeded {
    fn token(&self, who: Who) -> Option<&str> {
        match who {
            Who::Superuser => Some(self.app.superuser_token.as_str()),
            Who::Guest => None,
        }
    }

    /// The `key` values of the listed items, in response order, or the
    /// status and body of a non-200 answer.
    async fn list(
        &self,
        collection: &str,
        key: &str,
        query: &[(&str, &str)],
        who: Who,
    ) -> Result<Vec<String>, String> {
        let mut query = query.to_vec();
        query.push(("perPage", "100"));
        let response = self
            .app
            .list_records(collection, &query, self.token(who))
            .await;
        let (status, body) = status_json(response).await;
        if status != 200 {
            return Err(format!("status {status}: {body}"));
        }
        let items = body["items"].as_array().cloned().unwrap_or_default();
        Ok(items
            .iter()
            .map(|item| item[key].as_str().unwrap_or("<missing>").to_owned())
            .collect())
    }

    /// Runs `(filter, expected titles in any order, why)` cases and returns
    /// one line per failing case.
    async fn check_sets(
        &self,
        collection: &str,
        key: &str,
        cases: &[(String, &[&str], &str)],
        who: Who,
    ) -> Vec<String> {
        let mut failures = Vec::new();
        for (filter, want, why) in cases {
            let got = self
                .list(collection, key, &[("filter", filter.as_str())], who)
                .await;
            let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            want.sort();
            match got {
                Ok(mut got) => {
                    got.sort();
                    if got != want {
                        failures.push(format!(
                            "{who:?} {filter:?} ({why}): want {want:?}, got {got:?}"
                        ));
                    }
                }
                Err(e) => failures.push(format!("{who:?} {filter:?} ({why}): {e}")),
            }
        }
        failures
    }
}

fn case(
    filter: impl Into<String>,
    want: &'static [&'static str],
    why: &'static str,
) -> (String, &'static [&'static str], &'static str) {
    (filter.into(), want, why)
}

fn assert_no_failures(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn scalar_cases() -> Vec<(String, &'static [&'static str], &'static str)> {
    vec![
        // Comparison operators on a number column.
        case("views = 5", &[P1], "equal"),
        case("views != 5", &[P2, P3, P4, P5], "not equal"),
        case("views > 5", &[P2, P5], "greater"),
        case("views >= 5", &[P1, P2, P5], "greater or equal"),
        case("views < 5", &[P3, P4], "less"),
        case("views <= 5", &[P1, P3, P4], "less or equal"),
        case("views = 7.5", &[P5], "decimal literal"),
        case("views = 5.0", &[P1], "5.0 equals 5"),
        case("views > -1", ALL, "negative literal"),
        case(
            "views = '5'",
            &[P1],
            "numeric string against a number field",
        ),
        case("views = 'abc'", NONE, "non-numeric string matches nothing"),
        // Text equality is case-sensitive; ordering is binary.
        case("title = 'Hello'", &[P1], "exact text"),
        case("title = 'hello'", NONE, "= is case-sensitive"),
        case("title != 'Hello'", &[P2, P3, P4, P5], "text not equal"),
        case("title > 'a'", &[P2, P4], "lowercase sorts after uppercase"),
        case("title <= 'Hello'", &[P1, P3], "digits sort before letters"),
        case(
            "title = \"It's\"",
            &[P5],
            "double-quoted text with a single quote",
        ),
        case("title = 'It\\'s'", &[P5], "escaped single quote"),
        case("title:lower = 'hello'", &[P1], ":lower"),
        case(
            "title:lower = 'HELLO'",
            NONE,
            ":lower lowers only the field",
        ),
        // LIKE: auto-wrapped, case-insensitive, escaped unless it holds a %.
        case("title ~ 'hello'", &[P1, P2], "contains"),
        case("title ~ 'HELLO'", &[P1, P2], "~ is case-insensitive"),
        case("title ~ 'o w'", &[P2], "contains with a space"),
        case("title ~ '_'", &[P4], "_ is escaped, not a wildcard"),
        case("title ~ 'e_c'", &[P4], "_ inside the text is literal"),
        case("title ~ '1%e'", &[P3], "unescaped % makes a raw pattern"),
        case("title ~ 'H%'", &[P1, P2], "raw pattern: starts with"),
        case("title ~ '%o'", &[P1], "raw pattern: ends with"),
        case("title ~ '100%'", &[P3], "raw pattern with a literal prefix"),
        case("title ~ \"it's\"", &[P5], "~ with a quote"),
        case("title !~ 'hello'", &[P3, P4, P5], "not like"),
        case(
            "title !~ '_'",
            &[P1, P2, P3, P5],
            "not like with an escaped _",
        ),
        // Bools.
        case("published = true", &[P1, P3, P5], "true"),
        case("published = 1", &[P1, P3, P5], "1 is true"),
        case("published = false", &[P2, P4], "false"),
        case("published != true", &[P2, P4], "not true"),
        case(
            "published = TRUE",
            &[P1, P3, P5],
            "keywords are case-insensitive",
        ),
        case("published = 'true'", NONE, "quoted true is text"),
        // '' and null are alike.
        case("author = ''", &[P4], "unset single relation"),
        case("author = null", &[P4], "null equals empty"),
        case("author != ''", &[P1, P2, P3, P5], "set relation"),
        case(
            "author != null",
            &[P1, P2, P3, P5],
            "not null excludes empty",
        ),
        case("pubdate = ''", &[P3], "empty date"),
        case("meta = null", &[P3], "json null"),
        case("meta = ''", &[P3], "json null equals ''"),
        case(
            "meta != null",
            &[P1, P2, P4, P5],
            "{\"x\":null} is not null",
        ),
        case("'' = null", ALL, "two empty literals are equal"),
        case("null != ''", NONE, "and never unequal"),
        case("title = null", NONE, "no title is empty"),
        // Joins, precedence, groups and comments.
        case(
            "views > 5 && published = true || title = 'snake_case'",
            &[P4, P5],
            "&& binds tighter (and first)",
        ),
        case(
            "title = 'snake_case' || views > 5 && published = true",
            &[P4, P5],
            "&& binds tighter (and last)",
        ),
        case(
            "(title = 'snake_case' || views > 5) && published = true",
            &[P5],
            "parentheses override",
        ),
        case(
            "views > 5 && (published = true || title = 'snake_case')",
            &[P5],
            "group on the right",
        ),
        case(
            "((views >= 3) && ((views <= 5)))",
            &[P1, P4],
            "nested groups",
        ),
        case("() && title = 'Hello'", &[P1], "empty group is dropped"),
        case(
            "views > 5 // the big ones\n && published = true",
            &[P5],
            "line comment",
        ),
        case(
            "title = 'Hello' // || views > 0",
            &[P1],
            "comment at the end",
        ),
        case("title = '// not a comment'", NONE, "// inside text"),
        case("title = 'x' || 1 = 1", ALL, "literal comparison"),
        // JSON and geoPoint paths.
        case("meta.x = 1", &[P1], "json number"),
        case("meta.x = 'one'", &[P4], "json string"),
        case("meta.y.1 = 2", &[P1], "json array index"),
        case("meta.y.0 = 1", &[P1], "first array element"),
        case("meta.x = null", &[P3, P5], "missing and null json values"),
        case("meta.x != ''", &[P1, P2, P4], "set json values"),
        case("meta.nope = null", ALL, "unknown json key is null"),
        case("loc.lon > 10", &[P1, P5], "geoPoint longitude"),
        case("loc.lat < 0", &[P5], "geoPoint latitude"),
        case("loc.lon < 0 && loc.lat > 40", &[P4], "both coordinates"),
        // Datetime macros (P5's pubdate is the seeding instant).
        case(
            "pubdate < @now",
            &[P1, P2, P3, P5],
            "past dates, and '' sorts first",
        ),
        case("pubdate > @now", &[P4], "future date"),
        case(
            "pubdate >= @todayStart && pubdate <= @todayEnd",
            &[P5],
            "today",
        ),
        case(
            "pubdate > @yesterday && pubdate < @tomorrow",
            &[P5],
            "within a day",
        ),
        case(
            "pubdate >= @monthStart && pubdate <= @monthEnd",
            &[P5],
            "this month",
        ),
        case(
            "pubdate >= @yearStart && pubdate <= @yearEnd",
            &[P5],
            "this year",
        ),
        case(
            "pubdate != '' && pubdate < @yearStart",
            &[P1, P2],
            "before this year",
        ),
        case(
            "@year > 2000 && @month >= 1 && @day >= 1",
            ALL,
            "number macros",
        ),
        case(
            "@weekday >= 0 && @weekday <= 6 && @hour < 24 && @minute < 60 && @second < 60",
            ALL,
            "clock macros",
        ),
        case("@month > 12", NONE, "no thirteenth month"),
        // strftime.
        case("strftime('%Y', pubdate) = '2024'", &[P1], "year of a date"),
        case(
            "strftime('%Y-%m', pubdate) = '2023-06'",
            &[P2],
            "year and month",
        ),
        case(
            "strftime('%Y', pubdate) = ''",
            &[P3],
            "empty date gives '' not NULL",
        ),
        case(
            "strftime('%Y', pubdate) > '2900'",
            &[P4],
            "string comparison of years",
        ),
    ]
}

fn multi_cases(s: &Seeded) -> Vec<(String, &'static [&'static str], &'static str)> {
    let news = &s.tag["news"];
    vec![
        // Multi select: raw JSON text unless :each / :length (§4.6).
        case("cats = 'a'", NONE, "bare multi field is its JSON text"),
        case(
            "cats ?= 'a'",
            NONE,
            "?= on a bare multi field is still JSON text",
        ),
        case("cats = '[\"a\",\"b\"]'", &[P1], "whole JSON text"),
        case("cats ~ 'a'", &[P1, P2], "substring of the JSON text"),
        case("cats:each ?= 'a'", &[P1, P2], "any element"),
        case("cats:each = 'a'", &[P2], "every element (and at least one)"),
        case(
            "cats:each != 'a'",
            &[P3, P4, P5],
            "no element, empty lists included",
        ),
        case(
            "cats:each ?!= 'a'",
            &[P1, P3, P4, P5],
            "some element differs",
        ),
        case(
            "cats:each ?~ 'C'",
            &[P4, P5],
            "any element like, case-insensitive",
        ),
        case("cats:length > 1", &[P1, P4], "element count"),
        case("cats:length = 0", &[P3], "empty list"),
        case("cats = ''", NONE, "empty lists are [] not ''"),
        case("cats != ''", ALL, "every list is non-empty text"),
        // Multi relation ids.
        case(
            format!("tags = '{news}'"),
            NONE,
            "bare multi relation is JSON text",
        ),
        case(
            format!("tags ?= '{news}'"),
            NONE,
            "?= does not help a bare multi relation",
        ),
        case(
            format!("tags ~ '{news}'"),
            &[P1, P2, P5],
            "id inside the JSON text",
        ),
        case(
            format!("tags.id ?= '{news}'"),
            &[P1, P2, P5],
            "relation path to the id",
        ),
        case(
            format!("tags:each ?= '{news}'"),
            &[P1, P2, P5],
            ":each over ids",
        ),
        case("tags:length = 2", &[P1, P5], "relation count"),
        // Multi relation paths (§4.6 table).
        case(
            "tags.title = 'news'",
            &[P2],
            "all tags are news, at least one",
        ),
        case("tags.title ?= 'news'", &[P1, P2, P5], "any news tag"),
        case(
            "tags.title != 'news'",
            &[P3, P4],
            "no news tag, untagged included",
        ),
        case(
            "tags.title ?!= 'news'",
            &[P1, P3, P4, P5],
            "some non-news tag, plus untagged",
        ),
        case("tags.title ?> 'n'", &[P1, P2, P4, P5], "any tag after n"),
        case(
            "tags.title ?>= 'tech'",
            &[P1, P4],
            "any tag at or after tech",
        ),
        case("tags.title ?< 'n'", &[P5], "any tag before n"),
        case("tags.title ?<= 'misc'", &[P5], "any tag at or before misc"),
        case("tags.title ?~ 'EC'", &[P1, P4], "any tag like"),
        case(
            "tags.title ?!~ 'news'",
            &[P1, P4, P5],
            "any tag not like; untagged has nothing unlike",
        ),
        case(
            "tags.title ~ 'e'",
            &[P1, P2, P4],
            "every tag contains e (news, tech), at least one",
        ),
        case(
            "tags.title:each ?= 'misc'",
            &[P5],
            ":each on a relation path",
        ),
        case(
            "tags.title ?= 'news' && tags.title ?= 'tech'",
            &[],
            "one joined tag for both, as PocketBase: no tag is titled both",
        ),
        case(
            "tags.title ?= 'news' || tags.title ?= 'tech'",
            &[P1, P2, P4, P5],
            "|| lets each branch find its own tag",
        ),
        // Single relation paths.
        case("author.name = 'alice'", &[P1, P3], "single relation"),
        case(
            "author.name != 'alice'",
            &[P2, P4, P5],
            "unset relation counts as not alice",
        ),
        case("author.name ?= 'bob'", &[P2], "?= on a single relation"),
        case(
            "author.active = true",
            &[P1, P3, P5],
            "bool through a relation",
        ),
        case("author.meta.age > 25", &[P1, P3], "json through a relation"),
        case(
            "author.name:lower ~ 'AL'",
            &[P1, P3],
            "modifier through a relation",
        ),
        // Back-relations from posts.
        case(
            "comments_via_post.text ?= 'great'",
            &[P1, P2],
            "any comment",
        ),
        case(
            "comments_via_post.text = 'great'",
            &[P2],
            "all comments, at least one",
        ),
        case("comments_via_post.text ?~ 'meh'", &[P1], "any comment like"),
        case(
            "comments_via_post.text != 'spam'",
            &[P1, P2, P3, P5],
            "no spam, comment-less included",
        ),
        case(
            "comments_via_post.post.author.name ?= 'bob'",
            &[P2],
            "back-relation then forward hops",
        ),
    ]
}

#[tokio::test]
async fn every_operator_modifier_macro_and_path_selects_the_right_posts() {
    let s = seeded().await;
    let cases: Vec<_> = scalar_cases().into_iter().chain(multi_cases(&s)).collect();
    let mut failures = Vec::new();

    for who in [Who::Superuser, Who::Guest] {
        failures.extend(s.check_sets("posts", "title", &cases, who).await);
    }

    assert_no_failures(failures);
}

#[tokio::test]
async fn back_relations_select_people_by_their_posts() {
    let s = seeded().await;
    let cases = [
        case(
            "posts_via_author.title ?= 'Hello'",
            &["alice"],
            "any post titled Hello",
        ),
        case(
            "posts_via_author.views ?> 8",
            &["bob"],
            "any post with many views",
        ),
        case(
            "posts_via_author.published = true",
            &["alice", "carol"],
            "all posts published, at least one",
        ),
        case(
            "posts_via_author.published ?= false",
            &["bob"],
            "some unpublished post",
        ),
        case(
            "posts_via_author.tags.title ?= 'misc'",
            &["carol"],
            "back-relation then multi relation",
        ),
        case(
            "posts_via_author.title ?~ '%'",
            &["alice", "bob", "carol"],
            "raw % pattern matches any post",
        ),
        case(
            "meta.age >= 20 && active = true",
            &["alice"],
            "plain people fields",
        ),
    ];
    let mut failures = Vec::new();

    for who in [Who::Superuser, Who::Guest] {
        failures.extend(s.check_sets("people", "name", &cases, who).await);
    }

    assert_no_failures(failures);
}

#[tokio::test]
async fn sorts_order_by_fields_relations_and_insertion() {
    let s = seeded().await;
    let cases: [(&str, &[&str], &str); 9] = [
        ("-views,title", &[P2, P5, P1, P4, P3], "descending number"),
        ("views", &[P3, P4, P1, P5, P2], "ascending number"),
        (
            "+title",
            &[P3, P1, P5, P2, P4],
            "explicit ascending, binary order",
        ),
        ("published,-views", &[P2, P4, P5, P1, P3], "two fields"),
        ("@rowid", &[P1, P2, P3, P4, P5], "insertion order"),
        ("-@rowid", &[P5, P4, P3, P2, P1], "newest first"),
        (
            "author.name,title",
            &[P4, P3, P1, P2, P5],
            "relation path, unset first",
        ),
        (
            "-author.name,-views",
            &[P5, P2, P1, P3, P4],
            "relation path descending",
        ),
        (
            "cats:length,title",
            &[P3, P5, P2, P1, P4],
            "length modifier",
        ),
    ];
    let mut failures = Vec::new();

    for who in [Who::Superuser, Who::Guest] {
        for (sort, want, why) in cases {
            let got = s.list("posts", "title", &[("sort", sort)], who).await;
            if got.as_deref()
                != Ok(want
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .as_slice())
            {
                failures.push(format!(
                    "{who:?} sort={sort:?} ({why}): want {want:?}, got {got:?}"
                ));
            }
        }
        match s.list("posts", "title", &[("sort", "@random")], who).await {
            Ok(titles) if titles.len() == ALL.len() => {}
            other => failures.push(format!("{who:?} sort=@random: {other:?}")),
        }
    }

    assert_no_failures(failures);
}

#[tokio::test]
async fn fields_select_nested_paths_and_excerpts() {
    let s = seeded().await;
    let token = s.token(Who::Superuser);

    let (status, body) = status_json(
        s.app
            .list_records(
                "posts",
                &[
                    ("filter", "title = 'Hello'"),
                    ("fields", "id,meta.x,loc.lon,title:excerpt(3,true)"),
                ],
                token,
            )
            .await,
    )
    .await;
    let (expand_status, expanded) = status_json(
        s.app
            .list_records(
                "posts",
                &[
                    ("filter", "title = 'hello world'"),
                    ("expand", "author"),
                    ("fields", "title:excerpt(5,true),expand.author.name"),
                ],
                None,
            )
            .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    let mut item = body["items"][0].clone();
    let title = item["title"].take();
    assert_eq!(
        body["items"].as_array().map(Vec::len),
        Some(1),
        "one post: {body}"
    );
    assert_eq!(
        item,
        json!({"id": s.post[P1], "meta": {"x": 1}, "loc": {"lon": 13.4}, "title": null}),
        "only the listed (nested) keys remain"
    );
    assert!(
        ["Hel...", "Hel…"].contains(&title.as_str().unwrap_or_default()),
        "excerpt of 3 characters with an ellipsis, got {title}"
    );
    assert_eq!(body["totalItems"], 1, "pagination keys are kept");
    assert_eq!(expand_status, 200, "{expanded}");
    assert_eq!(
        expanded["items"][0]["expand"],
        json!({"author": {"name": "bob"}}),
        "fields reach into expand: {expanded}"
    );
    assert!(
        ["hello...", "hello…"]
            .contains(&expanded["items"][0]["title"].as_str().unwrap_or_default()),
        "excerpt cuts at 5 characters: {expanded}"
    );
}

/// `(filter, status, why)` as one caller.
async fn check_statuses(s: &Seeded, cases: &[(String, u16, &str)], who: Who) -> Vec<String> {
    let mut failures = Vec::new();
    for (filter, want, why) in cases {
        let response = s
            .app
            .list_records("posts", &[("filter", filter.as_str())], s.token(who))
            .await;
        let (status, body) = status_json(response).await;
        if status != *want {
            failures.push(format!(
                "{who:?} {:.80?} ({why}): want {want}, got {status} {body}",
                filter
            ));
        } else if status == 400
            && body != json!({"data": {}, "message": GENERIC_400, "status": 400})
        {
            failures.push(format!("{who:?} {filter:.80?} ({why}): 400 body {body}"));
        }
    }
    failures
}

#[tokio::test]
async fn bad_filters_are_400_with_the_generic_message() {
    let s = seeded().await;
    let at_limit = format!("title = '{}'", "x".repeat(3500 - 10));
    let over_limit = format!("title = '{}'", "x".repeat(3500 - 9));
    let cases = vec![
        ("title = ".to_string(), 400, "missing operand"),
        ("title == 'x'".into(), 400, "double operator"),
        ("(title = 'x'".into(), 400, "unclosed group"),
        ("title = 'x' title = 'y'".into(), 400, "missing join"),
        ("title = 'open".into(), 400, "unterminated text"),
        ("title & 'x'".into(), 400, "single ampersand"),
        ("nope = 1".into(), 400, "unknown field"),
        (
            "author.nope = 1".into(),
            400,
            "unknown field through a relation",
        ),
        ("nope_via_author.x = 1".into(), 400, "unknown back-relation"),
        (
            "collectionName = 'posts'".into(),
            400,
            "collectionName is not filterable",
        ),
        ("views = 1e3".into(), 400, "no exponent"),
        ("views = 1.2.3".into(), 400, "two dots"),
        ("title:each = 'x'".into(), 400, ":each on a single field"),
        ("title:bogus = 'x'".into(), 400, "unknown modifier"),
        ("@later > pubdate".into(), 400, "unknown macro"),
        ("nope(1) = 1".into(), 400, "unknown function"),
        ("geoDistance(1, 2) = 1".into(), 400, "wrong arity"),
        (
            "strftime(strftime(strftime(strftime('%Y')))) = '1'".into(),
            400,
            "functions nested too deep",
        ),
        (over_limit, 400, "filter over 3500 bytes"),
        (at_limit, 200, "filter of exactly 3500 bytes"),
        (vec!["views=1"; 201].join("&&"), 400, "over 200 comparisons"),
    ];
    let mut failures = Vec::new();

    for who in [Who::Superuser, Who::Guest] {
        failures.extend(check_statuses(&s, &cases, who).await);
    }

    assert_no_failures(failures);
}

#[tokio::test]
async fn guests_are_refused_what_superusers_may_filter_by() {
    let s = seeded().await;
    let guest_cases = vec![
        ("secret = 's1'".to_string(), 400, "hidden field"),
        ("secret != ''".into(), 400, "hidden field, any operator"),
        (
            "vault.code = 'alpha'".into(),
            400,
            "relation into a superusers-only collection",
        ),
        (
            "@request.auth.id = ''".into(),
            403,
            "@request. is superusers-only",
        ),
        (
            "@collection.tags.title ?= 'news'".into(),
            403,
            "@collection. is superusers-only",
        ),
        (
            "title = '@request.'".into(),
            403,
            "even inside text, as PocketBase does",
        ),
    ];
    let superuser_cases = [
        case("secret = 's1'", &[P1], "superusers may use hidden fields"),
        case("vault.code = 'alpha'", &[P1], "and locked collections"),
        case("@request.auth.id != ''", ALL, "and @request.*"),
        case("@request.method = 'GET'", ALL, "request method"),
    ];
    let mut failures = check_statuses(&s, &guest_cases, Who::Guest).await;
    failures.extend(
        s.check_sets("posts", "title", &superuser_cases, Who::Superuser)
            .await,
    );

    let (status, body) = status_json(
        s.app
            .list_records("posts", &[("filter", "@request.auth.id = ''")], None)
            .await,
    )
    .await;
    let sort_status = |sort: &'static str, who: Who| {
        let app = &s.app;
        let token = s.token(who).map(str::to_owned);
        async move {
            let r = app
                .list_records("posts", &[("sort", sort)], token.as_deref())
                .await;
            r.status().as_u16()
        }
    };
    let sorts = [
        (
            sort_status("secret", Who::Guest).await,
            400,
            "guest sort by a hidden field",
        ),
        (
            sort_status("@request.auth.id", Who::Guest).await,
            403,
            "guest sort by @request.",
        ),
        (
            sort_status("nope", Who::Superuser).await,
            400,
            "unknown sort field",
        ),
        (
            sort_status("-secret", Who::Superuser).await,
            200,
            "superuser sort by a hidden field",
        ),
    ];

    assert_eq!(
        (status, body),
        (
            403,
            json!({"data": {}, "message": "Only superusers can filter by @request.", "status": 403})
        ),
        "403 envelope"
    );
    for (got, want, why) in sorts {
        if got != want {
            failures.push(format!("{why}: want {want}, got {got}"));
        }
    }
    assert_no_failures(failures);
}

#[tokio::test]
async fn superusers_can_filter_by_other_collections() {
    // §4.4: `@collection.<name>.<field>` joins any collection; PocketBase
    // lets superusers use it in a list filter.
    let s = seeded().await;
    let cases = [
        case("@collection.tags.title ?= 'news'", ALL, "a news tag exists"),
        case("@collection.tags.title ?= 'nope'", NONE, "no such tag"),
        case(
            "@collection.people.name ?= 'alice' && @collection.people.id ?= author",
            &[P1, P3],
            "join condition on the current record",
        ),
    ];

    let failures = s.check_sets("posts", "title", &cases, Who::Superuser).await;

    assert_no_failures(failures);
}

#[tokio::test]
async fn geo_distance_filters_by_kilometres() {
    let s = seeded().await;
    let cases = [
        case(
            "geoDistance(loc.lon, loc.lat, 13.4, 52.5) < 10",
            &[P1],
            "Berlin itself",
        ),
        case(
            "geoDistance(loc.lon, loc.lat, 13.4, 52.5) < 1000",
            &[P1, P2],
            "Berlin and Paris",
        ),
        case(
            "geoDistance(13.4, 52.5, 2.35, 48.85) > 800 && geoDistance(13.4, 52.5, 2.35, 48.85) < 900",
            ALL,
            "Berlin–Paris is about 880 km",
        ),
    ];
    let mut failures = Vec::new();

    for who in [Who::Superuser, Who::Guest] {
        failures.extend(s.check_sets("posts", "title", &cases, who).await);
    }

    assert_no_failures(failures);
}

#[tokio::test]
async fn a_json_path_next_to_a_text_comparison_of_the_same_field_is_not_a_500() {
    // SQLite propagates `meta = 'abc'` into `json_extract(meta, '$.x')` in
    // the same AND, and a bare json_extract of non-JSON text is an error.
    // PocketBase guards its JSON paths with json_valid.
    let s = seeded().await;
    let cases = [
        case(
            "meta = 'abc' && meta.x = 1",
            NONE,
            "no meta is the text abc",
        ),
        case("meta.x = 1 && meta = 'abc'", NONE, "either order"),
        case(
            "loc = 'abc' && loc.lon > 0",
            NONE,
            "geoPoint paths likewise",
        ),
    ];

    let failures = s.check_sets("posts", "title", &cases, Who::Superuser).await;

    assert_no_failures(failures);
}

#[tokio::test]
async fn a_filter_on_an_indexed_column_uses_the_index() {
    if crate::helpers::sqlite_only("reads SQLite's query plan from data.db") {
        return;
    }
    let s = seeded().await;
    // `views > 3` compiles to exactly `"posts"."views" > ?` (a bare column
    // against a bound value), and the list query puts it in
    // `SELECT … FROM "posts" WHERE ("posts"."views" > ?) LIMIT ? OFFSET ?`.
    let listed = s
        .list("posts", "title", &[("filter", "views > 3")], Who::Guest)
        .await;
    let conn = rusqlite::Connection::open_with_flags(
        s.app.data_dir.join("data.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the server's database read-only");
    let plan = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> String {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        let rows = stmt
            .query_map(params, |row| row.get::<_, String>(3))
            .expect("plan rows");
        rows.map(|r| r.expect("plan row"))
            .collect::<Vec<_>>()
            .join("; ")
    };

    let literal = plan("SELECT * FROM posts WHERE posts.views > 3", &[]);
    let bound = plan(
        "SELECT * FROM \"posts\" WHERE (\"posts\".\"views\" > ?) LIMIT ? OFFSET ?",
        &[&3, &30, &0],
    );

    let mut titles = listed.expect("list succeeds");
    titles.sort();
    let mut want = vec![P1, P2, P5];
    want.sort();
    assert_eq!(titles, want, "views > 3");
    for (shape, plan) in [("literal", literal), ("as the server binds it", bound)] {
        assert!(
            plan.contains("USING INDEX idx_views")
                || plan.contains("USING COVERING INDEX idx_views"),
            "{shape}: the plan should search idx_views, got {plan:?}"
        );
    }
}
