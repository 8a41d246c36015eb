//! The five auth emails, their default wording, and rendering with an auth
//! collection's overrides (`{"subject": …, "body": …}` objects stored in its
//! options). The links point at the admin UI's confirm pages, as PocketBase's
//! defaults do; apps that host their own pages override the body.

use super::render::{Escape, substitute};
use serde_json::{Value, json};
use std::fmt;

/// One of the emails an auth collection sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    Verification,
    PasswordReset,
    EmailChange,
    Otp,
    LoginAlert,
}

/// Values for the placeholders. Empty fields render as empty text.
#[derive(Clone, Default)]
pub struct TemplateVars {
    /// `{APP_NAME}`: `meta.appName`.
    pub app_name: String,
    /// `{APP_URL}`: `meta.appURL`, written without a trailing `/`.
    pub app_url: String,
    /// `{TOKEN}`: the verification / reset / email-change token.
    pub token: String,
    /// `{OTP}`: the one-time password.
    pub otp: String,
    /// `{OTP_ID}`: the id the client submits with the OTP.
    pub otp_id: String,
    /// `{ALERT_INFO}`: where the new login came from.
    pub alert_info: String,
    /// `{RECORD:email}`.
    pub record_email: String,
    /// `{RECORD:id}`.
    pub record_id: String,
}

/// A mail ready to send. `Debug` leaves the body out: it carries the token.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub subject: String,
    pub html: String,
}

impl Template {
    /// Every template, in a fixed order.
    pub const ALL: [Template; 5] = [
        Template::Verification,
        Template::PasswordReset,
        Template::EmailChange,
        Template::Otp,
        Template::LoginAlert,
    ];

    /// Where this template's override lives in an auth collection's JSON, as
    /// a JSON pointer (`/verificationTemplate`, `/otp/emailTemplate`, …).
    pub fn options_pointer(&self) -> &'static str {
        match self {
            Template::Verification => "/verificationTemplate",
            Template::PasswordReset => "/resetPasswordTemplate",
            Template::EmailChange => "/confirmEmailChangeTemplate",
            Template::Otp => "/otp/emailTemplate",
            Template::LoginAlert => "/authAlert/emailTemplate",
        }
    }

    /// This template's override in an auth collection's JSON, if present.
    pub fn override_in<'a>(&self, collection: &'a Value) -> Option<&'a Value> {
        collection.pointer(self.options_pointer())
    }

    pub fn default_subject(&self) -> &'static str {
        match self {
            Template::Verification => "Confirm your {APP_NAME} email address",
            Template::PasswordReset => "Your {APP_NAME} password reset link",
            Template::EmailChange => "Confirm your new {APP_NAME} email address",
            Template::Otp => "Your {APP_NAME} sign-in code",
            Template::LoginAlert => "New sign-in to your {APP_NAME} account",
        }
    }

    pub fn default_body(&self) -> &'static str {
        match self {
            Template::Verification => VERIFICATION_BODY,
            Template::PasswordReset => PASSWORD_RESET_BODY,
            Template::EmailChange => EMAIL_CHANGE_BODY,
            Template::Otp => OTP_BODY,
            Template::LoginAlert => LOGIN_ALERT_BODY,
        }
    }

    /// The default as the collection JSON carries it: `{"subject", "body"}`.
    pub fn default_json(&self) -> Value {
        json!({ "subject": self.default_subject(), "body": self.default_body() })
    }

    /// Renders this template for an auth collection as every account mail
    /// is rendered: the collection's override (from its `options`), else the
    /// default, with the settings' app name and URL filled in.
    pub fn render_for(
        &self,
        settings: &crate::settings::Settings,
        options: &serde_json::Map<String, Value>,
        vars: TemplateVars,
    ) -> RenderedMail {
        let vars = TemplateVars {
            app_name: settings.meta.app_name.clone(),
            app_url: settings.meta.app_url.clone(),
            ..vars
        };
        let options = Value::Object(options.clone());
        self.render(self.override_in(&options), &vars)
    }

    /// Fills the placeholders of the override's subject and body, each falling
    /// back to the default when missing or blank. Values are HTML-escaped in
    /// the body and kept on one line in the subject.
    pub fn render(&self, overrides: Option<&Value>, vars: &TemplateVars) -> RenderedMail {
        let pick = |key: &str| {
            overrides
                .and_then(|o| o.get(key))
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
        };
        let subject = pick("subject").unwrap_or(self.default_subject());
        let body = pick("body").unwrap_or(self.default_body());
        let lookup = |name: &str| vars.lookup(name);
        RenderedMail {
            subject: substitute(subject, lookup, Escape::Header)
                .trim()
                .to_owned(),
            html: substitute(body, lookup, Escape::Html),
        }
    }
}

