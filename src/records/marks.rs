//! Search marks for `fields=title:highlight` / `body:snippet`: for the
//! records of a searched page, FTS5's `highlight()` (the whole value with
//! matches in `<mark>…</mark>`) or `snippet()` (a short excerpt around the
//! matches). The result is HTML, ready to show: the stored text is escaped
//! and the only tags in it are the marks, so markup someone stored in a
//! record never runs in a page that shows its marks. Only searchable fields
//! the caller may search are marked.

use super::RecordError;
use super::access::Caller;
use super::searched::{search_error, searched};
use crate::db::{Db, ident};
use crate::rules::SqlValue;
use crate::schema::CompiledCollection;
use crate::search::{SearchSpec, fts_table};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Tokens in a snippet (FTS5 allows at most 64).
pub const SNIPPET_TOKENS: i64 = 16;

/// What FTS5 puts around a match (private-use characters), turned into
/// `<mark>` / `</mark>` once the text around them is escaped.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// The marked text as HTML: `&`, `<`, `>`, `"` and `'` escaped, the match
/// markers made `<mark>` tags.
fn marked_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            OPEN => out.push_str("<mark>"),
            CLOSE => out.push_str("</mark>"),
            c => crate::html::push_escaped(&mut out, c),
        }
    }
    out
}

/// Marked values by record id, then by field name. `wanted` pairs a field
/// name with whether it asks for a snippet (else a highlight).
pub async fn search_marks(
    db: &Db,
    collection: Arc<CompiledCollection>,
    caller: &Caller,
    search: &str,
    ids: Vec<String>,
    wanted: Vec<(String, bool)>,
) -> Result<HashMap<String, Map<String, Value>>, RecordError> {
    let Some(searched) = searched(&collection, caller, search)? else {
        return Ok(HashMap::new());
    };
    let spec = SearchSpec::of(&collection.def).ok_or_else(|| search_error("no index".into()))?;
    let fts = ident(&fts_table(&collection.def.id));
    let mut columns = Vec::new();
    for (name, snippet) in &wanted {
        let Some(i) = spec.fields.iter().position(|f| f == name) else {
            return Err(search_error(format!("{name:?} is not a searchable field.")));
        };
        if !(caller.superuser || spec.public[i]) {
            return Err(search_error(format!("{name:?} is not a searchable field.")));
        }
        let sql = if *snippet {
            format!("snippet({fts}, {i}, '{OPEN}', '{CLOSE}', '…', {SNIPPET_TOKENS})")
        } else {
            format!("highlight({fts}, {i}, '{OPEN}', '{CLOSE}')")
        };
        columns.push((name.clone(), sql));
    }
    if columns.is_empty() || ids.is_empty() {
        return Ok(HashMap::new());
    }
    let select: Vec<&str> = columns.iter().map(|(_, s)| s.as_str()).collect();
    // FTS5 wants its table's own name (not an alias) left of MATCH.
    let sql = format!(
        "SELECT t.id, {} FROM {fts} JOIN {} AS t ON t.rowid = {fts}.rowid \
         WHERE {fts} MATCH ? AND t.id IN (SELECT value FROM json_each(?))",
        select.join(", "),
        ident(collection.name.as_str()),
    );
    let params = [
        SqlValue::Text(searched.matched_text().to_owned()),
        SqlValue::Text(Value::from(ids).to_string()),
    ];
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = HashMap::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let mut marked = Map::new();
            for (i, (name, _)) in columns.iter().enumerate() {
                let text: Option<String> = row.get(i + 1)?;
                let html = marked_html(&text.unwrap_or_default());
                marked.insert(name.clone(), Value::String(html));
            }
            out.insert(id, marked);
        }
        Ok::<_, RecordError>(out)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_markup_is_escaped_and_only_marks_are_tags() {
        let text = format!("{OPEN}<img src=x onerror=alert(1)>{CLOSE} & \"q\" 'a'");
        assert_eq!(
            marked_html(&text),
            "<mark>&lt;img src=x onerror=alert(1)&gt;</mark> &amp; &quot;q&quot; &#39;a&#39;"
        );
    }
}
