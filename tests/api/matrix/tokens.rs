//! Token cells of the matrix: alice's token with its header swapped (`alg:
//! none`, `HS512`, `RS256`), a staff token re-labelled as a `people` token
//! for alice, file tokens presented as auth tokens and auth tokens presented
//! as file tokens, a superuser token after that superuser's password change,
//! an impersonation token after the impersonating superuser's password
//! change, and a token one second past its expiry; each × list, view, update
//! and realtime subscribe (with delivery). A broken token must get exactly
//! what a guest gets; nothing it would unlock may appear.

use super::{
    ALICE, Actor, Answer, BOB, Cells, I1, ITEMS, Persona, RECORDS, Stream, World, file_marker,
    forbidden_for, ids_of, marker, world,
};
use crate::helpers::status_json;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const SU2_EMAIL: &str = "second-admin@example.com";
const SU2_PASSWORD: &str = "second-admin-pass-1";

fn parts(token: &str) -> (Value, Value, String) {
    let p: Vec<&str> = token.split('.').collect();
    assert_eq!(p.len(), 3, "a JWT has three parts");
    let decode = |s: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).expect("base64")).expect("json")
    };
    (decode(p[0]), decode(p[1]), p[2].to_owned())
}

fn assemble(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// alice's token with another `alg` (signature kept or dropped).
fn with_alg(token: &str, alg: &str, keep_signature: bool) -> String {
    let (mut header, claims, signature) = parts(token);
    header["alg"] = json!(alg);
    assemble(
        &header,
        &claims,
        if keep_signature { &signature } else { "" },
    )
}

/// `token`'s claims with `edit` applied, signature kept (now wrong).
fn with_claims(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let (header, mut claims, signature) = parts(token);
    edit(&mut claims);
    assemble(&header, &claims, &signature)
}

/// A token under test and whose rights it must carry.
struct Case {
    name: &'static str,
    token: String,
    persona: Persona,
    /// Whether it is a genuine file token that reaches item1's protected file.
    opens_file: bool,
}

async fn file_token(w: &World, token: &str) -> String {
    let (status, body) = status_json(
        w.app
            .request(Method::POST, "/api/files/token", Some(token), None)
            .await,
    )
    .await;
    assert_eq!(status, 200, "file token: {body}");
    body["token"].as_str().expect("token").to_owned()
}

async fn cases(w: &World) -> Vec<Case> {
    let alice = w.token(Actor::Alice).expect("alice").to_owned();
    let sam = w.token(Actor::Staff).expect("sam").to_owned();
    let people = w
        .su(Method::GET, "/api/collections/people", json!({}))
        .await;
    let people_id = people["id"].clone();

    // A second superuser: its token and an impersonation of alice, both
    // taken before its password changes.
    let su2 = w
        .su(
            Method::POST,
            "/api/collections/_superusers/records",
            json!({"email": SU2_EMAIL, "password": SU2_PASSWORD, "passwordConfirm": SU2_PASSWORD}),
        )
        .await;
    let su2_id = su2["id"].as_str().expect("id").to_owned();
    let su2_token = w.app.login_as("_superusers", SU2_EMAIL, SU2_PASSWORD).await;
    let (status, body) = status_json(
        w.app
            .request(
                Method::POST,
                &format!("/api/collections/people/impersonate/{ALICE}"),
                Some(&su2_token),
                Some(json!({"duration": 3600})),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "impersonate alice: {body}");
    let impersonation = body["token"].as_str().expect("token").to_owned();
    w.su(
        Method::PATCH,
        &format!("/api/collections/_superusers/records/{su2_id}"),
        json!({"password": "changed-pass-123", "passwordConfirm": "changed-pass-123"}),
    )
    .await;

    vec![
        Case {
            name: "alice's own token (control)",
            token: alice.clone(),
            persona: Persona::Alice,
            opens_file: false,
        },
        Case {
            name: "alg none, no signature",
            token: with_alg(&alice, "none", false),
            persona: Persona::Guest,
            opens_file: false,
        },
        Case {
            name: "alg none, signature kept",
            token: with_alg(&alice, "none", true),
            persona: Persona::Guest,
            opens_file: false,
        },
        Case {
            name: "alg NONE, no signature",
            token: with_alg(&alice, "NONE", false),
            persona: Persona::Guest,
            opens_file: false,
        },
        Case {
            name: "alg HS512 header swap",
            token: with_alg(&alice, "HS512", true),
            persona: Persona::Guest,
            opens_file: false,
        },
        Case {
            name: "alg RS256 header swap",
            token: with_alg(&alice, "RS256", true),
            persona: Persona::Guest,
            opens_file: false,
        },
        Case {
            name: "staff token relabelled as alice of people",
            token: with_claims(&sam, |c| {
                c["id"] = json!(ALICE);
                c["collectionId"] = people_id.clone();
            }),
            persona: Persona::Guest,
            opens_file: false,
        },
        Case {
            name: "staff token with people's collectionId",
            token: with_claims(&sam, |c| c["collectionId"] = people_id.clone()),
            persona: Persona::Guest,
            opens_file: false,
        },
        Case {
            name: "alice's file token as an auth token",
            token: file_token(w, &alice).await,
            persona: Persona::Guest,
            opens_file: true,
        },
        Case {
            name: "alice's file token relabelled as an auth token",
            token: with_claims(&file_token(w, &alice).await, |c| c["type"] = json!("auth")),
            persona: Persona::Guest,
            opens_file: false,
        },
        Case {
            name: "superuser token after its password change",
            token: su2_token,
            persona: Persona::Guest,
            opens_file: false,
        },
        Case {
            // PocketBase signs an impersonation token with the impersonated
            // record's key: the superuser's password change does not revoke it.
            name: "impersonation token after the superuser's password change",
            token: impersonation,
            persona: Persona::Alice,
            opens_file: false,
        },
        Case {
            name: "alice's token one second past expiry",
            token: w.token(Actor::Expired).expect("expired").to_owned(),
            persona: Persona::Guest,
            opens_file: false,
        },
        Case {
            name: "sam's token (a second auth collection)",
            token: sam,
            persona: Persona::Staff,
            opens_file: false,
        },
    ]
}

async fn call(w: &World, token: &str, method: Method, path: &str, body: Option<Value>) -> Answer {
    let resp = w.app.request(method, path, Some(token), body).await;
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, text, json }
}

#[tokio::test]
async fn forged_swapped_expired_and_foreign_tokens_get_exactly_what_a_guest_gets() {
    let w = world().await;
    super::wait_for_expiry(&w).await;
    let shape = &super::shapes()[1];
    assert_eq!(shape.rule, "members.id ?= @request.auth.id");
    w.set_item_rules(shape.rule).await;
    // One protected file on item1 (alice may reach it).
    let form = reqwest::multipart::Form::new().part(
        "doc",
        reqwest::multipart::Part::bytes(file_marker(I1).into_bytes()).file_name("doc.txt"),
    );
    let su = w.app.superuser_token.clone();
    let (status, item1) = status_json(
        w.app
            .send_form(Method::PATCH, &format!("{RECORDS}/{I1}"), Some(&su), form)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{item1}");
    let file_url = format!(
        "/api/files/{}/{I1}/{}",
        item1["collectionId"].as_str().unwrap_or_default(),
        item1["doc"].as_str().unwrap_or_default()
    );
    let cases = cases(&w).await;
    let mut cells = Cells::default();

    // Reads and writes.
    for case in &cases {
        let visible = (shape.visible)(case.persona);
        let forbidden = forbidden_for(case.persona, &visible);
        let want: Vec<String> = visible.iter().map(|s| (*s).to_owned()).collect();
        let c = |what: &str| format!("[token {}] {what}", case.name);
        let a = call(
            &w,
            &case.token,
            Method::GET,
            &format!("{RECORDS}?perPage=100"),
            None,
        )
        .await;
        cells.check(a.status == 200 && ids_of(&a.json) == want, || {
            format!("{}: want {want:?}: {} {}", c("list"), a.status, a.text)
        });
        cells.no_leak(&a, &forbidden, &c("list"));
        for id in ITEMS {
            let a = call(
                &w,
                &case.token,
                Method::GET,
                &format!("{RECORDS}/{id}"),
                None,
            )
            .await;
            let expected = if visible.contains(&id) { 200 } else { 404 };
            cells.check(a.status == expected, || {
                format!(
                    "{}: want {expected}: {} {}",
                    c(&format!("view {id}")),
                    a.status,
                    a.text
                )
            });
            cells.no_leak(&a, &forbidden, &c(&format!("view {id}")));
            let a = call(
                &w,
                &case.token,
                Method::PATCH,
                &format!("{RECORDS}/{id}"),
                Some(json!({"secret": marker(id)})),
            )
            .await;
            cells.check(a.status == expected, || {
                format!(
                    "{}: want {expected}: {} {}",
                    c(&format!("update {id}")),
                    a.status,
                    a.text
                )
            });
            cells.no_leak(&a, &forbidden, &c(&format!("update {id}")));
        }
        // An auth token is no file token; a file token of alice is one.
        let a = call(
            &w,
            &case.token,
            Method::GET,
            &format!("{file_url}?token={}", case.token),
            None,
        )
        .await;
        let opened = a.status == 200 && a.text == file_marker(I1);
        let refused = a.status == 404 && !a.text.contains(&file_marker(I1));
        cells.check(if case.opens_file { opened } else { refused }, || {
            format!("{}: {} {}", c("as a file token"), a.status, a.text)
        });
    }

    // Realtime: every token subscribes; then one record for alice and bob.
    let mut streams = Vec::new();
    for case in &cases {
        let (stream, client_id) = Stream::open(&w).await;
        let body = json!({"clientId": client_id, "subscriptions": ["items/*", "items"]});
        let a = call(&w, &case.token, Method::POST, "/api/realtime", Some(body)).await;
        let ok = match case.persona {
            Persona::Guest => a.status == 204 || a.status == 401,
            _ => a.status == 204,
        };
        cells.check(ok, || {
            format!("[token {}] subscribe: {} {}", case.name, a.status, a.text)
        });
        streams.push((case, stream));
    }
    let fresh = "rttokens0000000";
    w.app
        .create_record_ok(
            "items",
            json!({"id": fresh, "secret": marker(fresh), "members": [ALICE, BOB]}),
        )
        .await;
    let mut wait = Duration::from_secs(2);
    for (case, mut stream) in streams {
        stream.read_for(wait).await;
        wait = Duration::from_millis(200);
        let want = matches!(case.persona, Persona::Alice | Persona::Bob);
        let got = stream.text.contains(&marker(fresh));
        cells.check(got == want, || {
            format!(
                "[token {}] delivery: got {got}, want {want}: {}",
                case.name, stream.text
            )
        });
        if !want {
            cells.check(!stream.text.contains(fresh), || {
                format!("[token {}] the id leaks: {}", case.name, stream.text)
            });
        }
    }

    cells.finish("tokens");
}
