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
/// The longest a PostgreSQL write waits for its events to come back
/// through this node's listener before it answers anyway.
pub const OUTBOX_WAIT: Duration = Duration::from_secs(1);

/// Who a subscriber is, as its subscription request showed. Before each
/// fan-out batch the hub asks [`Render::refresh`] for the viewer as of now
/// (the session may have ended; the record's fields may have changed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Viewer {
    pub superuser: bool,
    /// (collection id, collection name, record id) of the authenticated record.
    pub auth: Option<(String, String, String)>,
    /// The authenticated record's fields, for `@request.auth.*` in rules.
    pub auth_fields: Map<String, Value>,
    /// What proves the auth, checked again before each batch; `None` for guests.
    pub credential: Option<Credential>,
}

/// The auth token a stream subscribed with. Kept to check, before each
/// fan-out batch, that it still holds under the record's current tokenKey
/// and the collection's current secret (password or email change, key
/// rotation, deletion and expiry all end it). Never printed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credential(Arc<str>);

impl Credential {
    pub fn new(token: &str) -> Self {
        Credential(Arc::from(token))
    }

    pub fn token(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(…)")
    }
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

    /// The authenticated `viewers` as of now, in the same order: the viewer
    /// with the record's current fields while its credential holds, `None`
    /// once it no longer does (the stream then continues as a guest).
    /// Called once per fan-out batch with each distinct session once.
    fn refresh(&self, viewers: Vec<Arc<Viewer>>) -> BoxFuture<'static, Vec<Option<Viewer>>>;
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

/// Why a stream was not opened.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConnectError {
    #[error("too many realtime streams from this address")]
    TooManyStreams,
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
    /// Open streams per address block (see [`StreamBlock`]).
    streams: Mutex<HashMap<StreamBlock, usize>>,
    /// Most open streams per address block; 0 = no limit.
    max_streams_per_ip: usize,
    /// On PostgreSQL: the last outbox row this node's listener published.
    outbox: tokio::sync::watch::Sender<i64>,
    /// Whether a listener publishes the outbox here (else nothing waits for it).
    listened: std::sync::atomic::AtomicBool,
}

/// Where streams are counted for the per-address cap: an IPv4 address, or
/// the /64 an IPv6 address is in (one host usually holds a whole /64, so
/// counting single IPv6 addresses would cap nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum StreamBlock {
    V4([u8; 4]),
    V6([u8; 8]),
    Unknown,
}

impl StreamBlock {
    fn of(ip: Option<IpAddr>) -> Self {
        match ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => StreamBlock::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => {
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                StreamBlock::V6(prefix)
            }
            None => StreamBlock::Unknown,
        }
    }
}

impl Inner {
    pub(super) fn clients(&self) -> MutexGuard<'_, HashMap<String, Arc<Client>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn streams(&self) -> MutexGuard<'_, HashMap<StreamBlock, usize>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends a client's auth whose session no longer holds, unless the client
    /// subscribed again meanwhile (`seen` is the viewer the check was about).
    /// As in PocketBase the stream stays open as a guest and may be
    /// authenticated again by its next subscription request.
    pub(super) fn end_auth(&self, client: &Client, seen: &Arc<Viewer>) {
        let mut state = client.state();
        if state.viewer.as_ref().is_some_and(|v| Arc::ptr_eq(v, seen)) {
            state.viewer = None;
        }
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
    block: StreamBlock,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(inner) = self.hub.upgrade() {
            inner.clients().remove(&self.id);
            let mut streams = inner.streams();
            if let Some(open) = streams.get_mut(&self.block) {
                *open = open.saturating_sub(1);
                if *open == 0 {
                    streams.remove(&self.block);
                }
            }
        }
    }
}

impl Hub {
    /// Creates the registry and spawns the fan-out task on the current
    /// runtime. At most `max_streams_per_ip` streams may be open from one
    /// address (0 = no limit).
    pub fn start(render: Arc<dyn Render>, max_streams_per_ip: usize) -> Hub {
        let (queue, batches) = mpsc::channel(CHANGE_QUEUE_BATCHES);
        let inner = Arc::new(Inner {
            clients: Mutex::new(HashMap::new()),
            queue,
            streams: Mutex::new(HashMap::new()),
            max_streams_per_ip,
            outbox: tokio::sync::watch::Sender::new(0),
            listened: std::sync::atomic::AtomicBool::new(false),
        });
        tokio::spawn(super::fanout::run(batches, Arc::downgrade(&inner), render));
        Hub { inner }
    }

    /// Registers a new client with a fresh id, connected from `ip`, unless
    /// that address already holds the most streams allowed. The stream
    /// counts until its [`Connection`] is dropped.
    pub fn connect(&self, ip: Option<IpAddr>) -> Result<Connection, ConnectError> {
        let block = StreamBlock::of(ip);
        {
            let mut streams = self.inner.streams();
            let open = streams.entry(block).or_insert(0);
            let cap = self.inner.max_streams_per_ip;
            if cap > 0 && *open >= cap {
                return Err(ConnectError::TooManyStreams);
            }
            *open += 1;
        }
        let id = autogen::random_string(autogen::ALPHANUMERIC, CLIENT_ID_LEN);
        let (out, messages) = mpsc::channel(CLIENT_BUFFER_MESSAGES);
        let client = Arc::new(Client {
            id: id.clone(),
            ip,
            out,
            state: Mutex::new(ClientState::default()),
        });
        self.inner.clients().insert(id.clone(), client);
        Ok(Connection {
            id,
            messages,
            hub: Arc::downgrade(&self.inner),
            block,
        })
    }