impl TemplateVars {
    /// The value for a placeholder name (without braces), if it is one.
    fn lookup(&self, name: &str) -> Option<&str> {
        Some(match name {
            "APP_NAME" => &self.app_name,
            "APP_URL" => self.app_url.trim_end_matches('/'),
            "TOKEN" => &self.token,
            "OTP" => &self.otp,
            "OTP_ID" => &self.otp_id,
            "ALERT_INFO" => &self.alert_info,
            "RECORD:email" => &self.record_email,
            "RECORD:id" => &self.record_id,
            _ => return None,
        })
    }
}

impl fmt::Debug for RenderedMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedMail")
            .field("subject", &self.subject)
            .field("html", &format_args!("<{} bytes>", self.html.len()))
            .finish()
    }
}

const VERIFICATION_BODY: &str = r#"<p>Hello,</p>
<p>Thanks for signing up for {APP_NAME}. Please confirm that this email address belongs to you:</p>
<p><a class="btn" href="{APP_URL}/_/#/auth/confirm-verification/{TOKEN}" target="_blank" rel="noopener">Confirm my email</a></p>
<p>If you didn't create an account, you can ignore this message.</p>
<p>Best regards,<br/>The {APP_NAME} team</p>"#;

const PASSWORD_RESET_BODY: &str = r#"<p>Hello,</p>
<p>Someone asked to reset the password of your {APP_NAME} account. Use the button below to choose a new one:</p>
<p><a class="btn" href="{APP_URL}/_/#/auth/confirm-password-reset/{TOKEN}" target="_blank" rel="noopener">Choose a new password</a></p>
<p><i>If that wasn't you, ignore this message: your password stays as it is.</i></p>
<p>Best regards,<br/>The {APP_NAME} team</p>"#;

const EMAIL_CHANGE_BODY: &str = r#"<p>Hello,</p>
<p>Please confirm that you want this address to become the email of your {APP_NAME} account:</p>
<p><a class="btn" href="{APP_URL}/_/#/auth/confirm-email-change/{TOKEN}" target="_blank" rel="noopener">Use this email address</a></p>
<p><i>If you didn't ask for this change, ignore this message and nothing will change.</i></p>
<p>Best regards,<br/>The {APP_NAME} team</p>"#;

const OTP_BODY: &str = r#"<p>Hello,</p>
<p>Here is your one-time code to sign in to {APP_NAME}:</p>
<p><strong>{OTP}</strong></p>
<p><i>If you didn't try to sign in, you can ignore this message.</i></p>
<p>Best regards,<br/>The {APP_NAME} team</p>"#;

