//! Subscription topics as the SDKs send them: `COLLECTION/*` or a bare
//! `COLLECTION` (every record, list rule), `COLLECTION/RECORD_ID` (one
//! record, view rule), the collection given by name or id, optionally
//! followed by `?options=<urlencoded JSON {"query":{…},"headers":{…}}>`.
//! The raw string is kept: events are named by it, byte for byte.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Most topics one client may hold.
pub const MAX_TOPICS: usize = 1000;
/// Longest accepted topic, in characters.
pub const MAX_TOPIC_CHARS: usize = 2500;

/// `options` of a topic: extra query parameters (`expand`, `fields`,
/// `filter`) and headers, both visible to rules as `@request.query.*` and
/// `@request.headers.*`. Headers do not change who the subscriber is.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Options {
    pub query: HashMap<String, String>,
    /// Lowercased names with `-` turned into `_`, as rules expect.
    pub headers: HashMap<String, String>,
}

/// One parsed subscription.
#[derive(Debug, Clone)]
pub struct Topic {
    /// The subscription exactly as sent: the event name.
    pub raw: Arc<str>,
    /// Collection name or id as written in the topic.
    pub collection: String,
    /// `Some(id)` for a single-record topic.
    pub record_id: Option<String>,
    /// What follows `?` (empty without options): subscribers whose options
    /// are equal see a record the same way.
    pub options_key: Arc<str>,
    pub options: Arc<Options>,
    /// False when an `options` parameter is present but is not a JSON
    /// object; the API refuses such a subscription (PocketBase ignores it).
    pub options_well_formed: bool,
}

impl Topic {
    /// Parses a topic. Unknown collections are not errors (PocketBase
    /// accepts any topic; it just never fires); malformed options parse as
    /// none and are flagged in [`Topic::options_well_formed`].
    pub fn parse(raw: &str) -> Topic {
        let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
        let (collection, record_id) = match path.split_once('/') {
            Some((c, "*")) => (c, None),
            Some((c, id)) => (c, Some(id.to_owned())),
            None => (path, None),
        };
        let options = parse_options(query);
        let options_well_formed = options.is_some();
        Topic {
            raw: Arc::from(raw),
            collection: collection.to_owned(),
            record_id,
            options_key: Arc::from(query),
            options: Arc::new(options.unwrap_or_default()),
            options_well_formed,
        }
    }

    /// Whether a change to `record_id` of the collection (`id`, `name`) concerns this topic.
    pub fn matches(&self, collection_id: &str, collection_name: &str, record_id: &str) -> bool {
        (self.collection == collection_id || self.collection == collection_name)
            && self.record_id.as_deref().is_none_or(|id| id == record_id)
    }
}

/// The topic's options; `None` when they are present but malformed.
fn parse_options(query: &str) -> Option<Options> {
    let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(query) else {
        return None;
    };
    let Some((_, raw)) = pairs.into_iter().find(|(k, _)| k == "options") else {
        return Some(Options::default());
    };
    let Ok(Value::Object(json)) = serde_json::from_str::<Value>(&raw) else {
        return None;
    };
    let strings = |key: &str| -> HashMap<String, String> {
        match json.get(key) {
            Some(Value::Object(map)) => map
                .iter()
                .filter_map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => return None,
                        other => other.to_string(),
                    };
                    Some((k.clone(), text))
                })
                .collect(),
            _ => HashMap::new(),
        }
    };
    Some(Options {
        query: strings("query"),
        headers: strings("headers")
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase().replace('-', "_"), v))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_and_record_topics_are_told_apart() {
        for (raw, collection, id) in [
            ("posts/*", "posts", None),
            ("posts", "posts", None),
            ("pbc_123/abc", "pbc_123", Some("abc")),
            ("@oauth2", "@oauth2", None),
        ] {
            let t = Topic::parse(raw);
            assert_eq!(t.collection, collection, "{raw}");
            assert_eq!(t.record_id.as_deref(), id, "{raw}");
            assert_eq!(&*t.raw, raw);
        }
    }

    #[test]
    fn options_are_read_from_the_urlencoded_json() {
        let t = Topic::parse(
            "posts/*?options=%7B%22query%22%3A%7B%22fields%22%3A%22id%22%2C%22n%22%3A1%7D%2C%22headers%22%3A%7B%22X-Tenant%22%3A%22a%22%7D%7D",
        );
        assert_eq!(t.collection, "posts");
        assert_eq!(t.record_id, None);
        assert_eq!(
            t.options.query.get("fields").map(String::as_str),
            Some("id")
        );
        assert_eq!(t.options.query.get("n").map(String::as_str), Some("1"));
        assert_eq!(
            t.options.headers.get("x_tenant").map(String::as_str),
            Some("a")
        );
    }

    #[test]
    fn malformed_options_parse_as_none_and_are_flagged() {
        for raw in ["posts/x?options=notjson", "posts/x?options=%5B1%5D"] {
            let t = Topic::parse(raw);
            assert_eq!(*t.options, Options::default(), "{raw}");
            assert!(!t.options_well_formed, "{raw}");
            assert_eq!(t.record_id.as_deref(), Some("x"));
        }
        let t = Topic::parse("posts/x?%zz");
        assert_eq!(*t.options, Options::default(), "a query without options");
    }

    #[test]
    fn a_topic_matches_by_collection_name_or_id() {
        let all = Topic::parse("posts/*");
        let one = Topic::parse("pbc_1/r1");
        assert!(all.matches("pbc_1", "posts", "r2"));
        assert!(one.matches("pbc_1", "posts", "r1"));
        assert!(!one.matches("pbc_1", "posts", "r2"));
        assert!(!all.matches("pbc_2", "tags", "r1"));
    }
}
