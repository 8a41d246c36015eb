//! Opt-in request rate limiting with PocketBase's rule labels (settings
//! `rateLimits`). Picks the one rule that applies to a request — by
//! collection action, then method and path, then path prefix — counts
//! requests per (rule, audience, client IP) in fixed in-memory windows, and
//! answers 429 in the error envelope once a window is spent. Rules are
//! validated by `settings`; failed-login throttling lives in `auth::throttle`.
//!
//! The limiter runs inside the route table, not in front of it: every route
//! is registered through [`limited`] with its [`Action`] (`api::configure`),
//! so a route cannot be added without deciding its limit, and the action and
//! collection come from what the router matched (the `{c}` segment), never
//! from parsing the raw path a second time. Path labels are compared with
//! the path as the router decoded it (`/%61pi/health` is `/api/health`), so
//! no spelling of a URL reaches a handler around its limit.
//!
//! Lookup order, first hit wins: `<collection>:<action>`, `*:<action>`,
//! `METHOD /exact/path`, `/exact/path`, then labels ending in `/` as path
//! prefixes, longest first (with a method before without). Superusers and
//! `excludedIPs` are never limited. When rate limiting is disabled a request
//! costs one read of the settings `Arc`.

use super::AppState;
use super::error::ApiError;
use crate::auth::Principal;
use crate::settings::{RateLimitRule, Settings};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpRequest, ResponseError, Route, web};
use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Windows tracked at once. When full, expired windows are swept; if it is
/// still full, requests that would open a new window pass uncounted, so a
/// flood of distinct addresses cannot grow memory without bound.
pub const MAX_TRACKED_WINDOWS: usize = 100_000;
/// How often expired windows are swept even when the map is not full.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Longest window honoured (one year); keeps `Instant` arithmetic in range.
const MAX_WINDOW_SECS: u64 = 366 * 24 * 60 * 60;

/// What a route does, in PocketBase's rate-limit vocabulary: `*:<action>`
/// and `<collection>:<action>` labels match it. [`Action::PathOnly`] routes
/// are limited by path labels alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    PathOnly,
    List,
    View,
    Create,
    Update,
    Delete,
    File,
    ListAuthMethods,
    AuthRefresh,
    AuthWithPassword,
    AuthWithOAuth2,
    AuthWithOtp,
    RequestOtp,
    RequestPasswordReset,
    ConfirmPasswordReset,
    RequestVerification,
    ConfirmVerification,
    RequestEmailChange,
    ConfirmEmailChange,
}

impl Action {
    /// The action names a label may use, most specific first (`auth`
    /// covers every auth-with-* action, after the specific one).
    fn names(self) -> &'static [&'static str] {
        match self {
            Action::PathOnly => &[],
            Action::List => &["list"],
            Action::View => &["view"],
            Action::Create => &["create"],
            Action::Update => &["update"],
            Action::Delete => &["delete"],
            Action::File => &["file"],
            Action::ListAuthMethods => &["listAuthMethods"],
            Action::AuthRefresh => &["authRefresh"],
            Action::AuthWithPassword => &["authWithPassword", "auth"],
            Action::AuthWithOAuth2 => &["authWithOAuth2", "auth"],
            Action::AuthWithOtp => &["authWithOTP", "auth"],
            Action::RequestOtp => &["requestOTP"],
            Action::RequestPasswordReset => &["requestPasswordReset"],
            Action::ConfirmPasswordReset => &["confirmPasswordReset"],
            Action::RequestVerification => &["requestVerification"],
            Action::ConfirmVerification => &["confirmVerification"],
            Action::RequestEmailChange => &["requestEmailChange"],
            Action::ConfirmEmailChange => &["confirmEmailChange"],
        }
    }
}

/// A route with its rate limit attached; the only kind the route table
/// (`api::resource`) accepts.
pub struct Limited(Route);

impl Limited {
    pub fn into_route(self) -> Route {
        self.0
    }
}

