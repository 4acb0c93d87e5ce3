//! The HTTP/1.1 server every listener runs on (IMDS, admin).
//!
//! hyper 1 on a tokio listener, with the limits a long-running local
//! service needs: a connection cap (a semaphore taken before `accept`, so
//! excess clients wait in the kernel backlog rather than being dropped), a
//! header-read timeout (slowloris), a header-size limit, and a graceful
//! drain on shutdown.
//!
//! - [`guard`]: `Host` and browser checks every endpoint applies (pure).
//! - [`peer`]: which local user a connection comes from (`allow_uids`).
//! - [`response`]: the response type and plain bodies.

pub(crate) mod guard;
pub(crate) mod peer;
pub(crate) mod response;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

pub(crate) use response::HttpResponse;

/// Connection and request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// Largest request head (request line plus headers) read, in bytes.
    pub max_header_bytes: usize,
    /// How long in-flight requests get to finish on shutdown.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            grace: Duration::from_secs(10),
        }
    }
}

/// Something that answers requests.
pub(crate) trait Handler: Send + Sync + 'static {
    /// The local users this handler serves (`None`: anyone who connects).
    fn allowed_uids(&self) -> Option<&[u32]> {
        None
    }

    fn handle(
        &self,
        req: Request<Incoming>,
    ) -> impl std::future::Future<Output = HttpResponse> + Send;
}

/// Serves `handler` on `listener` until `shutdown`, then drains. The handler
/// can be swapped while serving (a reload); each request uses the one
/// current when it arrives.
pub(crate) async fn run<H: Handler>(
    listener: TcpListener,
    handler: Arc<ArcSwap<H>>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let server = Server {
        local: listener.local_addr().ok(),
        listener,
        handler,
        limits,
        permits: Arc::new(Semaphore::new(limits.max_connections)),
        http: http_builder(&limits),
        graceful: GracefulShutdown::new(),
    };
    server.run(shutdown).await;
}

/// One listening socket and the connections it accepted.
struct Server<H> {
    listener: TcpListener,
    local: Option<SocketAddr>,
    handler: Arc<ArcSwap<H>>,
    limits: Limits,
    /// One per open connection: the connection cap.
    permits: Arc<Semaphore>,
    http: http1::Builder,
    graceful: GracefulShutdown,
}

impl<H: Handler> Server<H> {
    /// Accepts until `shutdown`, then stops accepting and drains.
    async fn run(self, shutdown: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                a = self.accept() => a,
                _ = shutdown.cancelled() => break,
            };
            let (stream, peer, permit) = accepted;
            self.spawn_connection(stream, peer, permit);
        }
        let Server {
            listener,
            local,
            graceful,
            limits,
            ..
        } = self;
        drop(listener);
        tokio::select! {
            _ = graceful.shutdown() => tracing::debug!(listen = ?local, "drained"),
            _ = tokio::time::sleep(limits.grace) => {
                tracing::warn!(listen = ?local, grace = ?limits.grace, "requests still running after the grace period; closing them");
            }
        }
    }

    /// The next connection, once there is room for it. Waiting for a permit
    /// before `accept` leaves excess clients in the kernel backlog rather
    /// than dropping them.
    async fn accept(&self) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore is never closed");
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => return (stream, peer, permit),
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(listen = ?self.local, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Serves one connection on its own task; the permit is returned when
    /// it closes.
    fn spawn_connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) {
        prepare(&stream, self.local, peer);
        let owner = Owner::new(peer, self.local);
        let first = self.handler.load_full();
        let handler = self.handler.clone();
        let requester = owner.clone();
        let service =
            service_fn(move |req| answer(handler.load_full(), requester.clone(), req));
        let conn = self
            .graceful
            .watch(self.http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Someone else's connection is closed without an answer.
            if owner.allowed(first.allowed_uids()).await
                && let Err(e) = conn.await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// The HTTP/1.1 settings every connection gets.
fn http_builder(limits: &Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
}

/// Answers one request with the handler current when it arrived, behind
/// the `allow_uids` check: checked per request too, since a reload may add
/// `allow_uids` while a keep-alive connection is open.
async fn answer<H: Handler>(
    handler: Arc<H>,
    owner: Owner,
    req: Request<Incoming>,
) -> Result<HttpResponse, Infallible> {
    if !owner.allowed(handler.allowed_uids()).await {
        return Ok(response::forbidden_and_close());
    }
    Ok(handler.handle(req).await)
}

/// Who owns the client end of one connection, looked up once, off the
/// runtime threads, and only for listeners with `allow_uids`.
#[derive(Clone)]
struct Owner {
    peer: SocketAddr,
    server: Option<SocketAddr>,
    uid: Arc<tokio::sync::OnceCell<Option<u32>>>,
}

impl Owner {
    fn new(peer: SocketAddr, server: Option<SocketAddr>) -> Self {
        Owner {
            peer,
            server,
            uid: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    async fn allowed(&self, allowed: Option<&[u32]>) -> bool {
        let Some(allowed) = allowed else { return true };
        let (peer, server) = (self.peer, self.server);
        let uid = *self
            .uid
            .get_or_init(|| async move {
                let server = server?;
                tokio::task::spawn_blocking(move || peer::lookup(peer, server))
                    .await
                    .ok()?
            })
            .await;
        let ok = uid.is_some_and(|u| allowed.contains(&u));
        if !ok {
            tracing::warn!(client = %peer, ?uid, "refused a connection from a user not in allow_uids");
        }
        ok
    }
}

fn prepare(stream: &tokio::net::TcpStream, local: Option<SocketAddr>, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    // Off loopback (169.254.169.254 on lo), answers carry IP TTL / hop
    // limit 1 like EC2's default, so they cannot be routed any further.
    let limited = match local {
        Some(SocketAddr::V4(addr)) if !addr.ip().is_loopback() => stream.set_ttl(1),
        Some(SocketAddr::V6(addr)) if !addr.ip().is_loopback() => {
            rustix::net::sockopt::set_ipv6_unicast_hops(stream, Some(1))
                .map_err(Into::into)
        }
        _ => Ok(()),
    };
    if let Err(e) = limited {
        tracing::debug!(%peer, error = %e, "could not set the hop limit to 1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair(addr: &str) -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let listener = TcpListener::bind(addr).await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    #[tokio::test]
    async fn answers_off_loopback_get_hop_limit_one_and_loopback_ones_do_not() {
        let (server, client) = pair("127.0.0.1:0").await;
        let peer = client.local_addr().unwrap();
        prepare(&server, server.local_addr().ok(), peer);
        assert_ne!(
            server.ttl().unwrap(),
            1,
            "loopback answers keep the default TTL"
        );
        prepare(&server, Some("169.254.169.254:80".parse().unwrap()), peer);
        assert_eq!(server.ttl().unwrap(), 1);

        let (server, client) = pair("[::1]:0").await;
        let peer = client.local_addr().unwrap();
        prepare(&server, Some("[fd00:ec2::254]:80".parse().unwrap()), peer);
        assert_eq!(rustix::net::sockopt::ipv6_unicast_hops(&server).unwrap(), 1);
    }
}
