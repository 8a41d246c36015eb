//! The migration files Ferrobase writes, in the shapes PocketBase's
//! `migratecmd` writes them (blank, collections snapshot, and the
//! create / delete / update forms of automigrate), so files move freely
//! between the two servers.

use serde_json::{Map, Value};

const TYPES_DIRECTIVE: &str = "/// <reference path=\"../pb_data/types.d.ts\" />\n";

/// `migrate create NAME`.
pub fn blank() -> String {
    format!("{TYPES_DIRECTIVE}migrate((app) => {{\n}}, (app) => {{\n}})\n")
}

/// A collection's JSON as the templates hold it: no timestamps, no OAuth2
/// provider list (it holds secrets).
fn template_json(collection: &Value) -> Value {
    let mut c = collection.clone();
    if let Value::Object(map) = &mut c {
        map.remove("created");
        map.remove("updated");
        if let Some(Value::Object(oauth2)) = map.get_mut("oauth2") {
            oauth2.remove("providers");
        }
    }
    c
}

/// Pretty JSON indented to sit inside a template (two spaces, as PocketBase).
fn pretty(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.replace('\n', "\n  ")
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// `migrate collections`: every given collection, imported without deleting.
pub fn snapshot(collections: &[Value]) -> String {
    let list = Value::Array(collections.iter().map(template_json).collect());
    format!(
        "{TYPES_DIRECTIVE}migrate((app) => {{\n  const snapshot = {};\n\n  return app.importCollections(snapshot, false);\n}}, (app) => {{\n  return null;\n}})\n",
        pretty(&list)
    )
}

/// Automigrate of a created collection.
pub fn create(new: &Value) -> String {
    let id = new.get("id").and_then(Value::as_str).unwrap_or_default();
    format!(
        "{TYPES_DIRECTIVE}migrate((app) => {{\n  const collection = new Collection({});\n\n  return app.save(collection);\n}}, (app) => {{\n  const collection = app.findCollectionByNameOrId({});\n\n  return app.delete(collection);\n}})\n",
        pretty(&template_json(new)),
        quoted(id)
    )
}

/// Automigrate of a deleted collection.
pub fn delete(old: &Value) -> String {
    let id = old.get("id").and_then(Value::as_str).unwrap_or_default();
    format!(
        "{TYPES_DIRECTIVE}migrate((app) => {{\n  const collection = app.findCollectionByNameOrId({});\n\n  return app.delete(collection);\n}}, (app) => {{\n  const collection = new Collection({});\n\n  return app.save(collection);\n}})\n",
        quoted(id),
        pretty(&template_json(old))
    )
}

/// PocketBase's `diffMaps`: the keys of `new` that differ from `old`
/// (nested objects by their changed keys), and `null` for keys `new` lacks.
fn diff_maps(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    exclude: &[&str],
) -> Map<String, Value> {
    let mut diff = Map::new();
    for (k, v_new) in new {
        if exclude.contains(&k.as_str()) {
            continue;
        }
        match old.get(k) {
            None => {
                diff.insert(k.clone(), v_new.clone());
            }
            Some(v_old) if v_old != v_new => match (v_old, v_new) {
                (Value::Object(o), Value::Object(n)) => {
                    let sub = diff_maps(o, n, &[]);
                    if !sub.is_empty() {
                        diff.insert(k.clone(), Value::Object(sub));
                    }
                }
                _ => {
                    diff.insert(k.clone(), v_new.clone());
                }
            },
            Some(_) => {}
        }
    }
    for k in old.keys() {
        if !diff.contains_key(k) && !exclude.contains(&k.as_str()) && !new.contains_key(k) {
            diff.insert(k.clone(), Value::Null);
        }
    }
    diff
}

fn fields_of(c: &Map<String, Value>) -> Vec<Value> {
    c.get("fields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn field_id(f: &Value) -> &str {
    f.get("id").and_then(Value::as_str).unwrap_or_default()
}

/// Automigrate of an updated collection: the changed keys through
/// `unmarshal`, then fields removed, added and changed; the down function
/// undoes each. `None` when nothing changed.
pub fn update(old: &Value, new: &Value) -> Option<String> {
    let (Value::Object(old), Value::Object(new)) = (template_json(old), template_json(new)) else {
        return None;
    };
    let mut up: Vec<String> = Vec::new();
    let mut down: Vec<String> = Vec::new();
    let exclude = ["fields", "created", "updated"];
    let up_diff = diff_maps(&old, &new, &exclude);
    if !up_diff.is_empty() {
        let down_diff = diff_maps(&new, &old, &exclude);
        up.push("// update collection data".into());
        up.push(format!(
            "unmarshal({}, collection)\n",
            pretty(&Value::Object(up_diff))
        ));
        down.push("// update collection data".into());
        down.push(format!(
            "unmarshal({}, collection)\n",
            pretty(&Value::Object(down_diff))
        ));
    }
    let (old_fields, new_fields) = (fields_of(&old), fields_of(&new));
    let has = |list: &[Value], id: &str| list.iter().any(|f| field_id(f) == id);
    for (i, f) in old_fields.iter().enumerate() {
        if has(&new_fields, field_id(f)) {
            continue;
        }
        up.push("// remove field".into());
        up.push(format!(
            "collection.fields.removeById({})\n",
            quoted(field_id(f))
        ));
        down.push("// add field".into());
        down.push(format!(
            "collection.fields.addAt({i}, new Field({}))\n",
            pretty(f)
        ));
    }
    for (i, f) in new_fields.iter().enumerate() {
        if has(&old_fields, field_id(f)) {
            continue;
        }
        up.push("// add field".into());
        up.push(format!(
            "collection.fields.addAt({i}, new Field({}))\n",
            pretty(f)
        ));
        down.push("// remove field".into());
        down.push(format!(
            "collection.fields.removeById({})\n",
            quoted(field_id(f))
        ));
    }
    for (i, f) in new_fields.iter().enumerate() {
        let Some((j, before)) = old_fields
            .iter()
            .enumerate()
            .find(|(_, o)| field_id(o) == field_id(f))
        else {
            continue;
        };
        if before == f {
            continue;
        }
        up.push("// update field".into());
        up.push(format!(
            "collection.fields.addAt({i}, new Field({}))\n",
            pretty(f)
        ));
        down.push("// update field".into());
        down.push(format!(
            "collection.fields.addAt({j}, new Field({}))\n",
            pretty(before)
        ));
    }
    if up.is_empty() && down.is_empty() {
        return None;
    }
    let id =
        |c: &Map<String, Value>| quoted(c.get("id").and_then(Value::as_str).unwrap_or_default());
    Some(format!(
        "{TYPES_DIRECTIVE}migrate((app) => {{\n  const collection = app.findCollectionByNameOrId({})\n\n  {}\n\n  return app.save(collection)\n}}, (app) => {{\n  const collection = app.findCollectionByNameOrId({})\n\n  {}\n\n  return app.save(collection)\n}})\n",
        id(&old),
        up.join("\n  ").trim(),
        id(&new),
        down.join("\n  ").trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_unchanged_collection_gives_no_update_file() {
        let c =
            json!({"id": "x", "name": "a", "fields": [{"id": "f", "name": "t"}], "updated": "1"});
        let mut later = c.clone();
        later["updated"] = json!("2");
        assert_eq!(update(&c, &later), None, "only timestamps differ");
    }

    #[test]
    fn the_update_file_lists_changed_keys_and_fields_both_ways() {
        let old = json!({"id": "x", "name": "a", "listRule": null, "fields": [{"id": "f1", "name": "t"}, {"id": "f2", "name": "gone"}]});
        let new = json!({"id": "x", "name": "a", "listRule": "", "fields": [{"id": "f1", "name": "t"}, {"id": "f3", "name": "new"}]});
        let text = update(&old, &new).expect("a change");
        for (needle, why) in [
            ("\"listRule\": \"\"", "the new rule in up"),
            ("\"listRule\": null", "the old rule in down"),
            ("collection.fields.removeById(\"f2\")", "removed field"),
            ("collection.fields.addAt(1, new Field(", "added field"),
            (
                "collection.fields.removeById(\"f3\")",
                "down removes the added field",
            ),
        ] {
            assert!(text.contains(needle), "{why}: {text}");
        }
    }
}