/// Puts `route` behind the rate limiter as `action`. The collection of a
/// collection action is the route's `{c}` segment.
pub fn limited(route: Route, action: Action) -> Limited {
    Limited(route.wrap(from_fn(move |req, next| rate_limit(action, req, next))))
}

/// Refuses requests over the configured rate limits (see the module docs).
async fn rate_limit(
    action: Action,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>().cloned() {
        let settings = state.settings.get();
        let limits = &settings.rate_limits;
        if limits.enabled
            && !limits.rules.is_empty()
            && !allowed(&state, &settings, &req, action).await
        {
            let response = ApiError::too_many_requests().error_response();
            return Ok(req.into_response(response));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Whether `req` may proceed; counts it against the rule that applies.
async fn allowed(
    state: &AppState,
    settings: &Settings,
    req: &ServiceRequest,
    action: Action,
) -> bool {
    let limits = &settings.rate_limits;
    let ip = client_ip(settings, req.headers(), req.peer_addr());
    if is_excluded(&limits.excluded_ips, ip) {
        return true;
    }
    let actions = action.names();
    let collection = if actions.is_empty() {
        None
    } else {
        req.match_info()
            .get("c")
            .and_then(|c| state.registry.get(c))
    };
    let view = RequestView {
        method: req.method().as_str(),
        // As the router decoded it, so every spelling of a route counts alike.
        path: req.match_info().as_str(),
        collection: collection.as_ref().map(|c| c.name.as_str()),
        actions,
    };
    // No rule for any audience: skip resolving the token (a database read).
    if select(&limits.rules, &view, None).is_none() {
        return true;
    }
    let known = actix_web::HttpMessage::extensions(req)
        .get::<Principal>()
        .cloned();
    let who = match (known, authorization(req)) {
        (Some(who), _) => Some(who),
        (None, None) => None,
        (None, Some(header)) => {
            let who = crate::auth::resolve_token(&state.db, &state.registry, &header).await;
            // Keep it for the handler's `Principal` extractor: one lookup per request.
            actix_web::HttpMessage::extensions_mut(req).insert(who.clone());
            Some(who)
        }
    };
    let Some(audience) = audience_of(who.as_ref()) else {
        return true;
    };
    count(state, &limits.rules, &view, audience, ip)
}

/// One member of a batch, described as the single request it stands for.
pub(crate) struct Member<'a> {
    /// `POST`, `PATCH` or `DELETE` (an upsert as what it turned into).
    pub method: &'a str,
    /// The member's URL path, without its query.
    pub path: &'a str,
    /// The collection's name (not its id).
    pub collection: &'a str,
    pub action: Action,
}

/// Counts a batch member against the rules its single request would meet
/// (`<collection>:<action>`, `*:<action>`, its method and path labels),
/// as PocketBase does inside each record handler; the batch's own
/// `/api/batch` label was already counted by the router. Members share the
/// windows of single requests, so batching cannot multiply a limit.
pub(crate) fn allow_member(
    state: &AppState,
    req: &HttpRequest,
    who: &Principal,
    member: &Member<'_>,
) -> bool {
    let settings = state.settings.get();
    let limits = &settings.rate_limits;
    if !limits.enabled || limits.rules.is_empty() {
        return true;
    }
    let ip = client_ip(&settings, req.headers(), req.peer_addr());
    if is_excluded(&limits.excluded_ips, ip) {
        return true;
    }
    let Some(audience) = audience_of(Some(who)) else {
        return true;
    };
    let view = RequestView {
        method: member.method,
        path: member.path,
        collection: Some(member.collection),
        actions: member.action.names(),
    };
    count(state, &limits.rules, &view, audience, ip)
}

/// The client behind trusted proxies (`settings.trustedProxy`), else the peer.
fn client_ip(settings: &Settings, headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
    super::client_ip::resolve(headers, peer, &settings.trusted_proxy)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The audience `who` belongs to; `None` for superusers, who are never limited.
fn audience_of(who: Option<&Principal>) -> Option<Audience> {
    match who {
        Some(Principal::Superuser { .. }) => None,
        Some(Principal::User { .. }) => Some(Audience::Auth),
        Some(Principal::Anonymous) | None => Some(Audience::Guest),
    }
}

/// Counts one request against the rule that applies to it, if any.
fn count(
    state: &AppState,
    rules: &[RateLimitRule],
    view: &RequestView<'_>,
    audience: Audience,
    ip: IpAddr,
) -> bool {
    let Some(rule) = select(rules, view, Some(audience)) else {
        return true;
    };
    state.rate_limiter.hit(rule, ip, Instant::now())
}

/// The non-empty `Authorization` header, if any.
fn authorization(req: &ServiceRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.trim().is_empty())
        .map(str::to_owned)
}

/// Whether `ip` is listed in `excludedIPs` (addresses or CIDR subnets).
fn is_excluded(excluded: &[String], ip: IpAddr) -> bool {
    crate::settings::in_list(excluded, ip)
}

/// Who a rule's `audience` is about. Superusers never reach rule selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    Guest,
    Auth,
}

/// The parts of a request that rule labels are matched against.
struct RequestView<'a> {
    method: &'a str,
    path: &'a str,
    /// The collection's name (ids already mapped), for collection routes.
    collection: Option<&'a str>,
    actions: &'a [&'a str],
}

