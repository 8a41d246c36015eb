//! System alerts mailed to every superuser when something that runs with no
//! one watching fails (today: an automatic backup), as PocketBase 0.40 does.
//! The subject reads `[APP system alert] SUBJECT`; the details are shown
//! preformatted. Only rendering lives here; the API layer finds recipients.

use super::render::{Escape, substitute};
use super::template::RenderedMail;

const ALERT_SUBJECT: &str = "[{APP_NAME} system alert] {SUBJECT}";
const ALERT_HTML: &str = "<p>{APP_NAME} ran into a problem:</p>\n\
<p style=\"padding:15px;background:#e4e8ec;border-radius:5px;white-space:pre-wrap\"><strong>{DETAILS}</strong></p>\n\
<p>The logs in the admin panel may tell more.</p>\n";

/// The alert mail for `subject` and `details` (escaped; placeholders inside
/// them are not expanded again).
pub fn system_alert(app_name: &str, subject: &str, details: &str) -> RenderedMail {
    let lookup = |name: &str| match name {
        "APP_NAME" => Some(app_name),
        "SUBJECT" => Some(subject),
        "DETAILS" => Some(details),
        _ => None,
    };
    RenderedMail {
        subject: substitute(ALERT_SUBJECT, lookup, Escape::Header),
        html: substitute(ALERT_HTML, lookup, Escape::Html),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_name_the_app_and_escape_what_they_quote() {
        let mail = system_alert(
            "Acme <b>",
            "Autobackup failure",
            "disk full\n{DETAILS} <script>",
        );

        assert_eq!(mail.subject, "[Acme <b> system alert] Autobackup failure");
        assert!(mail.html.contains("Acme &lt;b&gt;"), "{}", mail.html);
        assert!(
            mail.html.contains("disk full\n{DETAILS} &lt;script&gt;"),
            "{}",
            mail.html
        );
    }
}
