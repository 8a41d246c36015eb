//! `/api/realtime`: the SSE stream (GET) and the subscription set (POST),
//! plus [`RecordRenderer`], the glue that lets the realtime hub check a
//! subscriber's rules and serialise a record as they would see it
//! (`expand` and `fields` from the topic's options included), and check a
//! stream's token again before each fan-out batch.

use super::error::{ApiError, GENERIC_MESSAGE};
use super::extract::{AppState, caller, read_object};
use super::fields::FieldSelection;
use super::respond;
use crate::auth;
use crate::auth::Principal;
use crate::db::Db;
use crate::realtime::{
    Audience, Change, ConnectError, Credential, MAX_TOPIC_CHARS, MAX_TOPICS, Render, SetError,
    Topic, Viewer,
};
use crate::records::{self, Caller, ExpandTree, RecordError};
use crate::schema::Registry;
use crate::validation::{FieldError, ValidationErrors};
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::time::Instant;

/// Largest subscription request body: 1000 topics of 2500 characters, plus JSON.
pub const MAX_SUBSCRIBE_BODY_BYTES: usize = (MAX_TOPICS * (MAX_TOPIC_CHARS + 8)) + 4096;

/// One SSE message; every message carries the client id as its `id:` line.
fn frame(client_id: &str, event: &str, data: &str) -> Bytes {
    Bytes::from(format!("id:{client_id}\nevent:{event}\ndata:{data}\n\n"))
}

struct Stream {
    connection: crate::realtime::Connection,
    first: Option<Bytes>,
    deadline: Instant,
}

/// `GET /api/realtime`: registers a client and streams its events. Auth on
/// this request is ignored (it comes with the subscription request).
pub async fn connect(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let connection = state.realtime.connect(super::client_ip::of(&req, &state))?;
    let id = connection.id.clone();
    let first = frame(&id, "PB_CONNECT", &json!({"clientId": id}).to_string());
    let start = Stream {
        connection,
        first: Some(first),
        deadline: Instant::now() + crate::realtime::MAX_CONNECTION_TIME,
    };
    let body = futures_util::stream::unfold(start, |mut st| async move {
        if let Some(first) = st.first.take() {
            return Some((Ok::<_, Infallible>(first), st));
        }
        tokio::select! {
            message = st.connection.messages.recv() => {
                let message = message?;
                let bytes = frame(&st.connection.id, &message.topic, &message.data);
                Some((Ok(bytes), st))
            }
            () = tokio::time::sleep(crate::realtime::IDLE_TIMEOUT) => None,
            () = tokio::time::sleep_until(st.deadline) => None,
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// `POST /api/realtime`: replaces the client's subscriptions; the request's
/// auth becomes the client's auth for rule checks, for as long as its token
/// holds (checked again before each fan-out batch).
pub async fn subscribe(
    req: HttpRequest,
    who: Principal,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = read_object(&req, body, MAX_SUBSCRIBE_BODY_BYTES).await?;
    let client_id = match input.get("clientId") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::bad_request(GENERIC_MESSAGE)),
    };
    let raw_topics: Vec<String> = match input.get("subscriptions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::bad_request(GENERIC_MESSAGE))?,
        Some(_) => return Err(ApiError::bad_request(GENERIC_MESSAGE)),
    };
    let topics: Vec<Topic> = raw_topics.iter().map(|t| Topic::parse(t)).collect();
    check_input(&client_id, &raw_topics, &topics)?;
    // The token that resolved `who`: kept so the stream's auth ends with it.
    let credential = (who != Principal::Anonymous)
        .then(|| req.headers().get(header::AUTHORIZATION))
        .flatten()
        .and_then(|h| h.to_str().ok())
        .map(|h| Credential::new(auth::bare_token(h)));
    let who = caller(&who, &req);
    let viewer = Viewer {
        superuser: who.superuser,
        auth: who.auth,
        auth_fields: who.auth_fields,
        credential,
    };
    let ip = super::client_ip::of(&req, &state);
    state
        .realtime
        .set_subscriptions(&client_id, ip, viewer, topics)?;
    Ok(respond::no_content())
}

/// Refuses a missing client id, too many or too long topics, and topics
/// whose options do not parse or carry a `fields` the records API would
/// refuse. PocketBase ignores bad options and then sends whole records;
/// we answer 400 rather than silently drop what the client asked for.
fn check_input(client_id: &str, topics: &[String], parsed: &[Topic]) -> Result<(), ApiError> {
    let mut errors = ValidationErrors::new();
    if client_id.is_empty() {
        errors.add("clientId", FieldError::required());
    }
    let too_long = |max: usize| {
        FieldError::new(
            "validation_length_too_long",
            format!("The length must be no more than {max}."),
        )
        .with_params(json!({"max": max, "min": 0}))
    };
    if topics.len() > MAX_TOPICS {
        errors.add("subscriptions", too_long(MAX_TOPICS));
    } else {
        let mut each = ValidationErrors::new();
        for (i, (topic, parsed)) in topics.iter().zip(parsed).enumerate() {
            if topic.chars().count() > MAX_TOPIC_CHARS {
                each.add(i.to_string(), too_long(MAX_TOPIC_CHARS));
            } else if !options_acceptable(parsed) {
                each.add(
                    i.to_string(),
                    FieldError::new("validation_invalid_value", "Invalid subscription options."),
                );
            }
        }
        errors.nest("subscriptions", each);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(GENERIC_MESSAGE, &errors))
    }
}

/// Whether a topic's options parse and its `fields` would pass the records API.
fn options_acceptable(topic: &Topic) -> bool {
    topic.options_well_formed
        && topic
            .options
            .query
            .get("fields")
            .is_none_or(|raw| FieldSelection::parse_strict(raw).is_ok())
}

impl From<ConnectError> for ApiError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::TooManyStreams => ApiError::too_many_requests(),
        }
    }
}

