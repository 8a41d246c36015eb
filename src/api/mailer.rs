//! Glue between the account flows and the mail module: picks the template
//! (the collection's override, else the default), fills in the settings'
//! app name and URL and the flow's token, and sends.

use super::extract::AppState;
use crate::auth::flows::Outgoing;
use crate::mail::{Mailer, Template, TemplateVars};
use crate::schema::CompiledCollection;

/// Which account email to send.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Verification,
    PasswordReset,
    EmailChange,
}

impl Kind {
    fn template(self) -> Template {
        match self {
            Kind::Verification => Template::Verification,
            Kind::PasswordReset => Template::PasswordReset,
            Kind::EmailChange => Template::EmailChange,
        }
    }

    /// The collection option that may override the template.
    fn option_key(self) -> &'static str {
        match self {
            Kind::Verification => "verificationTemplate",
            Kind::PasswordReset => "resetPasswordTemplate",
            Kind::EmailChange => "confirmEmailChangeTemplate",
        }
    }
}

/// Renders and sends one account email.
pub async fn send(state: &AppState, collection: &CompiledCollection, kind: Kind, outgoing: &Outgoing) -> Result<(), String> {
    let settings = state.settings.get();
    let vars = TemplateVars {
        app_name: settings.meta.app_name.clone(),
        app_url: settings.meta.app_url.clone(),
        token: outgoing.token.clone(),
        record_email: outgoing.to.clone(),
        ..TemplateVars::default()
    };
    let rendered = kind.template().render(collection.options.get(kind.option_key()), &vars);
    Mailer::new(&settings).send(&outgoing.to, &rendered).await.map_err(|e| e.to_string())
}
