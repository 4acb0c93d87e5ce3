//! Getting a listening socket for an address: one handed over by systemd
//! socket activation if it matches, else a fresh bind. Everything that can
//! fail about a listener happens here, before a start or reload changes
//! anything.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

use super::StartError;

/// Sockets inherited through `LISTEN_FDS`, waiting to be claimed.
#[derive(Debug, Default)]
pub(crate) struct Inherited {
    sockets: Vec<std::net::TcpListener>,
}

impl Inherited {
    pub(crate) fn new(sockets: Vec<std::net::TcpListener>) -> Self {
        Inherited { sockets }
    }

    /// Takes the inherited socket bound to exactly `addr`, if any.
    fn take(&mut self, addr: SocketAddr) -> Option<std::net::TcpListener> {
        let i = self
            .sockets
            .iter()
            .position(|s| s.local_addr().is_ok_and(|a| a == addr))?;
        Some(self.sockets.swap_remove(i))
    }

    /// Addresses of the sockets nobody claimed.
    pub(crate) fn unclaimed(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }
}

/// A listening socket and the address it really has (port 0 resolved).
pub(crate) struct Bound {
    pub(crate) listener: TcpListener,
    pub(crate) addr: SocketAddr,
}

/// Listens on `addr`; a failure names the address.
pub(crate) fn bind(
    addr: SocketAddr,
    inherited: &mut Inherited,
) -> Result<Bound, StartError> {
    let bind_err = |source| StartError::Bind { addr, source };
    let listener = listen(addr, inherited).map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    Ok(Bound {
        listener,
        addr: local,
    })
}

/// Listens on `addr`: an inherited socket if one matches, else a new one
/// with `SO_REUSEADDR` (so a restart is not refused while old connections
/// sit in TIME_WAIT).
fn listen(addr: SocketAddr, inherited: &mut Inherited) -> std::io::Result<TcpListener> {
    if let Some(socket) = inherited.take(addr) {
        tracing::info!(%addr, "using the socket passed by systemd");
        socket.set_nonblocking(true)?;
        return TcpListener::from_std(socket);
    }
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}
