//! The HTTP/1.1 server every listener runs on (IMDS, container, admin).
//!
//! hyper 1 on a tokio listener, with the limits a long-running local
//! service needs so that no local client can starve the others: a
//! connection cap where idle keep-alive connections make room for new ones
//! and each peer gets at most a share, a request rate per peer that applies
//! only while the listener is full and the peer holds more than its share
//! (work-conserving: 429 only then), a header-read timeout (slowloris), a
//! header-size limit, exact request framing, and a graceful drain on
//! shutdown.
//!
//! - [`guard`]: `Host` and browser checks every endpoint applies (pure).
//! - [`peer`]: which local user (and socket) a connection comes from.
//! - [`pool`]: admission and eviction decisions (pure) and the pool.
//! - [`rate`]: the per-peer request rate (pure buckets).
//! - [`response`]: the response type and plain bodies.

pub(crate) mod connection;
pub(crate) mod guard;
pub(crate) mod peer;
mod pool;
mod rate;
pub(crate) mod response;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::Request;
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;

use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::LimitsConfig;
use crate::logging::Opt;
use peer::SocketOwner;
use pool::{Admitted, PeerKey, Pool, PoolLimits};
use rate::{RateLimit, RateLimiter};

pub(crate) use response::HttpResponse;

/// Connection and request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// Most connections one peer (a local user, else a source address) may
    /// hold.
    pub max_connections_per_peer: usize,
    /// Requests a peer may make at once before [`Self::requests_per_second`]
    /// applies; more get 429. Both apply only while the listener is full
    /// and the peer holds more than its share of it.
    pub request_burst: f64,
    pub requests_per_second: f64,
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may stay idle between requests.
    pub idle_timeout: Duration,
    /// Largest request head (request line plus headers) read, in bytes.
    pub max_header_bytes: usize,
    /// How long in-flight requests get to finish on shutdown.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_connections_per_peer: 512,
            request_burst: 1000.0,
            requests_per_second: 200.0,
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            grace: Duration::from_secs(10),
        }
    }
}

impl From<LimitsConfig> for Limits {
    fn from(c: LimitsConfig) -> Self {
        // No rate limit: a bucket that never runs dry.
        let (per_second, burst) = match c.requests_per_second {
            0 => (f64::INFINITY, f64::INFINITY),
            n => (f64::from(n), f64::from(c.request_burst)),
        };
        Limits {
            max_connections: c.max_connections as usize,
            max_connections_per_peer: c.max_connections_per_user as usize,
            requests_per_second: per_second,
            request_burst: burst,
            ..Limits::default()
        }
    }
}

impl Limits {
    fn pool(&self) -> PoolLimits {
        PoolLimits {
            max: self.max_connections,
            per_peer: self.max_connections_per_peer.min(self.max_connections),
        }
    }

    fn rate(&self) -> RateLimit {
        RateLimit {
            per_second: self.requests_per_second,
            burst: self.request_burst,
        }
    }
}

/// Who is on the other end of a connection: its address at once, its
/// owner (a `sock_diag` round trip) only when a decision first needs it:
/// `allow_uids`, the pool once it holds a peer's share, contention, the
/// audit trail. Clones share the one lookup.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) addr: SocketAddr,
    identity: Arc<Identity>,
}

#[derive(Debug)]
struct Identity {
    /// The listener's address (none: the owner is never looked up).
    local: Option<SocketAddr>,
    owner: std::sync::OnceLock<Option<SocketOwner>>,
}

impl Client {
    /// A client whose owner is looked up (on `local`) when first needed.
    fn new(addr: SocketAddr, local: Option<SocketAddr>) -> Self {
        let identity = Identity {
            local,
            owner: std::sync::OnceLock::new(),
        };
        Client {
            addr,
            identity: Arc::new(identity),
        }
    }

    /// A client whose owner is already known (tests, fuzzing).
    #[cfg(any(test, fuzzing))]
    pub(crate) fn known(addr: SocketAddr, owner: Option<SocketOwner>) -> Self {
        let client = Client::new(addr, None);
        let _ = client.identity.owner.set(owner);
        client
    }

    /// The client socket's owner, when it is on this host: looked up on the
    /// first call.
    pub(crate) fn owner(&self) -> Option<SocketOwner> {
        *self
            .identity
            .owner
            .get_or_init(|| identify(self.addr, self.identity.local))
    }

    /// Who the connection is accounted to.
    fn key(&self) -> PeerKey {
        match self.owner() {
            Some(owner) => PeerKey::Uid(owner.uid),
            None => PeerKey::Addr(self.addr.ip()),
        }
    }

    /// Whether `allowed` (a listener's `allow_uids`) lets this client in.
    fn allowed(&self, allowed: Option<&[u32]>) -> bool {
        let Some(allowed) = allowed else { return true };
        let uid = self.owner().map(|o| o.uid);
        let ok = uid.is_some_and(|u| allowed.contains(&u));
        if !ok {
            tracing::warn!(client = %self.addr, uid = %Opt(&uid), "refused a connection from a user not in allow_uids");
        }
        ok
    }
}

/// Something that answers requests.
pub(crate) trait Handler: Send + Sync + 'static {
    /// The local users this handler serves (`None`: anyone who connects).
    fn allowed_uids(&self) -> Option<&[u32]> {
        None
    }

    /// The answer to a client over its request rate.
    fn throttled(&self) -> HttpResponse {
        response::throttled()
    }

    /// Answers a request head (the server has dealt with any body).
    fn handle(
        &self,
        req: Request<()>,
        client: &Client,
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
        pool: Pool::new(limits.pool()),
        rate: Arc::new(RateLimiter::new(limits.rate())),
        http: http_builder(&limits),
        tracker: TaskTracker::new(),
        stop: CancellationToken::new(),
    };
    server.run(shutdown).await;
}

