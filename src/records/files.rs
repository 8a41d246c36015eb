//! File fields of records: which uploads a write accepts (size and type per
//! field), how plain keys, `f+`/`+f` uploads and `f-` removals combine with
//! the stored names, and which blobs become garbage once the write commits.
//!
//! Ordering, so a record never points at a missing file (even after a crash):
//! uploads are placed durably *before* the transaction that references them
//! commits; replaced or deleted blobs are removed only *after* it commits; a
//! failed transaction removes what it had placed.

use super::access::Caller;
use crate::files::{self, BlobKey, Rejection, Staged, Store};
use crate::schema::{Collection, Field, FieldKind};
use crate::validation::{FieldError, ValidationErrors};
use serde_json::{Map, Value, json};

/// One uploaded file and the form key it came under (`docs`, `docs+`, `+docs`).
#[derive(Debug)]
pub struct Upload {
    pub key: String,
    pub file: Staged,
}

/// An accepted upload, by field and modifier, under its stored name.
#[derive(Debug, Clone)]
pub(super) struct NewFile {
    field: String,
    /// None: plain key; Some('+'): append; Some('^'): prepend.
    modifier: Option<char>,
    pub(super) name: String,
}

/// What to remove from storage once a write has committed.
#[derive(Debug, Default)]
pub struct Cleanup {
    pub blobs: Vec<BlobKey>,
    pub records: Vec<(String, String)>,
}

impl NewFile {
    /// The file field this upload goes to.
    pub(super) fn field(&self) -> &str {
        &self.field
    }
}

impl Cleanup {
    pub fn absorb(&mut self, other: Cleanup) {
        self.blobs.extend(other.blobs);
        self.records.extend(other.records);
    }

    /// Removes everything listed (best effort, failures logged).
    pub async fn run(self, store: &Store) {
        files::remove(store, self.blobs, self.records).await;
    }
}

fn split_key(key: &str) -> (&str, Option<char>) {
    if let Some(name) = key.strip_suffix('+') {
        (name, Some('+'))
    } else if let Some(name) = key.strip_prefix('+') {
        (name, Some('^'))
    } else {
        (key, None)
    }
}

fn file_field<'a>(collection: &'a Collection, caller: &Caller, name: &str) -> Option<&'a Field> {
    let field = collection.field(name)?;
    let writable = !field.hidden || caller.superuser;
    (matches!(field.kind, FieldKind::File { .. }) && writable).then_some(field)
}

/// Checks each upload against its field. Uploads under unknown or
/// non-writable keys are dropped (PocketBase ignores unknown keys).
pub(super) fn accept_uploads(
    collection: &Collection,
    caller: &Caller,
    uploads: &[Upload],
    errors: &mut ValidationErrors,
) -> Vec<NewFile> {
    let mut accepted = Vec::new();
    for upload in uploads {
        let (name, modifier) = split_key(&upload.key);
        let Some(field) = file_field(collection, caller, name) else {
            continue;
        };
        let FieldKind::File {
            max_size,
            mime_types,
            ..
        } = &field.kind
        else {
            continue;
        };
        match files::check(*max_size, mime_types, &upload.file) {
            Ok(()) => accepted.push(NewFile {
                field: name.to_owned(),
                modifier,
                name: upload.file.name.clone(),
            }),
            Err(rejection) => errors.add(name, rejection_error(rejection)),
        }
    }
    accepted
}

fn rejection_error(r: Rejection) -> FieldError {
    match r {
        Rejection::TooLarge { file, max_size } => FieldError::new(
            "validation_file_size_limit",
            format!("Failed to upload {file} - the maximum allowed file size is {max_size} bytes."),
        )
        .with_params(json!({"file": file, "maxSize": max_size})),
        Rejection::MimeType { file, allowed } => FieldError::new(
            "validation_invalid_mime_type",
            format!(
                "\"{file}\" mime type must be one of: {}.",
                allowed.join(", ")
            ),
        ),
    }
}

/// The stored names a file value holds.
pub(super) fn names_of(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Names given as a body value: a string, an array of strings, or empty.
fn given_names(raw: &Value) -> Result<Vec<String>, FieldError> {
    match raw {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(FieldError::new(
                    "validation_invalid_value",
                    "Must be a file name.",
                )),
            })
            .filter(|r| !matches!(r, Ok(s) if s.is_empty()))
            .collect(),
        _ => Err(FieldError::new(
            "validation_invalid_value",
            "Must be a file name.",
        )),
    }
}

