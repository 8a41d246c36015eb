//! One collection's part of the document: its record schemas (response,
//! create, update; multipart when it has file fields), its records paths
//! (read-only for views) and, for auth collections, its auth flows
//! (`auth.rs`). What an audience sees follows the collection's rules (see
//! [`super::Audience`]).

use super::Audience;
use super::components::{
    LIST_PARAMETERS, VIEW_PARAMETERS, error_responses, json_response, no_content, optional_token,
    parameter_refs, reference, superuser_only,
};
use super::schema::{Use, field_schema, required_on_create};
use crate::schema::{CollectionType, CompiledCollection, FieldKind};
use serde_json::{Map, Value, json};

/// Whether the collection appears at all: always for superusers; for
/// others when at least one of its rules is not "superusers only".
pub(crate) fn visible(c: &CompiledCollection, audience: Audience) -> bool {
    let r = &c.rules;
    [&r.list, &r.view, &r.create, &r.update, &r.delete]
        .into_iter()
        .any(|rule| audience.sees(rule))
}

/// Adds the collection's paths and schemas.
pub(crate) fn add(
    paths: &mut Map<String, Value>,
    schemas: &mut Map<String, Value>,
    c: &CompiledCollection,
    audience: Audience,
) {
    let name = c.name.as_str();
    schemas.insert(format!("{name}.Record"), record_schema(c));
    schemas.insert(
        format!("{name}.List"),
        json!({"allOf": [reference("schemas", "ListMeta"), {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": record_ref(name)}},
        }]}),
    );
    if c.kind != CollectionType::View {
        schemas.insert(format!("{name}.Create"), body_schema(c, Use::Json, true));
        schemas.insert(format!("{name}.Update"), body_schema(c, Use::Json, false));
        if has_files(c) {
            schemas.insert(
                format!("{name}.CreateMultipart"),
                body_schema(c, Use::Multipart, true),
            );
            schemas.insert(
                format!("{name}.UpdateMultipart"),
                body_schema(c, Use::Multipart, false),
            );
        }
    }
    records_paths(paths, c, audience);
    if c.kind == CollectionType::Auth {
        schemas.insert(
            format!("{name}.AuthResponse"),
            json!({
                "type": "object",
                "required": ["token", "record"],
                "properties": {
                    "token": {"type": "string"},
                    "record": record_ref(name),
                    "meta": {"type": "object", "description": "OAuth2 provider data (auth-with-oauth2 only)."},
                },
            }),
        );
        super::auth::auth_paths(paths, c, audience);
    }
}

pub(super) fn record_ref(name: &str) -> Value {
    reference("schemas", &format!("{name}.Record"))
}

fn has_files(c: &CompiledCollection) -> bool {
    c.fields
        .iter()
        .any(|f| matches!(f.kind, FieldKind::File { .. }))
}

/// A record as the API returns it.
fn record_schema(c: &CompiledCollection) -> Value {
    let mut props = Map::new();
    props.insert(
        "collectionId".into(),
        json!({"type": "string", "const": c.id}),
    );
    props.insert(
        "collectionName".into(),
        json!({"type": "string", "const": c.name.as_str()}),
    );
    let mut required = vec![json!("collectionId"), json!("collectionName")];
    for field in &c.fields {
        let Some(schema) = field_schema(field, Use::Response) else {
            continue;
        };
        let name = field.name.as_str();
        // An auth record's email is left out unless emailVisibility or the caller allows it.
        if !(c.kind == CollectionType::Auth && name == "email") {
            required.push(json!(name));
        }
        props.insert(name.to_owned(), schema);
    }
    props.insert(
        "expand".into(),
        json!({"type": "object", "description": "Expanded relations (with `expand=`).",
               "additionalProperties": true}),
    );
    json!({"type": "object", "required": required, "properties": props})
}

/// A create (`required` honoured) or update (all optional) body.
fn body_schema(c: &CompiledCollection, usage: Use, create: bool) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for field in &c.fields {
        let Some(schema) = field_schema(field, usage) else {
            continue;
        };
        let name = field.name.as_str();
        if create && required_on_create(field) {
            required.push(json!(name));
        }
        props.insert(name.to_owned(), schema);
    }
    if c.kind == CollectionType::Auth {
        props.insert(
            "passwordConfirm".into(),
            json!({"type": "string", "description": "Must equal `password`."}),
        );
        if create {
            required.push(json!("passwordConfirm"));
        } else {
            props.insert(
                "oldPassword".into(),
                json!({"type": "string", "description": "The current password (needed to change it, except for superusers and managers)."}),
            );
        }
    }
    let mut s = json!({
        "type": "object",
        "properties": props,
        "description": "Multi-value fields also take `field+` (append) and `+field` (prepend) and `field-` (remove) keys.",
    });
    if !required.is_empty() {
        s["required"] = Value::Array(required);
    }
    s
}

/// The rule note of an operation and its security requirement.
fn guard(rule: &Option<String>, audience: Audience) -> (String, Value) {
    let note = match (rule.as_deref(), audience) {
        (None, _) => "Access: superusers only.".to_owned(),
        (Some(""), _) => "Access: public (anyone).".to_owned(),
        (Some(expr), Audience::Superuser) => format!("Access rule: `{expr}`"),
        (Some(_), Audience::Public) => "Access: whoever the collection's rule admits.".to_owned(),
    };
    let security = if rule.is_some() {
        optional_token()
    } else {
        superuser_only()
    };
    (note, security)
}

pub(super) fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "Record id."})
}

