//! Who may talk to a listener: the DNS-rebinding and browser checks every
//! endpoint applies.
//!
//! A page that rebinds its own DNS name to 127.0.0.1 is same-origin with the
//! daemon, so it could send the token PUT with custom headers; its requests
//! still carry its own name in `Host`. Only the listener's own address (and
//! `localhost`) are accepted. Requests a browser marks as its own (`Origin`,
//! `Sec-Fetch-*`) are refused too: no SDK sends those. Pure functions.

use std::net::SocketAddr;

use http::HeaderMap;

/// The `Host` values a listener accepts, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostAllowList {
    hosts: Vec<String>,
}

impl HostAllowList {
    /// For a listener bound at `addr` (the real, bound port).
    pub(crate) fn for_listener(addr: SocketAddr) -> Self {
        let ip = match addr {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        };
        let port = addr.port();
        let mut hosts = vec![format!("{ip}:{port}"), format!("localhost:{port}")];
        if port == 80 {
            hosts.push(ip);
            hosts.push("localhost".into());
        }
        HostAllowList { hosts }
    }

    /// Whether `host` (the raw header value) names this listener.
    pub(crate) fn allows(&self, host: &[u8]) -> bool {
        self.hosts
            .iter()
            .any(|h| h.as_bytes().eq_ignore_ascii_case(host))
    }
}

/// Why a request was refused before routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    MissingHost,
    ForeignHost,
    Browser,
}

/// Checks `Host` and browser markers. `None` means the request may go on.
pub(crate) fn check(allow: &HostAllowList, headers: &HeaderMap) -> Option<Refusal> {
    let Some(host) = headers.get(http::header::HOST) else {
        return Some(Refusal::MissingHost);
    };
    if !allow.allows(host.as_bytes()) {
        return Some(Refusal::ForeignHost);
    }
    let browser = headers.contains_key(http::header::ORIGIN)
        || headers.contains_key("sec-fetch-site")
        || headers.contains_key("sec-fetch-mode");
    browser.then_some(Refusal::Browser)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn accepts_own_address_and_localhost_only() {
        let allow = HostAllowList::for_listener("127.0.0.1:16925".parse().unwrap());
        assert_eq!(
            check(&allow, &headers(&[("host", "127.0.0.1:16925")])),
            None
        );
        assert_eq!(
            check(&allow, &headers(&[("host", "LOCALHOST:16925")])),
            None
        );
        assert_eq!(
            check(&allow, &headers(&[("host", "evil.example:16925")])),
            Some(Refusal::ForeignHost)
        );
        assert_eq!(
            check(&allow, &headers(&[("host", "127.0.0.1")])),
            Some(Refusal::ForeignHost)
        );
        assert_eq!(check(&allow, &headers(&[])), Some(Refusal::MissingHost));
    }

    #[test]
    fn port_80_may_be_left_out() {
        let allow = HostAllowList::for_listener("169.254.169.254:80".parse().unwrap());
        assert_eq!(
            check(&allow, &headers(&[("host", "169.254.169.254")])),
            None
        );
        assert_eq!(
            check(&allow, &headers(&[("host", "169.254.169.254:80")])),
            None
        );
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let allow = HostAllowList::for_listener("[::1]:9".parse().unwrap());
        assert_eq!(check(&allow, &headers(&[("host", "[::1]:9")])), None);
    }

    #[test]
    fn browser_requests_are_refused() {
        let allow = HostAllowList::for_listener("127.0.0.1:9".parse().unwrap());
        let h = headers(&[("host", "127.0.0.1:9"), ("origin", "http://127.0.0.1:9")]);
        assert_eq!(check(&allow, &h), Some(Refusal::Browser));
        let h = headers(&[("host", "127.0.0.1:9"), ("sec-fetch-site", "same-origin")]);
        assert_eq!(check(&allow, &h), Some(Refusal::Browser));
    }
}
