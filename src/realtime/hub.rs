//! The client registry: clients, their auth and topics, and the publish queue.

use super::topic::{Options, Topic};
use super::{Change, Changes};
use crate::schema::autogen;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages a client may have waiting before it counts as too slow and is dropped.
pub const CLIENT_BUFFER_MESSAGES: usize = 256;
/// Published batches waiting for the fan-out task before new ones are dropped.
pub const CHANGE_QUEUE_BATCHES: usize = 4096;
/// A connection that received nothing for this long is closed (the SDK reconnects).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// A connection is closed after this long whatever it received.
pub const MAX_CONNECTION_TIME: Duration = Duration::from_secs(30 * 60);
const CLIENT_ID_LEN: usize = 40;

/// Who a subscriber is, fixed by its subscription request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Viewer {
    pub superuser: bool,
    /// (collection id, collection name, record id) of the authenticated record.
    pub auth: Option<(String, String, String)>,
    /// The authenticated record's fields, for `@request.auth.*` in rules.
    pub auth_fields: Map<String, Value>,
}

impl Viewer {
    /// (collection id, record id) of the authenticated record; `None` for guests.
    pub(super) fn identity(&self) -> Option<(&str, &str)> {
        self.auth
            .as_ref()
            .map(|(cid, _, id)| (cid.as_str(), id.as_str()))
    }
}

/// One event for one client: its name (the subscription string) and data.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: Arc<str>,
    pub data: Arc<str>,
}

/// Subscribers that see a record the same way: one render serves them all.
#[derive(Debug, Clone)]
pub struct Audience {
    pub viewer: Arc<Viewer>,
    /// A single-record topic (view rule) rather than a collection topic (list rule).
    pub by_id: bool,
    pub options: Arc<Options>,
}

/// Decides whether an audience may see a changed record and serialises it for them.
pub trait Render: Send + Sync + 'static {
    /// The record as `audience` may see it, or `None` when a rule hides it
    /// (or it can no longer be read). Failures count as hidden.
    fn render(&self, change: Arc<Change>, audience: Audience) -> BoxFuture<'static, Option<Value>>;
}

/// Why a subscription request was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SetError {
    #[error("unknown client id")]
    UnknownClient,
    #[error("the request comes from another address than the client's stream")]
    OtherAddress,
    #[error("the authorization differs from the client's previous one")]
    AuthMismatch,
}

/// A connected SSE client.
pub struct Client {
    pub id: String,
    /// The stream's peer address: subscriptions must come from the same one.
    ip: Option<IpAddr>,
    pub(super) out: mpsc::Sender<Message>,
    state: Mutex<ClientState>,
}

#[derive(Default)]
pub(super) struct ClientState {
    pub(super) viewer: Option<Arc<Viewer>>,
    pub(super) topics: Arc<[Topic]>,
}

impl Client {
    pub(super) fn state(&self) -> MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(super) struct Inner {
    clients: Mutex<HashMap<String, Arc<Client>>>,
    queue: mpsc::Sender<Vec<Change>>,
}

impl Inner {
    pub(super) fn clients(&self) -> MutexGuard<'_, HashMap<String, Arc<Client>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Clients authenticated as a record that was just deleted continue as
    /// guests (their rules no longer see them as that record).
    pub(super) fn forget_auth(&self, collection_id: &str, record_id: &str) {
        for client in self.clients().values() {
            let mut state = client.state();
            if state
                .viewer
                .as_ref()
                .is_some_and(|v| v.identity() == Some((collection_id, record_id)))
            {
                state.viewer = Some(Arc::new(Viewer::default()));
            }
        }
    }
}

/// Shared handle to the registry and the fan-out queue; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

/// A registered client's receiving end; dropping it unregisters the client.
pub struct Connection {
    pub id: String,
    pub messages: mpsc::Receiver<Message>,
    hub: Weak<Inner>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(inner) = self.hub.upgrade() {
            inner.clients().remove(&self.id);
        }
    }
}

impl Hub {
    /// Creates the registry and spawns the fan-out task on the current runtime.
    pub fn start(render: Arc<dyn Render>) -> Hub {
        let (queue, batches) = mpsc::channel(CHANGE_QUEUE_BATCHES);
        let inner = Arc::new(Inner {
            clients: Mutex::new(HashMap::new()),
            queue,
        });
        tokio::spawn(super::fanout::run(batches, Arc::downgrade(&inner), render));
        Hub { inner }
    }

    /// Registers a new client with a fresh id, connected from `ip`.
    pub fn connect(&self, ip: Option<IpAddr>) -> Connection {
        let id = autogen::random_string(autogen::ALPHANUMERIC, CLIENT_ID_LEN);
        let (out, messages) = mpsc::channel(CLIENT_BUFFER_MESSAGES);
        let client = Arc::new(Client {
            id: id.clone(),
            ip,
            out,
            state: Mutex::new(ClientState::default()),
        });
        self.inner.clients().insert(id.clone(), client);
        Connection {
            id,
            messages,
            hub: Arc::downgrade(&self.inner),
        }
    }

