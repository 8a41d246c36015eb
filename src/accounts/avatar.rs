//! Downloading an OAuth2 user's avatar into the collection's mapped file
//! field on sign-up (`mappedFields.avatarURL`). The URL comes from the
//! provider's answer, so it is treated as hostile: only http(s), every
//! address it resolves to must be public (no loopback, private, link-local,
//! multicast or unspecified — the SSRF guard), the connection is pinned to
//! the checked address (no DNS rebinding between check and connect),
//! redirects are followed by hand and each hop checked again, the whole
//! download is bounded in time and size, and the bytes must sniff as an
//! image. Any failure means no avatar, never a failed sign-up (as in
//! PocketBase). The field's own limits are checked by the records write.

use crate::files::{Staged, StagingFile};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// The whole download, redirects included.
pub const AVATAR_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest avatar read, in bytes (the file field's `maxSize` may be lower).
pub const MAX_AVATAR_BYTES: u64 = 5 * 1024 * 1024;
/// Redirect hops followed (each one checked like the first URL).
const MAX_AVATAR_REDIRECTS: usize = 3;

/// Why an avatar was not downloaded (logged, never shown).
#[derive(Debug, thiserror::Error)]
pub enum AvatarError {
    #[error("not an http(s) URL")]
    Scheme,
    #[error("the host resolves to a loopback/private address")]
    Private,
    #[error("the host does not resolve")]
    Unresolved,
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("status {0}")]
    Status(u16),
    #[error("too many redirects")]
    Redirects,
    #[error("larger than {0} bytes")]
    TooLarge(u64),
    #[error("not an image ({0})")]
    NotImage(String),
    #[error("timed out")]
    Timeout,
    #[error("staging: {0}")]
    Staging(String),
}

/// Whether an address is one a server-side fetch must never reach.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                // 100.64.0.0/10 carrier-grade NAT, 192.0.0.0/24, 198.18.0.0/15 benchmarking
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (first == 0x64 && v6.segments()[1] == 0xff9b) // NAT64 64:ff9b::/96
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

/// The one address to connect to for `url`: every address the host
/// resolves to must be allowed (a name resolving to a public and a private
/// address is refused outright).
async fn checked_addr(url: &reqwest::Url, allow_private: bool) -> Result<SocketAddr, AvatarError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AvatarError::Scheme);
    }
    let host = url.host_str().ok_or(AvatarError::Unresolved)?;
    let port = url.port_or_known_default().ok_or(AvatarError::Scheme)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| AvatarError::Unresolved)?
        .collect();
    let first = *addrs.first().ok_or(AvatarError::Unresolved)?;
    if !allow_private && addrs.iter().any(|a| is_forbidden(a.ip())) {
        return Err(AvatarError::Private);
    }
    Ok(first)
}

/// Downloads `url` into the staging directory as `avatar` (see the module
/// doc); `limit` is the largest size accepted.
pub async fn download(
    url: &str,
    staging_dir: &Path,
    limit: u64,
    allow_private: bool,
) -> Result<Staged, AvatarError> {
    tokio::time::timeout(
        AVATAR_TIMEOUT,
        fetch(url, staging_dir, limit.min(MAX_AVATAR_BYTES), allow_private),
    )
    .await
    .map_err(|_| AvatarError::Timeout)?
}

