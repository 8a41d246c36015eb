//! The fan-out task: takes published batches in order, picks the clients
//! with a topic the batch concerns, checks their sessions again (one
//! [`Render::refresh`] per batch for all of them: a session that ended makes
//! its client a guest, the others get their auth record as it is now), then
//! for each change groups the subscribers that see the record alike and
//! renders once per group (a few groups at a time), and queues the event on
//! each client's bounded buffer, dropping clients that are full.

use super::hub::{Audience, Client, Credential, Inner, Message, Render, Viewer};
use super::topic::Topic;
use super::{Action, Change};
use futures_util::{StreamExt, stream};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use tokio::sync::mpsc;

/// Audiences rendered at once for one change (each may use a reader connection).
pub const RENDER_CONCURRENCY: usize = 4;

/// One client's view of the registry, copied so no lock is held while rendering.
struct Subscriber {
    client: Arc<Client>,
    viewer: Arc<Viewer>,
    topics: Arc<[Topic]>,
}

pub(super) async fn run(
    mut batches: mpsc::Receiver<Vec<Change>>,
    inner: Weak<Inner>,
    render: Arc<dyn Render>,
) {
    while let Some(batch) = batches.recv().await {
        let Some(hub) = inner.upgrade() else { break };
        let subscribers = concerned(&hub, &batch);
        let subscribers = if subscribers.is_empty() {
            subscribers
        } else {
            refresh(&hub, subscribers, &render).await
        };
        for change in batch {
            let change = Arc::new(change);
            if !subscribers.is_empty() {
                deliver(&hub, &subscribers, change.clone(), &render).await;
            }
            if change.action == Action::Delete {
                hub.forget_auth(&change.collection_id, &change.record_id);
            }
        }
    }
}

/// Clients with a topic that some change of `batch` matches.
fn concerned(hub: &Inner, batch: &[Change]) -> Vec<Subscriber> {
    hub.clients()
        .values()
        .filter_map(|client| {
            let state = client.state();
            let hit = state.topics.iter().any(|topic| {
                batch
                    .iter()
                    .any(|c| topic.matches(&c.collection_id, &c.collection_name, &c.record_id))
            });
            hit.then(|| Subscriber {
                client: client.clone(),
                viewer: state.viewer.clone().unwrap_or_default(),
                topics: state.topics.clone(),
            })
        })
        .collect()
}

/// A session: the authenticated record and the credential that proves it.
type SessionKey = (Option<(String, String, String)>, Option<Credential>);

/// Swaps each authenticated subscriber's viewer for the one as of now (one
/// refresh for every distinct session); a session that no longer holds ends
/// the client's auth and the subscriber is served as a guest.
async fn refresh(
    hub: &Inner,
    mut subscribers: Vec<Subscriber>,
    render: &Arc<dyn Render>,
) -> Vec<Subscriber> {
    let mut sessions: HashMap<SessionKey, usize> = HashMap::new();
    let mut viewers: Vec<Arc<Viewer>> = Vec::new();
    for sub in &subscribers {
        if sub.viewer.identity().is_none() {
            continue;
        }
        let key = (sub.viewer.auth.clone(), sub.viewer.credential.clone());
        sessions.entry(key).or_insert_with(|| {
            viewers.push(sub.viewer.clone());
            viewers.len() - 1
        });
    }
    if viewers.is_empty() {
        return subscribers;
    }
    let asked = viewers.clone();
    let current: Vec<Option<Arc<Viewer>>> = render
        .refresh(viewers)
        .await
        .into_iter()
        .zip(asked.iter())
        // A refresh may not turn one record into another.
        .map(|(now, was)| now.filter(|v| v.identity() == was.identity()).map(Arc::new))
        .collect();
    let guest = Arc::new(Viewer::default());
    for sub in &mut subscribers {
        let key = (sub.viewer.auth.clone(), sub.viewer.credential.clone());
        let Some(&i) = sessions.get(&key) else {
            continue;
        };
        // A missing answer counts as an ended session (closed by default).
        match current.get(i).cloned().flatten() {
            Some(now) => sub.viewer = now,
            None => {
                hub.end_auth(&sub.client, &sub.viewer);
                sub.viewer = guest.clone();
            }
        }
    }
    subscribers
}

/// Clients and the topic (event name) each is sent an event under.
type Targets = Vec<(Arc<Client>, Arc<str>)>;
/// Who sees the record the same way: (auth identity, superuser, single-record topic, options).
type GroupKey = (Option<(String, String)>, bool, bool, Arc<str>);

