//! The client's IP address. Without trusted proxy headers it is the TCP
//! peer. Behind a reverse proxy the peer is the proxy, so the owner names the
//! headers that proxy sets in `settings.trustedProxy.headers`; the address is
//! then read from the first of them present on the request (the last copy of
//! a repeated header, the one the nearest proxy wrote). In a list such as
//! `X-Forwarded-For: client, proxy1, proxy2` the rightmost valid address is
//! taken, or the leftmost with `useLeftmostIP`. Used for request logs, rate
//! limits, the login throttle, login alerts and realtime clients alike.
//!

use super::extract::AppState;
use crate::settings::TrustedProxy;
use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// Headers that show a proxy is in front, pointed out by `/api/health` to a
/// superuser while no header is trusted yet.
const COMMON_PROXY_HEADERS: [&str; 4] = [
    "CF-Connecting-IP",
    "Fly-Client-IP",
    "X-Real-IP",
    "X-Forwarded-For",
];

/// The client address of `req` under the current settings.
pub fn of(req: &HttpRequest, state: &AppState) -> Option<IpAddr> {
    resolve(
        req.headers(),
        req.peer_addr(),
        &state.settings.get().trusted_proxy,
    )
}

/// The address from the first trusted header that holds a valid one, else the peer's.
pub fn resolve(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    proxy: &TrustedProxy,
) -> Option<IpAddr> {
    for name in &proxy.headers {
        let Some(value) = headers
            .get_all(name.as_str())
            .last()
            .and_then(|v| v.to_str().ok())
        else {
            continue;
        };
        let mut candidates = value.split(',').map(str::trim);
        let found = if proxy.use_leftmost_ip {
            candidates.find_map(parse_ip)
        } else {
            candidates.rev().find_map(parse_ip)
        };
        if found.is_some() {
            return found;
        }
    }
    peer.map(|a| a.ip().to_canonical())
}

/// A proxy header present on `headers` while none is trusted, or "".
pub fn possible_proxy_header(headers: &HeaderMap, proxy: &TrustedProxy) -> &'static str {
    if !proxy.headers.is_empty() {
        return "";
    }
    COMMON_PROXY_HEADERS
        .into_iter()
        .find(|name| headers.contains_key(*name))
        .unwrap_or("")
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    fn proxy(names: &[&str], leftmost: bool) -> TrustedProxy {
        TrustedProxy {
            headers: names.iter().map(|n| n.to_string()).collect(),
            use_leftmost_ip: leftmost,
        }
    }

    const PEER: &str = "10.0.0.1:5000";

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("ip"))
    }

    #[test]
    fn without_trusted_headers_the_peer_is_the_client() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        let peer = PEER.parse().ok();
        assert_eq!(resolve(&h, peer, &proxy(&[], false)), ip("10.0.0.1"));
        assert_eq!(
            possible_proxy_header(&h, &proxy(&[], false)),
            "X-Forwarded-For"
        );
        assert_eq!(
            possible_proxy_header(&h, &proxy(&["X-Forwarded-For"], false)),
            ""
        );
    }

    #[test]
    fn a_trusted_list_gives_its_rightmost_or_leftmost_valid_address() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4, nonsense, 5.6.7.8, junk")]);
        let peer = PEER.parse().ok();
        assert_eq!(
            resolve(&h, peer, &proxy(&["X-Forwarded-For"], false)),
            ip("5.6.7.8")
        );
        assert_eq!(
            resolve(&h, peer, &proxy(&["x-forwarded-for"], true)),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn the_first_trusted_header_with_an_address_wins_and_garbage_falls_back() {
        let peer = PEER.parse().ok();
        let h = headers(&[
            ("x-real-ip", "not an ip"),
            ("cf-connecting-ip", "2001:db8::1"),
        ]);
        let both = proxy(&["X-Real-IP", "CF-Connecting-IP"], false);
        assert_eq!(resolve(&h, peer, &both), ip("2001:db8::1"));
        let h = headers(&[("x-real-ip", "not an ip")]);
        assert_eq!(resolve(&h, peer, &both), ip("10.0.0.1"));
        let h = headers(&[("x-real-ip", "::ffff:9.9.9.9")]);
        assert_eq!(
            resolve(&h, peer, &both),
            ip("9.9.9.9"),
            "IPv4-mapped is shown as IPv4"
        );
    }

    #[test]
    fn a_repeated_header_is_read_from_its_last_copy() {
        let h = headers(&[("x-real-ip", "1.1.1.1"), ("x-real-ip", "2.2.2.2")]);
        let peer = PEER.parse().ok();
        assert_eq!(
            resolve(&h, peer, &proxy(&["X-Real-IP"], true)),
            ip("2.2.2.2")
        );
    }
}
