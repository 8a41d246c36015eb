//! `POST /api/sql` (superusers): PocketBase's SQL console endpoint. Reads
//! `{query}`, runs it through `crate::sql` and answers
//! `{execTime, affectedRows, columns, rows}`. A guest gets 401, a user 403,
//! before anything runs; `superuserIPs` applies (`middleware::superuser_ips`).
//! On PostgreSQL the console only reads (`crate::sql::on_postgres`).

use super::error::ApiError;
use super::extract::{AppState, JsonBody, Superuser};
use crate::db::DbError;
use crate::sql::{self, MAX_QUERY_CHARS, SqlError};
use crate::validation::{FieldError, ValidationErrors};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

/// PocketBase's prefix for a query that failed.
const FAILED: &str = "Failed to execute query. Raw error:\n";

/// `{query}`; a missing or null query is empty (refused by [`validate`]).
#[derive(Debug, Deserialize)]
pub(super) struct QueryBody {
    #[serde(default)]
    query: Option<String>,
}

impl QueryBody {
    pub(super) fn into_query(self) -> String {
        self.query.unwrap_or_default()
    }
}

pub async fn run(
    _: Superuser,
    body: JsonBody<QueryBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = body.bind()?.into_query();
    validate(&query)?;
    let result = sql::run(&state.db, &query).await.map_err(api_error)?;
    let sqlite = state.db.dialect() == crate::rules::Dialect::Sqlite;
    // PostgreSQL's console only reads.
    if sqlite && (result.affected_rows > 0 || result.columns.is_empty()) {
        // A write may have changed the schema (a collection's table or
        // `_collections` itself): reload so the API sees what is stored.
        reload_schema(&state).await;
    }
    Ok(HttpResponse::Ok().json(result))
}

/// `query` is required and at most [`MAX_QUERY_CHARS`] characters.
fn validate(query: &str) -> Result<(), ApiError> {
    let mut errors = ValidationErrors::new();
    if query.is_empty() {
        errors.add("query", FieldError::required());
    } else if query.chars().count() > MAX_QUERY_CHARS {
        errors.add(
            "query",
            FieldError::new(
                "validation_length_too_long",
                format!("The length must be no more than {MAX_QUERY_CHARS}."),
            )
            .with_params(json!({"max": MAX_QUERY_CHARS, "min": 0})),
        );
    }
    errors.into_result().map_err(|errors| {
        ApiError::validation(
            "An error occurred while validating the submitted data.",
            &errors,
        )
    })
}

async fn reload_schema(state: &AppState) {
    match state.db.read(crate::schema::load_snapshot).await {
        Ok(snapshot) => state.registry.replace(snapshot),
        Err(e) => tracing::warn!(error = %e, "schema not reloaded after a SQL console write"),
    }
}

fn api_error(e: SqlError) -> ApiError {
    match e {
        SqlError::Empty => ApiError::bad_request(format!("{FAILED}empty query")),
        SqlError::Refused(reason) => ApiError::bad_request(format!("{FAILED}{reason}")),
        SqlError::Failed(raw) => ApiError::bad_request(format!("{FAILED}{raw}")),
        SqlError::TooLarge => ApiError::bad_request(format!("{FAILED}{}", SqlError::TooLarge)),
        SqlError::Db(DbError::TimedOut) => ApiError::bad_request(format!(
            "{FAILED}the query ran past the query timeout (--queryTimeout) and was interrupted"
        )),
        SqlError::Db(e) => ApiError::from(e),
    }
}