/// Sends one change to every subscriber whose topic matches and whose rule admits it.
async fn deliver(
    hub: &Inner,
    subscribers: &[Subscriber],
    change: Arc<Change>,
    render: &Arc<dyn Render>,
) {
    let mut groups: HashMap<GroupKey, (Audience, Targets)> = HashMap::new();
    for sub in subscribers {
        for topic in sub.topics.iter() {
            if !topic.matches(
                &change.collection_id,
                &change.collection_name,
                &change.record_id,
            ) {
                continue;
            }
            let identity = sub
                .viewer
                .identity()
                .map(|(c, r)| (c.to_owned(), r.to_owned()));
            let by_id = topic.record_id.is_some();
            let key = (
                identity,
                sub.viewer.superuser,
                by_id,
                topic.options_key.clone(),
            );
            groups
                .entry(key)
                .or_insert_with(|| {
                    let audience = Audience {
                        viewer: sub.viewer.clone(),
                        by_id,
                        options: topic.options.clone(),
                    };
                    (audience, Vec::new())
                })
                .1
                .push((sub.client.clone(), topic.raw.clone()));
        }
    }
    if groups.is_empty() {
        return;
    }
    // Each group is sent to as soon as it is rendered; the next change waits
    // for all of them, so every client still sees changes in commit order.
    let mut rendered = stream::iter(groups.into_values())
        .map(|(audience, targets)| {
            let pending = render.render(change.clone(), audience);
            async move { (pending.await, targets) }
        })
        .buffer_unordered(RENDER_CONCURRENCY);
    while let Some((record, targets)) = rendered.next().await {
        let Some(record) = record else { continue };
        // Key order as PocketBase sends it: record first.
        let data: Arc<str> = Arc::from(format!(
            "{{\"record\":{record},\"action\":\"{}\"}}",
            change.action.name()
        ));
        for (client, topic) in targets {
            let message = Message {
                topic,
                data: data.clone(),
            };
            if let Err(e) = client.out.try_send(message) {
                if matches!(e, mpsc::error::TrySendError::Full(_)) {
                    tracing::info!(client = %client.id, "realtime client too slow; disconnected");
                }
                hub.clients().remove(&client.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Changes, Hub, Topic};
    use super::*;
    use futures_util::future::BoxFuture;
    use serde_json::{Value, json};
    use std::sync::Mutex;

    /// Shows a record to admins only (`marker…` records to everyone); sessions answer from `roles` (a
    /// missing entry is an ended session) and every refresh is recorded.
    #[derive(Default)]
    struct Roles {
        roles: Mutex<HashMap<String, String>>,
        refreshes: Mutex<Vec<usize>>,
    }

    impl Roles {
        fn set(&self, id: &str, role: Option<&str>) {
            let mut roles = self.roles.lock().expect("lock");
            match role {
                Some(r) => roles.insert(id.to_owned(), r.to_owned()),
                None => roles.remove(id),
            };
        }
    }

    impl Render for Roles {
        fn render(
            &self,
            change: Arc<Change>,
            audience: Audience,
        ) -> BoxFuture<'static, Option<Value>> {
            let shown = audience.viewer.auth_fields.get("role") == Some(&json!("admin"))
                || change.record_id.starts_with("marker");
            Box::pin(async move { shown.then(|| json!({"id": change.record_id})) })
        }

        fn refresh(&self, viewers: Vec<Arc<Viewer>>) -> BoxFuture<'static, Vec<Option<Viewer>>> {
            self.refreshes.lock().expect("lock").push(viewers.len());
            let roles = self.roles.lock().expect("lock").clone();
            let now = viewers
                .iter()
                .map(|v| {
                    let (_, _, id) = v.auth.as_ref()?;
                    let role = roles.get(id)?;
                    let mut now = Viewer::clone(v);
                    now.auth_fields = [("role".to_owned(), json!(role))].into_iter().collect();
                    Some(now)
                })
                .collect();
            Box::pin(async move { now })
        }
    }

    fn member(id: &str, role: &str) -> Viewer {
        Viewer {
            auth: Some(("pbc_m".into(), "members".into(), id.into())),
            auth_fields: [("role".to_owned(), json!(role))].into_iter().collect(),
            credential: Some(Credential::new(&format!("token-of-{id}"))),
            ..Viewer::default()
        }
    }

    fn created(collection: &str, id: &str) -> Changes {
        Changes::one(Change::new("pbc_x", collection, id, Action::Create, None))
    }

    /// The record ids `conn` receives up to `wait_for` (or until it stays
    /// quiet for a moment).
    async fn received(conn: &mut super::super::Connection, wait_for: &str) -> Vec<String> {
        let mut ids = Vec::new();
        while let Ok(Some(m)) =
            tokio::time::timeout(std::time::Duration::from_millis(300), conn.messages.recv()).await
        {
            let data: Value = serde_json::from_str(&m.data).expect("json");
            let id = data["record"]["id"].as_str().unwrap_or_default().to_owned();
            let done = id == wait_for;
            ids.push(id);
            if done {
                break;
            }
        }
        ids
    }

    #[tokio::test]
    async fn rules_see_the_auth_record_as_it_is_at_each_batch() {
        let render = Arc::new(Roles::default());
        render.set("alice", Some("admin"));
        let hub = Hub::start(render.clone(), 0);
        let mut alice = hub.connect(None).expect("no cap");
        hub.set_subscriptions(
            &alice.id,
            None,
            member("alice", "admin"),
            vec![Topic::parse("posts/*")],
        )
        .expect("subscribed");

        hub.publish(created("posts", "p1"));
        let as_admin = received(&mut alice, "p1").await;
        render.set("alice", Some("user"));
        hub.publish(created("posts", "p2"));
        hub.publish(created("posts", "marker"));
        let as_user = received(&mut alice, "marker").await;
        render.set("alice", Some("admin"));
        hub.publish(created("posts", "p3"));
        let later = received(&mut alice, "p3").await;

        assert_eq!(as_admin, vec!["p1"]);
        assert_eq!(
            as_user,
            vec!["marker"],
            "p2 went out while alice was a user"
        );
        assert_eq!(later, vec!["p3"]);
    }

    #[tokio::test]
    async fn an_ended_session_serves_the_client_as_a_guest_until_it_authenticates_again() {
        let render = Arc::new(Roles::default());
        render.set("alice", Some("admin"));
        let hub = Hub::start(render.clone(), 0);
        let mut conn = hub.connect(None).expect("no cap");
        let topics = || vec![Topic::parse("posts/*")];
        hub.set_subscriptions(&conn.id, None, member("alice", "admin"), topics())
            .expect("subscribed");

        render.set("alice", None);
        hub.publish(created("posts", "p1"));
        hub.publish(created("posts", "marker"));
        let after_end = received(&mut conn, "marker").await;
        let bob = hub.set_subscriptions(&conn.id, None, member("bob", "admin"), topics());
        render.set("bob", Some("admin"));
        hub.publish(created("posts", "p2"));
        let as_bob = received(&mut conn, "p2").await;

        assert_eq!(
            after_end,
            vec!["marker"],
            "ended: p1 hidden, as from a guest"
        );
        assert_eq!(
            bob,
            Ok(()),
            "no auth is left to conflict with (as in PocketBase)"
        );
        assert_eq!(as_bob, vec!["p2"]);
    }

    #[tokio::test]
    async fn sessions_are_checked_once_per_batch_and_only_when_the_batch_concerns_them() {
        let render = Arc::new(Roles::default());
        render.set("alice", Some("admin"));
        render.set("bob", Some("admin"));
        let hub = Hub::start(render.clone(), 0);
        let mut conns = Vec::new();
        for who in ["alice", "alice", "alice", "bob"] {
            let c = hub.connect(None).expect("no cap");
            hub.set_subscriptions(
                &c.id,
                None,
                member(who, "admin"),
                vec![Topic::parse("posts/*")],
            )
            .expect("subscribed");
            conns.push(c);
        }
        let mut guest = hub.connect(None).expect("no cap");
        hub.set_subscriptions(
            &guest.id,
            None,
            Viewer::default(),
            vec![Topic::parse("tags/*")],
        )
        .expect("subscribed");

        let mut batch = created("posts", "p1");
        batch.extend(created("posts", "p2"));
        hub.publish(batch);
        hub.publish(created("tags", "t1"));
        for c in &mut conns {
            assert_eq!(received(c, "p2").await, vec!["p1", "p2"]);
        }
        let _ = received(&mut guest, "t1").await;

        assert_eq!(
            *render.refreshes.lock().expect("lock"),
            vec![2],
            "one refresh of the two distinct sessions for the posts batch, none for tags"
        );
    }
}
