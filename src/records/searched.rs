//! A `search` parameter translated for one caller: the condition ANDed into
//! a list's (or aggregate's) rule-checked WHERE, the JOIN that scores matches
//! for `sort=@rank`, and the field error every refusal becomes. The MATCH text
//! itself comes from `crate::search::to_match`; the index from `search::index`.

use super::RecordError;
use super::access::Caller;
use crate::schema::CompiledCollection;

/// A search translated for one caller: the WHERE condition (one `?`, the
/// MATCH text) and, for `sort=@rank`, a JOIN that scores every match once
/// (its `?`s: the weights, then the MATCH text). A per-row BM25 subquery
/// would rerun the whole search for each row.
pub(super) struct Searched {
    pub(super) condition: String,
    pub(super) matched: String,
    pub(super) rank_join: String,
    pub(super) weights: Vec<f64>,
}

pub(super) fn search_error(message: String) -> RecordError {
    let mut errors = crate::validation::ValidationErrors::new();
    errors.add(
        "search",
        crate::validation::FieldError::new("validation_invalid_search", message),
    );
    RecordError::Invalid {
        message: "Invalid search.",
        errors,
    }
}

/// Translates `search` for `caller` (`None` when empty). Only columns the
/// caller could filter on are searched: hidden ones (and an auth
/// collection's `email`) for superusers only.
pub(super) fn searched(
    collection: &CompiledCollection,
    caller: &Caller,
    search: &str,
) -> Result<Option<Searched>, RecordError> {
    if search.trim().is_empty() {
        return Ok(None);
    }
    let Some(spec) = crate::search::SearchSpec::of(&collection.def) else {
        return Err(search_error(
            "This collection has no searchable fields.".into(),
        ));
    };
    let columns: Vec<usize> = (0..spec.fields.len())
        .filter(|&i| caller.superuser || spec.public[i])
        .collect();
    if columns.is_empty() {
        return Err(search_error(
            "This collection has no searchable fields.".into(),
        ));
    }
    let matched =
        crate::search::to_match(search, &columns).map_err(|e| search_error(e.to_string()))?;
    let fts = crate::db::ident(&crate::search::fts_table(&collection.def.id));
    let table = crate::db::ident(collection.name.as_str());
    let weights = vec!["?"; spec.weights.len()].join(", ");
    Ok(Some(Searched {
        condition: format!("{table}.rowid IN (SELECT rowid FROM {fts} WHERE {fts} MATCH ?)"),
        // `_rank…` names cannot clash with fields (those start with a letter).
        rank_join: format!(
            " JOIN (SELECT rowid AS _rank_rowid, bm25({fts}, {weights}) AS _rank_score \
             FROM {fts} WHERE {fts} MATCH ?) AS _rank ON _rank._rank_rowid = {table}.rowid"
        ),
        matched,
        weights: spec.weights,
    }))
}

impl Searched {
    /// The FTS5 MATCH text (bound, never spliced).
    pub(super) fn matched_text(&self) -> &str {
        &self.matched
    }
}

/// Splits `@rank` / `-@rank` out of a sort: the rest, and whether (and
/// which way) to order by rank.
pub(super) fn split_rank(sort: &str) -> (String, Option<bool>) {
    let mut rank = None;
    let rest: Vec<&str> = sort
        .split(',')
        .filter(|item| match item.trim() {
            "@rank" | "+@rank" => {
                rank.get_or_insert(false);
                false
            }
            "-@rank" => {
                rank.get_or_insert(true);
                false
            }
            _ => true,
        })
        .collect();
    (rest.join(","), rank)
}

#[cfg(test)]
mod tests {
    use super::split_rank;

    #[test]
    fn rank_is_split_out_of_a_sort_wherever_it_stands() {
        for (sort, rest, rank, why) in [
            ("", "", None, "no sort"),
            ("@rank", "", Some(false), "best first"),
            ("+@rank", "", Some(false), "explicit ascending"),
            ("-@rank", "", Some(true), "worst first"),
            (
                "-created,@rank",
                "-created",
                Some(false),
                "after another field",
            ),
            (
                "@rank,-created,title",
                "-created,title",
                Some(false),
                "before others",
            ),
            ("@rank,-@rank", "", Some(false), "the first one wins"),
            ("rank", "rank", None, "a field named rank is a field"),
        ] {
            assert_eq!(split_rank(sort), (rest.to_owned(), rank), "{sort:?}: {why}");
        }
    }
}