/// How well a label fits a request; smaller wins (variant order is the
/// lookup order, then the fields).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Collection(usize),
    Wildcard(usize),
    MethodPath,
    Path,
    /// Longer prefixes first; with a method before without.
    Prefix(Reverse<usize>, bool),
}

/// The rule that applies to `view` for `audience`; `None` as audience
/// matches rules of any audience. Among equal labels the first rule wins.
fn select<'r>(
    rules: &'r [RateLimitRule],
    view: &RequestView<'_>,
    audience: Option<Audience>,
) -> Option<&'r RateLimitRule> {
    rules
        .iter()
        .filter(|r| audience.is_none_or(|a| audience_matches(&r.audience, a)))
        .filter_map(|r| rank(&r.label, view).map(|k| (k, r)))
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, r)| r)
}

fn audience_matches(rule_audience: &str, audience: Audience) -> bool {
    match rule_audience {
        "" => true,
        "@guest" => audience == Audience::Guest,
        "@auth" => audience == Audience::Auth,
        _ => false,
    }
}

/// Where `label` stands for `view`, or `None` when it does not apply.
fn rank(label: &str, view: &RequestView<'_>) -> Option<Rank> {
    if let Some((method, path)) = label.split_once(' ') {
        return if method == view.method {
            path_rank(path, view.path, true)
        } else {
            None
        };
    }
    if label.starts_with('/') {
        return path_rank(label, view.path, false);
    }
    let (collection, action) = label.split_once(':')?;
    let i = view.actions.iter().position(|a| *a == action)?;
    if collection == "*" {
        return Some(Rank::Wildcard(i));
    }
    view.collection
        .filter(|name| name.eq_ignore_ascii_case(collection))
        .map(|_| Rank::Collection(i))
}

fn path_rank(label_path: &str, path: &str, with_method: bool) -> Option<Rank> {
    if label_path == path {
        return Some(if with_method {
            Rank::MethodPath
        } else {
            Rank::Path
        });
    }
    let base = label_path.strip_suffix('/')?;
    // `/api/` covers `/api/…` and also `/api` itself.
    (path.starts_with(label_path) || path == base)
        .then_some(Rank::Prefix(Reverse(label_path.len()), !with_method))
}

/// Request counts per (rule, audience, client IP) in fixed windows.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    /// Key: client IP and `"<audience>\n<label>"` (neither may hold a newline).
    map: HashMap<(IpAddr, String), Window>,
    last_sweep: Option<Instant>,
}

#[derive(Debug)]
struct Window {
    ends: Instant,
    count: u64,
}

