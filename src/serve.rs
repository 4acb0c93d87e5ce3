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
    /// Whether a connection from `client` to `server` may be served at all.
    fn admits(&self, _client: SocketAddr, _server: SocketAddr) -> bool {
        true
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
        if let Some(server) = local
            && !endpoint.load().admits(peer, server)
        {
            // Closing without an answer: this client gets nothing.
            drop(stream);
            continue;
        }
        let endpoint = endpoint.clone();
        let service = service_fn(move |req| {
            let endpoint = endpoint.load_full();
            async move { Ok::<_, Infallible>(endpoint.handle(req).await) }
        });
        let conn =
            graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
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

fn prepare(stream: &tokio::net::TcpStream, local: Option<SocketAddr>, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    // Off loopback (169.254.169.254 on lo), answers carry IP TTL 1 like
    // EC2's default hop limit, so they cannot be routed any further.
    if let Some(SocketAddr::V4(addr)) = local
        && !addr.ip().is_loopback()
        && let Err(e) = stream.set_ttl(1)
    {
        tracing::debug!(%peer, error = %e, "could not set IP TTL 1");
    }
}
