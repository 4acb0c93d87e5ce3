//! The HTTP/1.1 accept loop shared by the IMDS and admin listeners.
//!
//! hyper 1 on a tokio listener, with the limits a long-running local
//! service needs: a connection cap (a semaphore taken before `accept`, so
//! excess clients wait in the kernel backlog rather than being dropped), a
//! header-read timeout (slowloris), a header-size limit, and a graceful
//! drain on shutdown.

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
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::imds::endpoint::HttpResponse;

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
pub trait Handler: Send + Sync + 'static {
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
pub async fn serve<H: Handler>(
    listener: TcpListener,
    endpoint: Arc<ArcSwap<H>>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let local = listener.local_addr().ok();
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(listen = ?local, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        prepare(&stream, local, peer);
        let owner = Owner::new(peer, local);
        let endpoint = endpoint.clone();
        let first = endpoint.load_full();
        let service = {
            let owner = owner.clone();
            service_fn(move |req| {
                let endpoint = endpoint.load_full();
                let owner = owner.clone();
                async move {
                    // Checked per request too: a reload may add allow_uids
                    // while this keep-alive connection is open.
                    if !owner.allowed(endpoint.allowed_uids()).await {
                        return Ok::<_, Infallible>(forbidden());
                    }
                    Ok(endpoint.handle(req).await)
                }
            })
        };
        let conn =
            graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
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
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::debug!(listen = ?local, "drained"),
        _ = tokio::time::sleep(limits.grace) => {
            tracing::warn!(listen = ?local, grace = ?limits.grace, "requests still running after the grace period; closing them");
        }
    }
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
                tokio::task::spawn_blocking(move || {
                    crate::imds::peer::lookup(peer, server)
                })
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

fn forbidden() -> HttpResponse {
    let mut r = crate::imds::endpoint::text(
        http::StatusCode::FORBIDDEN,
        bytes::Bytes::from_static(b"forbidden\n"),
    );
    r.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    r
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
