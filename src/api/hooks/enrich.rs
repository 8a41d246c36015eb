//! `onRecordEnrich`: the records of an answer (and their `expand`ed
//! records) handed to the enrich handlers as the caller sees them, before
//! they are written out.

use super::{auth_record, collection_ref, fault, request_event};
use crate::api::error::ApiError;
use crate::api::extract::AppState;
use crate::auth::Principal;
use crate::hooks::{Hooks, Response};
use crate::schema::CompiledCollection;
use actix_web::HttpRequest;
use serde_json::{Value, json};
use std::sync::Arc;

/// `onRecordEnrich` over the records of a response (as the caller sees
/// them); unchanged when no handler applies.
pub(in crate::api) async fn enrich(
    state: &AppState,
    req: &HttpRequest,
    who: &Principal,
    collection: &CompiledCollection,
    records: Vec<Value>,
) -> Result<Vec<Value>, ApiError> {
    match Enrich::prepare(state, req, who, collection) {
        Some(enrich) => enrich.records(records).await,
        None => Ok(records),
    }
}

/// `onRecordEnrich` for one response, prepared while the request is at
/// hand: the event is plain data, so it can travel into a write's
/// `e.next()` (PocketBase enriches a create/update answer there).
pub(in crate::api) struct Enrich {
    hooks: Hooks,
    event: Value,
    /// The collections of `expand`ed records, whose handlers run too.
    snapshot: Arc<crate::schema::Snapshot>,
    /// Whether a handler applies to the answer's own collection.
    top: bool,
}

/// Levels of `expand` whose records are enriched (PocketBase expands at most 6).
const MAX_EXPAND_ENRICH_DEPTH: usize = 6;

/// The hook enriching records.
const ENRICH: &str = "onRecordEnrich";

impl Enrich {
    /// `None` when no `onRecordEnrich` handler applies to `collection`
    /// (then nothing is built and nothing runs).
    pub(in crate::api) fn prepare(
        state: &AppState,
        req: &HttpRequest,
        who: &Principal,
        collection: &CompiledCollection,
    ) -> Option<Self> {
        let hooks = state.hooks.as_ref()?;
        if !hooks.has(ENRICH) {
            return None;
        }
        let mut event = request_event(req, who, state);
        event["collection"] = collection_ref(collection);
        Some(Self {
            hooks: hooks.clone(),
            event,
            snapshot: state.registry.snapshot(),
            top: hooks.wants(ENRICH, &collection.id, collection.name.as_str()),
        })
    }

    /// The records as the handlers shape them; a throwing handler's error.
    pub(in crate::api) async fn records(
        self,
        mut records: Vec<Value>,
    ) -> Result<Vec<Value>, ApiError> {
        for record in &mut records {
            self.expanded(record, 0).await;
        }
        if records.is_empty() || !self.top {
            return Ok(records);
        }
        let event = self.event.clone();
        self.run(event, records).await
    }

    /// Runs the handlers over `records` of the event's collection.
    async fn run(&self, mut event: Value, records: Vec<Value>) -> Result<Vec<Value>, ApiError> {
        event["records"] = Value::Array(records);
        let outcome = self.hooks.run_enrich(&event).await.map_err(fault)?;
        match (outcome.error, outcome.response) {
            (Some(e), _) => Err(ApiError::from(e)),
            (
                None,
                Some(Response::Json {
                    body: Value::Array(shown),
                    ..
                }),
            ) => Ok(shown),
            _ => Err(ApiError::internal("onRecordEnrich answered no records")),
        }
    }

    /// Enriches the records under `record`'s `expand`, deepest first, each
    /// as its own collection's handlers shape it (PocketBase runs them in
    /// its expand fetch). A relation whose enrichment fails is dropped from
    /// `expand`, as PocketBase drops (and logs) a failed expansion.
    fn expanded<'a>(
        &'a self,
        record: &'a mut Value,
        depth: usize,
    ) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(Value::Object(expand)) = record.get_mut("expand") else {
                return;
            };
            if depth >= MAX_EXPAND_ENRICH_DEPTH {
                return;
            }
            let mut failed = Vec::new();
            for (name, value) in expand.iter_mut() {
                let nested: Vec<&mut Value> = match value {
                    Value::Array(items) => items.iter_mut().collect(),
                    one @ Value::Object(_) => vec![one],
                    _ => Vec::new(),
                };
                for item in nested {
                    self.expanded(item, depth + 1).await;
                    if self.enrich_nested(item).await.is_err() {
                        failed.push(name.clone());
                    }
                }
            }
            for name in failed {
                expand.remove(&name);
            }
        })
    }

    /// One expanded record, when a handler applies to its collection.
    async fn enrich_nested(&self, item: &mut Value) -> Result<(), ApiError> {
        let collection = item["collectionId"]
            .as_str()
            .and_then(|id| self.snapshot.get(id));
        let Some(collection) = collection else {
            return Ok(());
        };
        if !self
            .hooks
            .wants(ENRICH, &collection.id, collection.name.as_str())
        {
            return Ok(());
        }
        let mut event = self.event.clone();
        event["collection"] = collection_ref(&collection);
        let shown = self.run(event, vec![item.take()]).await;
        match shown.map(|mut s| s.pop()) {
            Ok(Some(shown)) => {
                *item = shown;
                Ok(())
            }
            Ok(None) => Err(ApiError::internal("onRecordEnrich lost the record")),
            Err(e) => {
                tracing::debug!(target: "ferrobase::hooks", error = %e.message(), "expanded record enrich failed; relation dropped");
                Err(e)
            }
        }
    }

    /// One record as the handlers shape it.
    pub(in crate::api) async fn one(self, record: Value) -> Result<Value, ApiError> {
        self.records(vec![record])
            .await?
            .pop()
            .ok_or_else(|| ApiError::internal("onRecordEnrich lost the record"))
    }
}

impl Enrich {
    /// The same, with `query` as the request's (a batch member's own URL query).
    pub(in crate::api) fn with_query(
        mut self,
        query: &std::collections::HashMap<String, String>,
    ) -> Self {
        self.event["query"] = json!(query);
        self
    }

    /// For a realtime subscriber: `e.auth` is the subscriber, the request
    /// is the subscription's options (`None` when no handler applies).
    pub(in crate::api) fn for_subscriber(
        hooks: &Hooks,
        collection: &CompiledCollection,
        who: &Principal,
        snapshot: Arc<crate::schema::Snapshot>,
        options: &crate::realtime::Options,
    ) -> Option<Self> {
        if !hooks.has(ENRICH) {
            return None;
        }
        let event = json!({
            "method": "GET",
            "path": "/api/realtime",
            "rawQuery": "",
            "query": options.query,
            "headers": options.headers,
            "params": {},
            "remoteIp": "",
            "auth": auth_record(who),
            "collection": collection_ref(collection),
        });
        Some(Self {
            hooks: hooks.clone(),
            event,
            snapshot,
            top: hooks.wants(ENRICH, &collection.id, collection.name.as_str()),
        })
    }
}

/// [`Enrich::one`] when prepared, else the record as it is.
pub(in crate::api) async fn enrich_one(
    enrich: Option<Enrich>,
    record: Value,
) -> Result<Value, ApiError> {
    match enrich {
        Some(enrich) => enrich.one(record).await,
        None => Ok(record),
    }
}
