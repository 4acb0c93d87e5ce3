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
    /// More than one `Host` header: which one a client meant is unknowable.
    DuplicateHost,
    /// A header the endpoint reads once (a token, a TTL) came more than once.
    RepeatedHeader,
    /// `Host`, or the host of an absolute-form target, is not this listener.
    ForeignHost,
    Browser,
}

impl Refusal {
    /// 400 for a malformed request, 403 for one from the wrong place.
    pub(crate) fn status(self) -> http::StatusCode {
        match self {
            Refusal::MissingHost | Refusal::DuplicateHost | Refusal::RepeatedHeader => {
                http::StatusCode::BAD_REQUEST
            }
            Refusal::ForeignHost | Refusal::Browser => http::StatusCode::FORBIDDEN,
        }
    }
}

/// Checks the request's host (RFC 9112: exactly one `Host`, and an
/// absolute-form target's host must be ours too), that each of `single`
/// comes at most once, and browser markers. `None`: the request may go on.
pub(crate) fn check(
    allow: &HostAllowList,
    target: &http::Uri,
    headers: &HeaderMap,
    single: &[http::header::HeaderName],
) -> Option<Refusal> {
    let mut hosts = headers.get_all(http::header::HOST).iter();
    let Some(host) = hosts.next() else {
        return Some(Refusal::MissingHost);
    };
    if hosts.next().is_some() {
        return Some(Refusal::DuplicateHost);
    }
    if single
        .iter()
        .any(|name| headers.get_all(name).iter().nth(1).is_some())
    {
        return Some(Refusal::RepeatedHeader);
    }
    let target_ours = target
        .authority()
        .is_none_or(|a| allow.allows(a.as_str().as_bytes()));
    if !allow.allows(host.as_bytes()) || !target_ours {
        return Some(Refusal::ForeignHost);
    }
    // Names, not strings: a string is parsed into a name at every lookup.
    static SEC_FETCH: [http::header::HeaderName; 2] = [
        http::header::HeaderName::from_static("sec-fetch-site"),
        http::header::HeaderName::from_static("sec-fetch-mode"),
    ];
    let browser = headers.contains_key(http::header::ORIGIN)
        || SEC_FETCH.iter().any(|name| headers.contains_key(name));
    browser.then_some(Refusal::Browser)
}

/// Test support for every endpoint's guard tests: a header map from
/// `(name, value)` pairs, a repeated name appended, not replaced.
#[cfg(test)]
pub(crate) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, v.parse().unwrap());
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An origin-form target, as almost every request has.
    fn check(allow: &HostAllowList, headers: &HeaderMap) -> Option<Refusal> {
        super::check(allow, &"/latest".parse().unwrap(), headers, &[])
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
    fn one_host_header_only() {
        let allow = HostAllowList::for_listener("127.0.0.1:9".parse().unwrap());
        let h = headers(&[("host", "127.0.0.1:9"), ("host", "evil:9")]);
        assert_eq!(check(&allow, &h), Some(Refusal::DuplicateHost));
        let h = headers(&[("host", "127.0.0.1:9"), ("host", "127.0.0.1:9")]);
        assert_eq!(check(&allow, &h), Some(Refusal::DuplicateHost));
        assert_eq!(
            Refusal::DuplicateHost.status(),
            http::StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn an_absolute_form_target_must_name_this_listener_too() {
        let allow = HostAllowList::for_listener("127.0.0.1:9".parse().unwrap());
        let h = headers(&[("host", "127.0.0.1:9")]);
        let evil = "http://evil/latest/meta-data/iam/security-credentials/dev"
            .parse()
            .unwrap();
        assert_eq!(
            super::check(&allow, &evil, &h, &[]),
            Some(Refusal::ForeignHost)
        );
        let ours = "http://127.0.0.1:9/latest".parse().unwrap();
        assert_eq!(super::check(&allow, &ours, &h, &[]), None);
        assert_eq!(Refusal::ForeignHost.status(), http::StatusCode::FORBIDDEN);
    }

    #[test]
    fn security_headers_may_come_once() {
        let allow = HostAllowList::for_listener("127.0.0.1:9".parse().unwrap());
        let token = http::header::HeaderName::from_static("x-aws-ec2-metadata-token");
        let target = "/latest".parse().unwrap();
        let once = headers(&[("host", "127.0.0.1:9"), ("x-aws-ec2-metadata-token", "a")]);
        assert_eq!(
            super::check(&allow, &target, &once, std::slice::from_ref(&token)),
            None
        );
        let twice = headers(&[
            ("host", "127.0.0.1:9"),
            ("x-aws-ec2-metadata-token", "a"),
            ("x-aws-ec2-metadata-token", "b"),
        ]);
        assert_eq!(
            super::check(&allow, &target, &twice, std::slice::from_ref(&token)),
            Some(Refusal::RepeatedHeader)
        );
        // Headers the endpoint does not read once may repeat.
        assert_eq!(super::check(&allow, &target, &twice, &[]), None);
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
