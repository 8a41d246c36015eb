//! `/api/collections…`: the superuser-only collections API.

use super::error::{ApiError, GENERIC_MESSAGE};
use super::extract::{AppState, JsonBody, Superuser, query_map, read_object, read_object_or};
use super::respond;
use crate::records::{self, ListPage};
use crate::schema::{self, ListError};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

/// Automigrate (`[migrations] automigrate`, PocketBase's default): writes a
/// migration file, recorded as applied, for each collection that differs
/// from `before`. The change itself is committed by then, so a file that
/// cannot be written is logged, not answered as a failed request.
async fn automigrate(state: &AppState, before: &schema::Snapshot) {
    if !state.config.migrations.automigrate {
        return;
    }
    let after = state.registry.snapshot();
    let dir = state.config.migrations_dir();
    if let Err(e) = crate::hooks::migrations::automigrate(&state.db, &dir, before, &after).await {
        tracing::error!(error = %e, dir = %dir.display(), "automigrate: cannot write the migration file");
    }
}

fn lookup(
    state: &AppState,
    id_or_name: &str,
) -> Result<std::sync::Arc<schema::CompiledCollection>, ApiError> {
    state
        .registry
        .get(id_or_name)
        .ok_or_else(ApiError::not_found_default)
}

pub async fn list(
    req: HttpRequest,
    _: Superuser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = query_map(&req)?;
    let query = records::parse_list_query(&params)?;
    let (items, total) = schema::list(
        &state.db,
        &state.registry,
        &query.filter,
        &query.sort,
        query.page,
        query.per_page,
    )
    .await
    .map_err(|e| match e {
        ListError::Rule(e) => {
            tracing::debug!(reason = %e, "bad collections filter");
            ApiError::bad_request(GENERIC_MESSAGE)
        }
        ListError::Schema(e) => ApiError::from(e),
    })?;
    let items: Vec<_> = items.iter().map(|c| c.to_json()).collect();
    let page = ListPage::new(&query, (!query.skip_total).then_some(total), items);
    respond::json(
        &req,
        serde_json::to_value(page).map_err(ApiError::internal)?,
        true,
    )
}

pub async fn view(
    req: HttpRequest,
    _: Superuser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let collection = lookup(&state, &path)?;
    respond::json(&req, collection.to_json(), false)
}

pub async fn create(
    req: HttpRequest,
    _: Superuser,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = read_object_or(
        &req,
        body,
        state.config.server.max_body_bytes,
        "Failed to load the collection type data due to invalid formatting.",
    )
    .await?;
    let before = state.registry.snapshot();
    let created = schema::create(&state.db, &state.registry, Value::Object(input))
        .await
        .map_err(|e| with_message(e, "Failed to create collection."))?;
    automigrate(&state, &before).await;
    respond::json(&req, created.to_json(), false)
}

pub async fn update(
    req: HttpRequest,
    _: Superuser,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let existing = lookup(&state, &path)?;
    let input = read_object_or(
        &req,
        body,
        state.config.server.max_body_bytes,
        "Failed to load the submitted data due to invalid formatting.",
    )
    .await?;
    let before = state.registry.snapshot();
    let updated = schema::update(&state.db, &state.registry, existing, Value::Object(input))
        .await
        .map_err(|e| with_message(e, "Failed to update collection."))?;
    automigrate(&state, &before).await;
    respond::json(&req, updated.to_json(), false)
}

pub async fn delete(
    _: Superuser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let existing = lookup(&state, &path)?;
    let collection_id = existing.id.clone();
    let before = state.registry.snapshot();
    schema::delete(&state.db, &state.registry, existing).await?;
    automigrate(&state, &before).await;
    // Only after the collection is gone: its files can no longer be referenced.
    crate::files::remove_collection(&state.store, collection_id).await;
    Ok(respond::no_content())
}

pub async fn truncate(
    _: Superuser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let existing = lookup(&state, &path)?;
    records::truncate(state.backend(), state.registry.snapshot(), existing).await?;
    Ok(respond::no_content())
}

/// `POST /api/collections/meta/validate`: a dry run of a create (no `id`, or
/// an unknown one) or of an update (the `id` of an existing collection).
/// 204 when the save would succeed, else the same 400 the save would give.
/// Ferrobase's own addition; the admin panel checks rules with it as you type.
pub async fn validate(
    req: HttpRequest,
    _: Superuser,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = read_object(&req, body, state.config.server.max_body_bytes).await?;
    let existing = input
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .and_then(|id| state.registry.get(id))
        .filter(|c| input.get("id").and_then(Value::as_str) == Some(c.id.as_str()));
    let message = if existing.is_some() {
        "Failed to update collection."
    } else {
        "Failed to create collection."
    };
    schema::validate(&state.db, &state.registry, existing, Value::Object(input))
        .await
        .map_err(|e| with_message(e, message))?;
    Ok(respond::no_content())
}

