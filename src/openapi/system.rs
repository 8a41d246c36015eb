//! The system endpoints: health, realtime, batch, files and this document
//! for everyone; the superuser-only ones are listed in `admin.rs` with the
//! same [`Op`] table shape. Record and auth paths are per collection
//! (`collection.rs`, `auth.rs`).

use super::Audience;
use super::components::{
    LIST_PARAMETERS, any_token, error_responses, json_response, no_content, optional_token,
    parameter_refs, superuser_only,
};
use serde_json::{Map, Value, json};

/// The tags of system operations, in display order.
pub(crate) fn tags() -> Value {
    json!([
        {"name": "system", "description": "Health, realtime, batch, files and this document."},
        {"name": "collections", "description": "Collection management (superusers)."},
        {"name": "settings", "description": "Application settings (superusers)."},
        {"name": "logs", "description": "Request logs (superusers)."},
        {"name": "backups", "description": "Backups (superusers)."},
        {"name": "crons", "description": "Scheduled jobs (superusers)."},
    ])
}

/// One system operation.
pub(super) struct Op {
    path: &'static str,
    method: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    /// Whether only superusers may call it.
    superuser: bool,
    body: Option<Value>,
    ok: (&'static str, Value),
    query: &'static [&'static str],
}

pub(super) fn object() -> Value {
    json!({"type": "object"})
}

pub(super) fn ok_json(schema: Value) -> (&'static str, Value) {
    ("200", json_response("Success.", schema))
}

pub(super) fn ok_empty() -> (&'static str, Value) {
    ("204", no_content())
}

