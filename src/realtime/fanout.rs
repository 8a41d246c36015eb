//! The fan-out task: takes published batches in order, matches each change
//! against every client's topics, groups the subscribers that see a record
//! alike and renders once per group (a few groups at a time), then queues
//! the event on each client's bounded buffer, dropping clients that are full.

use super::hub::{Audience, Client, Inner, Message, Render, Viewer};
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
        let subscribers: Vec<Subscriber> = hub
            .clients()
            .values()
            .filter_map(|client| {
                let state = client.state();
                (!state.topics.is_empty()).then(|| Subscriber {
                    client: client.clone(),
                    viewer: state.viewer.clone().unwrap_or_default(),
                    topics: state.topics.clone(),
                })
            })
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        for change in batch {
            let change = Arc::new(change);
            deliver(&hub, &subscribers, change.clone(), &render).await;
            if change.action == Action::Delete {
                hub.forget_auth(&change.collection_id, &change.record_id);
            }
        }
    }
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
