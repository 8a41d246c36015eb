//! Glue between the account flows and the mail module: picks the template
//! (the collection's override, else the default), fills in the settings'
//! app name and URL and the flow's token or code, and sends.

use super::extract::AppState;
use crate::mail::{Mailer, Template, TemplateVars};
use crate::schema::CompiledCollection;

/// Mails a system alert to every superuser (PocketBase's
/// `sendSystemAlertToAllSuperusers`); returns the failures, joined.
pub async fn alert_superusers(
    state: &AppState,
    subject: &str,
    details: &str,
) -> Result<(), String> {
    let settings = state.settings.get();
    let emails = crate::auth::superuser_emails(&state.db)
        .await
        .map_err(|e| e.to_string())?;
    let mail = crate::mail::system_alert(&settings.meta.app_name, subject, details);
    let mailer = Mailer::new(&settings)
        .with_sendmail(crate::mail::find_sendmail(&state.config.mail.sendmail));
    let mut failures = Vec::new();
    for email in emails {
        if let Err(e) = mailer.send(&email, &mail).await {
            failures.push(format!("{email}: {e}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// Renders `template` for `collection` with `vars` (app name and URL filled in) and sends it to `to`.
pub async fn send(
    state: &AppState,
    collection: &CompiledCollection,
    template: Template,
    to: &str,
    vars: TemplateVars,
) -> Result<(), String> {
    let settings = state.settings.get();
    let rendered = template.render_for(&settings, &collection.options, vars);
    Mailer::new(&settings)
        .with_sendmail(crate::mail::find_sendmail(&state.config.mail.sendmail))
        .send(to, &rendered)
        .await
        .map_err(|e| e.to_string())
}
