//! The address lists of the settings (`superuserIPs`,
//! `rateLimits.excludedIPs`): each entry an address or a CIDR subnet.

use super::Settings;
use std::net::IpAddr;

impl Settings {
    /// Whether a superuser may act from `ip` (`superuserIPs`; an empty list
    /// allows every address, an unknown address none).
    pub fn allows_superuser_from(&self, ip: Option<IpAddr>) -> bool {
        self.superuser_ips.is_empty() || ip.is_some_and(|ip| in_list(&self.superuser_ips, ip))
    }
}

/// `"10.0.0.1"` → (10.0.0.1, 32); `"10.0.0.0/8"` → (10.0.0.0, 8); IPv6
/// alike. `None` for anything else (`superuserIPs`, `excludedIPs` entries).
pub fn parse_ip_or_subnet(entry: &str) -> Option<(IpAddr, u8)> {
    let entry = entry.trim();
    let (addr, bits) = match entry.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits.parse::<u8>().ok()?)),
        None => (entry, None),
    };
    let addr = addr.parse::<IpAddr>().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr, bits))
}

/// Whether `ip` is one of the addresses or inside one of the subnets of
/// `list`; entries that are neither match nothing.
pub fn in_list(list: &[String], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    list.iter()
        .filter_map(|entry| parse_ip_or_subnet(entry))
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

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
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
        assert!(settings.allows_superuser_from(None));
        settings.superuser_ips = vec!["127.0.0.1".into()];
        assert!(settings.allows_superuser_from(ip("127.0.0.1")));
        assert!(!settings.allows_superuser_from(ip("10.0.0.1")));
        assert!(!settings.allows_superuser_from(None));
    }
}