/// One listening socket and the connections it accepted.
struct Server<H> {
    listener: TcpListener,
    local: Option<SocketAddr>,
    handler: Arc<ArcSwap<H>>,
    limits: Limits,
    /// The open connections: the cap, per-peer shares, eviction.
    pool: Arc<Pool>,
    rate: Arc<RateLimiter>,
    http: http1::Builder,
    /// The connection tasks, waited for on shutdown.
    tracker: TaskTracker,
    /// Tells connections the server is stopping.
    stop: CancellationToken,
}

impl<H: Handler> Server<H> {
    /// Accepts until `shutdown`, then stops accepting and drains.
    async fn run(self, shutdown: CancellationToken) {
        loop {
            let (stream, peer) = tokio::select! {
                a = self.accept() => a,
                _ = shutdown.cancelled() => break,
            };
            self.spawn_connection(stream, peer);
        }
        let Server {
            listener,
            local,
            tracker,
            stop,
            limits,
            ..
        } = self;
        drop(listener);
        // Idle connections close at once; a request in progress finishes.
        stop.cancel();
        tracker.close();
        tokio::select! {
            _ = tracker.wait() => tracing::debug!(listen = %Opt(&local), "drained"),
            _ = tokio::time::sleep(limits.grace) => {
                tracing::warn!(
                    listen = %Opt(&local),
                    grace = %humantime::format_duration(limits.grace),
                    "requests still running after the grace period; closing them"
                );
            }
        }
    }

    /// The next connection. Every connection is accepted at once: the pool
    /// decides whether it stays.
    async fn accept(&self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok(pair) => return pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(listen = %Opt(&self.local), error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Serves one connection on its own task: find who it is, let the pool
    /// admit it, then answer requests until it closes or the pool closes
    /// it.
    fn spawn_connection(&self, stream: TcpStream, addr: SocketAddr) {
        prepare(&stream, self.local, addr);
        let (local, pool, handler, rate) = (
            self.local,
            self.pool.clone(),
            self.handler.clone(),
            self.rate.clone(),
        );
        let (http, stop, idle_timeout) = (
            self.http.clone(),
            self.stop.clone(),
            self.limits.idle_timeout,
        );
        self.tracker.spawn(async move {
            let client = Client::new(addr, local);
            // Someone else's connection is closed without an answer.
            if !client.allowed(handler.load().allowed_uids()) {
                return;
            }
            let key = client.clone();
            let identify: pool::Identify = Arc::new(move || key.key());
            let admitted = match pool.admit(identify, Instant::now()) {
                Ok(admitted) => Arc::new(admitted),
                Err(why) => {
                    tracing::debug!(client = %addr, why = %why.as_str(), "no room for a connection; closed it");
                    return;
                }
            };
            let crowded = admitted.clone();
            let signals = connection::Signals {
                evicted: admitted.evicted().clone(),
                stop,
                idle_timeout,
                crowded: Box::new(move || crowded.crowded()),
            };
            let conn = Arc::new(Connection { handler, client, admitted, rate });
            let answer = Arc::new(move |req| answer(conn.clone(), req));
            match connection::run(stream, &http, signals, answer).await {
                connection::Ended::Error(e) => {
                    tracing::debug!(client = %addr, error = %e, "connection ended with an error");
                }
                ended => tracing::trace!(client = %addr, ended = %ended.as_str(), "connection ended"),
            }
        });
    }
}

/// The client socket's owner: by netlink (one quick kernel round trip),
/// else from the socket table (only where netlink is unavailable, a
/// sandbox: a file read on the runtime thread, once per connection at
/// most).
fn identify(addr: SocketAddr, local: Option<SocketAddr>) -> Option<SocketOwner> {
    let local = local?;
    match peer::diag_lookup(addr, local) {
        Ok(found) => found,
        Err(_) => peer::lookup_in_table(addr, local),
    }
}

/// The HTTP/1.1 settings every connection gets.
pub(crate) fn http_builder(limits: &Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
}

/// What every request on one connection is answered with: one `Arc` per
/// request to clone rather than one per part.
struct Connection<H> {
    handler: Arc<ArcSwap<H>>,
    client: Client,
    admitted: Arc<Admitted>,
    rate: Arc<RateLimiter>,
}

/// Answers one request with the handler current when it arrived: behind
/// the `allow_uids` check (per request too, since a reload may add
/// `allow_uids` while a keep-alive connection is open) and the peer's
/// request rate, marked in progress so the pool does not close it.
async fn answer<H: Handler>(conn: Arc<Connection<H>>, req: Request<()>) -> HttpResponse {
    let (handler, client) = (conn.handler.load_full(), &conn.client);
    if !client.allowed(handler.allowed_uids()) {
        return response::forbidden_and_close();
    }
    // Work-conserving: the rate applies only while the pool is full and
    // this peer holds more than its share of it.
    if conn.admitted.contended() && !conn.rate.allow(client.key(), Instant::now()) {
        tracing::debug!(client = %client.addr, "over its share of a full listener and its request rate: 429");
        return handler.throttled();
    }
    let _in_progress = conn.admitted.request();
    handler.handle(req, client).await
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