    /// Replaces a client's subscriptions; the request must come from the
    /// stream's address. The first authenticated request fixes the client's
    /// auth; a later one with another auth is refused.
    pub fn set_subscriptions(
        &self,
        client_id: &str,
        ip: Option<IpAddr>,
        viewer: Viewer,
        topics: Vec<Topic>,
    ) -> Result<(), SetError> {
        let client = self
            .inner
            .clients()
            .get(client_id)
            .cloned()
            .ok_or(SetError::UnknownClient)?;
        if client.ip != ip {
            return Err(SetError::OtherAddress);
        }
        let mut state = client.state();
        if let Some(old) = &state.viewer
            && old.identity().is_some()
            && old.identity() != viewer.identity()
        {
            return Err(SetError::AuthMismatch);
        }
        // A topic listed twice is one subscription (one event per change).
        let mut seen = std::collections::HashSet::new();
        let topics: Vec<Topic> = topics
            .into_iter()
            .filter(|t| seen.insert(t.raw.clone()))
            .collect();
        state.viewer = Some(Arc::new(viewer));
        state.topics = topics.into();
        Ok(())
    }

    /// Queues committed changes for fan-out. Never waits: with no clients
    /// nothing is queued, and when the queue is full the batch is dropped
    /// (and logged) rather than slowing the writer down.
    pub fn publish(&self, changes: Changes) {
        if changes.is_empty() || self.inner.clients().is_empty() {
            return;
        }
        let count = changes.len();
        if let Err(e) = self.inner.queue.try_send(changes.into_vec()) {
            tracing::warn!(changes = count, error = %e, "realtime queue full; events dropped");
        }
    }

    /// Sends `data` as event `topic` to one client that is subscribed to
    /// exactly that topic and connected from `ip` (the OAuth2 redirect
    /// handing the code to the SDK's `@oauth2` subscription). Returns
    /// whether it was queued.
    pub fn send_to(&self, client_id: &str, ip: Option<IpAddr>, topic: &str, data: String) -> bool {
        let Some(client) = self.inner.clients().get(client_id).cloned() else {
            return false;
        };
        if client.ip != ip {
            return false;
        }
        let Some(raw) = client
            .state()
            .topics
            .iter()
            .find(|t| &*t.raw == topic)
            .map(|t| t.raw.clone())
        else {
            return false;
        };
        client
            .out
            .try_send(Message {
                topic: raw,
                data: data.into(),
            })
            .is_ok()
    }

    /// Forgets every client, which ends their streams (graceful shutdown:
    /// open SSE responses would otherwise hold the server up).
    pub fn disconnect_all(&self) {
        self.inner.clients().clear();
    }

    /// Whether any client is connected (writers may skip work done only for events).
    pub fn has_clients(&self) -> bool {
        !self.inner.clients().is_empty()
    }

    /// Connected clients (tests and diagnostics).
    pub fn client_count(&self) -> usize {
        self.inner.clients().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::Action;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Shows every record to everyone and counts renders.
    struct Everyone(AtomicUsize);

    impl Render for Everyone {
        fn render(&self, change: Arc<Change>, _: Audience) -> BoxFuture<'static, Option<Value>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { Some(serde_json::json!({"id": change.record_id})) })
        }
    }

    fn created(id: &str) -> Changes {
        let mut changes = Changes::default();
        changes.push(Change {
            collection_id: "pbc_1".into(),
            collection_name: "posts".into(),
            record_id: id.into(),
            action: Action::Create,
            row: None,
        });
        changes
    }