impl RateLimiter {
    /// Counts one request from `ip` under `rule` at `now`; false (and not
    /// counted) when the current window is already spent.
    fn hit(&self, rule: &RateLimitRule, ip: IpAddr, now: Instant) -> bool {
        let mut w = self.lock();
        if w.last_sweep
            .is_none_or(|t| now.duration_since(t) >= SWEEP_INTERVAL)
        {
            w.sweep(now);
        }
        let length = Duration::from_secs(rule.duration.min(MAX_WINDOW_SECS));
        let key = (ip, format!("{}\n{}", rule.audience, rule.label));
        if let Some(window) = w.map.get_mut(&key) {
            if now >= window.ends {
                *window = Window {
                    ends: now + length,
                    count: 0,
                };
            }
            if window.count >= rule.max_requests {
                return false;
            }
            window.count += 1;
            return true;
        }
        if w.map.len() >= MAX_TRACKED_WINDOWS {
            w.sweep(now);
            if w.map.len() >= MAX_TRACKED_WINDOWS {
                tracing::warn!(
                    tracked = w.map.len(),
                    "rate limiter full; request not counted"
                );
                return true;
            }
        }
        if rule.max_requests == 0 {
            return false;
        }
        w.map.insert(
            key,
            Window {
                ends: now + length,
                count: 1,
            },
        );
        true
    }

    fn lock(&self) -> MutexGuard<'_, Windows> {
        // Counters stay usable after a panic elsewhere; the worst case is a miscount.
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Windows {
    fn sweep(&mut self, now: Instant) {
        self.map.retain(|_, w| w.ends > now);
        self.last_sweep = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(label: &str, audience: &str, duration: u64, max_requests: u64) -> RateLimitRule {
        RateLimitRule {
            label: label.into(),
            audience: audience.into(),
            duration,
            max_requests,
        }
    }

    fn view<'a>(
        method: &'a str,
        path: &'a str,
        collection: Option<&'a str>,
        action: Action,
    ) -> RequestView<'a> {
        RequestView {
            method,
            path,
            collection,
            actions: action.names(),
        }
    }

    fn chosen(rules: &[RateLimitRule], v: &RequestView<'_>, audience: Audience) -> Option<String> {
        select(rules, v, Some(audience)).map(|r| r.label.clone())
    }

    #[test]
    fn auth_with_actions_name_themselves_before_auth() {
        for action in [
            Action::AuthWithPassword,
            Action::AuthWithOAuth2,
            Action::AuthWithOtp,
        ] {
            let names = action.names();
            assert_eq!(names.len(), 2, "{action:?}");
            assert!(names[0].starts_with("authWith"), "{action:?}");
            assert_eq!(names[1], "auth", "{action:?}");
        }
        assert!(Action::PathOnly.names().is_empty());
        assert_eq!(Action::RequestOtp.names(), ["requestOTP"]);
    }

    #[test]
    fn lookup_order_is_collection_wildcard_method_path_path_then_longest_prefix() {
        let mut rules = vec![
            rule("/", "", 1, 1),
            rule("/api/", "", 1, 1),
            rule("POST /api/", "", 1, 1),
            rule("/api/collections/posts/records", "", 1, 1),
            rule("POST /api/collections/posts/records", "", 1, 1),
            rule("*:create", "", 1, 1),
            rule("posts:create", "", 1, 1),
        ];
        let v = view(
            "POST",
            "/api/collections/posts/records",
            Some("posts"),
            Action::Create,
        );
        for expected in [
            "posts:create",
            "*:create",
            "POST /api/collections/posts/records",
            "/api/collections/posts/records",
            "POST /api/",
            "/api/",
            "/",
        ] {
            assert_eq!(
                chosen(&rules, &v, Audience::Guest).as_deref(),
                Some(expected)
            );
            rules.retain(|r| r.label != expected);
        }
        assert_eq!(chosen(&rules, &v, Audience::Guest), None);
    }