const LOGIN_ALERT_BODY: &str = r#"<p>Hello,</p>
<p>Your {APP_NAME} account was just signed in to from a new location:</p>
<p><em>{ALERT_INFO}</em></p>
<p><strong>If this wasn't you, change your {APP_NAME} password right away; that signs out every other session.</strong></p>
<p>If it was you, there is nothing to do.</p>
<p>Best regards,<br/>The {APP_NAME} team</p>"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            app_name: "Acme".into(),
            app_url: "https://acme.test/".into(),
            token: "eyJhbGciOiJIUzI1NiJ9.e30.sig".into(),
            otp: "12345678".into(),
            alert_info: "Firefox on Linux, 203.0.113.7".into(),
            record_email: "ann@example.com".into(),
            ..TemplateVars::default()
        }
    }

    #[test]
    fn defaults_fill_every_placeholder_they_use() {
        for template in Template::ALL {
            let mail = template.render(None, &vars());

            assert!(
                mail.subject.contains("Acme"),
                "{template:?} subject names the app"
            );
            for leftover in [
                "{APP_NAME}",
                "{APP_URL}",
                "{TOKEN}",
                "{OTP}",
                "{ALERT_INFO}",
            ] {
                assert!(
                    !mail.html.contains(leftover),
                    "{template:?} left {leftover}"
                );
                assert!(
                    !mail.subject.contains(leftover),
                    "{template:?} subject left {leftover}"
                );
            }
        }
    }

    #[test]
    fn links_carry_the_token_under_the_app_url_without_a_double_slash() {
        for (template, page) in [
            (Template::Verification, "confirm-verification"),
            (Template::PasswordReset, "confirm-password-reset"),
            (Template::EmailChange, "confirm-email-change"),
        ] {
            let mail = template.render(None, &vars());

            let link = format!("https://acme.test/_/#/auth/{page}/eyJhbGciOiJIUzI1NiJ9.e30.sig");
            assert!(mail.html.contains(&link), "{template:?} links to {page}");
        }
    }

    #[test]
    fn otp_and_alert_info_appear_in_their_templates() {
        assert!(
            Template::Otp
                .render(None, &vars())
                .html
                .contains("12345678")
        );
        let alert = Template::LoginAlert.render(None, &vars());
        assert!(alert.html.contains("Firefox on Linux, 203.0.113.7"));
    }

    #[test]
    fn override_replaces_subject_and_body_and_blank_fields_fall_back() {
        let full = json!({"subject": "Hi {RECORD:email}", "body": "<b>{OTP}</b>"});
        let blank_subject = json!({"subject": "  ", "body": "<b>{OTP}</b>"});

        let mail = Template::Otp.render(Some(&full), &vars());
        let fallback = Template::Otp.render(Some(&blank_subject), &vars());

        assert_eq!(mail.subject, "Hi ann@example.com");
        assert_eq!(mail.html, "<b>12345678</b>");
        assert_eq!(
            fallback.subject, "Your Acme sign-in code",
            "blank subject → default"
        );
        assert_eq!(fallback.html, "<b>12345678</b>");
    }

    #[test]
    fn override_is_found_in_collection_json() {
        let collection = json!({
            "verificationTemplate": {"subject": "V", "body": "v"},
            "otp": {"emailTemplate": {"subject": "O", "body": "o"}},
            "authAlert": {"emailTemplate": {"subject": "A", "body": "a"}},
        });

        for (template, subject) in [
            (Template::Verification, "V"),
            (Template::Otp, "O"),
            (Template::LoginAlert, "A"),
        ] {
            let found = template.override_in(&collection);
            assert_eq!(
                template.render(found, &vars()).subject,
                subject,
                "{template:?}"
            );
        }
        assert!(Template::PasswordReset.override_in(&collection).is_none());
    }

    #[test]
    fn values_are_escaped_in_the_body_but_not_in_the_subject() {
        let vars = TemplateVars {
            app_name: r#"Tom & "Jerry" <script>"#.into(),
            ..vars()
        };

        let mail = Template::Verification.render(None, &vars);

        assert!(
            mail.html
                .contains("Tom &amp; &quot;Jerry&quot; &lt;script&gt;")
        );
        assert!(!mail.html.contains("<script>"));
        assert_eq!(
            mail.subject,
            r#"Confirm your Tom & "Jerry" <script> email address"#
        );
    }

    #[test]
    fn a_value_that_looks_like_a_placeholder_is_not_expanded_again() {
        let vars = TemplateVars {
            app_name: "{TOKEN}".into(),
            record_email: "{APP_URL}{OTP}".into(),
            ..vars()
        };
        let over =
            json!({"subject": "{APP_NAME} {RECORD:email}", "body": "{APP_NAME}|{RECORD:email}"});

        let mail = Template::Verification.render(Some(&over), &vars);

        assert_eq!(mail.subject, "{TOKEN} {APP_URL}{OTP}");
        assert_eq!(mail.html, "{TOKEN}|{APP_URL}{OTP}");
    }

    #[test]
    fn subject_stays_on_one_line() {
        let vars = TemplateVars {
            app_name: "Acme\r\nBcc: victim@example.com".into(),
            ..vars()
        };

        let mail = Template::Otp.render(None, &vars);

        assert!(!mail.subject.contains(['\r', '\n']), "{:?}", mail.subject);
    }

    #[test]
    fn debug_output_does_not_show_the_body() {
        let mail = Template::Verification.render(None, &vars());

        assert!(
            !format!("{mail:?}").contains("eyJ"),
            "the token must not reach logs"
        );
    }
}