    /// Replaces a client's subscriptions; the request must come from the
    /// stream's address. The first authenticated request fixes the client's
    /// auth (a guest stream may be authenticated, as in PocketBase); once
    /// fixed, a request with another auth (another record, of this or
    /// another collection, a superuser, or none) is refused and changes
    /// nothing. The same record with a newer token replaces the credential.
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

    /// Says that a listener publishes the outbox rows here from now on.
    pub fn attach_listener(&self) {
        self.inner
            .listened
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Notes that the outbox rows up to `seq` were published (the listener).
    pub fn outbox_published(&self, seq: i64) {
        self.inner.outbox.send_if_modified(|seen| {
            let newer = seq > *seen;
            if newer {
                *seen = seq;
            }
            newer
        });
    }

    /// Waits (at most [`OUTBOX_WAIT`]) until this node's listener has
    /// published outbox row `seq`: a PostgreSQL write answers once its
    /// events are queued here, as SQLite's are, so a subscription made
    /// after the answer never hears of the write.
    pub async fn wait_for_outbox(&self, seq: i64) {
        // Also with no stream open: one may open and subscribe before the
        // listener caught up (the API suite on PostgreSQL saw it happen).
        if !self
            .inner
            .listened
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let mut seen = self.inner.outbox.subscribe();
        let reached = tokio::time::timeout(OUTBOX_WAIT, seen.wait_for(|s| *s >= seq)).await;
        if reached.is_err() {
            tracing::warn!(
                seq,
                "realtime listener is behind; answering before its events"
            );
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

        fn refresh(&self, viewers: Vec<Arc<Viewer>>) -> BoxFuture<'static, Vec<Option<Viewer>>> {
            let now = viewers.iter().map(|v| Some(Viewer::clone(v))).collect();
            Box::pin(async move { now })
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
        let hub = Hub::start(render.clone(), 0);
        let mut conns: Vec<Connection> =
            (0..3).map(|_| hub.connect(None).expect("no cap")).collect();
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
        let hub = Hub::start(Arc::new(Everyone(AtomicUsize::new(0))), 0);
        let mut c = hub.connect(None).expect("no cap");
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
        let hub = Hub::start(Arc::new(Everyone(AtomicUsize::new(0))), 0);
        let c = hub.connect(None).expect("no cap");
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
        let hub = Hub::start(Arc::new(Everyone(AtomicUsize::new(0))), 0);
        let here: IpAddr = [127, 0, 0, 1].into();
        let there: IpAddr = [127, 0, 0, 2].into();
        let c = hub.connect(Some(here)).expect("no cap");

        let other = hub.set_subscriptions(&c.id, Some(there), Viewer::default(), vec![]);
        let same = hub.set_subscriptions(&c.id, Some(here), Viewer::default(), vec![]);

        assert_eq!(other, Err(SetError::OtherAddress));
        assert_eq!(same, Ok(()));
    }

    #[tokio::test]
    async fn a_client_whose_auth_record_is_deleted_continues_as_a_guest() {
        let hub = Hub::start(Arc::new(Everyone(AtomicUsize::new(0))), 0);
        let mut c = hub.connect(None).expect("no cap");
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
        let hub = Hub::start(Arc::new(Everyone(AtomicUsize::new(0))), 0);
        let mut slow = hub.connect(None).expect("no cap");
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
    async fn streams_per_address_are_capped_until_one_closes() {
        let hub = Hub::start(Arc::new(Everyone(AtomicUsize::new(0))), 2);
        let ip = |text: &str| -> Option<IpAddr> { Some(text.parse().expect("ip")) };
        let mut open = Vec::new();
        for (addr, allowed, why) in [
            ("10.0.0.1", true, "first stream"),
            ("10.0.0.1", true, "second stream, at the cap"),
            ("10.0.0.1", false, "third stream over the cap"),
            (
                "::ffff:10.0.0.1",
                false,
                "the same IPv4 address written as IPv6",
            ),
            ("10.0.0.2", true, "another address has its own count"),
            ("2001:db8::1", true, "an IPv6 address"),
            ("2001:db8::2", true, "the same /64, at the cap"),
            ("2001:db8::ffff:3", false, "a third address of the same /64"),
            ("2001:db8:0:1::1", true, "another /64"),
        ] {
            let got = hub.connect(ip(addr));
            assert_eq!(got.is_ok(), allowed, "{addr}: {why}");
            if let Ok(c) = got {
                open.push(c);
            } else {
                assert!(matches!(got, Err(ConnectError::TooManyStreams)), "{why}");
            }
        }

        open.remove(0);
        let after_close = hub.connect(ip("10.0.0.1"));

        assert!(after_close.is_ok(), "a closed stream frees its place");
        let unlimited = Hub::start(Arc::new(Everyone(AtomicUsize::new(0))), 0);
        let many: Vec<_> = (0..50).map(|_| unlimited.connect(ip("10.0.0.9"))).collect();
        assert!(many.iter().all(Result::is_ok), "0 means no limit");
    }

    #[tokio::test]
    async fn dropping_the_connection_unregisters_the_client() {
        let hub = Hub::start(Arc::new(Everyone(AtomicUsize::new(0))), 0);
        let c = hub.connect(None).expect("no cap");
        assert_eq!(hub.client_count(), 1);

        drop(c);

        assert_eq!(hub.client_count(), 0);
    }
}
