//! Which local user is on the other end of a TCP connection.
//!
//! Loopback TCP carries no credentials (`SO_PEERCRED` is for Unix
//! sockets), but the kernel's socket table does: the client's socket is the
//! row of `/proc/net/tcp` (or `tcp6`) whose local address is our peer and
//! whose remote address is us, and that row names its owner's uid. A
//! listener with `allow_uids` serves only those users. Parsing is pure.

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
    table: &str,
    client: SocketAddr,
    server: SocketAddr,
) -> Option<u32> {
    let (local, remote) = (encode(client), encode(server));
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
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

/// Looks the client up in the kernel's table (bounded read).
pub(crate) fn lookup(client: SocketAddr, server: SocketAddr) -> Option<u32> {
    let table = if server.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    let text = crate::read::file(std::path::Path::new(table), 16 * 1024 * 1024).ok()?;
    owner_uid(&text, client, server)
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
        assert_eq!(owner_uid(TCP, client, server), Some(1000));
        assert_eq!(owner_uid(TCP, "127.0.0.1:1".parse().unwrap(), server), None);
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
    fn finds_a_live_connection_of_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(server).unwrap();
        let uid = lookup(client.local_addr().unwrap(), server);
        assert_eq!(uid, Some(crate::state::current_uid()));
    }
}
