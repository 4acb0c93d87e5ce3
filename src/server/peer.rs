//! Which local user (and socket) is on the other end of a TCP connection.
//!
//! Loopback TCP carries no credentials (`SO_PEERCRED` is for Unix
//! sockets), but the kernel knows the client's socket: the one whose local
//! address is our peer and whose remote address is us. It is asked
//! directly with a `sock_diag` netlink request (one round trip, whatever
//! the number of connections); where netlink is unavailable, the row is
//! found in `/proc/net/tcp` (or `tcp6`). Its owner's uid serves
//! `allow_uids`, per-user connection shares and the audit log; its inode
//! finds the owning process. Building the request and parsing both answers
//! are pure.

use std::net::{IpAddr, SocketAddr};

/// `/proc/net/tcp`'s spelling of an address: the IP as 32-bit words in
/// host byte order, in hex, then the port.
fn encode(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => format!("{:08X}", u32::from_ne_bytes(v4.octets())),
        IpAddr::V6(v6) => v6
            .octets()
            .chunks_exact(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .collect(),
    };
    format!("{ip}:{:04X}", addr.port())
}

/// The uid owning the socket `client` → `server` in a `/proc/net/tcp*`
/// table, if it is there.
pub(crate) fn owner_uid(
    rows: impl IntoIterator<Item = impl AsRef<str>>,
    client: SocketAddr,
    server: SocketAddr,
) -> Option<u32> {
    let (local, remote) = (encode(client), encode(server));
    // The first line is the header.
    rows.into_iter().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.as_ref().split_whitespace().collect();
        // State 01 is ESTABLISHED: the live client end, not a leftover.
        let matches = fields.get(1)? == &local
            && fields.get(2)? == &remote
            && fields.get(3)? == &"01";
        if matches {
            fields.get(7)?.parse().ok()
        } else {
            None
        }
    })
}

/// The client socket's owner and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketOwner {
    pub(crate) uid: u32,
    /// The socket's inode (`socket:[INODE]` in `/proc/PID/fd`); 0 when
    /// not known.
    pub(crate) inode: u32,
}

/// Asks the kernel by netlink; an error when netlink is unavailable (a
/// sandbox without `AF_NETLINK`).
pub(crate) fn diag_lookup(
    client: SocketAddr,
    server: SocketAddr,
) -> std::io::Result<Option<SocketOwner>> {
    diag::lookup(client, server)
}

/// Looks the client up in the kernel's table, read a row at a time: a busy
/// host's table can be megabytes, and the row is often early.
pub(crate) fn lookup_in_table(
    client: SocketAddr,
    server: SocketAddr,
) -> Option<SocketOwner> {
    use std::io::BufRead;
    let table = if server.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    let rows = std::io::BufReader::new(std::fs::File::open(table).ok()?)
        .lines()
        .map_while(Result::ok);
    owner_uid(rows, client, server).map(|uid| SocketOwner { uid, inode: 0 })
}

/// The `sock_diag` netlink lookup of one TCP socket by its addresses.
mod diag {
    use std::io;
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;

    use rustix::net::netlink::{self, SocketAddrNetlink};
    use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

    use super::SocketOwner;

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 1;
    const IPPROTO_TCP: u8 = 6;
    const TCP_ESTABLISHED: u32 = 1;
    /// `nlmsghdr` (16) + `inet_diag_req_v2` (56).
    const REQUEST_LEN: usize = 72;
    /// Where `idiag_uid` and `idiag_inode` sit in an answer: after the
    /// `nlmsghdr` (16), family/state/timer/retrans (4), the socket id (48)
    /// and expires/rqueue/wqueue (12).
    const UID_AT: usize = 80;
    const INODE_AT: usize = 84;

