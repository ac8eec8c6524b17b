//! The server base URL: validation, normalisation and the endpoint / WebSocket URLs derived
//! from it (PROTOCOL.md §0, §4.1).
//!
//! Accepted: `http://` or `https://` (scheme case-insensitive), a host (name, IPv4 or a
//! bracketed IPv6 literal), an optional port, an optional path prefix (for servers behind a
//! reverse proxy, e.g. `https://example.com/kalam`). Rejected with `INVALID_URL`: other
//! schemes, a missing host, credentials (`user:pass@`), a query or fragment, whitespace or
//! control characters, backslashes, `.`/`..` path segments, bad ports. The result has a
//! lowercase scheme and host and no trailing `/`.

use crate::core::error::{KalamError, Result};
use crate::core::text;

/// Endpoint paths, relative to the base URL.
pub mod paths {
    pub const SQL: &str = "/v1/api/sql";
    pub const LOGIN: &str = "/v1/api/auth/login";
    pub const REFRESH: &str = "/v1/api/auth/refresh";
    pub const LOGOUT: &str = "/v1/api/auth/logout";
    pub const ME: &str = "/v1/api/auth/me";
    pub const SETUP: &str = "/v1/api/auth/setup";
    pub const STATUS: &str = "/v1/api/auth/status";
    pub const HEALTH: &str = "/health";
    pub const HEALTHCHECK: &str = "/v1/api/healthcheck";
    pub const CLUSTER_HEALTH: &str = "/v1/api/cluster/health";
    pub const TOPICS_CONSUME: &str = "/v1/api/topics/consume";
    pub const TOPICS_ACK: &str = "/v1/api/topics/ack";
    pub const WS: &str = "/v1/ws";
    pub const FILES: &str = crate::core::cells::file_ref::FILES_PATH;
    pub const EXPORTS: &str = "/v1/exports";
}

/// A validated, normalised server base URL such as `https://db.example.com:8443/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    url: String,
    secure: bool,
    /// Byte length of `scheme://`.
    scheme_len: usize,
}

impl BaseUrl {
    /// Validates and normalises `input` (surrounding whitespace is ignored).
    pub fn parse(input: &str) -> Result<BaseUrl> {
        let raw = input.trim();
        let bad = |why: &str| KalamError::invalid_url(format!("{why}: \"{raw}\""));
        if raw.is_empty() {
            return Err(KalamError::invalid_url("the server URL is empty"));
        }
        if let Some(c) = raw.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(&format!(
                "the server URL contains U+{:04X} (whitespace or a control character)",
                c as u32
            )));
        }
        if text::has(raw, b'\\') {
            return Err(bad("the server URL contains a backslash"));
        }
        let at = text::find(raw, b"://")
            .ok_or_else(|| bad("the server URL needs http:// or https://"))?;
        let (scheme, rest) = (&raw[..at], &raw[at + 3..]);
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(bad("only http:// and https:// server URLs are supported")),
        };
        if text::has(rest, b'?') {
            return Err(bad("the server URL must not have a query string"));
        }
        if text::has(rest, b'#') {
            return Err(bad("the server URL must not have a fragment"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if text::has(authority, b'@') {
            return Err(bad(
                "the server URL must not contain credentials; use the auth options",
            ));
        }
        let (host, port) = split_host_port(authority).map_err(&bad)?;
        let host = normalise_host(host).map_err(&bad)?;
        if let Some(port) = port {
            if port.is_empty()
                || port.len() > 5
                || !port.bytes().all(|b| b.is_ascii_digit())
                || !(1..=65535).contains(&port.parse::<u32>().unwrap_or(0))
            {
                return Err(bad("the server URL has an invalid port"));
            }
        }
        let path = path.trim_end_matches('/');
        for segment in path.split('/').skip(1) {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(bad("the server URL path has an empty, '.' or '..' segment"));
            }
            if let Some(c) = segment.chars().find(|c| !is_path_char(*c)) {
                return Err(bad(&format!(
                    "the server URL path contains '{c}'; percent-encode it"
                )));
            }
            if !percent_escapes_ok(segment) {
                return Err(bad("the server URL path has a malformed %-escape"));
            }
        }
        let scheme = if secure { "https" } else { "http" };
        let mut url = format!("{scheme}://{host}");
        if let Some(port) = port {
            url.push(':');
            url.push_str(port);
        }
        url.push_str(path);
        Ok(BaseUrl {
            url,
            secure,
            scheme_len: scheme.len() + 3,
        })
    }

    /// The normalised base URL (no trailing `/`).
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// Whether the scheme is https (and the WebSocket wss).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// `base + path`; `path` should start with `/` (one is added otherwise).
    pub fn endpoint(&self, path: &str) -> String {
        let mut out = String::with_capacity(self.url.len() + path.len() + 1);
        out.push_str(&self.url);
        if !path.starts_with('/') {
            out.push('/');
        }
        out.push_str(path);
        out
    }

    pub fn sql_url(&self) -> String {
        self.endpoint(paths::SQL)
    }

    /// The WebSocket URL: `ws(s)://host[:port][/prefix]/v1/ws`, plus `?compress=false` when
    /// `compress` is false (the only switch that disables server-side gzip, §4.1/§4.3).
    pub fn ws_url(&self, compress: bool) -> String {
        let ws_scheme = if self.secure { "wss://" } else { "ws://" };
        let mut out = String::with_capacity(self.url.len() + 24);
        out.push_str(ws_scheme);
        out.push_str(&self.url[self.scheme_len..]);
        out.push_str(paths::WS);
        if !compress {
            out.push_str("?compress=false");
        }
        out
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

fn split_host_port(authority: &str) -> std::result::Result<(&str, Option<&str>), &'static str> {
    if authority.is_empty() {
        return Err("the server URL has no host");
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or("the server URL has an unterminated IPv6 address")?;
        let host = &authority[..end + 2];
        let after = &rest[end + 1..];
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err("the server URL has garbage after the IPv6 address"),
            },
        };
    }
    match text::rsplit_once(authority, b':') {
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((authority, None)),
    }
}