/// Applies the body's file keys and the accepted uploads to `values`.
pub(super) fn apply(
    collection: &Collection,
    caller: &Caller,
    values: &mut Map<String, Value>,
    errors: &mut ValidationErrors,
    body: &Map<String, Value>,
    uploads: &[NewFile],
) {
    for field in &collection.fields {
        let FieldKind::File { max_select, .. } = &field.kind else {
            continue;
        };
        let name = field.name.as_str();
        if file_field(collection, caller, name).is_none() {
            continue;
        }
        let current = names_of(values.get(name));
        let of = |m: Option<char>| {
            uploads
                .iter()
                .filter(move |u| u.field == name && u.modifier == m)
                .map(|u| u.name.clone())
        };
        let mut list = current.clone();
        let plain_uploads: Vec<String> = of(None).collect();
        if body.contains_key(name) || !plain_uploads.is_empty() {
            let kept = match body.get(name).map(given_names).transpose() {
                Ok(kept) => kept.unwrap_or_default(),
                Err(e) => return errors.add(name, e),
            };
            let unknown: Vec<&String> = kept.iter().filter(|k| !current.contains(k)).collect();
            if !unknown.is_empty() {
                errors.add(
                    name,
                    FieldError::new(
                        "validation_invalid_file",
                        format!(
                            "Invalid new files: [{}].",
                            unknown
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(" ")
                        ),
                    )
                    .with_params(json!({"invalidFiles": unknown})),
                );
                continue;
            }
            list = kept;
            list.extend(plain_uploads);
        }
        let mut prepended: Vec<String> = of(Some('^')).collect();
        prepended.append(&mut list);
        list = prepended;
        list.extend(of(Some('+')));
        if let Some(raw) = body.get(&format!("{name}-")) {
            match given_names(raw) {
                Ok(gone) => list.retain(|n| !gone.contains(n)),
                Err(e) => return errors.add(name, e),
            }
        }
        let value = if field.is_multi() {
            if list.len() as u64 > *max_select {
                errors.add(
                    name,
                    FieldError::new(
                        "validation_too_many_files",
                        format!("The maximum allowed files is {max_select}."),
                    )
                    .with_params(json!({"maxSelect": max_select})),
                );
                continue;
            }
            json!(list)
        } else {
            // A single file field keeps the last file given (as PocketBase does).
            json!(list.pop().unwrap_or_default())
        };
        values.insert(name.to_owned(), value);
    }
}

/// Blobs of `collection`/`id` referenced by `before` (and the new uploads)
/// that `after` no longer references.
pub(super) fn stale(
    collection: &Collection,
    id: &str,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    uploads: &[NewFile],
) -> Vec<BlobKey> {
    let mut out = Vec::new();
    for field in &collection.fields {
        if !matches!(field.kind, FieldKind::File { .. }) {
            continue;
        }
        let name = field.name.as_str();
        let kept = names_of(after.get(name));
        let mut old = names_of(before.get(name));
        old.extend(
            uploads
                .iter()
                .filter(|u| u.field == name)
                .map(|u| u.name.clone()),
        );
        for gone in old.into_iter().filter(|n| !kept.contains(n)) {
            match BlobKey::new(&collection.id, id, &gone) {
                Ok(key) => out.push(key),
                Err(_) => tracing::warn!(name = %gone, "stored file name is not a valid key"),
            }
        }
    }
    out
}

/// Pairs accepted uploads with their keys; the others are dropped (their temp files removed).
pub(super) fn keys_for(
    collection_id: &str,
    record_id: &str,
    uploads: Vec<Upload>,
    accepted: &[NewFile],
) -> Result<Vec<(Staged, BlobKey)>, files::FilesError> {
    let mut out = Vec::new();
    for upload in uploads {
        if accepted.iter().any(|a| a.name == upload.file.name) {
            let key = BlobKey::new(collection_id, record_id, &upload.file.name)?;
            out.push((upload.file, key));
        }
    }
    Ok(out)
}