    #[test]
    fn auth_covers_every_auth_with_action_after_the_specific_one() {
        let rules = vec![rule("*:auth", "", 1, 1), rule("users:auth", "", 1, 1)];
        let v = view(
            "POST",
            "/api/collections/users/auth-with-password",
            Some("users"),
            Action::AuthWithPassword,
        );
        assert_eq!(
            chosen(&rules, &v, Audience::Guest).as_deref(),
            Some("users:auth")
        );
        let rules = vec![
            rule("*:authWithPassword", "", 1, 1),
            rule("users:auth", "", 1, 1),
        ];
        assert_eq!(
            chosen(&rules, &v, Audience::Guest).as_deref(),
            Some("users:auth")
        );
        let rules = vec![
            rule("*:auth", "", 1, 1),
            rule("*:authWithPassword", "", 1, 1),
        ];
        assert_eq!(
            chosen(&rules, &v, Audience::Guest).as_deref(),
            Some("*:authWithPassword")
        );
    }

    #[test]
    fn audience_filters_rules_before_the_lookup() {
        let rules = vec![rule("*:list", "@guest", 1, 1), rule("/api/", "@auth", 1, 1)];
        let v = view(
            "GET",
            "/api/collections/posts/records",
            Some("posts"),
            Action::List,
        );
        assert_eq!(
            chosen(&rules, &v, Audience::Guest).as_deref(),
            Some("*:list")
        );
        assert_eq!(chosen(&rules, &v, Audience::Auth).as_deref(), Some("/api/"));
        assert!(select(&rules, &v, None).is_some());
    }

    #[test]
    fn prefixes_match_on_segment_text_and_other_methods_do_not() {
        let rules = vec![rule("GET /api/", "", 1, 1), rule("/api/files/", "", 1, 1)];
        let v = view("POST", "/api/collections", None, Action::PathOnly);
        assert_eq!(chosen(&rules, &v, Audience::Guest), None);
        let v = view("GET", "/api", None, Action::PathOnly);
        assert_eq!(
            chosen(&rules, &v, Audience::Guest).as_deref(),
            Some("GET /api/")
        );
        let v = view("POST", "/api/files", None, Action::PathOnly);
        assert_eq!(
            chosen(&rules, &v, Audience::Guest).as_deref(),
            Some("/api/files/")
        );
    }

    #[test]
    fn a_window_admits_max_requests_per_ip_and_then_resets() {
        let limiter = RateLimiter::default();
        let r = rule("/api/", "", 10, 2);
        let a: IpAddr = "203.0.113.7".parse().expect("ip");
        let b: IpAddr = "203.0.113.8".parse().expect("ip");
        let t0 = Instant::now();

        assert!(limiter.hit(&r, a, t0));
        assert!(limiter.hit(&r, a, t0));
        assert!(!limiter.hit(&r, a, t0), "third request in the window");
        assert!(limiter.hit(&r, b, t0), "another client has its own window");
        assert!(
            limiter.hit(&rule("/api/", "@guest", 10, 2), a, t0),
            "another audience has its own window"
        );
        assert!(
            limiter.hit(&r, a, t0 + Duration::from_secs(10)),
            "new window"
        );
    }

    #[test]
    fn expired_windows_are_swept() {
        let limiter = RateLimiter::default();
        let r = rule("/api/", "", 1, 1);
        let t0 = Instant::now();
        for i in 0..100u8 {
            limiter.hit(&r, IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), t0);
        }
        assert_eq!(limiter.lock().map.len(), 100);

        limiter.hit(
            &r,
            IpAddr::V4(Ipv4Addr::new(10, 0, 1, 0)),
            t0 + SWEEP_INTERVAL,
        );

        assert_eq!(limiter.lock().map.len(), 1, "only the fresh window remains");
    }

    #[test]
    fn excluded_ips_compare_as_addresses() {
        let list = vec![
            "127.0.0.1".to_owned(),
            " ::1 ".to_owned(),
            "nonsense".to_owned(),
        ];
        assert!(is_excluded(&list, "127.0.0.1".parse().expect("ip")));
        assert!(is_excluded(&list, "::1".parse().expect("ip")));
        assert!(!is_excluded(&list, "127.0.0.2".parse().expect("ip")));
    }
}