    /// Asks the kernel about the socket `client` → `server`. `Ok(None)`:
    /// there is no such socket here.
    pub(super) fn lookup(
        client: SocketAddr,
        server: SocketAddr,
    ) -> io::Result<Option<SocketOwner>> {
        let fd = rustix::net::socket(
            AddressFamily::NETLINK,
            SocketType::RAW,
            Some(netlink::SOCK_DIAG),
        )?;
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_millis(500)),
        )?;
        let request = request(client, server);
        rustix::net::sendto(
            &fd,
            &request,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )?;
        let mut answer = [0u8; 512];
        let (n, _) = rustix::net::recv(&fd, &mut answer[..], RecvFlags::empty())?;
        Ok(parse(&answer[..n]))
    }

    /// The request for the socket whose local address is `client` and
    /// remote address is `server` (the client's end of our connection).
    pub(super) fn request(client: SocketAddr, server: SocketAddr) -> [u8; REQUEST_LEN] {
        let mut r = [0u8; REQUEST_LEN];
        r[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
        r[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        r[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        // inet_diag_req_v2 at 16: family, protocol, ext, pad, states.
        r[16] = if client.is_ipv4() { 2 } else { 10 };
        r[17] = IPPROTO_TCP;
        r[20..24].copy_from_slice(&(1u32 << TCP_ESTABLISHED).to_ne_bytes());
        // inet_diag_sockid at 24: sport, dport (big-endian), src, dst.
        r[24..26].copy_from_slice(&client.port().to_be_bytes());
        r[26..28].copy_from_slice(&server.port().to_be_bytes());
        r[28..44].copy_from_slice(&address(client.ip()));
        r[44..60].copy_from_slice(&address(server.ip()));
        // interface 0 (any), cookie INET_DIAG_NOCOOKIE: match by address.
        r[64..72].copy_from_slice(&[0xff; 8]);
        r
    }

    /// An address as `inet_diag_sockid` holds it: network order, IPv4 in
    /// the first four bytes.
    fn address(ip: IpAddr) -> [u8; 16] {
        let mut out = [0u8; 16];
        match ip {
            IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => out.copy_from_slice(&v6.octets()),
        }
        out
    }

    /// The owner in an answer; `None` for an error answer (no such socket)
    /// or one too short.
    pub(super) fn parse(answer: &[u8]) -> Option<SocketOwner> {
        let kind = u16::from_ne_bytes(answer.get(4..6)?.try_into().ok()?);
        // An error message (type 2: no such socket) or anything but ours.
        if kind != SOCK_DIAG_BY_FAMILY {
            return None;
        }
        let field = |at: usize| -> Option<u32> {
            Some(u32::from_ne_bytes(answer.get(at..at + 4)?.try_into().ok()?))
        };
        Some(SocketOwner {
            uid: field(UID_AT)?,
            inode: field(INODE_AT)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4225 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0 100 0 0 10 0
   1: 0100007F:D431 0100007F:4225 01 00000000:00000000 00:00000000 00000000  1000        0 200 1 0 20 4 30 10 -1
   2: 0100007F:4225 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 300 1 0 20 4 30 10 -1
";

    #[test]
    fn finds_the_client_sockets_owner() {
        let server: SocketAddr = "127.0.0.1:16933".parse().unwrap(); // 0x4225
        let client: SocketAddr = "127.0.0.1:54321".parse().unwrap(); // 0xD431
        assert_eq!(owner_uid(TCP.lines(), client, server), Some(1000));
        assert_eq!(
            owner_uid(TCP.lines(), "127.0.0.1:1".parse().unwrap(), server),
            None
        );
    }

    #[test]
    fn ipv6_words_are_in_host_order() {
        let addr: SocketAddr = "[::1]:80".parse().unwrap();
        let expected = if cfg!(target_endian = "little") {
            "00000000000000000000000001000000:0050"
        } else {
            "00000000000000000000000000000001:0050"
        };
        assert_eq!(encode(addr), expected);
    }

    #[test]
    fn finds_a_live_connection_of_this_process_both_ways() {
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let listener = std::net::TcpListener::bind(addr).unwrap();
            let server = listener.local_addr().unwrap();
            let client = std::net::TcpStream::connect(server).unwrap();
            let local = client.local_addr().unwrap();
            let uid = crate::state::current_uid();
            let by_netlink = diag_lookup(local, server)
                .unwrap()
                .expect("found by netlink");
            assert_eq!(by_netlink.uid, uid);
            // The inode is the client socket's own.
            let fd = std::os::fd::AsRawFd::as_raw_fd(&client);
            let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
            assert_eq!(
                link.to_string_lossy(),
                format!("socket:[{}]", by_netlink.inode)
            );
            assert_eq!(lookup_in_table(local, server).map(|o| o.uid), Some(uid));
        }
    }

    #[test]
    fn a_socket_that_is_not_there_is_none() {
        let server: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let nobody: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(diag_lookup(nobody, server).unwrap(), None);
        assert_eq!(lookup_in_table(nobody, server), None);
    }

    #[test]
    fn diag_requests_carry_both_ends_in_network_order() {
        let r = diag::request(
            "127.0.0.1:54321".parse().unwrap(),
            "127.0.0.2:16925".parse().unwrap(),
        );
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 72);
        assert_eq!((r[16], r[17]), (2, 6));
        // Only ESTABLISHED sockets (state 1) are asked for.
        assert_eq!(u32::from_ne_bytes(r[20..24].try_into().unwrap()), 1 << 1);
        assert_eq!(&r[24..28], &[0xd4, 0x31, 0x42, 0x1d]);
        assert_eq!(&r[28..32], &[127, 0, 0, 1]);
        assert_eq!(&r[44..48], &[127, 0, 0, 2]);
        assert!(diag::parse(&[0u8; 10]).is_none());
        let mut error = [0u8; 96];
        error[4..6].copy_from_slice(&2u16.to_ne_bytes());
        assert!(diag::parse(&error).is_none());
    }
}
