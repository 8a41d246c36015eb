//! An auth collection's flows: password, OTP and OAuth2 sign-in, refresh,
//! verification, password reset, email change, auth methods, and (for
//! superusers) impersonation. Only auth collections get these paths.

use super::Audience;
use super::collection::{id_param, operation, responses_with};
use super::components::{
    any_token, json_response, no_content, optional_token, reference, superuser_only,
};
use crate::schema::CompiledCollection;
use serde_json::{Map, Value, json};

/// One auth flow: `POST /api/collections/{name}/{action}`.
struct Flow {
    action: &'static str,
    summary: &'static str,
    body: Value,
    /// `None`: 204.
    returns_auth: bool,
    needs_token: bool,
}

fn string_props(names: &[&str]) -> Value {
    let props: Map<String, Value> = names
        .iter()
        .map(|n| ((*n).to_owned(), json!({"type": "string"})))
        .collect();
    json!({"type": "object", "required": names, "properties": props})
}

fn flows() -> Vec<Flow> {
    let flow = |action, summary, body, returns_auth, needs_token| Flow {
        action,
        summary,
        body,
        returns_auth,
        needs_token,
    };
    let mut password = string_props(&["identity", "password"]);
    password["properties"]["identityField"] = json!({"type": "string"});
    let mut oauth2 = string_props(&["provider", "code", "redirectURL"]);
    oauth2["properties"]["codeVerifier"] = json!({"type": "string"});
    oauth2["properties"]["createData"] = json!({"type": "object"});
    vec![
        flow(
            "auth-with-password",
            "Sign in with identity and password",
            password,
            true,
            false,
        ),
        flow(
            "auth-refresh",
            "Get a fresh token for the signed-in record",
            json!({"type": "object"}),
            true,
            true,
        ),
        flow(
            "request-otp",
            "Email a one-time password",
            string_props(&["email"]),
            false,
            false,
        ),
        flow(
            "auth-with-otp",
            "Sign in with a one-time password",
            string_props(&["otpId", "password"]),
            true,
            false,
        ),
        flow(
            "auth-with-oauth2",
            "Sign in with an OAuth2 provider's code",
            oauth2,
            true,
            false,
        ),
        flow(
            "request-verification",
            "Email a verification link",
            string_props(&["email"]),
            false,
            false,
        ),
        flow(
            "confirm-verification",
            "Confirm a verification token",
            string_props(&["token"]),
            false,
            false,
        ),
        flow(
            "request-password-reset",
            "Email a password reset link",
            string_props(&["email"]),
            false,
            false,
        ),
        flow(
            "confirm-password-reset",
            "Set a new password with a reset token",
            string_props(&["token", "password", "passwordConfirm"]),
            false,
            false,
        ),
        flow(
            "request-email-change",
            "Email a confirmation to a new address",
            string_props(&["newEmail"]),
            false,
            true,
        ),
        flow(
            "confirm-email-change",
            "Confirm an email change",
            string_props(&["token", "password"]),
            false,
            false,
        ),
    ]
}

pub(super) fn auth_paths(
    paths: &mut Map<String, Value>,
    c: &CompiledCollection,
    audience: Audience,
) {
    let name = c.name.as_str();
    let auth_response = reference("schemas", &format!("{name}.AuthResponse"));
    for flow in flows() {
        let security = if flow.needs_token {
            any_token()
        } else {
            optional_token()
        };
        let mut op = operation(c, flow.action, flow.summary, "", security);
        op["requestBody"] = json!({"required": !flow.needs_token,
            "content": {"application/json": {"schema": flow.body}}});
        op["responses"] = if flow.returns_auth {
            responses_with(
                "200",
                json_response("Signed in.", auth_response.clone()),
                &[400, 401, 403, 429],
            )
        } else if flow.action == "request-otp" {
            responses_with(
                "200",
                json_response("The OTP id.", string_props(&["otpId"])),
                &[400, 403, 429],
            )
        } else {
            responses_with("204", no_content(), &[400, 401, 403, 429])
        };
        paths.insert(
            format!("/api/collections/{name}/{}", flow.action),
            json!({"post": op}),
        );
    }
    let mut methods = operation(
        c,
        "auth-methods",
        "List the enabled sign-in methods",
        "",
        optional_token(),
    );
    methods["responses"] = responses_with(
        "200",
        json_response(
            "Password, OTP, MFA and OAuth2 settings.",
            json!({"type": "object"}),
        ),
        &[400],
    );
    paths.insert(
        format!("/api/collections/{name}/auth-methods"),
        json!({"get": methods}),
    );
    if audience == Audience::Superuser {
        let mut op = operation(
            c,
            "impersonate",
            "Get a token for any record (superusers)",
            "",
            superuser_only(),
        );
        op["parameters"] = json!([id_param()]);
        op["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"duration": {"type": "integer", "minimum": 0,
            "description": "Token lifetime in seconds; 0 for the collection's default."}}}}}});
        op["responses"] = responses_with(
            "200",
            json_response("The token.", auth_response),
            &[400, 401, 403, 404],
        );
        paths.insert(
            format!("/api/collections/{name}/impersonate/{{id}}"),
            json!({"post": op}),
        );
    }
}