impl From<SetError> for ApiError {
    fn from(e: SetError) -> Self {
        match e {
            SetError::UnknownClient => ApiError::not_found("Missing or invalid client id."),
            SetError::OtherAddress => ApiError::bad_request("Invalid realtime client."),
            SetError::AuthMismatch => ApiError::forbidden(
                "The current and the previous request authorization don't match.",
            ),
        }
    }
}

/// Checks rules and serialises records for the realtime hub, on the reader pool.
pub struct RecordRenderer {
    pub db: Db,
    pub registry: Registry,
    /// The JS hooks once started (after the hub): `onRecordEnrich` runs per
    /// audience only for a collection a handler applies to.
    pub hooks: Arc<std::sync::OnceLock<crate::hooks::Hooks>>,
}

impl Render for RecordRenderer {
    fn render(&self, change: Arc<Change>, audience: Audience) -> BoxFuture<'static, Option<Value>> {
        let db = self.db.clone();
        let registry = self.registry.clone();
        let hooks = self.hooks.get().cloned();
        Box::pin(async move {
            match render(&db, &registry, hooks, change, audience).await {
                Ok(record) => record,
                Err(e) => {
                    // A subscriber's bad filter or expand hides the event from them only.
                    tracing::debug!(error = %e, "realtime event not rendered");
                    None
                }
            }
        })
    }

    fn refresh(&self, viewers: Vec<Arc<Viewer>>) -> BoxFuture<'static, Vec<Option<Viewer>>> {
        let db = self.db.clone();
        let registry = self.registry.clone();
        Box::pin(async move {
            // A viewer without a credential cannot be checked: it ends.
            let tokens: Vec<String> = viewers
                .iter()
                .map(|v| {
                    v.credential
                        .as_ref()
                        .map(|c| c.token().to_owned())
                        .unwrap_or_default()
                })
                .collect();
            auth::recheck_tokens(&db, &registry, &tokens)
                .await
                .into_iter()
                .zip(viewers)
                .map(|(now, was)| viewer_now(now, &was))
                .collect()
        })
    }
}

