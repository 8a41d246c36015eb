//! The host side of `$mails.sendRecord…` and of the token in
//! `$apis.recordAuthResponse`: the same purpose tokens (same claims, keys
//! and lifetimes) and the same templates (the collection's override, else
//! the default, with the settings' app name and URL) as the REST account
//! flows, sent through the configured mailer. Unlike the REST
//! `request-*` endpoints, which answer before the mail goes out so they
//! never reveal an account, these wait and throw when sending fails, as
//! PocketBase's do: the hook author chose the record.

use super::{Invocation, wait};
use crate::accounts::{self, mfa::MfaOutcome};
use crate::auth::AuthError;
use crate::auth::auth_signing_key;
use crate::auth::token::{self, Purpose};
use crate::hooks::HookError;
use crate::mail::{Template, TemplateVars};
use crate::schema::{CollectionType, CompiledCollection};
use rquickjs::Ctx;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Longest address `sendRecordChangeEmail` accepts (RFC 5321's path limit).
const MAX_EMAIL_BYTES: usize = 254;
/// Longest OTP id or code `sendRecordOTP` puts in a mail.
const MAX_OTP_BYTES: usize = 256;
/// Longest alert text `sendRecordAuthAlert` puts in a mail.
const MAX_INFO_BYTES: usize = 1024;

#[derive(Deserialize)]
struct MailArgs {
    c: String,
    id: String,
    #[serde(default)]
    new_email: String,
    #[serde(default)]
    otp_id: String,
    #[serde(default)]
    pass: String,
    #[serde(default)]
    info: String,
}

fn parse<T: for<'de> Deserialize<'de>>(args: Value) -> Result<T, HookError> {
    serde_json::from_value(args)
        .map_err(|e| HookError::bad_request(format!("Invalid arguments: {e}")))
}

/// Runs one of this module's operations; `None` for any other op.
pub(super) fn run(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    op: &str,
    args: Value,
) -> Option<Result<Value, HookError>> {
    let template = match op {
        "mailVerification" => Template::Verification,
        "mailPasswordReset" => Template::PasswordReset,
        "mailEmailChange" => Template::EmailChange,
        "mailOtp" => Template::Otp,
        "mailAuthAlert" => Template::LoginAlert,
        "authToken" => return Some(parse(args).and_then(|a| auth_token(ctx, inv, a))),
        _ => return None,
    };
    Some(parse(args).and_then(|a| send(ctx, inv, template, a)))
}

fn auth_collection(inv: &Invocation, name: &str) -> Result<Arc<CompiledCollection>, HookError> {
    let collection = inv
        .host
        .registry
        .get(name)
        .ok_or_else(|| HookError::not_found("Missing collection context."))?;
    if collection.kind != CollectionType::Auth {
        return Err(HookError::bad_request(format!(
            "{:?} is not an auth collection.",
            collection.name.as_str()
        )));
    }
    Ok(collection)
}

/// The stored (email, tokenKey) of record `id`: tokens are signed with the
/// stored key, never with anything the hook passed in.
fn credentials(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    collection: &Arc<CompiledCollection>,
    id: String,
) -> Result<(String, String), HookError> {
    let (db, collection) = (inv.host.db.clone(), collection.clone());
    let found = wait(ctx, inv, async move {
        accounts::find_account(&db, &collection, "id", id).await
    });
    let (_, email, token_key, _) = found
        .map_err(account_error)?
        .ok_or_else(|| HookError::not_found(RECORD_NOT_FOUND))?;
    Ok((email, token_key))
}

const RECORD_NOT_FOUND: &str = "The record was not found (save it first).";

fn account_error(e: AuthError) -> HookError {
    match e {
        AuthError::NotFound => HookError::not_found(RECORD_NOT_FOUND),
        e => {
            tracing::warn!(target: "ferrobase::hooks", error = %e, "hook account lookup failed");
            HookError::internal()
        }
    }
}

fn plain_address(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= MAX_EMAIL_BYTES
        && raw.matches('@').count() == 1
        && !raw.starts_with('@')
        && !raw.ends_with('@')
        && !raw
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
}

/// The purpose token of `template` (verification, reset, email change) for
/// the stored record, built by the same code as the REST flows'; `None` for
/// the OTP mail and the login alert, which carry a code or the alert text.
fn token_purpose(template: Template) -> Option<Purpose> {
    match template {
        Template::Verification => Some(Purpose::Verification),
        Template::PasswordReset => Some(Purpose::PasswordReset),
        Template::EmailChange => Some(Purpose::EmailChange),
        Template::Otp | Template::LoginAlert => None,
    }
}

fn send(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    template: Template,
    args: MailArgs,
) -> Result<Value, HookError> {
    let collection = auth_collection(inv, &args.c)?;
    let (to, vars) = match token_purpose(template) {
        Some(purpose) => {
            let new_email = if purpose == Purpose::EmailChange {
                let new_email = args.new_email.trim().to_owned();
                if !plain_address(&new_email) {
                    return Err(HookError::bad_request("Invalid new email address."));
                }
                Some(new_email)
            } else {
                None
            };
            let (db, c, id) = (inv.host.db.clone(), collection.clone(), args.id);
            let outgoing = wait(ctx, inv, async move {
                accounts::outgoing_for_record(&db, &c, &id, purpose, new_email).await
            })
            .map_err(account_error)?;
            (outgoing.to.clone(), outgoing.template_vars())
        }
        None => {
            if args.otp_id.len() > MAX_OTP_BYTES || args.pass.len() > MAX_OTP_BYTES {
                return Err(HookError::bad_request("The OTP id or code is too long."));
            }
            if args.info.len() > MAX_INFO_BYTES {
                return Err(HookError::bad_request("The alert info is too long."));
            }
            let (email, _) = credentials(ctx, inv, &collection, args.id.clone())?;
            let vars = TemplateVars {
                otp: args.pass,
                otp_id: args.otp_id,
                alert_info: args.info,
                record_email: email.clone(),
                record_id: args.id,
                ..TemplateVars::default()
            };
            (email, vars)
        }
    };
    if !plain_address(&to) {
        return Err(HookError::bad_request("The record has no email address."));
    }
    deliver(ctx, inv, &collection, template, &to, vars)
}

/// Renders the template as every account mail is rendered and sends it.
fn deliver(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    collection: &CompiledCollection,
    template: Template,
    to: &str,
    vars: TemplateVars,
) -> Result<Value, HookError> {
    let settings = inv
        .host
        .settings
        .get()
        .and_then(|read| read())
        .ok_or_else(|| HookError::bad_request("Mail cannot be sent yet."))?;
    let mailer = inv
        .host
        .mailer
        .get()
        .and_then(|make| make())
        .ok_or_else(|| HookError::bad_request("Mail cannot be sent yet."))?;
    let rendered = template.render_for(&settings, &collection.options, vars);
    if let Err(e) = wait(ctx, inv, mailer.send(to, &rendered)) {
        tracing::warn!(target: "ferrobase::hooks", error = %e, collection = %collection.name, "hook account mail not sent");
        return Err(HookError::bad_request("Failed to send the mail."));
    }
    Ok(Value::Null)
}

#[derive(Deserialize)]
struct TokenArgs {
    c: String,
    id: String,
    /// The auth method the hook names (`""` skips MFA, as PocketBase).
    #[serde(default)]
    method: String,
    /// `mfaId` from the request, finishing an MFA challenge.
    #[serde(default)]
    mfa_id: String,
    /// The request's client address (the superuser IP allow-list).
    #[serde(default)]
    ip: String,
}

/// PocketBase's method names; anything else is recorded as "custom".
fn method_name(method: &str) -> &'static str {
    match method {
        "password" => "password",
        "otp" => "otp",
        "oauth2" => "oauth2",
        _ => "custom",
    }
}

