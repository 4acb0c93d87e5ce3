//! What counts as this machine: loopback checks for IP addresses and URL
//! hosts, shared by config validation and the clients that must not leave
//! the host (plain-http STS). Pure; a leaf.

use std::net::IpAddr;

/// A loopback IP, including an IPv4-mapped IPv6 loopback.
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// A URL host that is this machine (`localhost` or a loopback IP).
pub(crate) fn is_loopback_host(host: url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ips_and_hosts() {
        for ip in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.1", "169.254.169.254", "::", "fd00:ec2::254"] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
        let loopback = |u: &str| {
            let url = url::Url::parse(u).unwrap();
            is_loopback_host(url.host().unwrap())
        };
        assert!(loopback("http://LOCALHOST:1"));
        assert!(loopback("http://[::1]:1"));
        assert!(loopback("http://127.0.0.2"));
        assert!(!loopback("http://localhost.example"));
        assert!(!loopback("http://10.0.0.1"));
    }
}
