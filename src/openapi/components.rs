//! The shared components every document carries: PocketBase's error
//! envelope, the list query parameters, the list page shape, the standard
//! error responses and the two token security schemes.

use serde_json::{Map, Value, json};

/// `#/components/...` reference.
pub(crate) fn reference(kind: &str, name: &str) -> Value {
    json!({"$ref": format!("#/components/{kind}/{name}")})
}

/// The list query parameters, in the order they are listed on operations.
pub(crate) const LIST_PARAMETERS: [&str; 7] = [
    "filter",
    "sort",
    "expand",
    "fields",
    "page",
    "perPage",
    "skipTotal",
];

/// The view query parameters (a single record).
pub(crate) const VIEW_PARAMETERS: [&str; 2] = ["expand", "fields"];

/// References to `names` under `#/components/parameters`.
pub(crate) fn parameter_refs(names: &[&str]) -> Value {
    Value::Array(names.iter().map(|n| reference("parameters", n)).collect())
}

/// Schemas shared by every document; collections add theirs to the map.
pub(crate) fn schemas() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Error".into(), error_schema());
    m.insert(
        "ListMeta".into(),
        json!({
            "type": "object",
            "required": ["page", "perPage", "totalItems", "totalPages"],
            "properties": {
                "page": {"type": "integer", "minimum": 1},
                "perPage": {"type": "integer", "minimum": 1},
                "totalItems": {"type": "integer", "description": "-1 with skipTotal=1."},
                "totalPages": {"type": "integer", "description": "-1 with skipTotal=1."},
            },
        }),
    );
    m.insert("AnyObject".into(), json!({"type": "object"}));
    m
}

/// PocketBase's error envelope: `{"status", "message", "data": {field: {code, message}}}`.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["status", "message", "data"],
        "properties": {
            "status": {"type": "integer"},
            "message": {"type": "string"},
            "data": {
                "type": "object",
                "description": "Per-field problems of a validation error; empty otherwise.",
                "additionalProperties": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    })
}

/// The list query parameters as named components.
pub(crate) fn parameters() -> Value {
    let query = |name: &str, schema: Value, description: &str| json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description});
    json!({
        "filter": query("filter", json!({"type": "string"}),
            "Filter expression, e.g. `(title ~ 'abc' && created > '2022-01-01')`."),
        "sort": query("sort", json!({"type": "string"}),
            "Comma-separated fields; `-` for descending, `+` (default) for ascending, `@random` for random order."),
        "expand": query("expand", json!({"type": "string"}),
            "Comma-separated relations to expand (up to 6 levels deep, e.g. `author.team`)."),
        "fields": query("fields", json!({"type": "string"}),
            "Comma-separated fields to return, e.g. `id,title,expand.author.name`; `:excerpt(n,bool)` shortens text. Properties not listed are left out, so the response schema's `required` list does not hold then."),
        "page": query("page", json!({"type": "integer", "minimum": 1, "default": 1}), "Page number (1-based)."),
        "perPage": query("perPage", json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 30}),
            "Records per page."),
        "skipTotal": query("skipTotal", json!({"type": "boolean", "default": false}),
            "Skip counting the total; `totalItems` and `totalPages` are then -1."),
        "search": query("search", json!({"type": "string"}),
            "Full-text search over the collection's searchable fields (Ferrobase only): words, \"phrases\", `prefix*`, `-exclude`. Combines with `filter`; `sort=@rank` orders best match first; `fields=name:highlight` or `name:snippet` returns HTML with matches in `<mark>`."),
        "groupBy": query("groupBy", json!({"type": "string"}),
            "Comma-separated group keys: fields, relation paths (`owner.team`) or date buckets (`created:month`, `:day`, `:year`, `:hour`)."),
        "aggregate": query("aggregate", json!({"type": "string"}),
            "Comma-separated aggregates: `count()`, `count(f)`, `count_distinct(f)`, `sum(f)`, `avg(f)`, `min(f)`, `max(f)`; each is a key of the result (`sum_amount`)."),
        "limit": query("limit", json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 1000}),
            "Most groups returned."),
    })
}

/// The standard error responses, each carrying the error envelope.
pub(crate) fn responses() -> Value {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": reference("schemas", "Error")}},
        })
    };
    json!({
        "BadRequest": error("Invalid request or failed validation."),
        "Unauthorized": error("A valid token is required."),
        "Forbidden": error("The token does not allow this action."),
        "NotFound": error("Not found (or not visible to the caller)."),
        "TooLarge": error("The request body is too large."),
        "TooManyRequests": error("Rate limit reached."),
    })
}

/// Both token kinds travel in `Authorization`, with or without `Bearer `.
pub(crate) fn security_schemes() -> Value {
    json!({
        "recordToken": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An auth record's token (from auth-with-password, auth-with-otp, auth-with-oauth2 or auth-refresh). The `Bearer ` prefix is optional.",
        },
        "superuserToken": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A superuser's token. The `Bearer ` prefix is optional.",
        },
    })
}

/// Error responses listed on an operation, by status.
pub(crate) fn error_responses(statuses: &[u16]) -> Map<String, Value> {
    statuses
        .iter()
        .filter_map(|s| {
            let name = match s {
                400 => "BadRequest",
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "NotFound",
                413 => "TooLarge",
                429 => "TooManyRequests",
                _ => return None,
            };
            Some((s.to_string(), reference("responses", name)))
        })
        .collect()
}

/// A JSON response with `schema`.
pub(crate) fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// `204 No Content`.
pub(crate) fn no_content() -> Value {
    json!({"description": "Done; no body."})
}

/// Security requirement: superusers only.
pub(crate) fn superuser_only() -> Value {
    json!([{"superuserToken": []}])
}

/// Security requirement: a token is optional (rules decide).
pub(crate) fn optional_token() -> Value {
    json!([{}, {"recordToken": []}, {"superuserToken": []}])
}

/// Security requirement: any valid token.
pub(crate) fn any_token() -> Value {
    json!([{"recordToken": []}, {"superuserToken": []}])
}