/// An operation with its common keys.
pub(super) fn operation(
    c: &CompiledCollection,
    verb: &str,
    summary: &str,
    note: &str,
    security: Value,
) -> Value {
    let name = c.name.as_str();
    let mut op = json!({
        "tags": [name],
        "operationId": format!("{name}.{verb}"),
        "summary": summary,
        "security": security,
    });
    if !note.is_empty() {
        op["description"] = json!(note);
    }
    op
}

fn request_body(c: &CompiledCollection, create: bool) -> Value {
    let suffix = if create { "Create" } else { "Update" };
    let name = c.name.as_str();
    let mut content = json!({
        "application/json": {"schema": reference("schemas", &format!("{name}.{suffix}"))},
    });
    if has_files(c) {
        content["multipart/form-data"] =
            json!({"schema": reference("schemas", &format!("{name}.{suffix}Multipart"))});
    }
    json!({"required": create, "content": content})
}

fn records_paths(paths: &mut Map<String, Value>, c: &CompiledCollection, audience: Audience) {
    let name = c.name.as_str();
    let record = record_ref(name);
    let rules = &c.rules;
    let writable = c.kind != CollectionType::View;
    let mut list_item = Map::new();
    if audience.sees(&rules.list) {
        let (note, security) = guard(&rules.list, audience);
        let mut op = operation(
            c,
            "list",
            &format!("List {name} records"),
            &note,
            security.clone(),
        );
        let searchable = searchable_by(c, audience);
        let mut list_params = LIST_PARAMETERS.to_vec();
        if searchable {
            list_params.push("search");
        }
        op["parameters"] = parameter_refs(&list_params);
        op["responses"] = responses_with(
            "200",
            json_response(
                "A page of records.",
                reference("schemas", &format!("{name}.List")),
            ),
            &[400, 403],
        );
        list_item.insert("get".into(), op);
        if writable {
            paths.insert(
                format!("/api/collections/{name}/aggregate"),
                aggregate_path(c, note, security, searchable),
            );
        }
    }
    if writable && audience.sees(&rules.create) {
        let (note, security) = guard(&rules.create, audience);
        let mut op = operation(
            c,
            "create",
            &format!("Create a {name} record"),
            &note,
            security,
        );
        op["parameters"] = parameter_refs(&VIEW_PARAMETERS);
        op["requestBody"] = request_body(c, true);
        op["responses"] = responses_with(
            "200",
            json_response("The created record.", record.clone()),
            &[400, 403, 413],
        );
        list_item.insert("post".into(), op);
    }
    let mut one_item = Map::new();
    one_item.insert("parameters".into(), json!([id_param()]));
    let mut one_ops = 0;
    for (method, verb, rule, allowed) in [
        ("get", "view", &rules.view, true),
        ("patch", "update", &rules.update, writable),
        ("delete", "delete", &rules.delete, writable),
    ] {
        if !allowed || !audience.sees(rule) {
            continue;
        }
        let (note, security) = guard(rule, audience);
        let mut op = operation(
            c,
            verb,
            &format!("{} a {name} record", capitalized(verb)),
            &note,
            security,
        );
        let ok = match verb {
            "delete" => no_content(),
            "view" => json_response("The record.", record.clone()),
            _ => json_response("The updated record.", record.clone()),
        };
        let code = if verb == "delete" { "204" } else { "200" };
        if verb != "delete" {
            op["parameters"] = parameter_refs(&VIEW_PARAMETERS);
        }
        if verb == "update" {
            op["requestBody"] = request_body(c, false);
        }
        op["responses"] = responses_with(code, ok, &[400, 403, 404]);
        one_item.insert(method.into(), op);
        one_ops += 1;
    }
    if !list_item.is_empty() {
        paths.insert(
            format!("/api/collections/{name}/records"),
            Value::Object(list_item),
        );
    }
    if one_ops > 0 {
        paths.insert(
            format!("/api/collections/{name}/records/{{id}}"),
            Value::Object(one_item),
        );
    }
}

/// Whether `audience` may use `search` on `c`: some searchable field it
/// could filter on (hidden ones and an auth `email` for superusers only).
fn searchable_by(c: &CompiledCollection, audience: Audience) -> bool {
    crate::search::SearchSpec::of(&c.def)
        .is_some_and(|spec| audience == Audience::Superuser || spec.public.contains(&true))
}

/// `GET …/aggregate` (Ferrobase only): groups over the records the list
/// rule admits.
fn aggregate_path(
    c: &CompiledCollection,
    note: String,
    security: Value,
    searchable: bool,
) -> Value {
    let name = c.name.as_str();
    let mut op = operation(
        c,
        "aggregate",
        &format!("Aggregate {name} records"),
        &note,
        security,
    );
    let mut params = vec!["groupBy", "aggregate", "filter", "sort", "limit"];
    if searchable {
        params.push("search");
    }
    op["parameters"] = parameter_refs(&params);
    op["responses"] = responses_with(
        "200",
        json_response(
            "One item per group: the group keys and each aggregate (integers stay integers).",
            json!({
                "type": "object",
                "required": ["items"],
                "properties": {"items": {"type": "array", "items": {"type": "object"}}},
            }),
        ),
        &[400, 403],
    );
    json!({ "get": op })
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// `{code: ok}` plus the shared error responses.
pub(super) fn responses_with(code: &str, ok: Value, errors: &[u16]) -> Value {
    let mut m = error_responses(errors);
    m.insert(code.to_owned(), ok);
    Value::Object(m)
}
