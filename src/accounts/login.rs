//! Finishing a login once its first factor is proven: the collection's
//! `authRule` must admit the record, then the MFA step decides whether a
//! second, different factor is due (`mfa.rule` chooses the accounts it
//! applies to). Issuing the token, noting the origin and answering are the
//! caller's (`api::auth`).

use super::mfa::{self, MfaOutcome};
use crate::auth::AuthError;
use crate::db::Db;
use crate::records;
use crate::schema::{CompiledCollection, Snapshot};
use std::sync::Arc;

/// Refuses (403) a login or refresh of record `record_id` unless it
/// satisfies the collection's `authRule`: `null` (or a missing or malformed
/// option) admits nobody, `""` everyone, an expression the records it
/// matches. `_superusers` is exempt, as its rules are fixed in PocketBase;
/// a rule that cannot be evaluated refuses rather than admits.
pub async fn check_auth_rule(
    db: &Db,
    snapshot: Arc<Snapshot>,
    collection: &Arc<CompiledCollection>,
    record_id: &str,
    owner: records::Caller,
) -> Result<(), AuthError> {
    if collection.is_superusers() {
        return Ok(());
    }
    let Some(rule) = collection.auth.auth_rule.as_deref() else {
        return Err(AuthError::AuthRuleFailed);
    };
    if rule.trim().is_empty() {
        return Ok(());
    }
    let admitted = records::matches_rule(
        db,
        snapshot,
        collection.clone(),
        owner,
        record_id.to_owned(),
        rule.to_owned(),
    )
    .await;
    match admitted {
        Ok(true) => Ok(()),
        Ok(false) => Err(AuthError::AuthRuleFailed),
        Err(e) => {
            tracing::warn!(error = %e, collection = %collection.name, "authRule could not be evaluated; refusing");
            Err(AuthError::AuthRuleFailed)
        }
    }
}

/// Runs the MFA step for `record_id` proven by `method`, with `mfa.rule`
/// evaluated as `owner` (the record itself) would be seen. With `hooked`,
/// the `_mfas` row's create and delete run its model hooks.
#[allow(clippy::too_many_arguments)] // one login step, described field by field
pub async fn second_factor(
    db: &Db,
    hooked: Option<crate::records::Backend<'_>>,
    snapshot: Arc<Snapshot>,
    collection: &Arc<CompiledCollection>,
    owner: records::Caller,
    record_id: &str,
    method: &'static str,
    mfa_id: Option<String>,
) -> Result<MfaOutcome, AuthError> {
    let hooked = hooked.zip(snapshot.get(mfa::MFAS));
    let config = &collection.auth.mfa;
    let applies = config.enabled
        && (config.rule.trim().is_empty()
            || records::matches_rule(
                db,
                snapshot,
                collection.clone(),
                owner,
                record_id.to_owned(),
                config.rule.clone(),
            )
            .await?);
    mfa::step(
        db,
        hooked,
        collection.clone(),
        record_id,
        method,
        mfa_id,
        applies,
    )
    .await
}