/// The body of `PUT /api/collections/import`; null means absent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportBody {
    #[serde(default)]
    collections: Option<Vec<serde_json::Map<String, Value>>>,
    #[serde(default)]
    delete_missing: Option<bool>,
}

/// `PUT /api/collections/import` `{collections, deleteMissing}`: applies the
/// whole list in one transaction (`schema::import`); 204 when done.
pub async fn import(
    _: Superuser,
    body: JsonBody<ImportBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ImportBody {
        collections,
        delete_missing,
    } = body.bind()?;
    let (collections, delete_missing) = (
        collections.unwrap_or_default(),
        delete_missing.unwrap_or(false),
    );
    let before = state.registry.snapshot();
    let deleted = schema::import(&state.db, &state.registry, collections, delete_missing).await?;
    automigrate(&state, &before).await;
    // Only after the commit: the deleted collections' files can no longer be referenced.
    for id in deleted {
        crate::files::remove_collection(&state.store, id).await;
    }
    Ok(respond::no_content())
}

/// Every OAuth2 provider the server knows, with its display name and logo,
/// in PocketBase's order (the dashboard's provider picker).
pub async fn oauth2_providers(_: Superuser) -> HttpResponse {
    HttpResponse::Ok().json(schema::oauth2::catalog_list())
}

/// Blank templates the admin UI starts new collections from.
pub async fn scaffolds(req: HttpRequest, _: Superuser) -> Result<HttpResponse, ApiError> {
    let base = schema::Collection::from_create(&json!({"name": "base", "type": "base"}))
        .map(|c| c.to_json())
        .map_err(|_| ApiError::internal("scaffold"))?;
    let auth = schema::Collection::from_create(&json!({"name": "auth", "type": "auth"}))
        .map(|c| c.to_json())
        .map_err(|_| ApiError::internal("scaffold"))?;
    let view =
        schema::Collection::from_create(&json!({"name": "view", "type": "view", "viewQuery": ""}))
            .map(|c| c.to_json())
            .map_err(|_| ApiError::internal("scaffold"))?;
    let blank = |mut v: Value| {
        v["id"] = json!("");
        v["name"] = json!("");
        v["created"] = json!("");
        v["updated"] = json!("");
        v
    };
    let mut auth = blank(auth);
    // As PocketBase: an unsaved collection has no id yet, so its unique
    // indexes carry a random suffix and no table name until it is saved.
    let suffix = schema::autogen::random_string("abcdefghijklmnopqrstuvwxyz0123456789", 10);
    auth["indexes"] = json!([
        format!("CREATE UNIQUE INDEX `idx_tokenKey_{suffix}` ON `` (`tokenKey`)"),
        format!("CREATE UNIQUE INDEX `idx_email_{suffix}` ON `` (`email`) WHERE `email` != ''"),
    ]);
    respond::json(
        &req,
        json!({"base": blank(base), "auth": auth, "view": blank(view)}),
        false,
    )
}

/// `POST /api/collections/meta/dry-run-view` `{query}`: the fields a view
/// collection with this query would get and up to ten sample rows. The
/// query is checked exactly as for a view collection; the sample is read on
/// a read-only connection under the query time limit.
pub async fn dry_run_view(
    req: HttpRequest,
    _: Superuser,
    body: JsonBody<super::sql::QueryBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = body.bind()?.into_query();
    let query = query.as_str();
    let mut errors = crate::validation::ValidationErrors::new();
    if query.trim().is_empty() {
        errors.add(
            "query",
            crate::validation::FieldError::new("validation_required", "Cannot be blank."),
        );
    } else if query.len() > schema::view::MAX_DRY_RUN_QUERY_BYTES {
        errors.add(
            "query",
            crate::validation::FieldError::new(
                "validation_length_out_of_range",
                format!(
                    "The length must be between 0 and {}.",
                    schema::view::MAX_DRY_RUN_QUERY_BYTES
                ),
            ),
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(
            "An error occurred while validating the submitted data.",
            &errors,
        ));
    }
    let invalid = |reason: String| {
        ApiError::bad_request(format!("Invalid view query. Raw error: \n{reason}"))
    };
    let temp = schema::dry_run_view(&state.db, &state.registry, query)
        .await?
        .map_err(invalid)?;
    let fields: Vec<Value> = temp.fields.iter().map(schema::Field::to_json).collect();
    let sample = records::view_sample(&state.db, temp, schema::view::DRY_RUN_SAMPLE_ROWS)
        .await?
        .map_err(invalid)?;
    respond::json(&req, json!({"fields": fields, "sample": sample}), false)
}

/// Collection validation errors use the action's own message.
fn with_message(e: schema::SchemaError, message: &str) -> ApiError {
    match e {
        schema::SchemaError::Invalid(errors) => ApiError::validation(message, &errors),
        other => ApiError::from(other),
    }
}
