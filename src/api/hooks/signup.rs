//! `onRecordCreateRequest` around an OAuth2 sign-up, as PocketBase runs its
//! create request there (inside the sign-up's transaction): `e.next()`
//! creates the record inside the sign-up's write session; the provider's
//! verification and the `_externalAuths` link follow once the hook
//! returned. A throw, before or after `e.next()`, rolls all of it back and
//! answers the hook's error; a hook that answers itself (or never calls
//! `e.next()`) creates nothing and the login fails with PocketBase's 400.

use super::{ApiError, collection_ref, fault, request_event};
use crate::accounts::oauth2::sign_up_in;
use crate::accounts::oauth2_hooked::FlowSession;
use crate::api::extract::AppState;
use crate::auth::Principal;
use crate::auth::oauth2::OAuth2User;
use crate::hooks::{Action, HookError, Outcome, Response};
use crate::records::{self, Caller, Upload, WriteHooks};
use crate::schema::CompiledCollection;
use actix_web::{HttpRequest, web};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};

/// PocketBase's answer when the sign-up's create gave no record.
const FAILED: &str = "Failed to authenticate.";

/// Who signs up where, through which provider account.
pub(in crate::api) struct SignUp<'a> {
    pub collection: &'a Arc<CompiledCollection>,
    pub provider: &'static str,
    pub user: &'a OAuth2User,
    pub caller: Caller,
}

/// Signs up through `onRecordCreateRequest` (see the module doc); returns
/// the new record's id.
pub(in crate::api) async fn oauth2_sign_up(
    req: &HttpRequest,
    who: &Principal,
    state: &web::Data<AppState>,
    signup: SignUp<'_>,
    body: Map<String, Value>,
    uploads: Vec<Upload>,
) -> Result<String, ApiError> {
    let Some(hooks) = state.hooks.clone() else {
        return Err(ApiError::bad_request(FAILED));
    };
    let SignUp {
        collection,
        provider,
        user,
        caller,
    } = signup;
    let snapshot = state.registry.snapshot();
    let shared: Arc<dyn WriteHooks> = Arc::new(hooks.clone());
    let flow = FlowSession::begin(&state.db, shared, snapshot.clone());
    let slot: Arc<Mutex<Option<Value>>> = Arc::default();
    let mut event = request_event(req, who, state);
    event["changed"] = json!(body.keys().collect::<Vec<_>>());
    event["body"] = Value::Object(body.clone());
    event["collection"] = collection_ref(collection);
    event["record"] = Value::Object(body.clone());
    event["action"] = json!("write");
    event["isNew"] = json!(true);
    let (st, f, c, s, written) = (
        state.clone(),
        flow.clone(),
        collection.clone(),
        snapshot.clone(),
        slot.clone(),
    );
    let action: Action = Box::new(move |fields| {
        Box::pin(async move {
            let fields = fields.unwrap_or(body);
            let backend = f.backend(st.backend());
            let record = records::create(backend, s, c, caller, fields, uploads)
                .await
                .map_err(|e| HookError::from(ApiError::from(e)))?;
            if let Ok(mut w) = written.lock() {
                *w = Some(record.clone());
            }
            Ok(record)
        })
    });
    let outcome = hooks
        .run_record_in(
            "onRecordCreateRequest",
            &event,
            Some(action),
            Some(flow.session().clone()),
        )
        .await
        .map_err(fault);
    let created = slot.lock().ok().and_then(|mut s| s.take());
    let result = match (outcome, created) {
        (Err(e), _) => Err(e),
        (Ok(Outcome { error: Some(e), .. }), _) => Err(ApiError::from(e)),
        (
            Ok(Outcome {
                response: Some(Response::Action),
                ..
            }),
            Some(record),
        ) => {
            let inner = flow.backend(state.backend());
            sign_up_in(inner, &snapshot, collection, &record, provider, user)
                .await
                .map_err(ApiError::from)
        }
        // Answered by the hook itself, or e.next() never called.
        _ => Err(ApiError::bad_request(FAILED)),
    };
    let ended = flow
        .end(result.is_ok(), &state.store, &state.realtime, FAILED)
        .await;
    ended.map_err(ApiError::from)?;
    result
}