    #[tokio::test]
    async fn subscribers_sharing_auth_and_options_are_rendered_once() {
        let render = Arc::new(Everyone(AtomicUsize::new(0)));
        let hub = Hub::start(render.clone());
        let mut conns: Vec<Connection> = (0..3).map(|_| hub.connect(None)).collect();
        for c in &conns {
            hub.set_subscriptions(
                &c.id,
                None,
                Viewer::default(),
                vec![Topic::parse("posts/*")],
            )
            .expect("subscribed");
        }

        hub.publish(created("r1"));

        for c in &mut conns {
            let m = c.messages.recv().await.expect("event");
            assert_eq!(&*m.topic, "posts/*");
            assert_eq!(&*m.data, r#"{"record":{"id":"r1"},"action":"create"}"#);
        }
        assert_eq!(
            render.0.load(Ordering::SeqCst),
            1,
            "one render for one audience"
        );
    }

    #[tokio::test]
    async fn a_topic_listed_twice_yields_one_event() {
        let hub = Hub::start(Arc::new(Everyone(AtomicUsize::new(0))));
        let mut c = hub.connect(None);
        let twice = vec![Topic::parse("posts/*"), Topic::parse("posts/*")];
        hub.set_subscriptions(&c.id, None, Viewer::default(), twice)
            .expect("subscribed");

        hub.publish(created("r1"));
        hub.publish(created("r2"));

        let first = c.messages.recv().await.expect("event");
        let second = c.messages.recv().await.expect("event");
        assert!(
            first.data.contains("r1") && second.data.contains("r2"),
            "no duplicate of r1"
        );
    }

    #[tokio::test]
    async fn a_different_auth_on_the_same_client_is_refused() {
        let hub = Hub::start(Arc::new(Everyone(AtomicUsize::new(0))));
        let c = hub.connect(None);
        let user = |id: &str| Viewer {
            auth: Some(("u".into(), "users".into(), id.into())),
            ..Viewer::default()
        };

        let guest_first = hub.set_subscriptions(&c.id, None, Viewer::default(), vec![]);
        let alice = hub.set_subscriptions(&c.id, None, user("alice"), vec![]);
        let bob = hub.set_subscriptions(&c.id, None, user("bob"), vec![]);
        let guest_later = hub.set_subscriptions(&c.id, None, Viewer::default(), vec![]);
        let unknown = hub.set_subscriptions("nope", None, Viewer::default(), vec![]);

        assert_eq!(guest_first, Ok(()));
        assert_eq!(alice, Ok(()), "guest to user is allowed");
        assert_eq!(bob, Err(SetError::AuthMismatch));
        assert_eq!(guest_later, Err(SetError::AuthMismatch));
        assert_eq!(unknown, Err(SetError::UnknownClient));
    }

    #[tokio::test]
    async fn subscriptions_from_another_address_than_the_stream_are_refused() {
        let hub = Hub::start(Arc::new(Everyone(AtomicUsize::new(0))));
        let here: IpAddr = [127, 0, 0, 1].into();
        let there: IpAddr = [127, 0, 0, 2].into();
        let c = hub.connect(Some(here));

        let other = hub.set_subscriptions(&c.id, Some(there), Viewer::default(), vec![]);
        let same = hub.set_subscriptions(&c.id, Some(here), Viewer::default(), vec![]);

        assert_eq!(other, Err(SetError::OtherAddress));
        assert_eq!(same, Ok(()));
    }

    #[tokio::test]
    async fn a_client_whose_auth_record_is_deleted_continues_as_a_guest() {
        let hub = Hub::start(Arc::new(Everyone(AtomicUsize::new(0))));
        let mut c = hub.connect(None);
        let alice = Viewer {
            auth: Some(("pbc_1".into(), "posts".into(), "r1".into())),
            ..Viewer::default()
        };
        hub.set_subscriptions(&c.id, None, alice, vec![Topic::parse("posts/*")])
            .expect("subscribed");
        let mut gone = Changes::default();
        gone.push(Change::new("pbc_1", "posts", "r1", Action::Delete, None));

        hub.publish(gone);
        c.messages.recv().await.expect("the delete event itself");
        let bob = Viewer {
            auth: Some(("pbc_1".into(), "posts".into(), "r2".into())),
            ..Viewer::default()
        };

        assert_eq!(
            hub.set_subscriptions(&c.id, None, bob, vec![]),
            Ok(()),
            "no auth is left to conflict with"
        );
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_is_dropped_when_its_buffer_fills() {
        let hub = Hub::start(Arc::new(Everyone(AtomicUsize::new(0))));
        let mut slow = hub.connect(None);
        hub.set_subscriptions(
            &slow.id,
            None,
            Viewer::default(),
            vec![Topic::parse("posts/*")],
        )
        .expect("subscribed");

        for i in 0..=CLIENT_BUFFER_MESSAGES {
            hub.publish(created(&format!("r{i}")));
        }
        // Let the fan-out run while nobody reads.
        for _ in 0..100 {
            if hub.client_count() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut received = 0;
        while let Some(_m) = slow.messages.recv().await {
            received += 1;
        }

        assert_eq!(
            received, CLIENT_BUFFER_MESSAGES,
            "the buffer drains, then the stream ends"
        );
        assert_eq!(hub.client_count(), 0, "the slow client was unregistered");
    }

    #[tokio::test]
    async fn dropping_the_connection_unregisters_the_client() {
        let hub = Hub::start(Arc::new(Everyone(AtomicUsize::new(0))));
        let c = hub.connect(None);
        assert_eq!(hub.client_count(), 1);

        drop(c);

        assert_eq!(hub.client_count(), 0);
    }
}