pub(super) fn json_body(schema: Value) -> Option<Value> {
    Some(json!({"required": true, "content": {"application/json": {"schema": schema}}}))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn op(
    path: &'static str,
    method: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    superuser: bool,
    body: Option<Value>,
    ok: (&'static str, Value),
) -> Op {
    Op {
        path,
        method,
        id,
        tag,
        summary,
        superuser,
        body,
        ok,
        query: &[],
    }
}

fn public_ops() -> Vec<Op> {
    let health = json!({"type": "object", "required": ["code", "message", "data"], "properties": {
        "code": {"type": "integer"}, "message": {"type": "string"}, "data": {"type": "object"}}});
    let subscribe = json!({"type": "object", "required": ["clientId"], "properties": {
        "clientId": {"type": "string"},
        "subscriptions": {"type": "array", "items": {"type": "string"},
            "description": "`collection/*` or `collection/RECORD_ID`, each optionally with `?options={query,headers}`."}}});
    let batch = json!({"type": "object", "required": ["requests"], "properties": {"requests": {
        "type": "array", "items": {"type": "object", "required": ["method", "url"], "properties": {
            "method": {"type": "string", "enum": ["POST", "PUT", "PATCH", "DELETE"]},
            "url": {"type": "string", "description": "A records path, e.g. `/api/collections/posts/records`."},
            "headers": {"type": "object"}, "body": {"type": "object"}}}}}});
    let batch_result = json!({"type": "array", "items": {"type": "object", "properties": {
        "status": {"type": "integer"}, "body": {}}}});
    let sse = (
        "200",
        json!({"description": "An event stream; the first event (`PB_CONNECT`) carries the client id.",
        // OpenAPI 3.1 has no stream schema: by convention `schema` describes one event.
        "content": {"text/event-stream": {"schema": {"type": "object", "properties": {
            "id": {"type": "string"}, "event": {"type": "string"},
            "data": {"type": "string", "description": "The event's JSON payload."}}}}}}),
    );
    let file = (
        "200",
        json!({"description": "The file (Range requests supported).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}),
    );
    let doc = ("200", json_response("This document.", object()));
    let file_op = with_query(
        op(
            "/api/files/{collection}/{recordId}/{filename}",
            "get",
            "files.get",
            "system",
            "Download a stored file",
            false,
            None,
            file,
        ),
        &["thumb", "token", "download"],
    );
    vec![
        op(
            "/api/health",
            "get",
            "health",
            "system",
            "Health check",
            false,
            None,
            ok_json(health),
        ),
        op(
            "/api/realtime",
            "get",
            "realtime.connect",
            "system",
            "Open a realtime (SSE) connection",
            false,
            None,
            sse,
        ),
        op(
            "/api/realtime",
            "post",
            "realtime.subscribe",
            "system",
            "Set the subscriptions of a realtime client",
            false,
            json_body(subscribe),
            ok_empty(),
        ),
        op(
            "/api/batch",
            "post",
            "batch",
            "system",
            "Run record writes in one transaction",
            false,
            json_body(batch),
            ok_json(batch_result),
        ),
        file_op,
        op(
            "/api/files/token",
            "post",
            "files.token",
            "system",
            "Get a short-lived token for protected files",
            false,
            None,
            ok_json(
                json!({"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}),
            ),
        ),
        op(
            "/api/openapi.json",
            "get",
            "openapi",
            "system",
            "This OpenAPI document",
            false,
            None,
            doc,
        ),
        op(
            "/api/openapi.yaml",
            "get",
            "openapi.yaml",
            "system",
            "This OpenAPI document as YAML",
            false,
            None,
            (
                "200",
                // The schema of what the YAML text reads back as.
                json!({"description": "This document as YAML.",
                    "content": {"application/yaml": {"schema": {"type": "object"}}}}),
            ),
        ),
    ]
}

pub(super) fn with_query(mut o: Op, query: &'static [&'static str]) -> Op {
    o.query = query;
    o
}

/// Query parameters that are not list parameters.
fn extra_query(name: &str) -> Value {
    let (schema, description) = match name {
        "thumb" => (json!({"type": "string"}), "Thumbnail size, e.g. `100x100`."),
        "token" => (json!({"type": "string"}), "File token for protected files."),
        "download" => (json!({"type": "boolean"}), "Serve as an attachment."),
        _ => (
            json!({"type": "string", "enum": ["ts", "dart"]}),
            "Target language.",
        ),
    };
    json!({"name": name, "in": "query", "required": name == "lang", "schema": schema, "description": description})
}

/// Path template parameters of `path`, each a required string.
fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

fn to_operation(o: Op) -> Value {
    let security = match (o.superuser, o.id) {
        (true, _) => superuser_only(),
        (false, "files.token") => any_token(),
        (false, _) => optional_token(),
    };
    let mut errors = error_responses(match (o.superuser, o.id) {
        (true, _) => &[400, 401, 403, 404],
        // Batch answers 403 while it is turned off in the settings.
        (false, "batch") => &[400, 403, 404],
        // The document answers 403 while `openapi.public` is off.
        (false, "openapi" | "openapi.yaml") => &[400, 403, 404],
        (false, "files.token") => &[400, 401, 404],
        (false, _) => &[400, 404],
    });
    errors.insert(o.ok.0.to_owned(), o.ok.1);
    let mut op = json!({
        "tags": [o.tag],
        "operationId": o.id,
        "summary": o.summary,
        "security": security,
        "responses": errors,
    });
    let mut params = path_params(o.path);
    for q in o.query {
        if LIST_PARAMETERS.contains(q) {
            if let Value::Array(refs) = parameter_refs(&[q]) {
                params.extend(refs);
            }
        } else {
            params.push(extra_query(q));
        }
    }
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    if let Some(body) = o.body {
        op["requestBody"] = body;
    }
    if o.superuser {
        op["description"] = json!("Access: superusers only.");
    }
    op
}

/// Adds the system paths `audience` may call.
pub(crate) fn add_paths(paths: &mut Map<String, Value>, audience: Audience) {
    let mut ops = public_ops();
    if audience == Audience::Superuser {
        ops.extend(super::admin::superuser_ops());
    }
    for o in ops {
        let path = o.path;
        let method = o.method;
        let item = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        item[method] = to_operation(o);
    }
}