fn normalise_host(host: &str) -> std::result::Result<String, &'static str> {
    if host.is_empty() {
        return Err("the server URL has no host");
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.trim_end_matches(']');
        if inner.is_empty()
            || !text::has(inner, b':')
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err("the server URL has an invalid IPv6 address");
        }
        return Ok(host.to_ascii_lowercase());
    }
    let ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if !ok {
        return Err("the server URL host has invalid characters (use punycode for IDNs)");
    }
    if host.starts_with('.') || text::find(host, b"..").is_some() {
        return Err("the server URL host is malformed");
    }
    Ok(host.to_ascii_lowercase())
}

/// RFC 3986 `pchar` without `%` handling (checked separately).
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || (c.is_ascii() && text::has("-._~!$&'()*+,;=:@%", c as u8))
}

fn percent_escapes_ok(segment: &str) -> bool {
    let b = segment.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok =
                i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// One encoder for the whole crate; it lives with the FILE references that need it most.
pub use crate::core::cells::file_ref::percent_encode;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::codes;

    #[test]
    fn normalises_good_urls() {
        let cases = [
            ("http://localhost:8080", "http://localhost:8080"),
            ("http://localhost:8080/", "http://localhost:8080"),
            ("  HTTPS://DB.Example.COM//  ", "https://db.example.com"),
            ("https://example.com/kalam/", "https://example.com/kalam"),
            ("http://127.0.0.1", "http://127.0.0.1"),
            ("http://[::1]:8080/", "http://[::1]:8080"),
            ("http://[FE80::1]", "http://[fe80::1]"),
            ("https://example.com/a%20b", "https://example.com/a%20b"),
        ];
        for (input, want) in cases {
            let url = BaseUrl::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(url.as_str(), want, "{input}");
        }
    }

    #[test]
    fn rejects_bad_urls_with_invalid_url() {
        let cases = [
            "",
            "localhost:8080",
            "ftp://example.com",
            "ws://localhost:8080",
            "http://",
            "http:///path",
            "http://:8080",
            "http://user:pass@example.com",
            "http://alice@example.com",
            "http://example.com?x=1",
            "http://example.com/?x=1",
            "http://example.com#frag",
            "http://example.com:0",
            "http://example.com:99999",
            "http://example.com:80a",
            "http://example.com:",
            "http://exa mple.com",
            "http://example.com/a b",
            "http://example.com\\foo",
            "http://example.com/../x",
            "http://example.com/a//b",
            "http://[::1",
            "http://[zz]",
            "http://ex%61mple.com",
            "http://example.com/%zz",
            "http://example.com/%4",
            "http://exämple.com",
        ];
        for input in cases {
            let err = BaseUrl::parse(input).expect_err(input);
            assert_eq!(err.code, codes::INVALID_URL, "{input}");
            assert!(!err.retryable);
        }
    }

    #[test]
    fn derives_endpoints_and_ws_urls() {
        let url = BaseUrl::parse("http://localhost:8080/").unwrap();
        assert_eq!(url.sql_url(), "http://localhost:8080/v1/api/sql");
        assert_eq!(
            url.endpoint(paths::LOGIN),
            "http://localhost:8080/v1/api/auth/login"
        );
        assert_eq!(url.endpoint("health"), "http://localhost:8080/health");
        assert_eq!(url.ws_url(true), "ws://localhost:8080/v1/ws");
        assert_eq!(
            url.ws_url(false),
            "ws://localhost:8080/v1/ws?compress=false"
        );
        let secure = BaseUrl::parse("https://db.example.com/kalam").unwrap();
        assert!(secure.is_secure());
        assert_eq!(secure.ws_url(true), "wss://db.example.com/kalam/v1/ws");
        assert_eq!(
            secure.endpoint(paths::TOPICS_CONSUME),
            "https://db.example.com/kalam/v1/api/topics/consume"
        );
    }

    #[test]
    fn percent_encodes_segments() {
        assert_eq!(percent_encode("abc-._~XYZ09"), "abc-._~XYZ09");
        assert_eq!(percent_encode("a b/c?d#e%f"), "a%20b%2Fc%3Fd%23e%25f");
        assert_eq!(percent_encode("ü"), "%C3%BC");
    }
}
