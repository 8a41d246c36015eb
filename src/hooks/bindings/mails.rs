//! The host side of `$mails.sendRecord…` and of the token in
//! `$apis.recordAuthResponse`: the same purpose tokens (same claims, keys
//! and lifetimes) and the same templates (the collection's override, else
//! the default, with the settings' app name and URL) as the REST account
//! flows, sent through the configured mailer. Unlike the REST
//! `request-*` endpoints, which answer before the mail goes out so they
//! never reveal an account, these wait and throw when sending fails, as
//! PocketBase's do: the hook author chose the record.

use super::{Invocation, wait};
use crate::accounts::mfa::MfaOutcome;
use crate::auth::AuthError;
use crate::auth::token::{self, Purpose};
use crate::auth::{auth_signing_key, purpose_duration, purpose_key};
use crate::db::{DbError, ident};
use crate::hooks::HookError;
use crate::mail::{Template, TemplateVars};
use crate::records::RecordError;
use crate::schema::{CollectionType, CompiledCollection};
use rquickjs::Ctx;
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Longest address `sendRecordChangeEmail` accepts (RFC 5321's path limit).
const MAX_EMAIL_BYTES: usize = 254;
/// Longest OTP id or code `sendRecordOTP` puts in a mail.
const MAX_OTP_BYTES: usize = 256;

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
    collection: &CompiledCollection,
    id: String,
) -> Result<(String, String), HookError> {
    let sql = format!(
        "SELECT email, tokenKey FROM {} WHERE id = ?1",
        ident(collection.name.as_str())
    );
    let db = inv.host.db.clone();
    let found: Result<Option<(String, String)>, RecordError> = wait(ctx, inv, async move {
        db.read(move |conn| {
            conn.query_row(&sql, [id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(|e| RecordError::Db(DbError::Sqlite(e)))
        })
        .await
    });
    found
        .map_err(inv.host.map_error)?
        .ok_or_else(|| HookError::not_found("The record was not found (save it first)."))
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

fn purpose_token(
    collection: &CompiledCollection,
    purpose: Purpose,
    id: &str,
    token_key: &str,
    extra: Map<String, Value>,
) -> Result<String, HookError> {
    token::issue_purpose(
        purpose,
        &collection.id,
        id,
        extra,
        &purpose_key(collection, purpose, token_key),
        purpose_duration(collection, purpose),
    )
    .map_err(|_| HookError::internal())
}

fn send(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    template: Template,
    args: MailArgs,
) -> Result<Value, HookError> {
    let collection = auth_collection(inv, &args.c)?;
    let (email, token_key) = credentials(ctx, inv, &collection, args.id.clone())?;
    let id = args.id;
    let mut extra = Map::new();
    extra.insert("email".into(), json!(email));
    let (to, vars) = match template {
        Template::Verification | Template::PasswordReset => {
            let purpose = if matches!(template, Template::Verification) {
                Purpose::Verification
            } else {
                Purpose::PasswordReset
            };
            let token = purpose_token(&collection, purpose, &id, &token_key, extra)?;
            (email.clone(), token_vars(token, &email, &id))
        }
        Template::EmailChange => {
            let new_email = args.new_email.trim().to_owned();
            if !plain_address(&new_email) {
                return Err(HookError::bad_request("Invalid new email address."));
            }
            extra.insert("newEmail".into(), json!(new_email));
            let token = purpose_token(&collection, Purpose::EmailChange, &id, &token_key, extra)?;
            (new_email, token_vars(token, &email, &id))
        }
        _ => {
            if args.otp_id.len() > MAX_OTP_BYTES || args.pass.len() > MAX_OTP_BYTES {
                return Err(HookError::bad_request("The OTP id or code is too long."));
            }
            let vars = TemplateVars {
                otp: args.pass,
                otp_id: args.otp_id,
                record_email: email.clone(),
                record_id: id,
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

fn token_vars(token: String, email: &str, id: &str) -> TemplateVars {
    TemplateVars {
        token,
        record_email: email.to_owned(),
        record_id: id.to_owned(),
        ..TemplateVars::default()
    }
}

/// Renders the template as `api::mailer::send` does and sends it.
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
    let vars = TemplateVars {
        app_name: settings.meta.app_name.clone(),
        app_url: settings.meta.app_url.clone(),
        ..vars
    };
    let options = Value::Object(collection.options.clone());
    let rendered = template.render(template.override_in(&options), &vars);
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
        let settings = inv.host.settings.get().and_then(|read| read());
        let list = settings
            .map(|s| s.superuser_ips.clone())
            .unwrap_or_default();
        if !list.is_empty() && !ip_listed(&list, &args.ip) {
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

/// Whether `ip` is one of `list`'s addresses or inside one of its subnets.
fn ip_listed(list: &[String], ip: &str) -> bool {
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    let bits_of = |a: std::net::IpAddr| match a.to_canonical() {
        std::net::IpAddr::V4(v4) => (u128::from(v4.to_bits()), 32u32),
        std::net::IpAddr::V6(v6) => (v6.to_bits(), 128u32),
    };
    let (ip, width) = bits_of(ip);
    list.iter()
        .filter_map(|entry| crate::settings::parse_ip_or_subnet(entry))
        .any(|(net, prefix)| {
            let (net, net_width) = bits_of(net);
            let prefix = u32::from(prefix).min(width);
            if net_width != width {
                return false;
            }
            let shift = width - prefix;
            prefix == 0 || (ip >> shift) == (net >> shift)
        })
}
