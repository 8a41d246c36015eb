//! Realtime: the registry of SSE clients and their subscriptions, and the
//! fan-out of committed record changes to them. Writers hand a batch of
//! [`Change`]s to [`Hub::publish`] after their commit returned; publishing
//! never blocks (a bounded queue to one fan-out task). The fan-out task
//! picks the clients a batch concerns, has [`Render::refresh`] check their
//! sessions once for the batch (a stream's auth lasts only as long as its
//! token would still authenticate a request, and rules see the auth record
//! as it is now), matches each change against every subscription, groups
//! subscribers that would see the record the same way (same auth, same
//! topic kind, same options), asks a [`Render`] once per group whether and
//! how that audience may see the record, and queues the result on each
//! client's bounded buffer; a client whose buffer is full is dropped (the
//! SDK reconnects). [`Hub::connect`] caps the streams open per address.
//!
//! This module knows nothing about HTTP, SQL, tokens or record
//! serialisation: rule checks, session checks and serialisation live behind
//! [`Render`], implemented where the records, `auth` and the `fields`
//! selection are reachable (the API layer).

mod fanout;
mod hub;
pub mod outbox;
mod topic;

pub use fanout::RENDER_CONCURRENCY;
pub use hub::{
    Audience, CLIENT_BUFFER_MESSAGES, Client, ConnectError, Connection, Credential, Hub,
    IDLE_TIMEOUT, MAX_CONNECTION_TIME, Message, Render, SetError, Viewer,
};
pub use topic::{MAX_TOPIC_CHARS, MAX_TOPICS, Options, Topic};

use serde_json::{Map, Value};

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    /// The `action` value of the event.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// One committed change to one record (on PostgreSQL also an outbox
/// row's JSON, see [`outbox`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub collection_id: String,
    pub collection_name: String,
    pub record_id: String,
    pub action: Action,
    /// The row as this write left it (as it was just before, for a delete):
    /// rules are checked against it and it is what subscribers are sent.
    /// `None` when the writer did not read it; it is then read at fan-out.
    pub row: Option<Map<String, Value>>,
}

impl Change {
    pub fn new(
        collection_id: &str,
        collection_name: &str,
        record_id: &str,
        action: Action,
        row: Option<Map<String, Value>>,
    ) -> Self {
        Change {
            collection_id: collection_id.to_owned(),
            collection_name: collection_name.to_owned(),
            record_id: record_id.to_owned(),
            action,
            row,
        }
    }
}

/// The changes one write made, collected inside its transaction and
/// published only once the transaction committed (a rollback drops them).
#[derive(Debug, Default)]
pub struct Changes(Vec<Change>);

impl Changes {
    /// A single change.
    pub fn one(change: Change) -> Self {
        Changes(vec![change])
    }

    pub fn push(&mut self, change: Change) {
        self.0.push(change);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Records an update of a row this batch may already hold: a record
    /// created or updated earlier in the same transaction keeps one event
    /// (its action) carrying the latest row, so subscribers hear of one
    /// write once, in its final state.
    pub fn push_update(&mut self, change: Change) {
        let earlier = self.0.iter_mut().find(|c| {
            c.collection_id == change.collection_id
                && c.record_id == change.record_id
                && matches!(c.action, Action::Create | Action::Update)
        });
        match earlier {
            Some(c) => c.row = change.row,
            None => self.0.push(change),
        }
    }

    /// Appends another write's changes (batches).
    pub fn extend(&mut self, other: Changes) {
        self.0.extend(other.0);
    }

    pub fn into_vec(self) -> Vec<Change> {
        self.0
    }

    pub fn as_slice(&self) -> &[Change] {
        &self.0
    }
}