async fn fetch(
    url: &str,
    staging_dir: &Path,
    limit: u64,
    allow_private: bool,
) -> Result<Staged, AvatarError> {
    let mut url = reqwest::Url::parse(url).map_err(|_| AvatarError::Scheme)?;
    for _ in 0..=MAX_AVATAR_REDIRECTS {
        let addr = checked_addr(&url, allow_private).await?;
        let host = url.host_str().unwrap_or_default().to_owned();
        // A client per hop, pinned to the address just checked.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(AVATAR_TIMEOUT)
            .resolve(&host, addr)
            .no_proxy()
            .user_agent(concat!("ferrobase/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut response = client.get(url.clone()).send().await?;
        let status = response.status();
        if status.is_redirection() {
            let next = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|loc| url.join(loc).ok())
                .ok_or(AvatarError::Status(status.as_u16()))?;
            url = next;
            continue;
        }
        if !status.is_success() {
            return Err(AvatarError::Status(status.as_u16()));
        }
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(AvatarError::TooLarge(limit));
        }
        let name = file_name(&url);
        let mut staging = StagingFile::create(staging_dir, &name, limit)
            .await
            .map_err(|e| AvatarError::Staging(e.to_string()))?;
        let mut received: u64 = 0;
        while let Some(chunk) = response.chunk().await? {
            received += chunk.len() as u64;
            if received > limit {
                return Err(AvatarError::TooLarge(limit));
            }
            staging
                .write(&chunk)
                .await
                .map_err(|e| AvatarError::Staging(e.to_string()))?;
        }
        let staged = staging
            .finish()
            .await
            .map_err(|e| AvatarError::Staging(e.to_string()))?;
        if !staged.mime.starts_with("image/") || staged.mime == "image/svg+xml" {
            return Err(AvatarError::NotImage(staged.mime.clone()));
        }
        return Ok(staged);
    }
    Err(AvatarError::Redirects)
}

/// A plain file name for the download (the last path segment, or `avatar`).
fn file_name(url: &reqwest::Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default();
    let clean: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(100)
        .collect();
    if clean.trim_matches('.').is_empty() {
        "avatar".to_owned()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_private_and_special_addresses_are_forbidden() {
        for (ip, forbidden, why) in [
            ("127.0.0.1", true, "loopback"),
            ("127.8.9.10", true, "loopback /8"),
            ("10.0.0.1", true, "private"),
            ("172.16.5.4", true, "private"),
            ("192.168.1.1", true, "private"),
            ("169.254.169.254", true, "link-local (cloud metadata)"),
            ("0.0.0.0", true, "unspecified"),
            ("0.1.2.3", true, "this network"),
            ("100.64.0.1", true, "carrier-grade NAT"),
            ("224.0.0.1", true, "multicast"),
            ("255.255.255.255", true, "broadcast"),
            ("::1", true, "v6 loopback"),
            ("::", true, "v6 unspecified"),
            ("fd00::1", true, "unique local"),
            ("fe80::1", true, "v6 link-local"),
            ("::ffff:127.0.0.1", true, "v4-mapped loopback"),
            ("::ffff:169.254.169.254", true, "v4-mapped metadata"),
            ("64:ff9b::7f00:1", true, "NAT64 of loopback"),
            ("8.8.8.8", false, "public"),
            ("140.82.112.3", false, "public"),
            ("2606:4700::1111", false, "public v6"),
        ] {
            let ip: IpAddr = ip.parse().expect("an address");
            assert_eq!(is_forbidden(ip), forbidden, "{ip} ({why})");
        }
    }

    #[tokio::test]
    async fn urls_that_are_not_public_http_are_refused_before_any_request() {
        let dir = tempfile::tempdir().expect("dir");
        for (url, why) in [
            ("file:///etc/passwd", "file scheme"),
            ("ftp://example.com/a.png", "ftp scheme"),
            ("gopher://127.0.0.1:6379/_INFO", "gopher"),
            ("http://127.0.0.1:8090/api/settings", "loopback admin API"),
            ("http://localhost/a.png", "localhost"),
            ("http://[::1]/a.png", "v6 loopback"),
            ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
            ("http://0x7f000001/a.png", "hex loopback"),
            ("http://2130706433/a.png", "decimal loopback"),
            ("http://10.1.2.3/a.png", "private"),
            ("not a url", "garbage"),
        ] {
            let got = download(url, dir.path(), 1024, false).await;
            assert!(got.is_err(), "{url} ({why}) must not be fetched");
            assert!(
                !matches!(got, Err(AvatarError::Http(_) | AvatarError::Status(_))),
                "{url} ({why}) refused before any request: {got:?}"
            );
        }
    }

    #[test]
    fn file_names_are_plain() {
        for (url, name) in [
            ("https://x.test/a/b/photo.png?x=1", "photo.png"),
            ("https://x.test/", "avatar"),
            ("https://x.test/..", "avatar"),
            ("https://x.test/%2e%2e%2fetc", "2e2e2fetc"),
        ] {
            let url = reqwest::Url::parse(url).expect("url");
            assert_eq!(file_name(&url), name, "{url}");
        }
    }
}