/// The viewer `was` as principal `now` shows it, or `None` when the session ended.
fn viewer_now(now: Principal, was: &Viewer) -> Option<Viewer> {
    let (superuser, auth, auth_fields) = match now {
        Principal::Anonymous => return None,
        Principal::User {
            collection_id,
            collection_name,
            id,
            fields,
        } => (false, (collection_id, collection_name, id), fields),
        Principal::Superuser { id } => (
            true,
            (
                crate::schema::SUPERUSERS_ID.to_owned(),
                crate::schema::SUPERUSERS_NAME.to_owned(),
                id,
            ),
            Default::default(),
        ),
    };
    Some(Viewer {
        superuser,
        auth: Some(auth),
        auth_fields,
        credential: was.credential.clone(),
    })
}

async fn render(
    db: &Db,
    registry: &Registry,
    hooks: Option<crate::hooks::Hooks>,
    change: Arc<Change>,
    audience: Audience,
) -> Result<Option<Value>, RecordError> {
    let snapshot = registry.snapshot();
    let options = &audience.options;
    let viewer = &audience.viewer;
    let caller = Caller {
        superuser: viewer.superuser,
        auth: viewer.auth.clone(),
        auth_fields: viewer.auth_fields.clone(),
        method: "GET".into(),
        context: "realtime",
        query: options.query.clone(),
        headers: options.headers.clone(),
        body: None,
    };
    let collection_id = change.collection_id.clone();
    let Some(record) = records::visible(
        db,
        snapshot.clone(),
        change,
        caller.clone(),
        audience.by_id,
        options.query.get("filter").cloned(),
    )
    .await?
    else {
        return Ok(None);
    };
    let record = match (
        options
            .query
            .get("expand")
            .and_then(|raw| ExpandTree::parse(raw)),
        snapshot.get(&collection_id),
    ) {
        (Some(tree), Some(collection)) => {
            records::expand(db, snapshot.clone(), collection, caller, vec![record], tree)
                .await?
                .pop()
        }
        _ => Some(record),
    };
    let record = match (record, hooks, snapshot.get(&collection_id)) {
        (Some(record), Some(hooks), Some(collection)) => {
            enriched(
                &hooks,
                &collection,
                snapshot.clone(),
                viewer,
                options,
                record,
            )
            .await
        }
        (record, _, _) => record,
    };
    let selection = options
        .query
        .get("fields")
        .and_then(|raw| FieldSelection::parse(raw));
    Ok(record.map(|r| match &selection {
        Some(selection) => selection.apply(r, false),
        None => r,
    }))
}

/// `onRecordEnrich` for one subscriber (`e.auth` = the subscriber). A
/// failing or timed-out handler hides the event from that audience only,
/// as PocketBase skips the message and logs.
async fn enriched(
    hooks: &crate::hooks::Hooks,
    collection: &crate::schema::CompiledCollection,
    snapshot: Arc<crate::schema::Snapshot>,
    viewer: &Viewer,
    options: &crate::realtime::Options,
    record: Value,
) -> Option<Value> {
    let who = viewer_principal(viewer);
    let enrich = super::hooks::Enrich::for_subscriber(hooks, collection, &who, snapshot, options);
    let Some(enrich) = enrich else {
        return Some(record);
    };
    match enrich.one(record).await {
        Ok(record) => Some(record),
        Err(e) => {
            tracing::debug!(target: "ferrobase::hooks", error = %e.message(), "realtime record enrich failed; event skipped");
            None
        }
    }
}

/// The subscriber as a principal (for `e.auth`).
fn viewer_principal(viewer: &Viewer) -> Principal {
    match (&viewer.auth, viewer.superuser) {
        (Some((_, _, id)), true) => Principal::Superuser { id: id.clone() },
        (Some((collection_id, collection_name, id)), false) => Principal::User {
            collection_id: collection_id.clone(),
            collection_name: collection_name.clone(),
            id: id.clone(),
            fields: viewer.auth_fields.clone(),
        },
        (None, _) => Principal::Anonymous,
    }
}
