//! An OpenAPI 3.1 description of this server, generated from the live
//! schema: the system endpoints, then each collection's records and auth
//! flows with its record schemas. Who asks decides what is described
//! ([`Audience`]); the document is rendered as JSON or YAML ([`Format`]) and
//! cached per schema snapshot ([`Cache`]).
//! Knows the schema, nothing about HTTP; `api::openapi` serves it.

mod admin;
mod auth;
mod cache;
mod collection;
mod components;
mod schema;
mod system;
mod yaml;

pub use cache::Cache;

use crate::schema::Snapshot;
use serde_json::{Map, Value, json};

/// The OpenAPI version the document declares.
pub const OPENAPI_VERSION: &str = "3.1.0";

/// Who the document is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Everything, with each rule's text.
    Superuser,
    /// Guests and records: only what a rule other than "superusers only"
    /// guards, and no rule text.
    Public,
}

impl Audience {
    /// Whether an operation guarded by `rule` is described for this audience
    /// (`None` is "superusers only").
    pub(crate) fn sees(self, rule: &Option<String>) -> bool {
        self == Audience::Superuser || rule.is_some()
    }
}

/// How the document is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`.
    Json,
    /// Block-style YAML (`application/yaml`, RFC 9512) that reads back as
    /// exactly the JSON document under YAML 1.1 and 1.2.
    Yaml,
}

impl Format {
    /// The document as text in this format.
    pub(crate) fn render(self, doc: &Value) -> String {
        match self {
            Format::Json => doc.to_string(),
            Format::Yaml => {
                yaml::to_string(doc, &["openapi", "info", "jsonSchemaDialect", "servers"])
            }
        }
    }

    /// The `Content-Type` it is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Yaml => "application/yaml",
        }
    }
}

/// Builds the document for `audience` from `snapshot`.
pub fn build(snapshot: &Snapshot, audience: Audience) -> Value {
    let mut paths = Map::new();
    system::add_paths(&mut paths, audience);
    let mut schemas = components::schemas();
    for entry in snapshot.all() {
        if collection::visible(entry, audience) {
            collection::add(&mut paths, &mut schemas, entry, audience);
        }
    }
    json!({
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Ferrobase API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "PocketBase-compatible REST API, generated from this server's collections.",
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "servers": [{"url": "/"}],
        "tags": system::tags(),
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": components::parameters(),
            "responses": components::responses(),
            "securitySchemes": components::security_schemes(),
        },
    })
}
