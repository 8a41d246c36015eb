//! Record input normalisation: an arbitrary JSON body against a collection
//! with a field of every kind. Normalising must never panic, must be
//! idempotent (a stored value read back and sent again is the same value),
//! and validation of what it produced must never panic either.
#![no_main]

use ferrobase::records::{validate, value};
use ferrobase_fuzz::World;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<Value>(data) else { return };
    let world = World::get();
    let Some(posts) = world.snapshot.get_ref("posts") else { panic!("posts exists") };
    let object = match input {
        Value::Object(map) => map,
        // A bare value is tried against every field.
        other => posts.fields.iter().map(|f| (f.name.as_str().to_owned(), other.clone())).collect(),
    };
    let mut normalized = Map::new();
    for field in &posts.fields {
        let Some(raw) = object.get(field.name.as_str()) else { continue };
        let Ok(first) = value::normalize(field, raw) else { continue };
        let second = value::normalize(field, &first)
            .unwrap_or_else(|e| panic!("{}: {raw} normalised to {first}, which is refused: {e:?}", field.name.as_str()));
        assert_eq!(first, second, "{}: normalising {raw} is not idempotent", field.name.as_str());
        let _ = value::to_sql(field, &first);
        normalized.insert(field.name.as_str().to_owned(), first);
    }
    let _ = validate::check(posts, &normalized);
    let _ = validate::check(posts, &object);
});
