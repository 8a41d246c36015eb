//! `GET|POST /api/oauth2-redirect`: where a provider sends the browser back
//! after the SDK's popup flow. The `state` is the SDK's realtime client id;
//! the code (or error) is pushed to that client's `@oauth2` subscription,
//! and the browser is sent to the admin panel's success or failure page.

use super::extract::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use std::collections::HashMap;

const SUCCESS: &str = "../_/#/auth/oauth2-redirect-success";
const FAILURE: &str = "../_/#/auth/oauth2-redirect-failure";
/// The realtime topic the SDK subscribes to for the popup flow.
pub const OAUTH2_TOPIC: &str = "@oauth2";

fn redirect(req: &HttpRequest, ok: bool) -> HttpResponse {
    let status = if req.method() == actix_web::http::Method::POST {
        actix_web::http::StatusCode::SEE_OTHER
    } else {
        actix_web::http::StatusCode::TEMPORARY_REDIRECT
    };
    HttpResponse::build(status)
        .insert_header((header::LOCATION, if ok { SUCCESS } else { FAILURE }))
        .finish()
}

fn deliver(req: &HttpRequest, state: &AppState, params: &HashMap<String, String>) -> HttpResponse {
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let (client, code, error) = (get("state"), get("code"), get("error"));
    if client.is_empty() {
        return redirect(req, false);
    }
    let mut data = json!({"state": client, "code": code});
    if !error.is_empty() {
        data["error"] = json!(error);
    }
    let ip = super::client_ip::of(req, state);
    let sent = state
        .realtime
        .send_to(&client, ip, OAUTH2_TOPIC, data.to_string());
    redirect(req, sent && error.is_empty() && !code.is_empty())
}

pub async fn from_query(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let params = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    deliver(&req, &state, &params)
}

pub async fn from_form(
    req: HttpRequest,
    form: Option<web::Form<HashMap<String, String>>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let mut params = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    if let Some(form) = form {
        params.extend(form.into_inner());
    }
    deliver(&req, &state, &params)
}
