//! The client's IP address. Without trusted proxy headers it is the TCP
//! peer. Behind a reverse proxy the peer is the proxy, so the owner names the
//! headers that proxy sets in `settings.trustedProxy.headers`; the address is
//! then read from the first of them present on the request (the last copy of
//! a repeated header, the one the nearest proxy wrote). In a list such as
//! `X-Forwarded-For: client, proxy1, proxy2` the rightmost valid address is
//! taken, or the leftmost with `useLeftmostIP`. Used for request logs, rate
//! limits, the login throttle, login alerts and realtime clients alike.
//!
//! Also the address lists of the settings (`superuserIPs`,
//! `rateLimits.excludedIPs`): each entry an address or a CIDR subnet.

use super::extract::AppState;
use crate::settings::{Settings, TrustedProxy};
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

/// Whether a superuser may act from `ip` (`settings.superuserIPs`; an empty
/// list allows every address, an unknown address none).
pub fn superuser_allowed(settings: &Settings, ip: Option<IpAddr>) -> bool {
    settings.superuser_ips.is_empty() || ip.is_some_and(|ip| in_list(&settings.superuser_ips, ip))
}

/// Whether `ip` is one of the addresses or inside one of the subnets of
/// `list`; entries that are neither match nothing.
pub fn in_list(list: &[String], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    list.iter()
        .filter_map(|entry| crate::settings::parse_ip_or_subnet(entry))
        .any(|(net, bits)| in_subnet(ip, net, bits))
}

fn in_subnet(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u128::from(a.to_bits()), u128::from(n.to_bits()), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (a.to_bits(), n.to_bits(), 128),
        // A v4 client against a v4-mapped v6 entry (or the reverse).
        (IpAddr::V4(a), IpAddr::V6(n)) => match n.to_ipv4_mapped() {
            Some(n) if bits >= 96 => return in_subnet(IpAddr::V4(a), IpAddr::V4(n), bits - 96),
            _ => return false,
        },
        (IpAddr::V6(_), IpAddr::V4(_)) => return false,
    };
    let host_bits = width - u32::from(bits);
    // `checked_shr`: a /0 subnet shifts by the full width and covers everything.
    ip.checked_shr(host_bits).unwrap_or(0) == net.checked_shr(host_bits).unwrap_or(0)
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
    fn lists_hold_addresses_and_subnets_and_ignore_garbage() {
        let list: Vec<String> = [
            "10.0.0.1",
            " 192.168.0.0/16 ",
            "2001:db8::/32",
            "::ffff:172.16.0.0/108",
            "nonsense",
            "10.0.0.0/33",
        ]
        .map(String::from)
        .to_vec();
        for (addr, expected, why) in [
            ("10.0.0.1", true, "exact address"),
            ("10.0.0.2", false, "neighbour of an exact address"),
            ("192.168.44.7", true, "inside a /16"),
            ("192.169.0.1", false, "outside the /16"),
            ("2001:db8::1", true, "inside an IPv6 /32"),
            ("2001:db9::1", false, "outside the IPv6 /32"),
            ("::ffff:10.0.0.1", true, "IPv4-mapped client"),
            ("172.16.3.4", true, "v4 client in a v4-mapped subnet"),
            ("127.0.0.1", false, "unlisted"),
        ] {
            let ip: IpAddr = addr.parse().expect("ip");
            assert_eq!(in_list(&list, ip), expected, "{addr}: {why}");
        }
        assert!(in_list(&["0.0.0.0/0".into()], ip("8.8.8.8").expect("ip")));
    }

    #[test]
    fn an_empty_superuser_list_allows_everyone_and_a_missing_address_nobody() {
        let mut settings = Settings::default();
        assert!(superuser_allowed(&settings, None));
        settings.superuser_ips = vec!["127.0.0.1".into()];
        assert!(superuser_allowed(&settings, ip("127.0.0.1")));
        assert!(!superuser_allowed(&settings, ip("10.0.0.1")));
        assert!(!superuser_allowed(&settings, None));
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
