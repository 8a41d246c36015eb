//! Collection and field names, parsed once into types. After parsing, a name
//! is an ASCII identifier (`^\w+$`), so it cannot carry SQL.

use std::fmt;

/// Longest accepted collection or field name, in bytes.
pub const MAX_NAME_LEN: usize = 100;

/// Field names that clash with keys every record response carries.
const RESERVED_FIELD_NAMES: &[&str] = &[
    "collectionId",
    "collectionName",
    "expand",
    "passwordConfirm",
    "oldPassword",
];

/// Names SQLite or Ferrobase keep for themselves.
/// `_realtime_outbox` is the realtime outbox table on PostgreSQL.
const RESERVED_COLLECTION_NAMES: &[&str] =
    &["_collections", "_params", "_migrations", "_realtime_outbox"];

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NameError {
    #[error("Cannot be blank.")]
    Blank,
    #[error("The length must be at most {MAX_NAME_LEN} characters.")]
    TooLong,
    #[error("Must be in a valid format.")]
    BadCharacters,
    #[error("The name {0:?} is reserved.")]
    Reserved(String),
}

impl NameError {
    /// PocketBase's validation code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            NameError::Blank => "validation_required",
            NameError::TooLong => "validation_length_out_of_range",
            NameError::BadCharacters => "validation_match_invalid",
            NameError::Reserved(_) => "validation_not_unique",
        }
    }
}

fn check_identifier(raw: &str) -> Result<(), NameError> {
    if raw.is_empty() {
        return Err(NameError::Blank);
    }
    if raw.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    if !raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(NameError::BadCharacters);
    }
    Ok(())
}

/// A validated collection name (also its table name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CollectionName(String);

impl CollectionName {
    /// Validates `raw` as a user collection name.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        check_identifier(raw)?;
        let lower = raw.to_ascii_lowercase();
        if lower.starts_with("sqlite_")
            || lower.starts_with("_fb_")
            || RESERVED_COLLECTION_NAMES.contains(&lower.as_str())
        {
            return Err(NameError::Reserved(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Wraps a name read back from `_collections` (validated when it was saved).
    pub(crate) fn trusted(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CollectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated field name (also its column name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldName(String);

impl FieldName {
    /// Validates `raw` as a field name.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        check_identifier(raw)?;
        if RESERVED_FIELD_NAMES.contains(&raw) {
            return Err(NameError::Reserved(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_or_malformed_names_are_refused() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for (raw, why) in [
            ("", "blank"),
            ("posts; DROP TABLE x", "spaces and punctuation"),
            ("a\"b", "quote"),
            ("名前", "non-ASCII"),
            (long.as_str(), "too long"),
            ("sqlite_master", "SQLite's namespace"),
            ("_collections", "system table"),
        ] {
            assert!(
                CollectionName::parse(raw).is_err(),
                "collection name {raw:?} ({why}) should be refused"
            );
        }
        for raw in ["collectionId", "expand", "a-b", ""] {
            assert!(
                FieldName::parse(raw).is_err(),
                "field name {raw:?} should be refused"
            );
        }
    }

    #[test]
    fn ordinary_names_are_accepted() {
        for raw in ["posts", "Posts_2", "_private", "a"] {
            assert!(CollectionName::parse(raw).is_ok(), "{raw}");
            assert!(FieldName::parse(raw).is_ok(), "{raw}");
        }
    }
}