/// `$apis.recordAuthResponse`'s token, with the checks PocketBase makes
/// there: a superuser only from `superuserIPs`, the collection's
/// `authRule`, then (for a named method) the MFA step, which may answer
/// `{"mfaId": …}` instead of a token. The token is a fresh auth token for
/// the stored record, as a password login issues.
fn auth_token(ctx: &Ctx<'_>, inv: &Invocation, args: TokenArgs) -> Result<Value, HookError> {
    let collection = auth_collection(inv, &args.c)?;
    let (_, token_key) = credentials(ctx, inv, &collection, args.id.clone())?;
    if collection.is_superusers() {
        let allowed = inv
            .host
            .settings
            .get()
            .and_then(|read| read())
            .is_none_or(|settings| settings.allows_superuser_from(args.ip.parse().ok()));
        if !allowed {
            return Err(forbidden("You are not allowed to perform this request."));
        }
    }
    let owner = crate::records::Caller {
        superuser: collection.is_superusers(),
        auth: Some((
            collection.id.clone(),
            collection.name.to_string(),
            args.id.clone(),
        )),
        method: "GET".into(),
        context: "default",
        ..crate::records::Caller::default()
    };
    let (db, snapshot) = (inv.host.db.clone(), inv.host.registry.snapshot());
    let (id, method) = (args.id.clone(), args.method);
    let mfa_id = Some(args.mfa_id).filter(|m| !m.is_empty());
    let checked = {
        let collection = collection.clone();
        wait(ctx, inv, async move {
            use crate::accounts::login;
            login::check_auth_rule(&db, snapshot.clone(), &collection, &id, owner.clone()).await?;
            if method.is_empty() {
                return Ok(MfaOutcome::NotRequired);
            }
            login::second_factor(
                &db,
                None,
                snapshot,
                &collection,
                owner,
                &id,
                method_name(&method),
                mfa_id,
            )
            .await
        })
    };
    match checked {
        Ok(MfaOutcome::Challenge(mfa_id)) => return Ok(json!({"mfaId": mfa_id})),
        Ok(_) => {}
        Err(AuthError::AuthRuleFailed) => {
            return Err(forbidden(
                "The request doesn't satisfy the collection requirements to authenticate.",
            ));
        }
        Err(AuthError::InvalidMfa) => {
            return Err(HookError::bad_request("Invalid or expired MFA session."));
        }
        Err(AuthError::SameMfaMethod) => {
            return Err(HookError::bad_request(
                "A different authentication method is required.",
            ));
        }
        Err(e) => {
            tracing::warn!(target: "ferrobase::hooks", error = %e, "recordAuthResponse failed");
            return Err(HookError::internal());
        }
    }
    let token = token::issue_auth(
        &collection.id,
        &args.id,
        &auth_signing_key(&collection, &token_key),
        collection.auth.auth_token.duration,
    )
    .map_err(|_| HookError::internal())?;
    Ok(json!({"token": token}))
}

fn forbidden(message: &str) -> HookError {
    HookError {
        status: 403,
        message: message.to_owned(),
        data: json!({}),
    }
}
